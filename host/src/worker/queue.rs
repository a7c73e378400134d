//! The queue in Redis: one stream of task calls read by one consumer group of workers, a
//! reply stream per flow run, and the bookkeeping `cachehost worker status` reads.
//!
//! Names, all under `cachehost:`:
//! - `cachehost:calls`: the calls; consumer group `workers` (XREADGROUP, XACK, XAUTOCLAIM);
//! - `cachehost:calls:dead`: entries no worker could read, with the reason;
//! - `cachehost:calls:running`: a hash from entry id to who runs it since when;
//! - `cachehost:workers`: a hash from worker name to what the worker said when it started;
//! - `cachehost:worker:<name>`: a worker's heartbeat, expiring unless renewed;
//! - `cachehost:replies:<flow run id>`: the outcomes of one flow run's calls.

use std::sync::Mutex;
use std::time::Duration;

use redis::Value as Reply;

/// The stream of task calls.
pub const CALLS: &str = "cachehost:calls";
/// The consumer group every worker joins.
pub const GROUP: &str = "workers";
/// Where unreadable entries go.
pub const DEAD: &str = "cachehost:calls:dead";
/// Which worker runs which entry, since when.
pub const RUNNING: &str = "cachehost:calls:running";
/// The workers that said they started.
pub const WORKERS: &str = "cachehost:workers";
/// How long a reply stream nobody reads any more is kept.
pub const REPLY_KEEP: Duration = Duration::from_secs(3600);

/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may wait for Redis to read or answer, beyond its own blocking time.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// A worker's heartbeat key.
pub fn heartbeat_key(worker: &str) -> String {
    format!("cachehost:worker:{worker}")
}

/// The reply stream of a flow run.
pub fn reply_stream(flow_run_id: &str) -> String {
    format!("cachehost:replies:{flow_run_id}")
}

/// The queue cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis cannot be reached, or it refused a command.
    #[error("the Redis queue at {address} cannot be used: {message}")]
    Unavailable {
        /// `host:port`.
        address: String,
        /// Why.
        message: String,
    },
}

/// One entry of a stream: its id and its fields.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The entry id, `<ms>-<seq>`.
    pub id: String,
    /// Its fields, in order.
    pub fields: Vec<(String, Vec<u8>)>,
}

impl Entry {
    /// The value of field `name`.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// The value of field `name` as text.
    pub fn text(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.field(name)?).ok()
    }
}

/// Connections to one Redis server.
pub struct Queue {
    client: redis::Client,
    address: String,
    url: String,
    idle: Mutex<Vec<redis::Connection>>,
}

impl Queue {
    /// The queue at `url` (`redis://host:port[/db]`); nothing is sent yet.
    pub fn open(url: &str) -> Result<Queue, QueueError> {
        let address = crate::lock::redis::address_of(url);
        let client = redis::Client::open(url).map_err(|e| QueueError::Unavailable {
            address: address.clone(),
            message: format!("{url:?} is not a Redis URL: {e}"),
        })?;
        Ok(Queue { client, address, url: url.to_owned(), idle: Mutex::new(Vec::new()) })
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn unavailable(&self, error: &redis::RedisError) -> QueueError {
        let message = if error.is_timeout() {
            format!("Redis did not answer in time ({error})")
        } else if error.is_io_error() || error.is_connection_refusal() || error.is_connection_dropped() {
            format!("cannot reach it ({error})")
        } else {
            error.to_string()
        };
        QueueError::Unavailable { address: self.address.clone(), message }
    }

    fn connect(&self, read_timeout: Duration) -> Result<redis::Connection, QueueError> {
        let connection = self.client.get_connection_with_timeout(CONNECT_TIMEOUT).map_err(|e| self.unavailable(&e))?;
        connection
            .set_read_timeout(Some(read_timeout))
            .and_then(|()| connection.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| self.unavailable(&e))?;
        Ok(connection)
    }

    /// Runs one command on a pooled connection.
    pub fn run(&self, command: &redis::Cmd) -> Result<Reply, QueueError> {
        let popped = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut connection = match popped {
            Some(connection) => connection,
            None => self.connect(IO_TIMEOUT)?,
        };
        match command.query::<Reply>(&mut connection) {
            Ok(reply) => {
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(connection);
                Ok(reply)
            }
            // A connection that failed to carry a command is dropped; one that carried an
            // error reply from Redis is as good as before.
            Err(e) if !(e.is_io_error() || e.is_timeout() || e.is_connection_dropped()) => {
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(connection);
                Err(self.unavailable(&e))
            }
            Err(e) => Err(self.unavailable(&e)),
        }
    }

    /// Runs several commands in one round trip, atomically (MULTI/EXEC).
    pub fn run_atomically(&self, pipeline: &redis::Pipeline) -> Result<Vec<Reply>, QueueError> {
        let popped = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut connection = match popped {
            Some(connection) => connection,
            None => self.connect(IO_TIMEOUT)?,
        };
        match pipeline.query::<Vec<Reply>>(&mut connection) {
            Ok(replies) => {
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(connection);
                Ok(replies)
            }
            Err(e) => Err(self.unavailable(&e)),
        }
    }

    /// A connection of its own for commands that block up to `block` in Redis.
    pub fn blocking_connection(&self, block: Duration) -> Result<BlockingConnection<'_>, QueueError> {
        Ok(BlockingConnection { queue: self, connection: self.connect(block + IO_TIMEOUT)? })
    }

