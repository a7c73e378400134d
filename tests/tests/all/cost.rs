//! What a record cost and what it saved (issue 18, point 2): the cost a record keeps and
//! `cache ls` shows, `cache stats`, and `cache prune --max-size`. Costs are wall times, so no
//! test compares one with a number: only with the other places the same measurement shows up.

use cachehost::cache_stats::micros_text;
use cachehost::store::record;
use cachehost_tests::{example, TestContext};
use serde_json::Value as Json;

/// A context whose runs are kept in a home of its own, since hits are counted from the run
/// history (the shared test home holds every other test's runs).
fn context() -> TestContext {
    let mut ctx = TestContext::new();
    let home = ctx.dir.path().join("home");
    ctx.env("CACHEHOST_HOME", home.to_str().expect("a UTF-8 temp path"));
    ctx
}

fn json(ctx: &TestContext, args: &[&str]) -> Json {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ctx.stdout(&all, 0)).expect("--json prints JSON")
}

/// Runs the bench example's `repeat` flow: `n` calls of the INPUTS task add-one, all on
/// `start` (one miss, then hits) or on `start`, `start + 1`, ... (misses).
fn repeat(ctx: &TestContext, n: u32, start: i64, distinct: bool) -> cachehost_tests::Report {
    let flow = example("bench");
    let (n, start, distinct) = (format!("n={n}"), format!("start={start}"), format!("distinct={distinct}"));
    let flow = flow.to_str().unwrap();
    let args: [&str; 10] = ["run", flow, "--flow", "repeat", "--param", &n, "--param", &start, "--param", &distinct];
    ctx.report(&args, 0)
}

fn records(ctx: &TestContext) -> Vec<Json> {
    json(ctx, &["cache", "ls"])["records"].as_array().unwrap().clone()
}

/// The record of add-one(x) (whose result is x + 1).
fn record_of(ctx: &TestContext, report: &cachehost_tests::Report, x: usize) -> Json {
    let key = report.keys()[x].clone().expect("add-one has a key");
    records(ctx).into_iter().find(|r| r["key"].as_str() == Some(&key)).expect("the record is stored")
}

#[test]
fn a_record_keeps_the_wall_time_of_its_body_and_its_fuel_when_metered() {
    let ctx = context();
    let report = repeat(&ctx, 2, 0, false);
    assert_eq!(report.states(), ["Completed", "Cached"]);
    let stored = record_of(&ctx, &report, 0);
    let cost = &stored["cost"];
    assert!(cost["wall_us"].as_u64().unwrap() > 0, "{stored}");
    assert_eq!(cost["fuel"], Json::Null, "fuel is not metered unless a fuel limit is configured");
    // The run report shows the measured cost on the miss, and on the hit what it saved: the
    // cost its record keeps.
    assert_eq!(&report.task_runs()[0]["cost"], cost);
    assert_eq!(&report.task_runs()[1]["cost"], cost);
    let shown = ctx.snapshot(&["cache", "show", stored["key"].as_str().unwrap()], 0);
    assert!(shown.contains("\ncost  [DURATION]\n"), "{shown}");

    let mut metered = context();
    metered.env("CACHEHOST_LIMITS_FUEL", "1000000000");
    let report = repeat(&metered, 1, 0, false);
    let stored = record_of(&metered, &report, 0);
    assert!(stored["cost"]["fuel"].as_u64().unwrap() > 0, "{stored}");
    assert_eq!(report.task_runs()[0]["cost"], stored["cost"]);
    let listed = metered.snapshot(&["cache", "ls"], 0);
    assert!(listed.contains("  [DURATION], "), "{listed}");
    assert!(listed.contains(" fuel  [AGE] ago"), "{listed}");
}

/// `bytes` (a whole record) as format version 3 wrote it: the same metadata without the cost
/// and the reads, the last two fields of version 5's metadata (a 0 byte each when there are none).
fn as_version_3(bytes: &[u8]) -> Vec<u8> {
    let (meta, value) = record::split(bytes).unwrap();
    let v5 = record::encode(&meta.with_cost(None).with_reads(Vec::new()), value);
    let at = record::MAGIC.len();
    let meta_len = u32::from_le_bytes(v5[at + 1..at + 5].try_into().unwrap()) as usize;
    assert_eq!(v5[at + 5 + meta_len - 2..at + 5 + meta_len], [0, 0], "no cost, no reads");
    let mut v3 = v5[..at].to_vec();
    v3.push(3);
    v3.extend_from_slice(&(meta_len as u32 - 2).to_le_bytes());
    v3.extend_from_slice(&v5[at + 5..at + 5 + meta_len - 2]);
    v3.extend_from_slice(&v5[at + 5 + meta_len..]);
    v3
}

