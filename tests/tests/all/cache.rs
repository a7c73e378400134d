//! `cachehost cache ls|show|rm|prune|explain` and `inspect` on real stores written by example
//! flow runs; text output is compared as filtered snapshots (ids, digests, times and ages
//! replaced), `--json` output field by field.

use cachehost_tests::{example, TestContext};
use serde_json::Value as Json;

fn path(name: &str) -> String {
    example(name).to_str().expect("a UTF-8 path").to_owned()
}

fn run_flow(ctx: &TestContext, name: &str, extra: &[&str]) -> cachehost_tests::Report {
    let flow = path(name);
    let mut args = vec!["run", flow.as_str()];
    args.extend_from_slice(extra);
    ctx.report(&args, 0)
}

fn json(ctx: &TestContext, args: &[&str]) -> Json {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ctx.stdout(&all, 0)).expect("--json prints JSON")
}

fn keys(listing: &Json) -> Vec<String> {
    listing["records"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn ls_show_and_rm_on_a_flow_run() {
    let ctx = TestContext::new();
    let report = run_flow(&ctx, "persist-default", &[]);
    let flow_run_id = report.json["flow_run"]["id"].as_str().unwrap().to_owned();

    assert_eq!(
        ctx.snapshot(&["cache", "ls"], 0),
        "KEY  TASK  COMPONENT  SIZE  COST  CREATED  EXPIRES  SIGNER\n\
         [HEX]  add-one  persist-default.wasm [HEX]  2 B  [DURATION]  [AGE] ago  never  unsigned\n\
         [HEX]  add-one  persist-default.wasm [HEX]  2 B  [DURATION]  [AGE] ago  never  unsigned\n\
         2 records, 4 B of results, in [TMP]/storage\n"
    );

    let listing = json(&ctx, &["cache", "ls"]);
    let records = listing["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    let add_one_1 =
        records.iter().find(|r| report.keys()[0].as_deref() == r["key"].as_str()).expect("add-one(1)'s record");
    // Every key part is kept: INPUTS per argument, TASK_SOURCE with the component, RUN_ID.
    let parts = add_one_1["parts"].as_array().unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p["part"].as_str().unwrap()).collect();
    assert_eq!(names, ["INPUTS", "TASK_SOURCE", "RUN_ID"]);
    assert_eq!(parts[0]["detail"].as_object().unwrap().keys().collect::<Vec<_>>(), ["x"]);
    assert_eq!(parts[1]["detail"]["component"], add_one_1["component_digest"]);
    assert_eq!(parts[2]["key"], flow_run_id.as_str());
    assert_eq!(add_one_1["task"], "example:persist-default/tasks#add-one");
    assert_eq!(add_one_1["policy"], "DEFAULT");
    assert_eq!(add_one_1["value_type"], "s64");
    assert_eq!(add_one_1["value_len"], 2);
    assert_eq!(add_one_1["expiration_ms"], Json::Null);
    assert!(add_one_1["created_ms"].as_i64().unwrap() > 0);

    let key = add_one_1["key"].as_str().unwrap();
    assert_eq!(
        ctx.snapshot(&["cache", "show", &key[..12]], 0),
        "key  [DIGEST]\ntask  example:persist-default/tasks#add-one\ncomponent persist-default.wasm (digest [DIGEST])\n\
         policy  DEFAULT\n\
         created  [TIME] ([AGE] ago)\n\
         expires  never\n\
         type  s64\n\
         size  2 B\n\
         cost  [DURATION]\n\
         signer  unsigned\n\
         inputs  not kept (the task is not replayable)\n\
         key parts\n\
         \x20 INPUTS  [DIGEST]\n\
         \x20 x  [DIGEST]\n\
         \x20 TASK_SOURCE  [DIGEST]\n\
         \x20 component  [DIGEST]\n\
         \x20 task  example:persist-default/tasks#add-one\n\
         \x20 RUN_ID  [UUID]\n\
         value\n\
         2\n"
    );
    let shown = json(&ctx, &["cache", "show", key]);
    assert_eq!(shown["value"], 2);
    assert_eq!(shown["key"], key);

    // Filters.
    assert_eq!(keys(&json(&ctx, &["cache", "ls", "--task", "add-one"])).len(), 2);
    assert_eq!(keys(&json(&ctx, &["cache", "ls", "--task", "example:persist-default/tasks#add-one"])).len(), 2);
    assert!(keys(&json(&ctx, &["cache", "ls", "--task", "double"])).is_empty());
    assert_eq!(keys(&json(&ctx, &["cache", "ls", "--component", &path("persist-default")])).len(), 2);
    assert!(keys(&json(&ctx, &["cache", "ls", "--component", &path("inputs")])).is_empty());
    let digest = add_one_1["component_digest"].as_str().unwrap();
    assert_eq!(keys(&json(&ctx, &["cache", "ls", "--component", &digest[..6]])).len(), 2);
    assert_eq!(keys(&json(&ctx, &["cache", "ls", "--newer-than", "1h"])).len(), 2);
    assert!(keys(&json(&ctx, &["cache", "ls", "--older-than", "1h"])).is_empty());
    assert!(keys(&json(&ctx, &["cache", "ls", "--expired"])).is_empty());
    assert_eq!(ctx.snapshot(&["cache", "ls", "--expired"], 0), "No records match in [TMP]/storage.\n");

    // rm: nothing without a selector, a dry run, then by key.
    let refused = ctx.run(&["cache", "rm"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cache rm needs keys or a filter"));
    assert_eq!(
        ctx.snapshot(&["cache", "rm", "--task", "add-one", "--dry-run"], 0),
        "[DIGEST]\n[DIGEST]\nWould remove 2 records from [TMP]/storage.\n"
    );
    assert_eq!(keys(&json(&ctx, &["cache", "ls"])).len(), 2);
    assert_eq!(ctx.snapshot(&["cache", "rm", &key[..16]], 0), "[DIGEST]\nRemoved 1 record from [TMP]/storage.\n");
    let left = keys(&json(&ctx, &["cache", "ls"]));
    assert_eq!(left.len(), 1);
    assert_ne!(left[0], key);
    let removed = json(&ctx, &["cache", "rm", "--component", &path("persist-default")]);
    assert_eq!(removed["removed"], 1);
    assert!(keys(&json(&ctx, &["cache", "ls"])).is_empty());
}

#[test]
fn the_storage_flag_overrides_the_setting() {
    let ctx = TestContext::new();
    run_flow(&ctx, "inputs", &[]);
    let other = ctx.dir.path().join("elsewhere");
    let other = other.to_str().unwrap();
    assert!(keys(&json(&ctx, &["cache", "ls", "--storage", other])).is_empty());
    let storage = ctx.storage();
    assert_eq!(keys(&json(&ctx, &["cache", "ls", "--storage", storage.to_str().unwrap()])).len(), 2);
}

#[test]
fn explain_names_a_changed_argument() {
    let ctx = TestContext::new();
    run_flow(&ctx, "inputs", &[]);
    let inputs = path("inputs");
    assert_eq!(
        ctx.snapshot(&["cache", "explain", &inputs, "add-one", "--arg", "x=5"], 0),
        "task  example:inputs/tasks#add-one (inputs.wasm)\npolicy  INPUTS (component)\nkey  [DIGEST]\n\
         verdict  MISS: no record under this key, so the task would run\n\
         nearest  [DIGEST] (created [AGE] ago, policy INPUTS)\n\
         \n\
         PART  STATUS  KEY\n\
         INPUTS  differs  [HEX]\n\
         \n\
         why: INPUTS.x differs (now 5)\n"
    );
    assert_eq!(
        ctx.snapshot(&["cache", "explain", &inputs, "add-one", "--arg", "x=1"], 0),
        "task  example:inputs/tasks#add-one (inputs.wasm)\npolicy  INPUTS (component)\nkey  [DIGEST]\n\
         verdict  HIT: a record is stored under this key, so the call would be Cached\n\
         \n\
         PART  STATUS  KEY\n\
         INPUTS  same  [HEX]\n"
    );
    let explained = json(&ctx, &["cache", "explain", &inputs, "add-one", "--arg", "x=7"]);
    assert_eq!(explained["outcome"], "miss");
    assert_eq!(explained["reasons"], serde_json::json!(["INPUTS.x differs (now 7)"]));
    assert_eq!(explained["parts"][0]["status"], "differs");
}

#[test]
fn explain_names_a_rebuilt_component() {
    let ctx = TestContext::new();
    run_flow(&ctx, "task-source", &["--param", "x=1"]);
    let explained = ctx.snapshot(&["cache", "explain", &path("task-source-changed"), "add-one", "--arg", "x=1"], 0);
    assert_eq!(
        explained,
        "task  example:task-source/tasks#add-one (task-source-changed.wasm)\npolicy  TASK_SOURCE (component)\n\
         key  [DIGEST]\n\
         verdict  MISS: no record under this key, so the task would run\n\
         nearest  [DIGEST] (created [AGE] ago, policy TASK_SOURCE)\n\
         \n\
         PART  STATUS  KEY\n\
         TASK_SOURCE  differs  [HEX]\n\
         \n\
         why: TASK_SOURCE differs: component rebuilt (the record is from component [HEX], this one is [HEX])\n"
    );
    // The same component still hits, whatever the argument (TASK_SOURCE ignores inputs).
    let same = json(&ctx, &["cache", "explain", &path("task-source"), "add-one", "--arg", "x=9"]);
    assert_eq!(same["outcome"], "hit");
}

#[test]
fn explain_names_a_new_flow_run() {
    let ctx = TestContext::new();
    let report = run_flow(&ctx, "persist-default", &[]);
    let flow_run_id = report.json["flow_run"]["id"].as_str().unwrap().to_owned();
    let flow = path("persist-default");
    assert_eq!(
        ctx.snapshot(&["cache", "explain", &flow, "add-one", "--arg", "x=1"], 0),
        "task  example:persist-default/tasks#add-one (persist-default.wasm)\npolicy  DEFAULT (default)\nkey  [DIGEST]\n\
         verdict  MISS: no record under this key, so the task would run\n\
         nearest  [DIGEST] (created [AGE] ago, policy DEFAULT)\n\
         \n\
         PART  STATUS  KEY\n\
         INPUTS  same  [HEX]\n\
         TASK_SOURCE  same  [HEX]\n\
         RUN_ID  differs  [UUID]\n\
         \n\
         why: RUN_ID differs: outside a flow run RUN_ID is a new id; the record is from flow run [UUID] (pass \
         --flow-run-id [UUID] to explain as if inside it)\n\
         note: explain runs outside a flow run, where RUN_ID is a new id every time: a policy with RUN_ID (DEFAULT \
         has it) only hits within one flow run (--flow-run-id ID explains the call as if inside that run)\n"
    );
    let explained = json(&ctx, &["cache", "explain", &flow, "add-one", "--arg", "x=1"]);
    assert!(explained["reasons"][0].as_str().unwrap().contains(&format!("--flow-run-id {flow_run_id}")));

    let inside = json(&ctx, &["cache", "explain", &flow, "add-one", "--arg", "x=1", "--flow-run-id", &flow_run_id]);
    assert_eq!(inside["outcome"], "hit");
    assert_eq!(inside["key"].as_str(), report.keys()[0].as_deref());

    let other_run = "0190f3c4-7d2a-7a1b-9c3e-5f6a7b8c9d0e";
    let new_run = json(&ctx, &["cache", "explain", &flow, "add-one", "--arg", "x=1", "--flow-run-id", other_run]);
    assert_eq!(new_run["outcome"], "miss");
    assert_eq!(
        new_run["reasons"],
        serde_json::json!([format!(
            "RUN_ID differs: the record is from flow run {flow_run_id}, this is flow run {other_run}"
        )])
    );
    assert_eq!(new_run["notes"], serde_json::json!([]));
}

#[test]
fn explain_ls_and_prune_an_expired_record() {
    let ctx = TestContext::new();
    run_flow(&ctx, "expiration", &["--param", "x=1"]);
    let component = path("expiration");
    let fresh = json(&ctx, &["cache", "explain", &component, "add-one", "--arg", "x=1"]);
    assert_eq!(fresh["outcome"], "hit");
    let listing = json(&ctx, &["cache", "ls"]);
    let expiration_ms = listing["records"][0]["expiration_ms"].as_i64().expect("the record expires");
    assert!(ctx.snapshot(&["cache", "ls"], 0).contains("  in [AGE]  unsigned\n"));
    assert_eq!(
        ctx.snapshot(&["cache", "prune"], 0),
        "Pruned 0 records from [TMP]/storage (0 expired, 0 of missing components, 0 unreadable).\n"
    );

    // The example's records expire 2 s after they are written.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    assert_eq!(
        ctx.snapshot(&["cache", "explain", &component, "add-one", "--arg", "x=1"], 0),
        "task  example:expiration/tasks#add-one (expiration.wasm)\npolicy  INPUTS (component)\nkey  [DIGEST]\n\
         verdict  MISS: the record under this key expired [AGE] ago ([TIME]); hits never extend a record\n\
         \n\
         PART  STATUS  KEY\n\
         INPUTS  same  [HEX]\n"
    );
    let expired = json(&ctx, &["cache", "explain", &component, "add-one", "--arg", "x=1"]);
    assert_eq!(expired["outcome"], "expired");
    assert_eq!(expired["expiration_ms"], expiration_ms);
    assert!(ctx.snapshot(&["cache", "ls"], 0).contains("  expired [AGE] ago  unsigned\n"));
    assert_eq!(keys(&json(&ctx, &["cache", "ls", "--expired"])).len(), 1);

    assert_eq!(
        ctx.snapshot(&["cache", "prune", "--dry-run"], 0),
        "[DIGEST]  expired\nWould prune 1 record from [TMP]/storage (1 expired, 0 of missing components, 0 \
            unreadable).\n"
    );
    assert_eq!(keys(&json(&ctx, &["cache", "ls"])).len(), 1);
    assert_eq!(
        ctx.snapshot(&["cache", "prune"], 0),
        "[DIGEST]  expired\nPruned 1 record from [TMP]/storage (1 expired, 0 of missing components, 0 unreadable).\n"
    );
    assert_eq!(ctx.snapshot(&["cache", "ls"], 0), "No records in [TMP]/storage.\n");
}

#[test]
fn prune_removes_records_of_missing_components() {
    let ctx = TestContext::new();
    run_flow(&ctx, "inputs", &[]);
    run_flow(&ctx, "task-source", &["--param", "x=1"]);
    assert_eq!(keys(&json(&ctx, &["cache", "ls"])).len(), 3);
    // Only inputs.wasm is still present.
    let present = ctx.dir.path().join("present");
    std::fs::create_dir_all(present.join("nested")).unwrap();
    std::fs::copy(example("inputs"), present.join("nested/inputs.wasm")).unwrap();
    let present = present.to_str().unwrap();

    assert_eq!(
        ctx.snapshot(&["cache", "prune", "--missing-components", present, "--dry-run"], 0),
        "[DIGEST]  component [HEX] is gone\n\
         Would prune 1 record from [TMP]/storage (0 expired, 1 of missing components, 0 unreadable).\n"
    );
    let pruned = json(&ctx, &["cache", "prune", "--missing-components", present]);
    assert_eq!(pruned["removed"], 1);
    assert_eq!(pruned["missing_component"].as_array().unwrap().len(), 1);
    let left = json(&ctx, &["cache", "ls"]);
    assert_eq!(keys(&left).len(), 2);
    assert!(left["records"].as_array().unwrap().iter().all(|r| r["component_file"] == "inputs.wasm"));

    // An unreadable entry is listed, and pruned only when asked.
    std::fs::write(ctx.storage().join("junk"), b"not a record").unwrap();
    assert!(ctx.snapshot(&["cache", "ls"], 0).ends_with("unreadable junk: not a cachehost record (bad magic bytes)\n"));
    assert_eq!(json(&ctx, &["cache", "prune"])["removed"], 0);
    assert_eq!(json(&ctx, &["cache", "prune", "--unreadable"])["unreadable"], serde_json::json!(["junk"]));
    assert!(!ctx.storage().join("junk").exists());
}

#[test]
fn inspect_shows_signatures_options_with_their_sources_and_the_digest() {
    let mut ctx = TestContext::new();
    let folder = ctx.dir.path().join("flow");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(example("inputs"), folder.join("inputs.wasm")).unwrap();
    std::fs::write(folder.join("cachehost.toml"), "[tasks.add-one]\nrefresh_cache = true\n").unwrap();
    ctx.env("CACHEHOST_TASKS_DEFAULT_PERSIST_RESULT", "true");
    let component = folder.join("inputs.wasm");
    let text = ctx.snapshot(&["inspect", component.to_str().unwrap()], 0);
    for line in [
        "TASK_SOURCE digest: [DIGEST]\n",
        "  inputs: func() -> list<s64>\n",
        "  example:inputs/tasks#add-one\n  add-one: func(x: s64) -> s64\n",
        "  cache_policy  INPUTS  (component)\n",
        "  persist_result  true  (derived from cache_policy)\n",
        "  refresh_cache  true  ([TMP]/flow/cachehost.toml)\n",
        "  cache_expiration  never  (default)\n",
        "  isolation_level  READ_COMMITTED  (default)\n",
        "  CACHEHOST_TASKS_DEFAULT_PERSIST_RESULT true  (environment)\n",
        "  CACHEHOST_LOCAL_STORAGE_PATH  [TMP]/storage  (environment)\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    // The digest is the one records of this component carry.
    let described: Json =
        serde_json::from_str(&ctx.stdout(&["inspect", component.to_str().unwrap(), "--json"], 0)).unwrap();
    let flow = folder.join("inputs.wasm");
    ctx.report(&["run", flow.to_str().unwrap()], 0);
    let listing = json(&ctx, &["cache", "ls"]);
    assert_eq!(described["task_source_digest"], listing["records"][0]["component_digest"]);
    assert_eq!(
        described["tasks"][0]["options"]["refresh_cache"]["source"],
        folder.join("cachehost.toml").to_str().unwrap()
    );
}

#[test]
fn every_command_has_help_with_an_example() {
    let ctx = TestContext::new();
    for command in [
        &["run"][..],
        &["call"],
        &["inspect"],
        &["cache"],
        &["cache", "ls"],
        &["cache", "show"],
        &["cache", "rm"],
        &["cache", "prune"],
        &["cache", "explain"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = ctx.stdout(&args, 0);
        assert!(help.contains("Example"), "{command:?} --help has no example:\n{help}");
        assert!(help.contains(&format!("cachehost {}", command.join(" "))), "{command:?}:\n{help}");
    }
}

#[test]
fn show_of_an_unknown_or_ambiguous_key_is_a_usage_error() {
    let ctx = TestContext::new();
    run_flow(&ctx, "inputs", &[]);
    let unknown = ctx.run(&["cache", "show", "nosuchkey"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).starts_with("error: no record has the key \"nosuchkey\""));
    let ambiguous = ctx.run(&["cache", "show", ""]);
    assert_eq!(ambiguous.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ambiguous.stderr).contains("is ambiguous: 2 records start with it"));
}

#[test]
fn explain_calls_the_key_function_like_a_run() {
    let ctx = TestContext::new();
    run_flow(&ctx, "key-fn-static", &[]);
    // The key function ignores the inputs and returns `constant-key`.
    let explained = json(&ctx, &["cache", "explain", &path("key-fn-static"), "add-one", "--arg", "x=99"]);
    assert_eq!(explained["outcome"], "hit");
    assert_eq!(explained["key"], "constant-key");
    assert_eq!(explained["parts"][0]["part"], "KEY_FN");
}

/// `args` run in a pseudo-terminal (util-linux `script`), with this context's environment:
/// what a user at a terminal sees, escape codes and all.
fn on_a_terminal(ctx: &TestContext, args: &[&str]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line = std::iter::once(cachehost_tests::binary().to_str().unwrap().to_owned())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    let command = ctx.command(args);
    let mut script = std::process::Command::new("script");
    // A terminal's TERM: without one, indicatif takes the terminal for a dumb one and draws nothing.
    script.env_clear().env("TERM", "xterm").args(["-qec", &line, "/dev/null"]);
    for (name, value) in command.get_envs() {
        if let Some(value) = value {
            script.env(name, value);
        }
    }
    let output = script.output().expect("script (util-linux) runs");
    assert!(output.status.success(), "{line}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Removing many records draws a progress bar on a terminal (issue 18), and none where
/// stderr is not a terminal or the output is `--json`.
#[test]
fn removing_many_records_shows_progress_on_a_terminal_only() {
    let ctx = TestContext::new();
    let bench = example("bench");
    let write_records = || {
        let args = ["run", bench.to_str().unwrap(), "--flow", "repeat", "--param", "n=1500", "--param", "start=0"];
        let report = ctx.report(&[&args[..], &["--param", "distinct=true"]].concat(), 0);
        assert_eq!(report.task_runs().len(), 1500);
    };
    write_records();
    let seen = on_a_terminal(&ctx, &["cache", "rm", "--task", "add-one"]);
    assert!(seen.contains("Removing records") && seen.contains("/1500"), "{seen}");
    assert!(seen.contains("Removed 1500 records"), "{seen}");

    write_records();
    let output = ctx.run(&["cache", "rm", "--task", "add-one"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && !stderr.contains("Removing records"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("Removed 1500 records"));

    write_records();
    let seen = on_a_terminal(&ctx, &["cache", "rm", "--task", "add-one", "--json"]);
    assert!(!seen.contains("Removing records"), "{seen}");
}
