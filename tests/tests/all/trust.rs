//! Trust in a shared cache (DESIGN §9a, issue 15), on a local folder and on moto S3: a
//! reader with `trusted_keys` takes a record signed by another key, an unsigned one, or one
//! with a flipped signature byte as a miss with one WARNING and computes the right value;
//! expired and wrong-version records behave as without trust; `cachehost key` makes and shows
//! keys; `cache verify` replays records; the strict sandbox profile bounds untrusted code.

use std::path::{Path, PathBuf};

use cachehost::store::object::{ObjectStore, OpenOptions, S3Settings};
use cachehost::store::record::{self, RecordMeta};
use cachehost::store::{LocalStore, ResultStore};
use cachehost::value::{Ty, Value};
use cachehost_tests::servers::S3Server;
use cachehost_tests::{example, Report, TestContext};

const BUCKET: &str = "shared";

/// Where the machines of a test share their cache.
enum Place {
    /// One folder.
    Local(PathBuf),
    /// `s3://shared/cache` on a moto server of the test.
    S3(S3Server),
}

/// A test's shared cache, the `hostile` component beside a cachehost.toml pointing at it,
/// and two key pairs: `a`, the writer the reader trusts, and `b`, another one.
struct World {
    dir: tempfile::TempDir,
    place: Place,
    component: PathBuf,
    a: (PathBuf, String),
    b: (PathBuf, String),
}

impl World {
    fn new(s3: bool) -> World {
        let dir = tempfile::tempdir().unwrap();
        let flow = dir.path().join("flow");
        std::fs::create_dir_all(&flow).unwrap();
        let component = flow.join("hostile.wasm");
        std::fs::copy(example("hostile"), &component).unwrap();
        let place = if s3 {
            let server = S3Server::start(dir.path());
            server.create_bucket(BUCKET);
            let toml = format!(
                "[s3]\nendpoint = \"{}\"\nallow_http = true\nregion = \"us-east-1\"\naccess_key_id = \"testing\"\n\
                 secret_access_key = \"testing\"\nconnect_timeout = \"1s\"\ntimeout = \"5s\"\n\
                 [tasks.add-one]\nresult_storage = \"s3://{BUCKET}/cache\"\n",
                server.endpoint()
            );
            std::fs::write(flow.join("cachehost.toml"), toml).unwrap();
            Place::S3(server)
        } else {
            Place::Local(dir.path().join("shared"))
        };
        let mut world = World { dir, place, component, a: Default::default(), b: Default::default() };
        world.a = world.key("a.key");
        world.b = world.key("b.key");
        world
    }

    /// A new key pair: its private key file and its public key.
    fn key(&self, name: &str) -> (PathBuf, String) {
        let path = self.dir.path().join(name);
        let public = TestContext::new().stdout(&["key", "generate", "--out", path.to_str().unwrap()], 0);
        (path, public.trim().to_owned())
    }

    /// A machine: its own home, the shared cache, signing with `signing` (a private key
    /// file), trusting `trusted`.
    fn machine(&self, signing: Option<&Path>, trusted: &[&str]) -> TestContext {
        let mut ctx = TestContext::new();
        let home = ctx.dir.path().join("home");
        ctx.env("CACHEHOST_HOME", home.to_str().unwrap());
        if let Place::Local(shared) = &self.place {
            ctx.env("CACHEHOST_LOCAL_STORAGE_PATH", shared.to_str().unwrap());
        }
        if let Some(key) = signing {
            ctx.env("CACHEHOST_SIGNING_KEY", key.to_str().unwrap());
        }
        if !trusted.is_empty() {
            ctx.env("CACHEHOST_TRUSTED_KEYS", &trusted.join(","));
        }
        ctx
    }

    /// The reader: signs with `a` and trusts `a` only.
    fn reader(&self) -> TestContext {
        self.machine(Some(&self.a.0), &[&self.a.1])
    }

    /// The shared cache, opened through the library, for reading and forging records.
    fn store(&self) -> Box<dyn ResultStore> {
        match &self.place {
            Place::Local(shared) => Box::new(LocalStore::open(shared).unwrap()),
            Place::S3(server) => Box::new(
                ObjectStore::open(OpenOptions {
                    results: Some("s3://shared/cache"),
                    keys: None,
                    settings: S3Settings {
                        endpoint: Some(server.endpoint()),
                        allow_http: true,
                        access_key_id: Some("testing".into()),
                        secret_access_key: Some("testing".into()),
                        connect_timeout: std::time::Duration::from_secs(1),
                        timeout: std::time::Duration::from_secs(5),
                        ..S3Settings::default()
                    },
                    value_cache: None,
                    warn: std::sync::Arc::new(|_: &str| {}),
                })
                .unwrap(),
            ),
        }
    }

