//! The flow's side of the queue: sends task calls to the workers and waits for their
//! outcomes, which come back on the flow run's reply stream. One thread reads that stream
//! and hands each outcome to the call waiting for it.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::call::{self, CallHead, Outcome, Payload};
use super::queue::{self, Queue, QueueError, CALLS};
use crate::log::{Level, Logger, Subject};
use crate::store::{ResultStore, Shared};

/// How long one read of the reply stream blocks in Redis.
const REPLY_BLOCK: Duration = Duration::from_secs(1);
/// How often a flow whose calls get no answer says how many are waiting.
pub const WAITING_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// An outcome and its encoded value, or why there is none.
type Answer = Result<(Outcome, Option<Payload>), String>;

/// Sends the calls of one process's flow run to the workers of one Redis.
pub struct Executor {
    queue: Queue,
    logger: Arc<Logger>,
    timeout: Duration,
    reply: OnceLock<String>,
    waiting: Mutex<HashMap<String, mpsc::Sender<Answer>>>,
    uploaded: Mutex<HashSet<(String, String)>>,
    last_news: Mutex<Instant>,
}

impl Executor {
    /// Connects to the Redis at `url` and makes sure the call stream and its group exist.
    /// `timeout` bounds a call's wait for its outcome, and an outage of Redis meanwhile.
    pub fn open(url: &str, timeout: Duration, logger: Arc<Logger>) -> Result<Arc<Executor>, QueueError> {
        let queue = Queue::open(url)?;
        queue.ping()?;
        queue.ensure_group()?;
        Ok(Arc::new(Executor {
            queue,
            logger,
            timeout,
            reply: OnceLock::new(),
            waiting: Mutex::new(HashMap::new()),
            uploaded: Mutex::new(HashSet::new()),
            last_news: Mutex::new(Instant::now()),
        }))
    }

    /// `host:port` of the Redis.
    pub fn address(&self) -> &str {
        self.queue.address()
    }

    /// Keeps the component with `digest` in `store` for the workers, unless this process
    /// already did or the store holds it already (same length: its digest is the worker's
    /// to check).
    pub fn share_component(
        &self,
        store: &dyn ResultStore,
        digest: &blake3::Hash,
        read: impl FnOnce() -> std::io::Result<Vec<u8>>,
    ) -> Result<(), String> {
        let id = (store.describe(), digest.to_hex().to_string());
        // Held across the upload: concurrent calls wait for the one that shares it.
        let mut uploaded = self.uploaded.lock().unwrap_or_else(|e| e.into_inner());
        if uploaded.contains(&id) {
            return Ok(());
        }
        let bytes = read().map_err(|e| format!("cannot read the component {}: {e}", id.1))?;
        let kept = store
            .shared_len(Shared::Component, &id.1)
            .map_err(|e| format!("cannot look for component {} in {}: {e}", id.1, id.0))?;
        if kept != Some(bytes.len() as u64) {
            store
                .write_shared(Shared::Component, &id.1, &bytes)
                .map_err(|e| format!("cannot share component {} in {}: {e}", id.1, id.0))?;
        }
        uploaded.insert(id);
        Ok(())
    }

