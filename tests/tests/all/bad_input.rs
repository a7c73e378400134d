//! Bad input is one clear sentence and exit status 2, before anything runs.

use cachehost_tests::{example, TestContext};

fn fails_with(ctx: &TestContext, args: &[&str], expected: &str) {
    let output = ctx.run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "cachehost {args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(expected), "expected {expected:?} in:\n{stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn a_missing_file_is_named() {
    let ctx = TestContext::new();
    fails_with(&ctx, &["run", "/nonexistent/flow.wasm"], "/nonexistent/flow.wasm does not exist");
}

#[test]
fn a_directory_is_not_a_component() {
    let ctx = TestContext::new();
    fails_with(&ctx, &["run", ctx.dir.path().to_str().unwrap()], "is a directory, not a component file");
}

#[test]
fn an_empty_file_is_not_a_component() {
    let ctx = TestContext::new();
    let path = ctx.dir.path().join("empty.wasm");
    std::fs::write(&path, b"").unwrap();
    fails_with(&ctx, &["run", path.to_str().unwrap()], "is empty, not a WebAssembly component");
}

#[test]
fn a_text_file_is_not_a_component() {
    let ctx = TestContext::new();
    let path = ctx.dir.path().join("flow.wasm");
    std::fs::write(&path, b"print('hello')\n").unwrap();
    fails_with(&ctx, &["run", path.to_str().unwrap()], "is not a WebAssembly component");
}

#[test]
fn a_core_module_is_refused_with_what_to_do() {
    let ctx = TestContext::new();
    let path = ctx.dir.path().join("core.wasm");
    std::fs::write(&path, wat::parse_str("(module (func (export \"f\")))").unwrap()).unwrap();
    fails_with(&ctx, &["run", path.to_str().unwrap()], "is a core WebAssembly module, not a component");
}

#[test]
fn a_task_signature_holding_a_resource_is_refused_at_load() {
    let ctx = TestContext::new();
    let path = ctx.dir.path().join("resource.wasm");
    let component = wat::parse_str(
        r#"(component
             (import "example:res/tasks" (instance
               (export "handle" (type (sub resource)))
               (export "take" (func (param "h" (own 0))))))
           )"#,
    )
    .unwrap();
    std::fs::write(&path, component).unwrap();
    fails_with(&ctx, &["call", path.to_str().unwrap(), "take"], "example:res/tasks#take");
    let output = ctx.run(&["call", path.to_str().unwrap(), "take"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("parameter `h`") && stderr.contains("resource"), "{stderr}");
}

#[test]
fn a_missing_provider_names_the_interface() {
    let ctx = TestContext::new();
    fails_with(
        &ctx,
        &["run", example("split-flow").to_str().unwrap()],
        "no component provides the interface `example:split/tasks",
    );
}

#[test]
fn two_providers_for_one_interface_are_refused() {
    let ctx = TestContext::new();
    let tasks = example("split-tasks");
    let copy = ctx.dir.path().join("split-tasks-copy.wasm");
    std::fs::copy(&tasks, &copy).unwrap();
    fails_with(
        &ctx,
        &[
            "run",
            example("split-flow").to_str().unwrap(),
            "--tasks",
            tasks.to_str().unwrap(),
            "--tasks",
            copy.to_str().unwrap(),
        ],
        "two components provide the interface `example:split/tasks",
    );
}

#[test]
fn an_unknown_task_lists_the_known_ones() {
    let ctx = TestContext::new();
    fails_with(
        &ctx,
        &["call", example("inputs").to_str().unwrap(), "nope"],
        "has no task `nope`; its tasks are: add-one",
    );
}

#[test]
fn a_parameter_that_does_not_fit_its_type_names_the_bad_field() {
    let ctx = TestContext::new();
    fails_with(
        &ctx,
        &["call", example("inputs").to_str().unwrap(), "add-one", "--arg", "x=\"seven\""],
        "--arg x does not fit the type s64",
    );
    fails_with(&ctx, &["run", example("expiration").to_str().unwrap(), "--param", "x=1.5"], "$:");
    fails_with(&ctx, &["run", example("expiration").to_str().unwrap()], "needs the parameter `x` (s64)");
    fails_with(&ctx, &["run", example("expiration").to_str().unwrap(), "--param", "y=1"], "has no parameter `y`");
}

#[test]
fn an_unparsable_policy_points_at_the_column() {
    let ctx = TestContext::new();
    let dir = ctx.dir.path().join("flow");
    std::fs::create_dir_all(&dir).unwrap();
    let flow = dir.join("inputs.wasm");
    std::fs::copy(example("inputs"), &flow).unwrap();
    std::fs::write(dir.join("cachehost.toml"), "[tasks.add-one]\ncache_policy = \"INPUTS + + TASK_SOURCE\"\n").unwrap();
    fails_with(&ctx, &["run", flow.to_str().unwrap()], "column 10");
}

#[test]
fn unknown_flags_are_usage_errors() {
    let ctx = TestContext::new();
    let output = ctx.run(&["run", "--frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
}