    /// Checks that Redis answers.
    pub fn ping(&self) -> Result<(), QueueError> {
        self.run(&redis::cmd("PING")).map(drop)
    }

    /// Creates the call stream and its consumer group unless they exist. The group starts at
    /// the stream's beginning, so calls queued before any worker started are run.
    pub fn ensure_group(&self) -> Result<(), QueueError> {
        match self.run(redis::cmd("XGROUP").arg("CREATE").arg(CALLS).arg(GROUP).arg("0").arg("MKSTREAM")) {
            Ok(_) => Ok(()),
            Err(QueueError::Unavailable { message, .. }) if message.contains("BUSYGROUP") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A connection kept for blocking reads (XREAD, XREADGROUP with BLOCK).
pub struct BlockingConnection<'q> {
    queue: &'q Queue,
    connection: redis::Connection,
}

impl BlockingConnection<'_> {
    /// Runs a blocking command.
    pub fn run(&mut self, command: &redis::Cmd) -> Result<Reply, QueueError> {
        command.query::<Reply>(&mut self.connection).map_err(|e| self.queue.unavailable(&e))
    }
}

/// The text of a reply, if it is one.
pub fn text(reply: &Reply) -> Option<String> {
    match reply {
        Reply::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Reply::SimpleString(text) => Some(text.clone()),
        Reply::Okay => Some("OK".to_owned()),
        Reply::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The integer of a reply (Redis gives some as text).
pub fn int(reply: &Reply) -> Option<i64> {
    match reply {
        Reply::Int(n) => Some(*n),
        other => text(other)?.parse().ok(),
    }
}

/// The items of an array reply; none for anything else (nil included).
pub fn items(reply: &Reply) -> &[Reply] {
    match reply {
        Reply::Array(items) | Reply::Set(items) => items,
        _ => &[],
    }
}

/// The entries of a list of `[id, [field, value, …]]` (XRANGE, and inside XREAD and
/// XAUTOCLAIM replies). An entry deleted meanwhile comes back without fields and is skipped.
pub fn entries(reply: &Reply) -> Vec<Entry> {
    let mut found = Vec::new();
    for entry in items(reply) {
        let [id, fields] = items(entry) else { continue };
        let Some(id) = text(id) else { continue };
        let pairs = items(fields);
        let mut fields = Vec::new();
        for pair in pairs.chunks(2) {
            if let [Reply::BulkString(name), Reply::BulkString(value)] = pair {
                fields.push((String::from_utf8_lossy(name).into_owned(), value.clone()));
            }
        }
        if !fields.is_empty() {
            found.push(Entry { id, fields });
        }
    }
    found
}

/// The entries of an XREAD or XREADGROUP reply on one stream: `[[stream, entries]]`, or nil
/// when the wait ended with nothing.
pub fn read_entries(reply: &Reply) -> Vec<Entry> {
    items(reply).iter().flat_map(|stream| items(stream).get(1).map(entries).unwrap_or_default()).collect()
}

/// A hash reply (HGETALL) as pairs of text.
pub fn pairs(reply: &Reply) -> Vec<(String, String)> {
    match reply {
        Reply::Map(map) => map.iter().filter_map(|(k, v)| Some((text(k)?, text(v)?))).collect(),
        other => items(other).chunks(2).filter_map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?))).collect(),
    }
}
