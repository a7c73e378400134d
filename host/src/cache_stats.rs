//! What records cost and what they saved: `cachehost cache stats`, the ui's stats page, and
//! the ranking behind `cache prune --max-size`.
//!
//! A record keeps what computing its value cost ([`Cost`], record format 4): the wall time of
//! the body, measured on the miss that wrote it. Hits are counted from the run history
//! (`$CACHEHOST_HOME/runs`, [`crate::run::history`]), which every `cachehost run` already
//! writes: each Cached task run there carries its cache key and the cost of the record it was
//! served from. So a hit costs nothing more than it did (no file is read or written for it),
//! and what a hit saved is known even after its record is gone.
//!
//! The limits of counting this way: only hits of flow runs kept by this `CACHEHOST_HOME` are
//! seen, so the `runs_keep` most recent runs (none with `runs_keep = 0`), not standalone
//! `cachehost call`s, and not hits by other machines or other homes sharing the store (an S3
//! bucket, a shared folder). "Recent hits" below means exactly these.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::run::report::RunReport;
use crate::store::record::{Cost, RecordMeta};

/// Per task: its task runs in the kept run history, hits, misses, what the hits saved, and
/// what the store holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TaskStats {
    /// Task runs seen in the run history.
    pub runs: usize,
    /// Of them, cache hits.
    pub hits: usize,
    /// Of them, task runs with a key that ran the body (misses).
    pub misses: usize,
    /// Of them, task runs without a key.
    pub uncached: usize,
    /// Compute saved: the sum over the hits of the cost their record keeps, in microseconds
    /// of wall time.
    pub saved_us: u64,
    /// Hits on records that keep no cost (format version 3 or older): counted in `hits`, not
    /// in `saved_us`.
    pub hits_without_cost: usize,
    /// Records of the task in the store.
    pub records: usize,
    /// Their values' size in bytes.
    pub bytes: u64,
}

/// Counts task runs, hits, misses and compute saved per task over `reports`, and records per
/// task in `records`; by the task's full name.
pub fn task_stats<'a>(
    reports: impl IntoIterator<Item = &'a RunReport>,
    records: &[RecordMeta],
) -> BTreeMap<String, TaskStats> {
    let mut stats: BTreeMap<String, TaskStats> = BTreeMap::new();
    for report in reports {
        for task in &report.task_runs {
            let entry = stats.entry(task.task.clone()).or_default();
            entry.runs += 1;
            if task.state.name == "Cached" {
                entry.hits += 1;
                match task.cost {
                    Some(cost) => entry.saved_us += cost.wall_us,
                    None => entry.hits_without_cost += 1,
                }
            } else if task.cache_key.is_some() && task.attempts > 0 {
                entry.misses += 1;
            } else if task.cache_key.is_none() {
                entry.uncached += 1;
            }
        }
    }
    for meta in records {
        let entry = stats.entry(meta.task.clone()).or_default();
        entry.records += 1;
        entry.bytes += meta.value_len;
    }
    stats
}

/// The hits per cache key over `reports`: the "recent hits" `cache prune --max-size` ranks by.
pub fn hits_by_key<'a>(reports: impl IntoIterator<Item = &'a RunReport>) -> HashMap<String, u64> {
    let mut hits = HashMap::new();
    for report in reports {
        for task in report.task_runs.iter().filter(|t| t.state.name == "Cached") {
            if let Some(key) = &task.cache_key {
                *hits.entry(key.clone()).or_default() += 1;
            }
        }
    }
    hits
}

/// A record's cost for people: `12.5 ms`, with the fuel when it was metered (`12.5 ms, 4.2M
/// fuel`), or `-` for a record that keeps none.
pub fn cost_text(cost: Option<Cost>) -> String {
    let Some(cost) = cost else { return "-".to_owned() };
    let wall = micros_text(cost.wall_us);
    match cost.fuel {
        None => wall,
        Some(fuel) => format!("{wall}, {} fuel", count_text(fuel)),
    }
}

/// Microseconds of wall time for people: `420 µs`, `12.5 ms`, `3.2 s`.
pub fn micros_text(us: u64) -> String {
    crate::units::millis_text(us as f64 / 1e3)
}

/// A count rounded to three figures: `950`, `12.3k`, `4.2M`, `7.0G`.
fn count_text(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// A record as `cache prune --max-size` ranks it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranked {
    /// The record.
    pub meta: RecordMeta,
    /// Its recent hits.
    pub hits: u64,
}

impl Ranked {
    /// What its recent hits saved: its cost's wall time × its hits, in microseconds. A record
    /// without a cost (format version 3 or older) counts as cost 0.
    pub fn saved_us(&self) -> u64 {
        self.meta.cost.map_or(0, |cost| cost.wall_us.saturating_mul(self.hits))
    }

    /// What keeping it is worth per byte it takes: cost × recent hits / bytes.
    pub fn score(&self) -> f64 {
        self.saved_us() as f64 / self.meta.value_len.max(1) as f64
    }
}