    /// `cachehost call hostile.wasm add-one --arg x=41 --json` on `machine`.
    fn add_one(&self, machine: &TestContext) -> Report {
        machine.report(&["call", self.component.to_str().unwrap(), "add-one", "--arg", "x=41"], 0)
    }

    /// `cachehost call hostile.wasm add-one --arg x=41`: the value on stdout, and stderr.
    fn add_one_value(&self, machine: &TestContext) -> (String, String) {
        let output = machine.run(&["call", self.component.to_str().unwrap(), "add-one", "--arg", "x=41"]);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        (String::from_utf8_lossy(&output.stdout).trim().to_owned(), stderr)
    }

    /// The one record of the shared cache: its key and bytes.
    fn only_record(&self) -> (String, Vec<u8>) {
        let store = self.store();
        let listing = store.list().unwrap();
        assert_eq!(listing.len(), 1, "one record: {:?}", listing.iter().map(|(k, _)| k).collect::<Vec<_>>());
        let key = listing[0].0.clone();
        let bytes = store.read(&key).unwrap().unwrap();
        (key, bytes)
    }

    fn replace_record(&self, key: &str, bytes: &[u8]) {
        self.store().write(key, bytes).unwrap();
    }

    /// The signer of the one record, as `cachehost key show` prints keys, or "unsigned".
    fn signer(&self) -> String {
        let meta = record::decode_meta(&self.only_record().1).unwrap();
        cachehost::trust::signer_text(&meta)
    }
}

/// The WARNING lines of a run.
fn warnings(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("| WARNING")).collect()
}

/// A record like `meta` (same key, task, component and parts) holding `value`, unsigned.
fn unsigned_record(meta: &RecordMeta, value: i64) -> Vec<u8> {
    let value_bytes = record::encode_value(&Value::S64(value));
    let forged = RecordMeta::new(
        meta.key.clone(),
        meta.task.clone(),
        meta.component_digest.clone(),
        meta.parts.clone(),
        meta.created_ms,
        None,
        Ty::S64,
        &value_bytes,
    )
    .with_origin(meta.policy.clone(), meta.component_file.clone());
    record::encode(&forged, &value_bytes)
}

/// The record in `bytes` holding `value` instead, signed with the private key at `key`.
fn resigned_record(bytes: &[u8], value: i64, expiration_ms: Option<i64>, key: &Path) -> Vec<u8> {
    let meta = record::decode_meta(bytes).unwrap();
    let value_bytes = record::encode_value(&Value::S64(value));
    let mut forged = RecordMeta::new(
        meta.key,
        meta.task,
        meta.component_digest,
        meta.parts,
        meta.created_ms,
        expiration_ms,
        Ty::S64,
        &value_bytes,
    );
    record::sign(&mut forged, &cachehost::trust::read_key_file(key).unwrap());
    record::encode(&forged, &value_bytes)
}

/// The reader's run over a poisoned record: a miss (Completed, not Cached) with exactly one
/// WARNING naming the key and containing `reason`, the right value, and then the reader's own
/// signed record in place, a hit on the next call.
fn assert_refused_then_overwritten(world: &World, key: &str, reason: &str) {
    let reader = world.reader();
    let (value, stderr) = world.add_one_value(&reader);
    assert_eq!(value, "42", "the right value:\n{stderr}");
    let warned = warnings(&stderr);
    assert_eq!(warned.len(), 1, "one WARNING:\n{stderr}");
    assert!(warned[0].contains(&format!("The cache record for key '{key}' is not trusted")), "{}", warned[0]);
    assert!(warned[0].contains(reason), "{:?} lacks {reason:?}", warned[0]);
    assert!(stderr.contains("Finished in state Completed()"), "a miss:\n{stderr}");
    assert_eq!(world.signer(), world.a.1, "the reader's signed record replaced it");
    let again = world.add_one(&reader);
    assert_eq!(again.states(), ["Cached"], "{}", again.stderr);
    assert!(warnings(&again.stderr).is_empty(), "{}", again.stderr);
}

