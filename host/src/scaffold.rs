//! `cachehost new`: the files of a new component in one of the four guest languages.
//!
//! A scaffold is self-contained: its WIT (with the cachehost:task package under `wit/deps`),
//! its source, a copy of the language's SDK (cachehost's SDKs are not published to PyPI, npm
//! or crates.io) and a `build.sh` that builds `<name>.wasm`. Every language's scaffold has
//! the same tasks with the same options, so they can be checked against each other.

use std::fmt;
use std::path::{Path, PathBuf};

/// A guest language `cachehost new` writes components in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Python, built with componentize-py, on `guest-sdk/python`.
    Python,
    /// JavaScript, built with componentize-js, on `guest-sdk/js`.
    Js,
    /// Rust, built with cargo for wasm32-wasip2, on `guest-sdk` (cachehost-guest).
    Rust,
    /// C, built with wit-bindgen, clang and wasm-tools, on `guest-sdk/c/cachehost.h`.
    C,
}

impl Lang {
    /// Every language, in the order the help lists them.
    pub const ALL: [Lang; 4] = [Lang::Python, Lang::Js, Lang::Rust, Lang::C];

    /// The name `--lang` takes.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::Rust => "rust",
            Lang::C => "c",
        }
    }

    /// The language named `name` (`python`, `js`, `rust` or `c`).
    pub fn parse(name: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.name() == name)
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a scaffold was not written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a WIT package and world name.
    #[error(
        "{0:?} is not a valid component name: use lower-case words of letters and digits joined by '-', each \
         starting with a letter (e.g. \"my-tasks\")"
    )]
    BadName(String),
    /// The folder exists already.
    #[error("{} already exists: give a new folder", .0.display())]
    Exists(PathBuf),
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

const WORLD: &str = include_str!("../templates/world.wit");
const TASK_WIT: &str = include_str!("../../wit/cachehost-task.wit");
/// Where the Rust SDK's bindings read the cachehost:task WIT, in the repository.
const RUST_SDK_WIT: &str = "path: \"../wit\",";

/// What a file of a scaffold is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The component's own file, a template with `{{name}}` and `{{snake}}` placeholders.
    Own,
    /// Its build script: a template, and executable.
    Script,
    /// A copy of the SDK, written as it is.
    Sdk,
}

/// (path in the scaffold, contents, kind) of one language's files.
fn template(lang: Lang) -> Vec<(&'static str, &'static str, Kind)> {
    match lang {
        Lang::Python => vec![
            ("app.py", include_str!("../templates/python/app.py"), Kind::Own),
            ("build.sh", include_str!("../templates/python/build.sh"), Kind::Script),
            ("cachehost/__init__.py", include_str!("../../guest-sdk/python/cachehost/__init__.py"), Kind::Sdk),
            ("cachehost/_bindings.py", include_str!("../../guest-sdk/python/cachehost/_bindings.py"), Kind::Sdk),
            ("cachehost/exports.py", include_str!("../../guest-sdk/python/cachehost/exports.py"), Kind::Sdk),
            ("cachehost/futures.py", include_str!("../../guest-sdk/python/cachehost/futures.py"), Kind::Sdk),
            ("cachehost/locking.py", include_str!("../../guest-sdk/python/cachehost/locking.py"), Kind::Sdk),
            ("cachehost/log.py", include_str!("../../guest-sdk/python/cachehost/log.py"), Kind::Sdk),
            ("cachehost/policies.py", include_str!("../../guest-sdk/python/cachehost/policies.py"), Kind::Sdk),
            ("cachehost/runtime.py", include_str!("../../guest-sdk/python/cachehost/runtime.py"), Kind::Sdk),
            ("cachehost/tasks.py", include_str!("../../guest-sdk/python/cachehost/tasks.py"), Kind::Sdk),
            ("cachehost/transactions.py", include_str!("../../guest-sdk/python/cachehost/transactions.py"), Kind::Sdk),
        ],
        Lang::Js => vec![
            ("tasks.js", include_str!("../templates/js/tasks.js"), Kind::Own),
            ("build.sh", include_str!("../templates/js/build.sh"), Kind::Script),
            ("cachehost.js", include_str!("../../guest-sdk/js/cachehost.js"), Kind::Sdk),
            ("policies.js", include_str!("../../guest-sdk/js/policies.js"), Kind::Sdk),
        ],
        Lang::Rust => vec![
            ("Cargo.toml", include_str!("../templates/rust/Cargo.toml"), Kind::Own),
            ("src/lib.rs", include_str!("../templates/rust/src/lib.rs"), Kind::Own),
            ("build.sh", include_str!("../templates/rust/build.sh"), Kind::Script),
            ("cachehost-guest/Cargo.toml", include_str!("../templates/rust/sdk-Cargo.toml"), Kind::Sdk),
            ("cachehost-guest/src/lib.rs", include_str!("../../guest-sdk/src/lib.rs"), Kind::Sdk),
            ("cachehost-guest/wit/cachehost-task.wit", TASK_WIT, Kind::Sdk),
        ],
        Lang::C => vec![
            ("tasks.c", include_str!("../templates/c/tasks.c"), Kind::Own),
            ("build.sh", include_str!("../templates/c/build.sh"), Kind::Script),
            ("cachehost.h", include_str!("../../guest-sdk/c/cachehost.h"), Kind::Sdk),
        ],
    }
}