#[test]
fn a_record_of_format_version_3_is_still_a_hit_with_no_cost_shown_or_counted() {
    let ctx = context();
    let report = repeat(&ctx, 1, 0, false);
    let key = report.keys()[0].clone().unwrap();
    let file = ctx.storage().join(&key);
    std::fs::write(&file, as_version_3(&std::fs::read(&file).unwrap())).unwrap();

    let listed = ctx.snapshot(&["cache", "ls"], 0);
    assert!(listed.contains("  2 B  -  [AGE] ago"), "{listed}");
    assert_eq!(record_of(&ctx, &report, 0)["cost"], Json::Null);
    let report = repeat(&ctx, 1, 0, false);
    assert_eq!(report.states(), ["Cached"], "{}", report.stderr);
    assert_eq!(report.task_runs()[0]["cost"], Json::Null);

    let stats = json(&ctx, &["cache", "stats"]);
    let add_one = &stats["tasks"][0];
    assert_eq!(
        (&add_one["hits"], &add_one["hits_without_cost"], &add_one["saved_us"]),
        (&1.into(), &1.into(), &0.into())
    );
    let text = ctx.snapshot(&["cache", "stats"], 0);
    assert!(text.contains("1 hit on records written before costs were kept"), "{text}");
}

#[test]
fn cache_stats_counts_hits_misses_and_the_compute_the_hits_saved() {
    let ctx = context();
    let report = repeat(&ctx, 4, 0, false);
    assert_eq!(report.states(), ["Completed", "Cached", "Cached", "Cached"]);
    let wall_us = record_of(&ctx, &report, 0)["cost"]["wall_us"].as_u64().unwrap();

    let stats = json(&ctx, &["cache", "stats"]);
    assert_eq!(stats["runs"], 1);
    let tasks = stats["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{stats}");
    let add_one = &tasks[0];
    assert_eq!(add_one["task"], "example:bench/tasks#add-one");
    assert_eq!((&add_one["runs"], &add_one["hits"], &add_one["misses"]), (&4.into(), &3.into(), &1.into()));
    assert_eq!(add_one["saved_us"], 3 * wall_us, "three hits, each saving the recorded cost");
    assert_eq!(stats["compute_saved_us"], 3 * wall_us);
    assert_eq!((&add_one["records"], &add_one["bytes"]), (&1.into(), &2.into()));

    assert_eq!(
        ctx.snapshot(&["cache", "stats"], 0),
        "TASK  TASK RUNS  HITS  MISSES  SAVED  RECORDS  STORED\n\
         add-one  4  3  1  [DURATION]  1  2 B\n\
         [DURATION] of compute saved over the 1 kept run; records in [TMP]/storage.\n"
    );
    assert!(ctx.stdout(&["cache", "stats"], 0).contains(&micros_text(3 * wall_us)));
}

#[test]
fn prune_max_size_removes_the_records_worth_least_and_no_more_than_needed() {
    let ctx = context();
    let hit = repeat(&ctx, 4, 0, false); // add-one(0): one record, 3 hits
    repeat(&ctx, 3, 10, true); // add-one(10), (11), (12): 3 records never hit
    let hit = record_of(&ctx, &hit, 0);
    let hit_key = hit["key"].as_str().unwrap().to_owned();
    let stored =
        |ctx: &TestContext| records(ctx).iter().map(|r| r["key"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(stored(&ctx).len(), 4, "4 records of 2 B");

    let fits = json(&ctx, &["cache", "prune", "--max-size", "8B"]);
    assert_eq!((&fits["removed"], &fits["over_size"]["count"]), (&0.into(), &0.into()), "{fits}");

    // One record over: the dry run names one never-hit record, and removes nothing.
    let dry = json(&ctx, &["cache", "prune", "--max-size", "7", "--dry-run"]);
    let over = &dry["over_size"];
    assert_eq!((&over["count"], &over["bytes"], &over["compute_saved_us"]), (&1.into(), &2.into(), &0.into()), "{dry}");
    assert_eq!(over["kept_bytes"], 6);
    assert_ne!(over["keys"][0], hit_key.as_str());
    assert_eq!(stored(&ctx).len(), 4);
    let text = ctx.snapshot(&["cache", "prune", "--max-size", "7", "--dry-run"], 0);
    assert_eq!(
        text,
        "[DIGEST]  over size: 2 B, cost [DURATION] × 0 recent hits\n\
         Would prune 1 record from [TMP]/storage (0 expired, 0 of missing components, 1 over --max-size, 0 \
         unreadable).\n\
         To fit in 7 B: 1 record of 2 B would be removed, which had saved 0 µs in their recent hits; 6 B kept.\n"
            .replace("0 µs", "[DURATION]")
    );

    // Down to one record: the three never hit go, the one with hits stays.
    let pruned = json(&ctx, &["cache", "prune", "--max-size", "2B"]);
    assert_eq!((&pruned["removed"], &pruned["over_size"]["count"]), (&3.into(), &3.into()), "{pruned}");
    assert_eq!(stored(&ctx), [hit_key.as_str()]);

    // Removing the last one reports what its hits had saved.
    let wall_us = hit["cost"]["wall_us"].as_u64().unwrap();
    let pruned = json(&ctx, &["cache", "prune", "--max-size", "0"]);
    assert_eq!(pruned["over_size"]["keys"], serde_json::json!([hit_key]));
    assert_eq!(pruned["over_size"]["compute_saved_us"], 3 * wall_us);
    assert!(stored(&ctx).is_empty());

    let refused = ctx.run(&["cache", "prune", "--max-size", "lots"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--max-size \"lots\" is not a size"));
}