    /// Sends a call and waits for its outcome: the first call starts the reader of the
    /// flow run's reply stream (`head.reply`). `wait` wraps the waiting (the pool gives the
    /// caller's place back meanwhile).
    pub fn call(
        self: &Arc<Self>,
        head: &CallHead,
        inputs: &Payload,
        wait: impl FnOnce(&mut dyn FnMut() -> Answer) -> Answer,
    ) -> Answer {
        self.start_reader(&head.reply);
        let (send, receive) = mpsc::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(head.call.clone(), send);
        let mut command = redis::cmd("XADD");
        command.arg(CALLS).arg("*");
        call::add_fields(&mut command, &call::call_fields(head, inputs));
        let entry = match self.queue.run(&command) {
            Ok(reply) => queue::text(&reply).unwrap_or_default(),
            Err(e) => {
                self.forget(&head.call);
                return Err(format!("the call could not be sent to the workers: {e}"));
            }
        };
        let sent = Instant::now();
        let mut wait_for_outcome = || loop {
            let left = self.timeout.saturating_sub(sent.elapsed());
            if left.is_zero() {
                self.forget(&head.call);
                // A worker that has not taken the call yet never will.
                let _ = self.queue.run(redis::cmd("XDEL").arg(CALLS).arg(&entry));
                return Err(format!(
                    "no worker answered within {} on the Redis queue at {} ({} calls of this flow were still waiting); \
                     start a worker with `cachehost worker --queue {}`, or allow longer with --executor-timeout",
                    crate::units::duration_text(self.timeout),
                    self.address(),
                    self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len() + 1,
                    self.queue.url(),
                ));
            }
            match receive.recv_timeout(left.min(WAITING_LOG_INTERVAL)) {
                Ok(answer) => return answer,
                Err(mpsc::RecvTimeoutError::Timeout) => self.say_waiting(),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("the reader of the reply stream stopped".to_owned());
                }
            }
        };
        wait(&mut wait_for_outcome)
    }

    fn forget(&self, call: &str) {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(call);
    }

    /// Logs how many calls wait, at most once per [`WAITING_LOG_INTERVAL`] and only when no
    /// outcome came back for that long.
    fn say_waiting(&self) {
        {
            let mut last = self.last_news.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < WAITING_LOG_INTERVAL {
                return;
            }
            *last = Instant::now();
        }
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len();
        let alive = super::status::alive_workers(&self.queue).map(|w| w.len());
        let workers = match alive {
            Ok(0) => "no worker is alive".to_owned(),
            Ok(1) => "1 worker is alive".to_owned(),
            Ok(n) => format!("{n} workers are alive"),
            Err(e) => format!("the workers cannot be counted: {e}"),
        };
        self.logger.log(
            Level::Info,
            &Subject::Host,
            &format!("{waiting} task calls are queued on the Redis queue at {}; {workers}", self.address()),
        );
    }

    fn start_reader(self: &Arc<Self>, stream: &str) {
        let mut started = false;
        self.reply.get_or_init(|| {
            started = true;
            stream.to_owned()
        });
        if started {
            let executor = self.clone();
            let stream = stream.to_owned();
            std::thread::Builder::new()
                .name("cachehost-replies".to_owned())
                .spawn(move || executor.read_replies(&stream))
                .expect("a thread starts");
        }
    }

    /// Reads the reply stream for as long as the process lives. While Redis cannot be
    /// reached it tries again; once that lasted the executor timeout, every waiting call
    /// fails with the reason.
    fn read_replies(&self, stream: &str) {
        let mut last = "0-0".to_owned();
        let mut down_since: Option<Instant> = None;
        loop {
            let error = match self.read_some(stream, &mut last, &mut down_since) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let since = *down_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.timeout {
                let calls: Vec<_> = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
                for (_, waiting) in calls {
                    let _ = waiting.send(Err(format!(
                        "{error}, for {}; the outcome of this call is lost to this flow run (a worker may still \
                         write its record)",
                        crate::units::duration_text(since.elapsed())
                    )));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn read_some(
        &self,
        stream: &str,
        last: &mut String,
        down_since: &mut Option<Instant>,
    ) -> Result<std::convert::Infallible, QueueError> {
        let mut connection = self.queue.blocking_connection(REPLY_BLOCK)?;
        loop {
            let reply = connection.run(
                redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(256)
                    .arg("BLOCK")
                    .arg(REPLY_BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(stream)
                    .arg(last.as_str()),
            )?;
            *down_since = None;
            for entry in queue::read_entries(&reply) {
                last.clone_from(&entry.id);
                *self.last_news.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                let answer = call::parse_outcome(&entry);
                let call = match &answer {
                    Ok((outcome, _)) => outcome.call.clone(),
                    Err(_) => entry.text("call").unwrap_or_default().to_owned(),
                };
                // A call run twice (its first worker died after replying) answers twice:
                // the second answer finds nobody waiting.
                if let Some(waiting) = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&call) {
                    let _ = waiting.send(answer);
                }
            }
        }
    }

    /// Removes the flow run's reply stream (at the end of the run).
    pub fn finish(&self) {
        if let Some(stream) = self.reply.get() {
            let _ = self.queue.run(redis::cmd("DEL").arg(stream));
        }
    }
}