/// Whether `name` is a WIT identifier: lower-case words of letters and digits joined by `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|word| {
            word.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// The files of a new component named `name` in `lang`: (relative path, contents, executable).
pub fn files(lang: Lang, name: &str) -> Result<Vec<(PathBuf, String, bool)>, ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::BadName(name.to_string()));
    }
    let snake = name.replace('-', "_");
    let fill = |text: &str| text.replace("{{name}}", name).replace("{{snake}}", &snake);
    let mut files = vec![
        (PathBuf::from("wit/world.wit"), fill(WORLD), false),
        (PathBuf::from("wit/deps/cachehost-task/cachehost-task.wit"), TASK_WIT.to_string(), false),
    ];
    for (path, text, kind) in template(lang) {
        let text = match kind {
            Kind::Own | Kind::Script => fill(text),
            // The Rust SDK's copy finds the cachehost:task WIT in its own folder.
            Kind::Sdk if path == "cachehost-guest/src/lib.rs" => text.replace(RUST_SDK_WIT, "path: \"wit\","),
            Kind::Sdk => text.to_string(),
        };
        files.push((PathBuf::from(path), text, kind == Kind::Script));
    }
    Ok(files)
}

/// Writes a new component named `name` in `lang` into the new folder `dir`.
pub fn write(lang: Lang, name: &str, dir: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    let files = files(lang, name)?;
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir.to_owned()));
    }
    let mut written = Vec::new();
    for (relative, text, executable) in files {
        let path = dir.join(&relative);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().expect("a file in the folder"))?;
            std::fs::write(&path, text)?;
            if executable {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            }
            Ok(())
        };
        write().map_err(|source| ScaffoldError::Write { path: path.clone(), source })?;
        written.push(relative);
    }
    Ok(written)
}

/// What builds and runs the scaffold, for `cachehost new` to print.
pub fn next_steps(lang: Lang, name: &str, dir: &Path) -> String {
    let tools = match lang {
        Lang::Python => "componentize-py 0.25.1",
        Lang::Js => "componentize-js 0.23.0 (and node)",
        Lang::Rust => "cargo and the wasm32-wasip2 target",
        Lang::C => "wit-bindgen 0.63, clang with wasi-libc, wasm-tools and the WASI preview1 reactor adapter",
    };
    let tools_hint = match lang {
        Lang::Rust => String::new(),
        _ => "\n(with a cachehost checkout's tools: CACHEHOST_TOOLS=/path/to/cachehost/.tools ./build.sh)".to_string(),
    };
    format!(
        "Build it (needs {tools}):\n  cd {dir} && ./build.sh{tools_hint}\nRun its flow:\n  cachehost run {dir}/{name}.wasm \
         --param 'name=\"Ada\"'",
        dir = dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_wit_identifiers() {
        for good in ["tasks", "my-tasks", "a1-b2"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "My", "my_tasks", "1a", "a--b", "a-", "-a", "a-1b", "tâches"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn placeholders_are_filled_in_the_components_own_files_only() {
        for lang in Lang::ALL {
            let files = files(lang, "my-tasks").unwrap();
            for (path, text, _) in &files {
                assert!(!text.contains("{{"), "{lang}: {} has a placeholder left", path.display());
            }
            let own: Vec<_> = template(lang).into_iter().filter(|(_, _, kind)| *kind != Kind::Sdk).collect();
            assert!(own.len() >= 2, "{lang}: a source and a build script");
            for (path, _, _) in own {
                let (_, text, _) = files.iter().find(|(p, _, _)| p == Path::new(path)).unwrap();
                assert!(text.contains("my-tasks") || text.contains("my_tasks"), "{lang}: {path} names the component");
            }
            assert!(files.iter().any(|(path, _, executable)| path == Path::new("build.sh") && *executable));
        }
    }

    #[test]
    fn the_rust_sdk_copy_reads_the_wit_beside_it() {
        assert!(include_str!("../../guest-sdk/src/lib.rs").contains(RUST_SDK_WIT));
        let files = files(Lang::Rust, "t").unwrap();
        let (_, sdk, _) = files.iter().find(|(p, _, _)| p == Path::new("cachehost-guest/src/lib.rs")).unwrap();
        assert!(sdk.contains("path: \"wit\",") && !sdk.contains(RUST_SDK_WIT));
    }
}
