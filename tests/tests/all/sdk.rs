//! The guest SDKs (guest-sdk/python, guest-sdk/js, guest-sdk/c/cachehost.h, and the Rust
//! cachehost-guest) and `cachehost new`: each SDK's options resolve to the Rust SDK's,
//! compared through `cachehost inspect`; the scaffolds of all four languages build and run;
//! a wrong option fails the build, a bad policy expression the load, with cachehost.toml's
//! message. The scaffold builds use the toolchains `make polyglot-tools` installs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cachehost_tests::{example, repo_root, TestContext};
use serde_json::{json, Value as Json};

/// Each task's resolved options, limits and warnings, by task name, as `inspect --json`
/// shows them; componentize-py's own `exports#init` export is left out.
fn resolved_options(ctx: &TestContext, wasm: &Path) -> BTreeMap<String, Json> {
    let output = ctx.run(&["inspect", wasm.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "inspect {}: {}", wasm.display(), String::from_utf8_lossy(&output.stderr));
    let json: Json = serde_json::from_slice(&output.stdout).unwrap();
    json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|task| !task["full_name"].as_str().unwrap().starts_with("exports#"))
        .map(|task| {
            let resolved = json!({"options": task["options"], "limits": task["limits"], "warnings": task["warnings"]});
            (task["name"].as_str().unwrap().to_owned(), resolved)
        })
        .collect()
}

fn polyglot(lang: &str) -> PathBuf {
    example(&format!("poly-{lang}"))
}

#[test]
fn every_sdk_declares_the_options_the_rust_sdk_declares() {
    let ctx = TestContext::new();
    let rust = resolved_options(&ctx, &polyglot("rust"));
    // The examples declare every option the options export carries, so each is compared.
    let declared = |option: &str| {
        rust.values().any(|task| task["options"][option]["source"] == "component" && !task["options"][option].is_null())
    };
    for option in [
        "cache_policy",
        "cache_expiration_ms",
        "refresh_cache",
        "persist_result",
        "isolation_level",
        "lock_manager",
        "retries",
        "retry_delay_ms",
    ] {
        assert!(declared(option), "no poly-rust task declares {option}: {rust:#?}");
    }
    assert_eq!(rust["parse-quantity"]["limits"]["timeout_ms"], 60_000, "the declared timeout is the task's limit");
    assert_eq!(rust["shout"]["options"]["cache_policy"]["value"], "KEY_FN");
    for lang in ["py", "js", "c"] {
        let other = resolved_options(&ctx, &polyglot(lang));
        assert_eq!(other.keys().collect::<Vec<_>>(), rust.keys().collect::<Vec<_>>(), "{lang}: the same tasks");
        for (task, options) in &rust {
            assert_eq!(&other[task], options, "{lang} {task}: the options differ from the Rust SDK's");
        }
    }
}

/// The scaffold languages: `cachehost new --lang` and the suffix of the test's folder.
const SCAFFOLDS: [&str; 4] = ["rust", "python", "js", "c"];

/// Writes a scaffold named `hello-<lang>` into `<dir>/<lang>` with `cachehost new`; returns
/// its folder and what the command printed.
fn new_scaffold(ctx: &TestContext, lang: &str, dir: &Path) -> (PathBuf, String) {
    named_scaffold(ctx, lang, dir, &format!("hello-{lang}"))
}

/// [`new_scaffold`] under another name. Scaffolds that differ must be named apart: their
/// Rust builds share one target folder, where cargo tells a root package by its name, not
/// its folder, so a second `hello-rust` would be taken as fresh and given the first's wasm.
fn named_scaffold(ctx: &TestContext, lang: &str, dir: &Path, name: &str) -> (PathBuf, String) {
    let folder = dir.join(lang);
    let printed = ctx.stdout(&["new", "--lang", lang, name, "--dir", folder.to_str().unwrap()], 0);
    (folder, printed)
}

/// Runs a scaffold's build.sh with the repository's toolchains (`.tools`); Rust builds
/// offline into a target folder of its own beside the repository's.
fn build(folder: &Path) -> Output {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("scaffolds");
    Command::new(folder.join("build.sh"))
        .env("CACHEHOST_TOOLS", repo_root().join(".tools"))
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .expect("build.sh runs")
}