fn poisoned_records_are_misses_with_a_warning_and_the_right_value(s3: bool) {
    let world = World::new(s3);

    // A real cachehost signing with another key writes the record.
    let other = world.machine(Some(&world.b.0), &[]);
    assert_eq!(world.add_one(&other).states(), ["Completed"]);
    assert_eq!(world.signer(), world.b.1);
    let (key, _) = world.only_record();
    assert_refused_then_overwritten(&world, &key, &format!("signed by {}, which is not in trusted_keys", world.b.1));

    // The other key's record holding a wrong value: still never returned.
    let (_, bytes) = world.only_record();
    world.replace_record(&key, &resigned_record(&bytes, 666, None, &world.b.0));
    assert_refused_then_overwritten(&world, &key, "which is not in trusted_keys");

    // A hand-made record in a valid format, with a wrong value and no signature.
    let (_, bytes) = world.only_record();
    let meta = record::decode_meta(&bytes).unwrap();
    world.replace_record(&key, &unsigned_record(&meta, 666));
    let untrusting = world.machine(None, &[]);
    assert_eq!(
        world.add_one_value(&untrusting).0,
        "666",
        "without trusted_keys the forgery is a hit: the test is real"
    );
    assert_refused_then_overwritten(&world, &key, "it is unsigned and require_signed is on");

    // One flipped byte in the signature of the reader's own record.
    let (_, mut bytes) = world.only_record();
    let signature = record::decode_meta(&bytes).unwrap().signature.unwrap().signature;
    let at = bytes.windows(64).position(|w| w == signature.as_slice()).expect("the signature is in the record");
    bytes[at + 17] ^= 0x04;
    world.replace_record(&key, &bytes);
    assert_refused_then_overwritten(&world, &key, &format!("its signature by {} does not check", world.a.1));
}

#[test]
fn poisoned_records_are_misses_with_a_warning_and_the_right_value_on_the_local_store() {
    poisoned_records_are_misses_with_a_warning_and_the_right_value(false);
}

#[test]
fn poisoned_records_are_misses_with_a_warning_and_the_right_value_on_s3() {
    poisoned_records_are_misses_with_a_warning_and_the_right_value(true);
}

fn expired_and_wrong_version_records_behave_as_without_trust(s3: bool) {
    let world = World::new(s3);
    let reader = world.reader();
    assert_eq!(world.add_one(&reader).states(), ["Completed"]);
    let (key, bytes) = world.only_record();

    // Expired, though signed by a trusted key: a silent miss, then overwritten.
    world.replace_record(&key, &resigned_record(&bytes, 42, Some(1), &world.a.0));
    let report = world.add_one(&reader);
    assert_eq!(report.states(), ["Completed"], "{}", report.stderr);
    assert!(warnings(&report.stderr).is_empty(), "an expired record is no warning:\n{}", report.stderr);
    assert_eq!(world.add_one(&reader).states(), ["Cached"]);

    // Another format version: unreadable, as without trust.
    let (_, mut bytes) = world.only_record();
    bytes[record::MAGIC.len()] = record::FORMAT_VERSION + 1;
    world.replace_record(&key, &bytes);
    let (value, stderr) = world.add_one_value(&reader);
    assert_eq!(value, "42");
    let warned = warnings(&stderr);
    assert_eq!(warned.len(), 1, "{stderr}");
    let unsupported = format!("format version {} is not supported", record::FORMAT_VERSION + 1);
    assert!(warned[0].contains("is unreadable") && warned[0].contains(&unsupported), "{stderr}");
    assert_eq!(world.add_one(&reader).states(), ["Cached"]);
}

#[test]
fn expired_and_wrong_version_records_behave_as_without_trust_on_the_local_store() {
    expired_and_wrong_version_records_behave_as_without_trust(false);
}

#[test]
fn expired_and_wrong_version_records_behave_as_without_trust_on_s3() {
    expired_and_wrong_version_records_behave_as_without_trust(true);
}

