//! What `cachehost worker status` shows: the workers, the calls they run, the depth of the
//! queue and the dead letters.

use serde::{Deserialize, Serialize};

use super::queue::{self, Queue, QueueError, CALLS, DEAD, GROUP, RUNNING, WORKERS};

/// What a worker says of itself when it starts (the `cachehost:workers` hash).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its name.
    pub name: String,
    /// Its machine.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// How many calls it runs at once.
    pub concurrency: usize,
    /// When it started, Unix ms.
    pub started_ms: i64,
    /// Its lease on a call, ms.
    pub lease_ms: u64,
}

/// A call a worker runs (the `cachehost:calls:running` hash).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunningCall {
    /// The stream entry.
    pub entry: String,
    /// The worker running it.
    pub worker: String,
    /// The task run's name.
    pub task_run: String,
    /// The task.
    pub task: String,
    /// Since when, Unix ms.
    pub since_ms: i64,
    /// Workers that ran it before and stopped answering, oldest first.
    #[serde(default)]
    pub earlier_workers: Vec<String>,
}

/// A worker as status shows it.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerStatus {
    /// What it said when it started.
    #[serde(flatten)]
    pub info: WorkerInfo,
    /// Whether its heartbeat is current.
    pub alive: bool,
    /// What it runs.
    pub running: Vec<RunningCall>,
}

/// A dead letter.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub id: String,
    /// The id it had in the call stream.
    pub entry: String,
    /// Why no worker could run it.
    pub reason: String,
}

/// The whole status.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// `host:port` of the Redis.
    pub redis: String,
    /// The workers, by name.
    pub workers: Vec<WorkerStatus>,
    /// Calls no worker has taken yet.
    pub queued: u64,
    /// Calls taken and not yet acknowledged.
    pub pending: u64,
    /// How many dead letters there are.
    pub dead_letters: u64,
    /// The most recent dead letters, newest first (at most 20).
    pub recent_dead_letters: Vec<DeadLetter>,
}

/// The workers whose heartbeat is current.
pub fn alive_workers(queue: &Queue) -> Result<Vec<WorkerInfo>, QueueError> {
    let mut alive = Vec::new();
    for (_, json) in queue::pairs(&queue.run(redis::cmd("HGETALL").arg(WORKERS))?) {
        let Ok(info) = serde_json::from_str::<WorkerInfo>(&json) else { continue };
        if queue::int(&queue.run(redis::cmd("EXISTS").arg(queue::heartbeat_key(&info.name)))?) == Some(1) {
            alive.push(info);
        }
    }
    Ok(alive)
}

/// Reads the status from Redis.
pub fn status(queue: &Queue) -> Result<Status, QueueError> {
    let running: Vec<RunningCall> = queue::pairs(&queue.run(redis::cmd("HGETALL").arg(RUNNING))?)
        .into_iter()
        .filter_map(|(_, json)| serde_json::from_str(&json).ok())
        .collect();
    let mut workers = Vec::new();
    for (_, json) in queue::pairs(&queue.run(redis::cmd("HGETALL").arg(WORKERS))?) {
        let Ok(info) = serde_json::from_str::<WorkerInfo>(&json) else { continue };
        let alive = queue::int(&queue.run(redis::cmd("EXISTS").arg(queue::heartbeat_key(&info.name)))?) == Some(1);
        let mine = running.iter().filter(|c| c.worker == info.name).cloned().collect();
        workers.push(WorkerStatus { info, alive, running: mine });
    }
    workers.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    let (mut queued, mut pending) = (0, 0);
    // XINFO GROUPS fails on a stream that does not exist yet: nothing is queued then.
    if let Ok(groups) = queue.run(redis::cmd("XINFO").arg("GROUPS").arg(CALLS)) {
        for group in queue::items(&groups) {
            let fields = queue::pairs(group);
            let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            if field("name").as_deref() == Some(GROUP) {
                pending = field("pending").and_then(|v| v.parse().ok()).unwrap_or(0);
                queued = field("lag").and_then(|v| v.parse().ok()).unwrap_or(0);
            }
        }
    }
    let dead_letters = queue::int(&queue.run(redis::cmd("XLEN").arg(DEAD))?).unwrap_or(0) as u64;
    let recent = queue.run(redis::cmd("XREVRANGE").arg(DEAD).arg("+").arg("-").arg("COUNT").arg(20))?;
    let recent_dead_letters = queue::entries(&recent)
        .into_iter()
        .map(|entry| DeadLetter {
            entry: entry.text("entry").unwrap_or_default().to_owned(),
            reason: entry.text("reason").unwrap_or_default().to_owned(),
            id: entry.id,
        })
        .collect();
    Ok(Status { redis: queue.address().to_owned(), workers, queued, pending, dead_letters, recent_dead_letters })
}

/// The status as text, for a terminal.
pub fn render(status: &Status, now_ms: i64) -> String {
    let mut out = format!("Redis queue at {}\n", status.redis);
    out += &format!(
        "calls: {} queued, {} running or unacknowledged, {} dead letters\n",
        status.queued, status.pending, status.dead_letters
    );
    if status.workers.is_empty() {
        out += "workers: none has started\n";
    } else {
        out += "workers:\n";
    }
    for worker in &status.workers {
        let info = &worker.info;
        out += &format!(
            "  {}  {}  on {} pid {}, {} at once, up {}\n",
            info.name,
            if worker.alive { "alive" } else { "gone (no heartbeat)" },
            info.host,
            info.pid,
            info.concurrency,
            crate::units::human_span(now_ms - info.started_ms),
        );
        for call in &worker.running {
            out += &format!(
                "    {} ({}) for {}, entry {}\n",
                call.task_run,
                call.task,
                crate::units::human_span(now_ms - call.since_ms),
                call.entry
            );
        }
    }
    if !status.recent_dead_letters.is_empty() {
        out += "dead letters (newest first):\n";
        for dead in &status.recent_dead_letters {
            out += &format!("  {} (was {}): {}\n", dead.id, dead.entry, dead.reason);
        }
    }
    out
}
