//! The example:poly tasks in Rust, Python, JavaScript and C (examples/polyglot/wit) have
//! identical caching semantics: the same INPUTS key for the same call, records shared
//! across languages, the same state sequence, and a TASK_SOURCE that follows each
//! component's own source. `make test` builds the four components; the edit tests rebuild
//! copies of the sources with the toolchains `make polyglot-tools` installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use cachehost_tests::{example, repo_root, Report, TestContext};
use serde_json::{json, Value as Json};

/// The four languages, by the suffix of their component (`build/examples/poly-<lang>.wasm`).
const LANGS: [&str; 4] = ["rust", "py", "js", "c"];

fn component(lang: &str) -> PathBuf {
    let toolchain = match lang {
        "py" => "Python (componentize-py)",
        "js" => "JavaScript (componentize-js)",
        "c" => "C (clang, wasi-libc, wit-bindgen, wasm-tools)",
        _ => return example(&format!("poly-{lang}")),
    };
    let dir =
        std::env::var_os("CACHEHOST_EXAMPLES").map(PathBuf::from).unwrap_or_else(|| repo_root().join("build/examples"));
    let path = dir.join(format!("poly-{lang}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make polyglot`, which installs the {toolchain} toolchain with `make polyglot-tools`",
        path.display()
    );
    path
}

fn call(ctx: &TestContext, wasm: &Path, task: &str, args: &[&str], status: i32) -> Report {
    let mut all = vec!["call", wasm.to_str().unwrap(), task];
    for arg in args {
        all.extend(["--arg", arg]);
    }
    ctx.report(&all, status)
}

/// Runs a flow of poly-flow with every language's component as a provider.
fn run_flow(ctx: &TestContext, flow: &str, params: &[&str]) -> Report {
    let flow_wasm = example("poly-flow");
    let providers: Vec<PathBuf> = LANGS.iter().map(|lang| component(lang)).collect();
    let mut args = vec!["run", flow_wasm.to_str().unwrap(), "--flow", flow];
    for provider in &providers {
        args.extend(["--tasks", provider.to_str().unwrap()]);
    }
    for param in params {
        args.extend(["--param", param]);
    }
    ctx.report(&args, 0)
}

const ITEMS: &str =
    r#"items=[{"name":"tea","quantity":2,"price-cents":350},{"name":"cake","quantity":1,"price-cents":420}]"#;

/// The calls whose key does not depend on the component: (task, arguments).
const KEYED_CALLS: [(&str, &[&str]); 6] = [
    ("greet", &[r#"name="Ada""#]),
    ("greet", &[r#"name="Ada""#, r#"punctuation="?""#]),
    ("summarize", &[ITEMS]),
    ("parse-quantity", &[r#"text="12""#]),
    ("shout", &[r#"word="Ada""#]),
    // Standalone, so the run context has no flow run; the transaction is still inside the
    // task run's own, and defers its commit to it.
    ("ledger", &[r#"entry="tea""#]),
];

#[test]
fn the_same_call_has_the_same_key_and_result_in_every_language() {
    for (task, args) in KEYED_CALLS {
        let mut seen: Vec<(&str, Option<String>, Json)> = Vec::new();
        for lang in LANGS {
            // A store of its own per language: each call runs (Completed), none is a hit.
            let ctx = TestContext::new();
            let wasm = component(lang);
            let report = call(&ctx, &wasm, task, args, 0);
            assert_eq!(report.states(), ["Completed"], "{lang} {task} {args:?}\n{}", report.stderr);
            let run = &report.task_runs()[0];
            assert_eq!(run["task"], format!("example:poly/{lang}-tasks#{task}"));
            // The same call again prints the result this language wrote.
            let mut again = vec!["call", wasm.to_str().unwrap(), task];
            args.iter().for_each(|arg| again.extend(["--arg", arg]));
            let result: Json = serde_json::from_str(&ctx.stdout(&again, 0)).unwrap();
            seen.push((lang, report.keys()[0].clone(), result));
        }
        let (_, rust_key, rust_result) = &seen[0];
        assert!(rust_key.is_some(), "{task} has a key");
        for (lang, key, result) in &seen {
            assert_eq!(key, rust_key, "{task} {args:?}: {lang} and rust keys differ");
            assert_eq!(result, rust_result, "{task} {args:?}: {lang} and rust results differ");
        }
        if task == "ledger" {
            assert_eq!(rust_result, &json!("tea recorded in a ledger transaction, committed=false"));
        }
    }
    let shout = call(&TestContext::new(), &component("py"), "shout", &[r#"word="Ada""#], 0);
    assert_eq!(shout.keys()[0].as_deref(), Some("shout-ada"), "KEY_FN keys are used as returned");
}

#[test]
fn a_python_result_is_a_hit_for_rust_and_a_rust_result_for_python() {
    let ctx = TestContext::new();
    let summary = json!({"count": 2, "total-cents": 1120, "names": ["tea", "cake"], "most-expensive": "cake"});

    let py = call(&ctx, &component("py"), "summarize", &[ITEMS], 0);
    assert_eq!(py.states(), ["Completed"]);
    for lang in ["rust", "js", "c"] {
        let hit = call(&ctx, &component(lang), "summarize", &[ITEMS], 0);
        assert_eq!(hit.states(), ["Cached"], "{lang} reads the Python record\n{}", hit.stderr);
        assert_eq!(hit.keys(), py.keys());
        assert_eq!(hit.json["instantiations"]["tasks"], 0, "a hit runs no task instance");
    }
    let stdout = ctx.run(&["call", component("rust").to_str().unwrap(), "summarize", "--arg", ITEMS]).stdout;
    assert_eq!(serde_json::from_slice::<Json>(&stdout).unwrap(), summary, "the cached value is Python's result");

    let other = r#"items=[{"name":"scone","quantity":3,"price-cents":275}]"#;
    let rust = call(&ctx, &component("rust"), "summarize", &[other], 0);
    assert_eq!(rust.states(), ["Completed"]);
    let hit = call(&ctx, &component("py"), "summarize", &[other], 0);
    assert_eq!(hit.states(), ["Cached"], "Python reads the Rust record");
    let stdout = ctx.run(&["call", component("py").to_str().unwrap(), "summarize", "--arg", other]).stdout;
    assert_eq!(
        serde_json::from_slice::<Json>(&stdout).unwrap(),
        json!({"count": 1, "total-cents": 825, "names": ["scone"], "most-expensive": "scone"})
    );
}

/// The state of each call of the conformance flow, and its result, in order.
const CONFORMANCE: [&str; 22] = [
    "Completed: Hello, Ada!",
    "Cached: Hello, Ada!",
    "Completed: Hello, Ada?",
    // word-lengths keeps the default policy and persist_result: its results are not
    // written, so it never hits (Prefect's default).
    "Completed: [1, 2, 4, 0]",
    "Completed: [1, 2, 4, 0]",
    "Completed: Summary { count: 3, total-cents: 2380, names: [\"tea\", \"cake\", \"scone\"], most-expensive: \
     Some(\"cake\") }",
    "Completed: Summary { count: 0, total-cents: 0, names: [], most-expensive: None }",
    r#"Cached: Summary { count: 3, total-cents: 2380, names: ["tea", "cake", "scone"], most-expensive: Some("cake") }"#,
    "Completed: Ok(12)",
    "Cached: Ok(12)",
    r#"Failed: Err("not a quantity: x1")"#,
    r#"Failed: Err("not a quantity: x1")"#,
    "Completed: Ok(4294967295)",
    r#"Failed: Err("not a quantity: 4294967296")"#,
    r#"Failed: Err("not a quantity: +1")"#,
    r#"Failed: Err("not a quantity: ")"#,
    "Completed: ADA",
    "Cached: ADA",
    "Completed: ADA LOVELACE",
    // ledger: a lazy transaction inside the task run's own commits with the task run, so
    // end-transaction says it has not committed (yet).
    "Completed: tea recorded in a ledger transaction, committed=false",
    "Cached: tea recorded in a ledger transaction, committed=false",
    "Completed: caf\u{e9} \"x\"\\\n recorded in a ledger transaction, committed=false",
];

#[test]
fn the_conformance_sequence_gives_the_same_states_in_every_language() {
    let mut reference: Option<(Vec<String>, Vec<Option<String>>)> = None;
    for lang in LANGS {
        let ctx = TestContext::new();
        let report = run_flow(&ctx, "conformance", &[&format!(r#"lang="{lang}""#)]);
        let result: Vec<String> = serde_json::from_value(report.result()["ok"].clone())
            .unwrap_or_else(|e| panic!("{lang}: the flow returned {} ({e})", report.result()));
        assert_eq!(result, CONFORMANCE, "{lang}\n{}", report.stderr);
        let states = report.states();
        let expected: Vec<&str> = CONFORMANCE.iter().map(|line| line.split(':').next().unwrap()).collect();
        assert_eq!(states, expected, "{lang}: the report's states");
        for run in report.task_runs() {
            assert_eq!(run["component"], format!("poly-{lang}.wasm"));
        }
        // Keys of word-lengths hold TASK_SOURCE and RUN_ID: they differ by language and
        // run. Every other key must be the same in every language.
        let keys: Vec<Option<String>> = report
            .task_runs()
            .iter()
            .map(|run| {
                if run["task"].as_str().unwrap().ends_with("#word-lengths") {
                    None
                } else {
                    run["cache_key"].as_str().map(str::to_owned)
                }
            })
            .collect();
        match &reference {
            None => reference = Some((states, keys)),
            Some((ref_states, ref_keys)) => {
                assert_eq!(&states, ref_states, "{lang} states differ from rust");
                assert_eq!(&keys, ref_keys, "{lang} keys differ from rust");
            }
        }
    }
}

#[test]
fn one_flow_calls_tasks_of_four_languages_and_shares_their_records() {
    let ctx = TestContext::new();
    let report = run_flow(&ctx, "poly", &[r#"name="Ada""#, r#"words=["tea","café"]"#, ITEMS]);
    let runs: Vec<(String, String, String)> = report
        .task_runs()
        .iter()
        .map(|run| {
            let task = run["task"].as_str().unwrap();
            (
                task.split('#').nth(1).unwrap().to_owned(),
                run["component"].as_str().unwrap().to_owned(),
                run["state"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("greet", "poly-py.wasm", "Completed"),
        ("greet", "poly-js.wasm", "Cached"),
        ("greet", "poly-c.wasm", "Cached"),
        ("greet", "poly-rust.wasm", "Cached"),
        ("word-lengths", "poly-py.wasm", "Completed"),
        ("word-lengths", "poly-js.wasm", "Completed"),
        ("word-lengths", "poly-c.wasm", "Completed"),
        ("word-lengths", "poly-rust.wasm", "Completed"),
        ("summarize", "poly-py.wasm", "Completed"),
        ("summarize", "poly-rust.wasm", "Cached"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(runs, expected, "{}", report.stderr);
    assert_eq!(report.result()["greetings"], json!(["Hello, Ada!", "Hello, Ada!", "Hello, Ada!", "Hello, Ada!"]));
    assert_eq!(report.result()["lengths"], json!([[3, 4], [3, 4], [3, 4], [3, 4]]));
    assert!(
        report.stderr.contains("greeting Ada in Python"),
        "the Python task logs through the runtime:\n{}",
        report.stderr
    );
}

/// Rebuilds a language's component from a copy of its source, with `edit` applied to the
/// copy (a (from, to) replacement of one line), into `dir`; returns the component.
fn rebuild(lang: &str, dir: &Path, edit: Option<(&str, &str)>) -> PathBuf {
    let root = repo_root();
    let out = dir.join(format!("poly-{lang}.wasm"));
    let (source_dir, file) = match lang {
        "py" => ("examples/python", "app.py"),
        "js" => ("examples/js", "tasks.js"),
        "c" => ("examples/c", "tasks.c"),
        "rust" => ("examples/rust/poly-rust", "src/lib.rs"),
        _ => unreachable!(),
    };
    let src = dir.join("src");
    copy_dir(&root.join(source_dir), &src);
    if let Some((from, to)) = edit {
        let path = src.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(from).count(), 1, "{from:?} is on exactly one line of {file}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }
    let status = if lang == "rust" {
        build_rust_copy(&src, &out)
    } else {
        Command::new(root.join("tools/build-guest.sh"))
            .args([lang])
            .arg(&src)
            .arg(&out)
            .status()
            .expect("tools/build-guest.sh runs")
    };
    assert!(status.success(), "rebuilding the {lang} component failed (toolchains: `make polyglot-tools`)");
    out
}

/// Builds a copy of examples/rust/poly-rust in a workspace of its own, with its own
/// target folder beside the repository's (so the repository's build is left alone).
fn build_rust_copy(src: &Path, out: &Path) -> std::process::ExitStatus {
    let root = repo_root();
    let ws = src.parent().unwrap().join("ws");
    copy_dir(src, &ws.join("examples/rust/poly-rust"));
    std::fs::create_dir_all(ws.join("examples/polyglot/wit/deps/cachehost-task")).unwrap();
    std::fs::copy(root.join("examples/polyglot/wit/poly.wit"), ws.join("examples/polyglot/wit/poly.wit")).unwrap();
    std::fs::copy(
        root.join("wit/cachehost-task.wit"),
        ws.join("examples/polyglot/wit/deps/cachehost-task/cachehost-task.wit"),
    )
    .unwrap();
    std::fs::copy(root.join("Cargo.lock"), ws.join("Cargo.lock")).unwrap();
    let manifest = format!(
        r#"[workspace]
resolver = "2"
members = ["examples/rust/poly-rust"]
[workspace.package]
edition = "2021"
version = "0.1.0"
license = "Apache-2.0"
[workspace.dependencies]
wit-bindgen = "=0.63.0"
cachehost-guest = {{ path = {:?} }}
[profile.release]
debug = false
[profile.release-guest]
inherits = "release"
opt-level = "s"
strip = true
"#,
        root.join("guest-sdk")
    );
    std::fs::write(ws.join("Cargo.toml"), manifest).unwrap();
    let target = cargo_target_dir().join("polyglot-tests");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&ws)
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "build",
            "--quiet",
            "--offline",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "release-guest",
            "-p",
            "example-poly-rust",
        ])
        .status()
        .expect("cargo runs");
    if status.success() {
        std::fs::copy(target.join("wasm32-wasip2/release-guest/example_poly_rust.wasm"), out).unwrap();
    }
    status
}

fn build_rust_again(dir: &Path) -> PathBuf {
    let root = repo_root();
    let target = cargo_target_dir().join("polyglot-repro");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "build",
            "--quiet",
            "--offline",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "release-guest",
            "-p",
            "example-poly-rust",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building examples/rust/poly-rust again failed");
    let out = dir.join("poly-rust.wasm");
    std::fs::copy(target.join("wasm32-wasip2/release-guest/example_poly_rust.wasm"), &out).unwrap();
    out
}

fn cargo_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn digest(ctx: &TestContext, wasm: &Path) -> String {
    let output = ctx.run(&["inspect", wasm.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: Json = serde_json::from_slice(&output.stdout).unwrap();
    json["task_source_digest"].as_str().unwrap().to_owned()
}

/// One line of each guest's source: the greeting it returns.
fn one_line_edit(lang: &str) -> (&'static str, &'static str) {
    match lang {
        "py" => (r#"return f"Hello, {name}"#, r#"return f"Hi, {name}"#),
        "js" => ("return `Hello, ${name}", "return `Hi, ${name}"),
        "c" => (r#"static const char hello[] = "Hello, ";"#, r#"static const char hello[] = "Hi, ";"#),
        "rust" => (r#"format!("Hello, {name}{}""#, r#"format!("Hi, {name}{}""#),
        _ => unreachable!(),
    }
}

/// Building the unchanged source again gives the same bytes as `make` did. Rust's output
/// depends on the build's paths (crate hashes), so Rust is built again from the repository
/// itself, into a target folder of its own.
fn rebuild_is_byte_identical(lang: &str) {
    let original = component(lang);
    let ctx = TestContext::new();
    let again = if lang == "rust" {
        build_rust_again(ctx.dir.path())
    } else {
        rebuild(lang, &ctx.dir.path().join("again"), None)
    };
    let (a, b) = (std::fs::read(&original).unwrap(), std::fs::read(&again).unwrap());
    let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len());
    assert_eq!(differing, 0, "building the unchanged {lang} source again gave {differing} different bytes");
}

#[test]
fn rust_rebuild_is_byte_identical() {
    rebuild_is_byte_identical("rust");
}

#[test]
fn c_rebuild_is_byte_identical() {
    rebuild_is_byte_identical("c");
}

#[test]
fn javascript_rebuild_is_byte_identical() {
    rebuild_is_byte_identical("js");
}

#[test]
fn python_rebuild_is_byte_identical() {
    rebuild_is_byte_identical("py");
}

/// Editing one line changes the component's TASK_SOURCE, and a policy with TASK_SOURCE
/// then misses.
fn task_source_follows_the_source(lang: &str) {
    let original = component(lang);
    let ctx = TestContext::new();
    let edited = rebuild(lang, &ctx.dir.path().join("edited"), Some(one_line_edit(lang)));
    assert_ne!(digest(&ctx, &edited), digest(&ctx, &original), "{lang}: the edit must change TASK_SOURCE");

    let config = ctx.dir.path().join("cachehost.toml");
    std::fs::write(&config, "[tasks.greet]\ncache_policy = \"INPUTS + TASK_SOURCE\"\n").unwrap();
    let greet = |wasm: &Path| {
        ctx.report(
            &["call", wasm.to_str().unwrap(), "greet", "--arg", r#"name="Ada""#, "--config", config.to_str().unwrap()],
            0,
        )
    };
    assert_eq!(greet(&original).states(), ["Completed"]);
    assert_eq!(greet(&original).states(), ["Cached"]);
    let miss = greet(&edited);
    assert_eq!(miss.states(), ["Completed"], "{lang}: the edited component misses");
    let stdout = ctx
        .run(&[
            "call",
            edited.to_str().unwrap(),
            "greet",
            "--arg",
            r#"name="Ada""#,
            "--config",
            config.to_str().unwrap(),
        ])
        .stdout;
    assert_eq!(String::from_utf8_lossy(&stdout).trim(), r#""Hi, Ada!""#);
}

#[test]
fn rust_task_source_follows_the_source() {
    task_source_follows_the_source("rust");
}

#[test]
fn c_task_source_follows_the_source() {
    task_source_follows_the_source("c");
}

#[test]
fn python_task_source_follows_the_source() {
    task_source_follows_the_source("py");
}

#[test]
fn javascript_task_source_follows_the_source() {
    task_source_follows_the_source("js");
}

#[test]
fn large_components_start_from_the_compiled_cache() {
    // The compiled cache of the test harness is shared: the first call below compiles the
    // component (with a progress line) unless another test already did.
    let ctx = TestContext::new();
    for lang in ["py", "js"] {
        let wasm = component(lang);
        call(&ctx, &wasm, "shout", &[r#"word="a""#], 0);
        let second = call(&ctx, &wasm, "shout", &[r#"word="a""#], 0);
        assert!(
            second.stderr.contains("from the compiled cache"),
            "{lang}: the second start loads the compiled component:\n{}",
            second.stderr
        );
        assert!(!second.stderr.contains("for the first time"), "{lang}: no second compile:\n{}", second.stderr);
    }
}