#[test]
fn require_signed_false_lets_unsigned_records_through_with_a_warning() {
    let world = World::new(false);
    assert_eq!(world.add_one(&world.machine(None, &[])).states(), ["Completed"]);
    assert_eq!(world.signer(), "unsigned");
    let mut migrating = world.reader();
    migrating.env("CACHEHOST_REQUIRE_SIGNED", "false");
    let report = world.add_one(&migrating);
    assert_eq!(report.states(), ["Cached"], "{}", report.stderr);
    let warned = warnings(&report.stderr);
    assert_eq!(warned.len(), 1, "{}", report.stderr);
    assert!(warned[0].contains("is unsigned; using it because require_signed is false"), "{}", warned[0]);
    // A record signed by an untrusted key is still refused.
    world.replace_record(&world.only_record().0, &resigned_record(&world.only_record().1, 42, None, &world.b.0));
    let report = world.add_one(&migrating);
    assert_eq!(report.states(), ["Completed"], "{}", report.stderr);
}

#[test]
fn cache_ls_and_show_name_the_signer_and_rm_removes_what_a_key_wrote() {
    let world = World::new(false);
    let storage = ["--storage", world.dir.path().join("shared").to_str().unwrap()].map(str::to_owned);
    let reader = world.reader();
    world.add_one(&reader);
    let other = world.machine(Some(&world.b.0), &[]);
    other.report(&["call", world.component.to_str().unwrap(), "add-one", "--arg", "x=1"], 0);
    let cache = |args: &[&str], status: i32| {
        let mut all = vec!["cache"];
        all.extend_from_slice(args);
        all.extend(storage.iter().map(String::as_str));
        reader.stdout(&all, status)
    };
    let listing: serde_json::Value = serde_json::from_str(&cache(&["ls", "--json"], 0)).unwrap();
    let mut signers: Vec<&str> =
        listing["records"].as_array().unwrap().iter().map(|r| r["signer"].as_str().unwrap()).collect();
    signers.sort();
    let mut expected = vec![world.a.1.as_str(), world.b.1.as_str()];
    expected.sort();
    assert_eq!(signers, expected);
    let text = cache(&["ls"], 0);
    assert!(text.contains("SIGNER") && text.contains(&world.b.1[..26]), "{text}");

    let b_record = listing["records"].as_array().unwrap().iter().find(|r| r["signer"] == world.b.1.as_str()).unwrap();
    let b_key = b_record["key"].as_str().unwrap();
    let shown = cache(&["show", b_key], 0);
    assert!(shown.contains(&format!("{} (signature checks)", world.b.1)), "{shown}");

    // `cache explain` judges the record as a task run of the reader would: a miss.
    let component = world.component.to_str().unwrap();
    let explained: serde_json::Value =
        serde_json::from_str(&reader.stdout(&["cache", "explain", component, "add-one", "--arg", "x=1", "--json"], 0))
            .unwrap();
    assert_eq!(explained["outcome"], "unreadable", "{explained:#}");
    assert!(explained["reason"].as_str().unwrap().contains("it is not trusted: it is signed by"), "{explained:#}");

    let removed: serde_json::Value =
        serde_json::from_str(&cache(&["rm", "--signer", &world.b.1, "--json"], 0)).unwrap();
    assert_eq!(removed["removed"], 1);
    assert_eq!(removed["keys"], serde_json::json!([b_key]));
    assert_eq!(world.signer(), world.a.1, "only the revoked key's record went");
    let error = cache(&["rm", "--signer", "cachehost-ed25519:nope"], 2);
    assert!(error.is_empty());
}

