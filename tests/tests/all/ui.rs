//! `cachehost runs` and `cachehost ui`, the latter in a real browser: Debian's chromium,
//! headless, driven through chromedriver (WebDriver, fantoccini). `make test` installs both
//! (apt); a missing one fails these tests with the command that installs it.
//!
//! Screenshots of the run page and the cache page go to `$CARGO_TARGET_DIR/ui-screenshots/`,
//! and to `docs/` (the README's pictures) when `CACHEHOST_UPDATE_SCREENSHOTS=1`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cachehost_tests::{example, repo_root, wait_until, TestContext};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value as Json};

/// A context whose runs are kept in a home of its own (the shared test home holds every
/// other test's runs).
fn context() -> TestContext {
    let mut ctx = TestContext::new();
    let home = ctx.dir.path().join("home");
    ctx.env("CACHEHOST_HOME", home.to_str().expect("a UTF-8 temp path"));
    ctx
}

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cachehost ui` on a free port with `extra` arguments; returns it and the address
/// it printed.
fn start_ui(ctx: &TestContext, extra: &[&str]) -> (Killed, String) {
    let mut args = vec!["ui", "--port", "0"];
    args.extend_from_slice(extra);
    let mut child = ctx.command(&args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("cachehost ui");
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    out.read_line(&mut first).expect("ui prints its address");
    // The rest of what it prints is read and dropped, so it never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let page = first.trim().strip_prefix("cachehost ui: ").unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    (Killed(child), page.to_owned())
}

/// `GET` or `POST` over plain HTTP/1.1; returns the status code and the body.
fn http(addr: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the ui listens");
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response)
}

fn host_of(page: &str) -> String {
    page.trim_start_matches("http://").split('/').next().expect("host:port").to_owned()
}

#[test]
fn every_run_is_kept_and_runs_lists_shows_and_removes_it() {
    let ctx = context();
    let first = ctx.report(&["run", example("persist-default").to_str().unwrap()], 0);
    let second = ctx.report(&["run", example("persist-default").to_str().unwrap()], 0);
    let id = first.json["flow_run"]["id"].as_str().expect("a flow run id").to_owned();
    let listed: Json = serde_json::from_str(&ctx.stdout(&["runs", "ls", "--json"], 0)).unwrap();
    let runs = listed["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{listed}");
    assert_eq!(runs[1]["id"], json!(id), "most recent first: {listed}");
    assert_eq!((runs[1]["task_runs"].as_u64(), runs[1]["cached"].as_u64()), (Some(3), Some(1)));
    // The kept report is the one `run --json` printed, with the task runs' values and logs.
    let shown: Json = serde_json::from_str(&ctx.stdout(&["runs", "show", &id[..8], "--json"], 0)).unwrap();
    assert_eq!(shown["task_runs"], first.json["task_runs"]);
    assert_eq!(shown["task_runs"][0]["inputs"], json!({"x": 1}));
    assert_eq!(shown["task_runs"][0]["result"], json!(2));
    assert!(
        shown["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == json!("Finished in state Cached(type=COMPLETED)")),
        "{shown}"
    );
    let text = ctx.stdout(&["runs", "show", &id], 0);
    assert!(text.contains("Cached") && text.contains(first.json["flow_run"]["name"].as_str().unwrap()), "{text}");
    let removed: Json = serde_json::from_str(&ctx.stdout(&["runs", "rm", &id, "--json"], 0)).unwrap();
    assert_eq!(removed["removed"], json!(1));
    let listed: Json = serde_json::from_str(&ctx.stdout(&["runs", "ls", "--json"], 0)).unwrap();
    assert_eq!(listed["runs"][0]["id"], second.json["flow_run"]["id"]);
    let missing = ctx.run(&["runs", "show", &id]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cachehost runs ls"));
}

#[test]
fn the_history_keeps_only_the_most_recent_runs_keep() {
    let mut ctx = context();
    ctx.env("CACHEHOST_RUNS_KEEP", "2");
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let report = ctx.report(&["run", example("persist-default").to_str().unwrap()], 0);
            report.json["flow_run"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let listed: Json = serde_json::from_str(&ctx.stdout(&["runs", "ls", "--json"], 0)).unwrap();
    let kept: Vec<&str> = listed["runs"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(kept.len(), 2, "{listed}");
    assert!(!kept.contains(&ids[0].as_str()), "the oldest run went: {listed}");
}

#[test]
fn leaving_loopback_needs_a_token_and_every_request_carries_it() {
    let ctx = context();
    let refused = ctx.run(&["ui", "--bind", "0.0.0.0", "--port", "0"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("add --token"), "{refused:?}");

    let (_ui, page) = start_ui(&ctx, &["--bind", "0.0.0.0", "--token"]);
    let token = page.split("?token=").nth(1).expect("the printed address carries the token").to_owned();
    assert_eq!(token.len(), 64, "a random token: {page}");
    let addr = host_of(&page);
    let (status, _) = http(&addr, &format!("GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"));
    assert_eq!(status, 401);
    let (status, body) =
        http(&addr, &format!("GET /stats?token={token} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("set-cookie: cachehost_token=") && body.contains("HttpOnly"), "{body}");
    let (status, _) = http(
        &addr,
        &format!("GET /stats HTTP/1.1\r\nHost: {addr}\r\nCookie: cachehost_token={token}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 200);
}

#[test]
fn removing_a_record_without_the_csrf_token_is_refused_and_another_host_is_not_served() {
    let ctx = context();
    ctx.report(&["run", example("persist-default").to_str().unwrap()], 0);
    let (_ui, page) = start_ui(&ctx, &[]);
    let addr = host_of(&page);
    let (status, _) = http(&addr, "GET / HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 421, "a rebound name is refused");
    let form = "key=x&csrf=guessed";
    let (status, body) = http(
        &addr,
        &format!(
            "POST /record/rm HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(status, 403, "{body}");
    let records: Json = serde_json::from_str(&ctx.stdout(&["cache", "ls", "--json"], 0)).unwrap();
    assert_eq!(records["records"].as_array().unwrap().len(), 2, "nothing was removed");
}

/// chromedriver on a free port, and a headless chromium session through it.
struct Browser {
    client: Client,
    _driver: Killed,
}

fn tool(name: &str) -> PathBuf {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .chain([Path::new("/usr/bin").join(name)])
        .find(|path| path.is_file());
    found.unwrap_or_else(|| {
        panic!("{name} is missing: `make test` installs it (apt-get install chromium chromium-driver)")
    })
}

async fn browser() -> Browser {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Command::new(tool("chromedriver"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Killed(driver);
    wait_until("chromedriver listens", || TcpStream::connect(("127.0.0.1", port)).is_ok());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": tool("chromium").display().to_string(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,640", "--hide-scrollbars"]
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromium session");
    Browser { client, _driver: driver }
}

fn save_screenshot(name: &str, png: &[u8]) {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
    if std::env::var_os("CACHEHOST_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(repo_root().join("docs").join(name), png).unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_run_page_shows_a_timeline_its_cached_run_and_values_as_text_in_chromium() {
    let ctx = context();
    let run = ctx.report(&["run", example("persist-default").to_str().unwrap()], 0);
    let xss = "<script>window.__xss=1</script><img src=x onerror=window.__xss=2>";
    let split = ctx.report(
        &[
            "run",
            example("split-flow").to_str().unwrap(),
            "--tasks",
            example("split-tasks").to_str().unwrap(),
            "--param",
            &format!("name={}", json!(xss)),
        ],
        0,
    );
    let stored: Json = serde_json::from_str(&ctx.stdout(&["cache", "ls", "--json"], 0)).unwrap();
    let stored = stored["records"].as_array().unwrap().len();
    let (_ui, page) = start_ui(&ctx, &[]);
    let base = page.trim_end_matches('/');
    let browser = browser().await;
    let c = &browser.client;

    // The runs list links both runs.
    c.goto(&format!("{base}/")).await.unwrap();
    let rows = c.find_all(Locator::Css("#runs tr td a")).await.unwrap();
    assert_eq!(rows.len(), 2);

    // The demo flow's run page: three bars, Completed, Cached, Completed, in start order.
    let id = run.json["flow_run"]["id"].as_str().unwrap();
    c.goto(&format!("{base}/runs/{id}")).await.unwrap();
    let bars = c.find_all(Locator::Css(".gantt a.bar")).await.unwrap();
    let mut states = Vec::new();
    for bar in &bars {
        states.push(bar.attr("data-state").await.unwrap().unwrap_or_default());
        assert!(bar.is_displayed().await.unwrap(), "each bar is drawn");
    }
    assert_eq!(states, ["Completed", "Cached", "Completed"]);
    let colour = |i: usize| {
        let bar = &bars[i];
        async move { bar.css_value("background-color").await.unwrap() }
    };
    let (completed, cached) = (colour(0).await, colour(1).await);
    assert_ne!(completed, cached, "Completed and Cached are coloured apart");
    save_screenshot("ui-run.png", &c.screenshot().await.unwrap());

    // Clicking the Cached bar shows its key parts, the key the report gave it.
    bars[1].click().await.unwrap();
    let detail = c.wait().for_element(Locator::Id("detail")).await.unwrap();
    assert!(detail.text().await.unwrap().contains("Cached"));
    let cached_run = &run.json["task_runs"][1];
    assert_eq!(cached_run["state"]["name"], json!("Cached"));
    let key = c.find(Locator::Id("cache-key")).await.unwrap().text().await.unwrap();
    assert_eq!(json!(key), cached_run["cache_key"]);
    let parts = c.find(Locator::Id("key-parts")).await.unwrap().text().await.unwrap();
    for part in cached_run["cache_key_parts"].as_array().unwrap() {
        assert!(parts.contains(part["part"].as_str().unwrap()), "{parts}");
        assert!(parts.contains(part["key"].as_str().unwrap()), "{parts}");
    }
    // Explain the call again: within its own flow run the record is there, so it would hit.
    c.find(Locator::Id("explain")).await.unwrap().click().await.unwrap();
    let explained = c.wait().for_element(Locator::Id("explanation")).await.unwrap().text().await.unwrap();
    assert!(explained.contains("HIT"), "{explained}");

    // A value holding markup is text: shown as written, and nothing in it ran.
    let split_id = split.json["flow_run"]["id"].as_str().unwrap();
    let greet = split.json["task_runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["result"].as_str().is_some_and(|r| r.contains("<script>")))
        .unwrap_or_else(|| panic!("a task run returned the markup: {}", split.json));
    c.goto(&format!("{base}/runs/{split_id}?task={}", greet["id"].as_str().unwrap())).await.unwrap();
    let value = c.find(Locator::Id("value")).await.unwrap().text().await.unwrap();
    assert!(value.contains(xss), "{value}");
    let ran =
        c.execute("return [window.__xss === undefined, document.scripts.length, document.images.length];", vec![]);
    assert_eq!(ran.await.unwrap(), json!([true, 1, 0]), "no script or image came from the value");

    // The cache page lists the records; remove one through its confirmation.
    c.goto(&format!("{base}/cache")).await.unwrap();
    let records = c.find_all(Locator::Css("#records tr td a")).await.unwrap();
    assert_eq!(records.len(), stored, "every record is listed");
    save_screenshot("ui-cache.png", &c.screenshot().await.unwrap());
    records[0].click().await.unwrap();
    c.wait().for_element(Locator::Id("rm")).await.unwrap().click().await.unwrap();
    let form = c.wait().for_element(Locator::Id("confirm-rm")).await.unwrap();
    form.find(Locator::Css("button")).await.unwrap().click().await.unwrap();
    let flash = c.wait().for_element(Locator::Id("flash")).await.unwrap().text().await.unwrap();
    assert!(flash.starts_with("Removed 1 record"), "{flash}");
    assert_eq!(c.find_all(Locator::Css("#records tr td a")).await.unwrap().len(), stored - 1);

    // Stats count the hit and the misses of add-one.
    c.goto(&format!("{base}/stats")).await.unwrap();
    let row = c.find(Locator::Css("#stats tr[data-task='example:persist-default/tasks#add-one']")).await.unwrap();
    let hits = row.find(Locator::Css(".hits")).await.unwrap().text().await.unwrap();
    let misses = row.find(Locator::Css(".misses")).await.unwrap().text().await.unwrap();
    assert_eq!((hits.as_str(), misses.as_str()), ("1", "2"));
    // Compute saved: the one hit saved the cost its record keeps.
    let saved = row.find(Locator::Css(".saved")).await.unwrap().text().await.unwrap();
    let wall_us = cached_run["cost"]["wall_us"].as_u64().expect("the hit's record keeps its cost");
    assert_eq!(saved, cachehost::cache_stats::micros_text(wall_us));
    browser.client.clone().close().await.unwrap();
}