/// Which of `records` to remove so the rest fit in `max_bytes` (their values' sizes, as `cache
/// ls` totals them): the lowest [`Ranked::score`] first, and on a tie (records never hit, or
/// without a cost, all score 0) the oldest first. It stops as soon as the rest fit, so it never
/// removes more than it must. Returns the records to remove, in that order, and the rest.
pub fn over_size(
    records: Vec<RecordMeta>,
    hits: &HashMap<String, u64>,
    max_bytes: u64,
) -> (Vec<Ranked>, Vec<RecordMeta>) {
    let mut total: u64 = records.iter().map(|m| m.value_len).sum();
    let mut ranked: Vec<Ranked> =
        records.into_iter().map(|meta| Ranked { hits: hits.get(&meta.key).copied().unwrap_or(0), meta }).collect();
    ranked.sort_by(|a, b| {
        a.score()
            .total_cmp(&b.score())
            .then(a.meta.created_ms.cmp(&b.meta.created_ms))
            .then_with(|| a.meta.key.cmp(&b.meta.key))
    });
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for record in ranked {
        if total <= max_bytes {
            kept.push(record.meta);
        } else {
            total -= record.meta.value_len;
            removed.push(record);
        }
    }
    (removed, kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::report::{StateReport, TaskRunReport};
    use crate::value::Ty;

    fn task_run(key: &str, state: &str, cost_us: Option<u64>) -> TaskRunReport {
        TaskRunReport {
            id: format!("id-{key}"),
            name: "echo-1".into(),
            task: "example:x/tasks#echo".into(),
            component: "x.wasm".into(),
            parent_task_run: None,
            state: StateReport { name: state.into(), type_name: "COMPLETED".into(), message: None },
            cache_key: Some(key.into()),
            cache_key_parts: Vec::new(),
            persisted: state != "Cached",
            attempts: u32::from(state != "Cached"),
            duration_ms: 2.0,
            start_offset_ms: 0.0,
            inputs: None,
            result: None,
            cost: cost_us.map(|wall_us| Cost { wall_us, fuel: None }),
            worker: None,
            earlier_workers: Vec::new(),
            reads: None,
        }
    }

    fn report(task_runs: Vec<TaskRunReport>) -> RunReport {
        RunReport {
            flow_run: None,
            task_runs,
            instantiations: Default::default(),
            object_store_requests: 0,
            components: Vec::new(),
            logs: Vec::new(),
        }
    }

    fn record(key: &str, created_ms: i64, bytes: u64, cost_us: Option<u64>) -> RecordMeta {
        let mut meta = RecordMeta::new(key.into(), "t".into(), "d".into(), vec![], created_ms, None, Ty::Bool, &[]);
        meta.value_len = bytes;
        meta.with_cost(cost_us.map(|wall_us| Cost { wall_us, fuel: None }))
    }

    #[test]
    fn costs_read_as_wall_time_and_fuel() {
        assert_eq!(cost_text(None), "-");
        assert_eq!(cost_text(Some(Cost { wall_us: 12_500, fuel: None })), "12.5 ms");
        assert_eq!(cost_text(Some(Cost { wall_us: 420, fuel: Some(4_200_000) })), "420 µs, 4.2M fuel");
        assert_eq!(cost_text(Some(Cost { wall_us: 32_000_000, fuel: Some(950) })), "32.0 s, 950 fuel");
    }

    #[test]
    fn compute_saved_is_the_sum_of_the_hits_recorded_costs() {
        let first = report(vec![task_run("a", "Completed", Some(7_000)), task_run("a", "Cached", Some(7_000))]);
        let second = report(vec![task_run("a", "Cached", Some(7_000)), task_run("b", "Cached", None)]);
        let stats = task_stats([&first, &second], &[record("a", 0, 10, Some(7_000))]);
        let s = &stats["example:x/tasks#echo"];
        assert_eq!((s.runs, s.hits, s.misses, s.uncached), (4, 3, 1, 0));
        assert_eq!((s.saved_us, s.hits_without_cost), (14_000, 1), "the miss's own cost is not a saving");
        assert_eq!((stats["t"].records, stats["t"].bytes), (1, 10));
        assert_eq!(hits_by_key([&first, &second]), HashMap::from([("a".into(), 2), ("b".into(), 1)]));
    }

    #[test]
    fn over_size_removes_the_least_cost_times_hits_per_byte_first_and_no_more_than_needed() {
        let records = vec![
            record("cheap", 3, 100, Some(10)),    // 10 × 5 / 100 = 0.5
            record("dear", 4, 100, Some(1_000)),  // 1000 × 5 / 100 = 50
            record("big", 5, 1_000, Some(1_000)), // 1000 × 5 / 1000 = 5
            record("unhit", 9, 100, Some(1_000_000)),
            record("old-v3", 1, 100, None), // unknown cost counts as 0, and it is older than unhit
        ];
        let hits = HashMap::from([("cheap".into(), 5), ("dear".into(), 5), ("big".into(), 5), ("old-v3".into(), 9)]);
        let keys = |max: u64| -> Vec<String> {
            over_size(records.clone(), &hits, max).0.into_iter().map(|r| r.meta.key).collect()
        };
        assert_eq!(keys(1_400), Vec::<String>::new(), "it fits");
        assert_eq!(keys(1_399), ["old-v3"]);
        assert_eq!(keys(1_200), ["old-v3", "unhit"]);
        assert_eq!(keys(1_100), ["old-v3", "unhit", "cheap"]);
        assert_eq!(keys(1_000), ["old-v3", "unhit", "cheap", "big"], "the big one goes before the dear one");
        assert_eq!(keys(0).len(), 5);
        let (removed, kept) = over_size(records.clone(), &hits, 1_100);
        assert_eq!(removed.iter().map(Ranked::saved_us).sum::<u64>(), 50, "cheap saved 5 hits × 10 µs");
        assert_eq!(kept.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["big", "dear"]);
    }
}
