//! Harness for the integration tests: each test gets its own storage folder and a command
//! builder for the `cachehost` binary; runs are read back from the `--json` report.
//!
//! The binary and the example components are built by `make test` (or `make examples` and
//! `cargo build -p cachehost`); a missing one fails the test with the command to run.

pub mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// The repository root.
pub fn repo_root() -> PathBuf {
    // Read at run time, where cargo sets it for the checkout running the tests: a test binary
    // that another checkout built into the shared target folder, and cargo found fresh, still
    // holds that checkout's path in `env!`.
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.parent().expect("tests/ has a parent").to_owned()
}

/// The `cachehost` binary: `$CACHEHOST_BIN`, or `cachehost` beside the test's target folder.
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("CACHEHOST_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/<profile>/deps/<test> -> target/<profile>/cachehost
    let bin =
        exe.parent().and_then(Path::parent).expect("test binaries live in target/<profile>/deps").join("cachehost");
    assert!(bin.exists(), "{} is missing: run `make test` (or `cargo build -p cachehost`) first", bin.display());
    bin
}

/// An example component built by `make examples`, e.g. `example("persist-default")`.
pub fn example(name: &str) -> PathBuf {
    let dir =
        std::env::var_os("CACHEHOST_EXAMPLES").map(PathBuf::from).unwrap_or_else(|| repo_root().join("build/examples"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run `make examples` first", path.display());
    path
}

/// How long [`wait_until`] waits before it calls the wait a hang.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// Waits until `done` holds (an event: a file appears, a server sees a request), polling every
/// 5 ms. Panics after [`HANG_GUARD`], naming `what`: that bounds a test that would otherwise
/// hang, it never measures speed (tests assert on events and counts, never on elapsed time).
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {HANG_GUARD:?}: a hang");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One test's world: a storage folder of its own, a shared compiled-component cache.
pub struct TestContext {
    /// Temporary folder holding this test's storage and files.
    pub dir: tempfile::TempDir,
    envs: Vec<(String, String)>,
}

impl Default for TestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl TestContext {
    /// A fresh context.
    pub fn new() -> TestContext {
        let dir = tempfile::tempdir().expect("a temp dir");
        TestContext { dir, envs: Vec::new() }
    }

    /// The result storage folder of this test.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Sets an environment variable for every command of this context.
    pub fn env(&mut self, name: &str, value: &str) -> &mut Self {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A `cachehost` command with this context's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary());
        // The compiled-component cache is shared by all tests (it only saves compile time);
        // result storage is per test.
        let home = std::env::temp_dir().join("cachehost-tests-home");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CACHEHOST_HOME", home)
            .env("CACHEHOST_LOCAL_STORAGE_PATH", self.storage())
            .env("NO_COLOR", "1")
            .args(args);
        for (name, value) in &self.envs {
            cmd.env(name, value);
        }
        cmd
    }

    /// Runs `cachehost` with `args` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("cachehost runs")
    }

    /// Runs `cachehost <args>`, asserts the exit status, and returns stdout.
    pub fn stdout(&self, args: &[&str], expected_status: i32) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(expected_status),
            "cachehost {args:?} exited with {:?}\nstderr:\n{}\nstdout:\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stdout).expect("stdout is UTF-8")
    }

    /// Like [`TestContext::stdout`], then [`filter`]ed with this test's folder as `[TMP]`.
    pub fn snapshot(&self, args: &[&str], expected_status: i32) -> String {
        let text = self.stdout(args, expected_status);
        filter(&text, &[(self.dir.path().to_str().expect("a UTF-8 temp path"), "[TMP]")])
    }

    /// Runs `cachehost <args> --json`, asserts the exit status, and parses the report.
    pub fn report(&self, args: &[&str], expected_status: i32) -> Report {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let output = self.run(&all);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            output.status.code(),
            Some(expected_status),
            "cachehost {all:?} exited with {:?}\nstderr:\n{stderr}\nstdout:\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout)
        );
        let json: Json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("the report is not JSON ({e}):\n{}\nstderr:\n{stderr}", String::from_utf8_lossy(&output.stdout))
        });
        Report { json, stderr }
    }
}

/// A parsed `--json` run report and the run's stderr (its log lines).
pub struct Report {
    /// The report.
    pub json: Json,
    /// The log lines.
    pub stderr: String,
}

impl Report {
    /// The task runs, in the order they finished.
    pub fn task_runs(&self) -> &Vec<Json> {
        self.json["task_runs"].as_array().expect("task_runs is an array")
    }

    /// The state name of every task run, in order.
    pub fn states(&self) -> Vec<String> {
        self.task_runs().iter().map(|t| t["state"]["name"].as_str().unwrap().to_owned()).collect()
    }

    /// The cache key of every task run, in order (None where there was none).
    pub fn keys(&self) -> Vec<Option<String>> {
        self.task_runs().iter().map(|t| t["cache_key"].as_str().map(str::to_owned)).collect()
    }

    /// The flow run's result.
    pub fn result(&self) -> &Json {
        &self.json["flow_run"]["result"]
    }

    /// The flow run's state name.
    pub fn flow_state(&self) -> &str {
        self.json["flow_run"]["state"]["name"].as_str().unwrap_or("")
    }

    /// How many instances of `purpose` (flows, tasks, key_functions, options) were created.
    pub fn instantiations(&self, purpose: &str) -> u64 {
        self.json["instantiations"][purpose].as_u64().expect("instantiation counts are numbers")
    }
}

/// Makes command output comparable across runs, as snapshot filters do: each `(literal,
/// replacement)` first, then UUIDs become `[UUID]`, 64-digit hex digests `[DIGEST]`, other
/// hex runs of 8 or more digits (short keys, digest prefixes) `[HEX]`, times `[TIME]`,
/// ages (`3s ago`, `in 2s`) `[AGE] ago` / `in [AGE]`, durations (`420 µs`, `12.5 ms`)
/// `[DURATION]`, and runs of spaces two spaces (column
/// widths follow the filtered values; alignment has its own unit test).
pub fn filter(text: &str, literals: &[(&str, &str)]) -> String {
    use regex::Regex;
    use std::sync::OnceLock;
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "[UUID]"),
            (r"\b[0-9a-f]{64}\b", "[DIGEST]"),
            (r"\b[0-9a-f]*[0-9][0-9a-f]*\b", "[HEX]"),
            (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", "[TIME]"),
            (r"\b\d+[smhd] ago\b", "[AGE] ago"),
            (r"\bin \d+[smhd]\b", "in [AGE]"),
            (r"\b\d+(\.\d+)? (µs|ms|s)\b", "[DURATION]"),
            (r" {2,}", "  "),
        ]
        .into_iter()
        .map(|(pattern, replacement)| (Regex::new(pattern).expect("a valid filter"), replacement))
        .collect()
    });
    let mut text = text.to_owned();
    for (literal, replacement) in literals {
        text = text.replace(literal, replacement);
    }
    for (regex, replacement) in rules {
        text = regex
            .replace_all(&text, |caps: &regex::Captures<'_>| {
                let found = &caps[0];
                // Short hex runs (sizes, counts) stay; only ids of 8 digits or more are filtered.
                if *replacement == "[HEX]" && found.len() < 8 {
                    found.to_owned()
                } else {
                    (*replacement).to_owned()
                }
            })
            .into_owned();
    }
    text
}