#[test]
fn scaffolds_of_all_four_languages_build_run_and_declare_the_same_options() {
    let ctx = TestContext::new();
    let built: Vec<(&str, PathBuf)> = std::thread::scope(|scope| {
        let builds: Vec<_> = SCAFFOLDS
            .iter()
            .map(|&lang| {
                let ctx = &ctx;
                scope.spawn(move || {
                    let (folder, printed) = new_scaffold(ctx, lang, ctx.dir.path());
                    assert!(
                        printed.contains("./build.sh"),
                        "{lang}: `cachehost new` prints the build command:\n{printed}"
                    );
                    let output = build(&folder);
                    assert!(
                        output.status.success(),
                        "{lang}: the scaffold does not build:\n{}{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    );
                    (lang, folder.join(format!("hello-{lang}.wasm")))
                })
            })
            .collect();
        builds.into_iter().map(|build| build.join().unwrap()).collect()
    });
    let rust = resolved_options(&ctx, &built[0].1);
    assert_eq!(rust["greet"]["options"]["cache_policy"]["value"], "INPUTS - 'verbose' + TASK_SOURCE");
    assert_eq!(rust["word-count"]["options"]["isolation_level"]["value"], "SERIALIZABLE");
    for (lang, wasm) in &built {
        // A store of its own per language: the greeting's key holds TASK_SOURCE, but the key
        // function's key of word-count is the same in every language.
        let run_ctx = TestContext::new();
        let report = run_ctx.report(&["run", wasm.to_str().unwrap(), "--param", r#"name="Ada""#], 0);
        assert_eq!(report.result(), &json!(["Hello, Ada!", "Hello, Ada!", "2"]), "{lang}\n{}", report.stderr);
        assert_eq!(report.states(), ["Completed", "Cached", "Completed"], "{lang}: the verbose greeting is a hit");
        assert_eq!(report.keys()[2].as_deref(), Some("words-hello, ada!"), "{lang}: the key function's key");
        assert!(report.stderr.contains("greeting Ada"), "{lang}: the task logs to the host:\n{}", report.stderr);
        assert_eq!(resolved_options(&ctx, wasm), rust, "{lang}: the scaffold's options differ from the Rust one's");
    }
}

/// Builds a scaffold, named `edited-<lang>`, with `(from, to)` replaced in its source file;
/// returns the build's output.
fn build_edited(ctx: &TestContext, lang: &str, file: &str, from: &str, to: &str) -> Output {
    let (folder, _) = named_scaffold(ctx, lang, ctx.dir.path(), &format!("edited-{lang}"));
    let path = folder.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} is in {file} once");
    std::fs::write(&path, text.replace(from, to)).unwrap();
    build(&folder)
}

#[test]
fn an_unknown_option_fails_the_build() {
    let ctx = TestContext::new();
    let cases = [
        ("python", "app.py", "retries=2,", "retires=2,", "unknown option 'retires'; did you mean retries?"),
        ("js", "tasks.js", "retries: 2,", "retires: 2,", "unknown option 'retires'; did you mean retries?"),
        ("c", "tasks.c", ".retries = ", ".retires = ", "retires"),
        ("rust", "src/lib.rs", ".retries(2)", ".retires(2)", "retires"),
    ];
    for (lang, file, from, to, message) in cases {
        let output = build_edited(&ctx, lang, file, from, to);
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(!output.status.success(), "{lang}: a misspelt option must fail the build:\n{text}");
        assert!(text.contains(message), "{lang}: the build says {message:?}:\n{text}");
    }
}

/// The message of a failed `inspect`, with the place the policy came from left out.
fn load_error(ctx: &TestContext, args: &[&str], origin: &str) -> String {
    let output = ctx.run(args);
    assert_eq!(output.status.code(), Some(2), "{args:?}: a bad policy fails the load");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stderr.contains(origin), "the message names where the policy came from ({origin}):\n{stderr}");
    stderr.replace(origin, "[ORIGIN]")
}

#[test]
fn a_bad_policy_in_a_component_fails_its_load_with_cachehost_tomls_message() {
    let ctx = TestContext::new();
    let (good, bad) = ("INPUTS - 'verbose' + TASK_SOURCE", "INPUTS - verbose + TASK_SOURCE");
    let output = build_edited(&ctx, "c", "tasks.c", &format!("{good:?}"), &format!("{bad:?}"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let declared = ctx.dir.path().join("c/edited-c.wasm");
    // Named apart from the scaffold below (see `named_scaffold`), the same otherwise.
    let from_component =
        load_error(&ctx, &["inspect", declared.to_str().unwrap()], "(from component)").replace("edited-c", "hello-c");

    // The same expression in cachehost.toml, for the scaffold as written.
    let (folder, _) = new_scaffold(&ctx, "c", &ctx.dir.path().join("toml"));
    let output = build(&folder);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let config = folder.join("cachehost.toml");
    std::fs::write(&config, format!("[tasks.greet]\ncache_policy = {bad:?}\n")).unwrap();
    let wasm = folder.join("hello-c.wasm");
    let origin = format!("(from {})", config.display());
    let from_toml = load_error(&ctx, &["inspect", wasm.to_str().unwrap()], &origin);

    assert_eq!(from_component, from_toml, "the component's bad policy is reported as cachehost.toml's");
    assert!(
        from_component.contains("column 10: '-' takes a quoted parameter name like 'debug', found 'verbose'"),
        "{from_component}"
    ); // Regression: the error's cause printed a second time after it, in the `{:#}` chain.
    assert_eq!(from_component.matches("has an invalid cache_policy").count(), 1, "{from_component}");
}

/// The rewritten examples keep their keys: after Rust's conformance run, the same sequence
/// in each other language, in the same store, is answered from Rust's records wherever its
/// policy has no TASK_SOURCE or RUN_ID (15 of the 22 calls).
#[test]
fn every_language_hits_rusts_records_for_15_of_the_22_conformance_calls() {
    let ctx = TestContext::new();
    let providers: Vec<PathBuf> = ["rust", "py", "js", "c"].iter().map(|lang| polyglot(lang)).collect();
    let flow = example("poly-flow");
    let cached = |lang: &str| {
        let mut args = vec!["run", flow.to_str().unwrap(), "--flow", "conformance"];
        for provider in &providers {
            args.extend(["--tasks", provider.to_str().unwrap()]);
        }
        let param = format!(r#"lang="{lang}""#);
        args.extend(["--param", &param]);
        let states = ctx.report(&args, 0).states();
        assert_eq!(states.len(), 22, "{lang}");
        states.iter().filter(|state| *state == "Cached").count()
    };
    assert_eq!(cached("rust"), 5, "within Rust's own run");
    for lang in ["py", "js", "c"] {
        assert_eq!(cached(lang), 15, "{lang} after rust");
    }
}

/// Issue 16 in Python: a Python task opens files through wasi:filesystem as a Rust one does,
/// so the host sees what it read, and READS (`key_on_reads`) misses when the file changes and
/// hits the original record once it is restored.
#[test]
fn a_python_task_that_reads_a_granted_file_is_keyed_on_it() {
    let ctx = TestContext::new();
    let output = build_edited(&ctx, "python", "app.py", "return f\"Hello, {name}!\"", "return open(name).read()");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let wasm = ctx.dir.path().join("python/edited-python.wasm");
    let data = ctx.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("note.txt"), "first").unwrap();
    let config = ctx.dir.path().join("cachehost.toml");
    std::fs::write(
        &config,
        "[components.edited-python]\ndirs = [{ host = \"data\", guest = \"/data\" }]\n[tasks.greet]\nkey_on_reads = true\n",
    )
    .unwrap();
    let call = || {
        let args = ["call", wasm.to_str().unwrap(), "greet", "--arg", "name=/data/note.txt", "--arg", "verbose=false"];
        let mut all = args.to_vec();
        all.extend(["--config", config.to_str().unwrap()]);
        ctx.report(&all, 0)
    };
    let first = call();
    let run = &first.task_runs()[0];
    assert_eq!(run["state"]["name"], "Completed", "{}", first.stderr);
    assert_eq!(run["reads"]["files"]["/data/note.txt"], blake3::hash(b"first").to_hex().to_string(), "{run:#}");
    assert_eq!(call().task_runs()[0]["state"]["name"], "Cached");
    std::fs::write(data.join("note.txt"), "second").unwrap();
    let edited = call();
    assert_eq!(edited.task_runs()[0]["state"]["name"], "Completed", "{}", edited.stderr);
    assert!(edited.stderr.contains("READS: /data/note.txt changed"), "{}", edited.stderr);
    std::fs::write(data.join("note.txt"), "first").unwrap();
    assert_eq!(call().task_runs()[0]["state"]["name"], "Cached", "restored: the original record");
}

/// The same in C: wasi-libc's `fopen` reaches the host's filesystem through the preview-1
/// adapter, and the host sees the read.
#[test]
fn a_c_task_that_reads_a_granted_file_is_in_its_read_set() {
    let ctx = TestContext::new();
    let (folder, _) = named_scaffold(&ctx, "c", ctx.dir.path(), "reads-c");
    let source = folder.join("tasks.c");
    let text = std::fs::read_to_string(&source).unwrap();
    let text = text.replacen("#include <stdlib.h>", "#include <stdio.h>\n#include <stdlib.h>", 1).replacen(
        "    cachehost_info(\"greeting %.*s\", (int)name->len, (const char *)name->ptr);",
        "    char path[256];\n    size_t n = name->len < 255 ? name->len : 255;\n    memcpy(path, name->ptr, n);\n    \
         path[n] = 0;\n    FILE *file = fopen(path, \"rb\");\n    if (file) fclose(file);",
        1,
    );
    std::fs::write(&source, text).unwrap();
    let output = build(&folder);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let data = ctx.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("note.txt"), "in C").unwrap();
    let config = ctx.dir.path().join("cachehost.toml");
    std::fs::write(&config, "[components.reads-c]\ndirs = [{ host = \"data\", guest = \"/data\" }]\n").unwrap();
    let wasm = folder.join("reads-c.wasm");
    let report = ctx.report(
        &[
            "call",
            wasm.to_str().unwrap(),
            "greet",
            "--arg",
            "name=/data/note.txt",
            "--arg",
            "verbose=false",
            "--config",
            config.to_str().unwrap(),
        ],
        0,
    );
    let run = &report.task_runs()[0];
    assert_eq!(run["reads"]["files"]["/data/note.txt"], blake3::hash(b"in C").to_hex().to_string(), "{run:#}");
}