#[test]
fn key_generate_writes_a_private_file_and_show_prints_its_public_key() {
    use std::os::unix::fs::PermissionsExt;
    let ctx = TestContext::new();
    let path = ctx.dir.path().join("signing.key");
    let public = ctx.stdout(&["key", "generate", "--out", path.to_str().unwrap()], 0);
    assert!(public.starts_with("cachehost-ed25519:") && public.trim().len() == 62, "{public}");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(ctx.stdout(&["key", "show", "--key", path.to_str().unwrap()], 0), public);
    let again = ctx.run(&["key", "generate", "--out", path.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "an existing key is never replaced");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = ctx.run(&["key", "show", "--key", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("can be read by its group or others (mode 644)") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    // A run signing with it refuses to start, too.
    let mut signing = TestContext::new();
    signing.env("CACHEHOST_SIGNING_KEY", path.to_str().unwrap());
    let output = signing.run(&["call", example("hostile").to_str().unwrap(), "add-one", "--arg", "x=1"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("chmod 600"));
}

/// `cache verify --all --components <folder> --json` in `folder`, with its exit status.
fn verify(ctx: &TestContext, folder: &Path, storage: &str, status: i32) -> serde_json::Value {
    let output = ctx
        .command(&["cache", "verify", "--all", "--components", ".", "--storage", storage, "--json"])
        .current_dir(folder)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(status), "{stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stderr}"))
}

fn verify_finds_a_task_reading_the_clock_and_passes_a_pure_one(s3: bool) {
    let world = World::new(s3);
    let folder = world.component.parent().unwrap().to_path_buf();
    std::fs::copy(example("refresh"), folder.join("refresh.wasm")).unwrap();
    let (storage, s3_table) = match &world.place {
        Place::Local(shared) => (shared.display().to_string(), String::new()),
        Place::S3(_) => {
            let toml = std::fs::read_to_string(folder.join("cachehost.toml")).unwrap();
            ("s3://shared/cache".to_owned(), toml.split("[tasks").next().unwrap().to_owned())
        }
    };
    let tasks = |storage_line: &str| {
        format!("{s3_table}[tasks.add-one]\nreplayable = true\n{storage_line}[tasks.stamp]\nreplayable = true\n{storage_line}")
    };
    let storage_line = if s3 { format!("result_storage = \"{storage}\"\n") } else { String::new() };
    std::fs::write(folder.join("cachehost.toml"), tasks(&storage_line)).unwrap();
    let machine = world.machine(None, &[]);

    // A pure task: its replay matches.
    world.add_one(&machine);
    let pure = verify(&machine, &folder, &storage, 0);
    assert_eq!((pure["matched"].as_u64(), pure["differs"].as_u64()), (Some(1), Some(0)), "{pure:#}");
    assert_eq!(pure["records"][0]["outcome"], "match");

    // A task that reads the clock: its replay differs, with both digests and both values.
    let refresh = folder.join("refresh.wasm");
    machine.report(&["call", refresh.to_str().unwrap(), "stamp", "--arg", "x=1"], 0);
    let found = verify(&machine, &folder, &storage, 1);
    assert_eq!((found["matched"].as_u64(), found["differs"].as_u64()), (Some(1), Some(1)), "{found:#}");
    let differs = found["records"].as_array().unwrap().iter().find(|r| r["outcome"] == "differs").unwrap();
    assert!(differs["task"].as_str().unwrap().ends_with("#stamp"), "{differs:#}");
    assert_ne!(differs["recorded_digest"], differs["replayed_digest"]);
    assert_ne!(differs["recorded"], differs["replayed"]);
    assert!(differs["recorded"].as_str().unwrap().parse::<u64>().is_ok(), "{differs:#}");

    // Text: DIFFERS with both digests, then the summary.
    let output = machine
        .command(&["cache", "verify", "--components", ".", "--storage", &storage])
        .current_dir(&folder)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("DIFFERS") && text.contains("recorded") && text.contains("replayed"), "{text}");
    assert!(text.contains("2 replayed: 1 match, 1 differ, 0 cannot replay"), "{text}");

    // A record whose component is not among those given cannot be replayed, with the reason.
    let elsewhere = world.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(folder.join("cachehost.toml"), elsewhere.join("cachehost.toml")).unwrap();
    let missing = verify(&machine, &elsewhere, &storage, 0);
    assert_eq!(missing["cannot_replay"], 2, "{missing:#}");
    assert!(missing["records"][0]["reason"].as_str().unwrap().contains("is not among the components given"));
}

#[test]
fn verify_finds_a_task_reading_the_clock_and_passes_a_pure_one_on_the_local_store() {
    verify_finds_a_task_reading_the_clock_and_passes_a_pure_one(false);
}

#[test]
fn verify_finds_a_task_reading_the_clock_and_passes_a_pure_one_on_s3() {
    verify_finds_a_task_reading_the_clock_and_passes_a_pure_one(true);
}

#[test]
fn records_of_tasks_that_are_not_replayable_keep_no_inputs() {
    let world = World::new(false);
    world.add_one(&world.machine(None, &[]));
    let meta = record::decode_meta(&world.only_record().1).unwrap();
    assert_eq!(meta.inputs, None);
    let folder = world.component.parent().unwrap();
    let storage = world.dir.path().join("shared");
    let none = verify(&world.machine(None, &[]), folder, storage.to_str().unwrap(), 0);
    assert_eq!((none["records"].as_array().unwrap().len(), none["not_replayable"].as_u64()), (0, Some(1)));
}

#[test]
fn under_the_strict_sandbox_an_infinite_loop_times_out_with_no_configuration() {
    let ctx = TestContext::new();
    let mut child = ctx
        .command(&["call", example("hostile").to_str().unwrap(), "spin", "--sandbox", "strict", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Without the strict timeout the loop never ends: the hang guard kills it and fails.
    let deadline = std::time::Instant::now() + cachehost_tests::HANG_GUARD;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the spin task was not stopped within {:?}: no strict timeout", cachehost_tests::HANG_GUARD);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let state = &report["task_runs"][0]["state"];
    assert_eq!(state["name"], "TimedOut", "{report:#}");
    assert_eq!(state["message"], "Task run failed: the task run exceeded its timeout of 10s (timeout)");
}

#[test]
fn the_strict_sandbox_grants_nothing_and_configuration_cannot_loosen_it() {
    let mut ctx = TestContext::new();
    ctx.env("GREETING", "hello");
    let folder = ctx.dir.path().join("flow");
    std::fs::create_dir_all(&folder).unwrap();
    let component = folder.join("hostile.wasm");
    std::fs::copy(example("hostile"), &component).unwrap();
    std::fs::write(
        folder.join("cachehost.toml"),
        "[settings]\nsandbox = \"strict\"\n[limits]\nmemory = \"4GiB\"\ntimeout = \"1h\"\n\
         [components.\"hostile.wasm\"]\nenv = [\"GREETING\"]\n",
    )
    .unwrap();
    let component = component.to_str().unwrap();
    assert_eq!(ctx.stdout(&["call", component, "read-env"], 0).trim(), "[]", "no grant under strict");
    assert_eq!(
        ctx.stdout(&["call", component, "read-env", "--sandbox", "default"], 0).trim(),
        r#"[["GREETING","hello"]]"#
    );

    let inspected: serde_json::Value = serde_json::from_str(&ctx.stdout(&["inspect", component, "--json"], 0)).unwrap();
    assert_eq!(inspected["sandbox"]["profile"], "strict");
    assert_eq!(inspected["sandbox"]["limits"]["timeout_ms"], 10_000);
    assert_eq!(inspected["sandbox"]["limits"]["memory"], 256 << 20);
    assert_eq!(inspected["sandbox"]["limits"]["max_nesting_depth"], 16);
    assert_eq!(inspected["sandbox"]["grants"]["env"], serde_json::json!([]));
    assert_eq!(inspected["settings"]["CACHEHOST_SANDBOX"]["value"], "strict");
    let text = ctx.stdout(&["inspect", component], 0);
    assert!(
        text.contains("Sandbox: strict (timeout 10s, memory 256 MiB, nesting depth 16); granted nothing (the strict"),
        "{text}"
    );

    let report = ctx.report(&["call", component, "hog-memory"], 1);
    assert_eq!(
        report.task_runs()[0]["state"]["message"],
        "Task run failed: the task run exceeded its memory limit of 256 MiB (memory)"
    );
}

/// `replayable` is a task option a component can declare itself (poly-rust's parse-quantity
/// does, through the Rust SDK), not only a setting of cachehost.toml: its record keeps the
/// inputs, and `cache verify` replays it with no configuration at all.
#[test]
fn a_task_its_component_declares_replayable_is_replayed_without_configuration() {
    let ctx = TestContext::new();
    let folder = ctx.dir.path().join("components");
    std::fs::create_dir_all(&folder).unwrap();
    let component = folder.join("poly-rust.wasm");
    std::fs::copy(example("poly-rust"), &component).unwrap();
    let inspect: serde_json::Value =
        serde_json::from_str(&ctx.stdout(&["inspect", component.to_str().unwrap(), "--json"], 0)).unwrap();
    let parse = inspect["tasks"].as_array().unwrap().iter().find(|t| t["name"] == "parse-quantity").unwrap();
    assert_eq!(parse["options"]["replayable"]["value"], true, "{parse:#}");
    assert_eq!(parse["options"]["replayable"]["source"], "component", "{parse:#}");

    ctx.report(&["call", component.to_str().unwrap(), "parse-quantity", "--arg", "text=\"42\""], 0);
    let replayed = verify(&ctx, &folder, ctx.storage().to_str().unwrap(), 0);
    assert_eq!((replayed["matched"].as_u64(), replayed["not_replayable"].as_u64()), (Some(1), Some(0)), "{replayed:#}");
}
