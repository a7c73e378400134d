//! The `redis://host:port` lock manager: leases in Redis, shared by processes on many machines.
//!
//! One Redis key per lock, `cachehost:lock:<key>`, holding `"<lease end, ms> <holder>"`. Every
//! operation is one Lua script, so the check and the change are one atomic step in Redis, and
//! the lease end is Redis's own clock (`TIME`): machines with skewed clocks still agree on when
//! a lease has expired. A lease is taken when the key is missing, expired or already ours;
//! renewed and released only by its holder (compare-and-set, compare-and-delete).
//!
//! A Redis key outlives its lease by [`KEEP_AFTER_EXPIRY`] (its own `PX` expiry), so a holder
//! whose renewals were late can still tell "expired, nobody took it" (renew and release
//! succeed, as with the other managers) from "taken over" — and Redis forgets dead locks by
//! itself. A killed holder blocks others only until its lease ends.
//!
//! Every command has connect and read/write timeouts; an unreachable Redis is
//! [`LockError::Unavailable`] naming the manager and its address, at once.

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::{LockError, LockManager};

/// How long connecting to Redis may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may wait for Redis to read or answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a lock's Redis key stays after its lease ended.
pub const KEEP_AFTER_EXPIRY: Duration = Duration::from_secs(60);
/// How often a waiter asks again while another holder has the lock.
const POLL: Duration = Duration::from_millis(25);

/// Shared by the scripts: `now` in ms from Redis's clock, and the key's holder and lease end.
const PRELUDE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holder, ends = nil, 0
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, ' ', 1, true)
  ends = tonumber(string.sub(v, 1, sep - 1))
  holder = string.sub(v, sep + 1)
end
local live = holder ~= nil and ends > now
local function lease(ms, keep)
  redis.call('SET', KEYS[1], string.format('%.0f', now + ms) .. ' ' .. ARGV[1], 'PX', ms + keep)
end
"#;

/// ARGV: holder, hold ms, keep ms. Returns {1, ''} when taken, else {0, live holder}.
const ACQUIRE: &str = r#"
if live and holder ~= ARGV[1] then return {0, holder} end
lease(tonumber(ARGV[2]), tonumber(ARGV[3]))
return {1, ''}
"#;

/// ARGV: holder, hold ms, keep ms. {1, ''} when renewed, else {0, live holder or ''}.
const RENEW: &str = r#"
if holder ~= ARGV[1] then
  if live then return {0, holder} end
  return {0, ''}
end
lease(tonumber(ARGV[2]), tonumber(ARGV[3]))
return {1, ''}
"#;

/// ARGV: holder. {1, ''} when released, else {0, live holder or ''}.
const RELEASE: &str = r#"
if holder ~= ARGV[1] then
  if live then return {0, holder} end
  return {0, ''}
end
redis.call('DEL', KEYS[1])
return {1, ''}
"#;

/// {1, live holder} or {0, ''}.
const HOLDER: &str = r#"
if live then return {1, holder} end
return {0, ''}
"#;

/// Leases in one Redis server.
pub struct RedisLockManager {
    client: ::redis::Client,
    address: String,
    /// Idle connections; a connection that saw an error is dropped, never put back.
    idle: Mutex<Vec<::redis::Connection>>,
    acquire: ::redis::Script,
    renew: ::redis::Script,
    release: ::redis::Script,
    holder: ::redis::Script,
}

impl RedisLockManager {
    /// A manager for the Redis server at `url` (`redis://host:port[/db]`). Nothing is sent
    /// until the first lock is asked for.
    pub fn open(url: &str) -> Result<RedisLockManager, LockError> {
        let address = address_of(url);
        let client = ::redis::Client::open(url).map_err(|e| LockError::Unavailable {
            manager: format!("redis lock manager at {address}"),
            message: format!("{url:?} is not a Redis URL: {e}."),
        })?;
        let script = |body: &str| ::redis::Script::new(&format!("{PRELUDE}{body}"));
        Ok(RedisLockManager {
            client,
            address,
            idle: Mutex::new(Vec::new()),
            acquire: script(ACQUIRE),
            renew: script(RENEW),
            release: script(RELEASE),
            holder: script(HOLDER),
        })
    }

    /// `host:port` of the server.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Runs `script` on `key` with `args`: `(ok, holder)`.
    fn run(&self, script: &::redis::Script, key: &str, args: &[&str]) -> Result<(bool, Option<String>), LockError> {
        let mut connection = self.connection()?;
        let mut invocation = script.key(format!("cachehost:lock:{key}"));
        for arg in args {
            invocation.arg(*arg);
        }
        match invocation.invoke::<(i64, String)>(&mut connection) {
            Ok((ok, holder)) => {
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(connection);
                Ok((ok == 1, (!holder.is_empty()).then_some(holder)))
            }
            Err(e) => Err(self.unavailable(&e)),
        }
    }

    fn connection(&self) -> Result<::redis::Connection, LockError> {
        if let Some(connection) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(connection);
        }
        let connection = self.client.get_connection_with_timeout(CONNECT_TIMEOUT).map_err(|e| self.unavailable(&e))?;
        connection
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| connection.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| self.unavailable(&e))?;
        Ok(connection)
    }

    fn unavailable(&self, error: &::redis::RedisError) -> LockError {
        let what = if error.is_timeout() {
            format!("Redis did not answer within {IO_TIMEOUT:?} ({error})")
        } else {
            error.to_string()
        };
        LockError::Unavailable { manager: self.describe(), message: format!("{what}.") }
    }
}

fn millis(duration: Duration) -> String {
    duration.as_millis().max(1).to_string()
}

impl LockManager for RedisLockManager {
    fn acquire(
        &self,
        key: &str,
        holder: &str,
        acquire_timeout: Duration,
        hold_timeout: Duration,
    ) -> Result<(), LockError> {
        let started = Instant::now();
        let (hold, keep) = (millis(hold_timeout), millis(KEEP_AFTER_EXPIRY));
        loop {
            let (taken, seen) = self.run(&self.acquire, key, &[holder, &hold, &keep])?;
            if taken {
                return Ok(());
            }
            let waited = started.elapsed();
            if waited >= acquire_timeout {
                return Err(LockError::AcquireTimeout { key: key.to_owned(), waited, holder_seen: seen });
            }
            thread::sleep(POLL.min(acquire_timeout - waited));
        }
    }

    fn renew(&self, key: &str, holder: &str, hold_timeout: Duration) -> Result<(), LockError> {
        let (renewed, now_held_by) =
            self.run(&self.renew, key, &[holder, &millis(hold_timeout), &millis(KEEP_AFTER_EXPIRY)])?;
        if renewed {
            Ok(())
        } else {
            Err(LockError::Lost { key: key.to_owned(), holder: holder.to_owned(), now_held_by })
        }
    }

    fn release(&self, key: &str, holder: &str) -> Result<(), LockError> {
        let (released, actual) = self.run(&self.release, key, &[holder])?;
        if released {
            Ok(())
        } else {
            Err(LockError::NotHolder { key: key.to_owned(), holder: holder.to_owned(), actual })
        }
    }

    fn holder(&self, key: &str) -> Result<Option<String>, LockError> {
        Ok(self.run(&self.holder, key, &[])?.1)
    }

    fn describe(&self) -> String {
        format!("redis lock manager at {}", self.address)
    }
}

/// `host:port` of a Redis URL, without user, password or database, for messages.
pub(crate) fn address_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['/', '?']).next().unwrap_or_default();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    if host.contains(':') && !host.ends_with(']') {
        host.to_owned()
    } else {
        format!("{host}:6379")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_leaves_out_credentials_and_database() {
        assert_eq!(address_of("redis://127.0.0.1:6390"), "127.0.0.1:6390");
        assert_eq!(address_of("redis://:secret@cache.internal:7000/2"), "cache.internal:7000");
        assert_eq!(address_of("redis://user:pw@host/0?protocol=resp3"), "host:6379");
    }

    /// Nothing listens on the port: the error names the manager and the address.
    #[test]
    fn an_unreachable_server_is_unavailable_naming_redis_and_the_address() {
        let port = free_port();
        let manager = RedisLockManager::open(&format!("redis://127.0.0.1:{port}")).unwrap();
        let err = manager.acquire("k", "a", Duration::from_secs(30), Duration::from_secs(5)).unwrap_err();
        let LockError::Unavailable { manager: name, .. } = &err else { panic!("{err:?}") };
        assert_eq!(name, &format!("redis lock manager at 127.0.0.1:{port}"));
        assert!(
            err.to_string().starts_with(&format!("The redis lock manager at 127.0.0.1:{port} cannot be used: ")),
            "{err}"
        );
    }

    use cachehost_tests::servers::{free_port, RedisServer};

    fn manager(server: &RedisServer) -> std::sync::Arc<dyn LockManager> {
        std::sync::Arc::new(RedisLockManager::open(&server.url()).unwrap())
    }

    macro_rules! common {
        ($($name:ident),* $(,)?) => {$(
            #[test]
            fn $name() {
                let server = RedisServer::start();
                crate::lock::tests_common::$name(manager(&server));
            }
        )*};
    }

    common!(
        acquire_release_and_holder_checks,
        acquire_timeout_names_the_holder_seen,
        same_holder_reacquires_at_once_and_extends_the_lease,
        expired_lease_is_taken_over_and_its_holder_has_lost_it,
        expired_lease_nobody_took_can_be_renewed_and_released,
        waiter_gets_the_lock_when_it_is_released,
        keys_are_independent,
        lease_renewal_keeps_the_lock_past_its_hold_timeout,
        lease_that_lost_its_lock_reports_lost,
        dropping_a_lease_releases_it,
    );

    #[test]
    fn threads_of_two_managers_never_hold_one_key_together() {
        let server = RedisServer::start();
        // Two managers with their own connections: as two processes would be.
        crate::lock::tests_common::threads_never_hold_one_key_together(manager(&server), 4, 25);
        let (a, b) = (manager(&server), manager(&server));
        a.acquire("shared", "a", Duration::ZERO, Duration::from_secs(60)).unwrap();
        assert_eq!(b.holder("shared").unwrap().as_deref(), Some("a"));
        assert!(matches!(
            b.acquire("shared", "b", Duration::ZERO, Duration::from_secs(60)),
            Err(LockError::AcquireTimeout { .. })
        ));
    }

    /// A server that stops answering: commands end with Unavailable after the I/O timeout.
    #[test]
    fn a_server_that_stops_answering_is_unavailable_after_the_timeout() {
        let server = RedisServer::start();
        let manager = manager(&server);
        manager.acquire("k", "a", Duration::ZERO, Duration::from_secs(60)).unwrap();
        server.pause();
        let err = manager.renew("k", "a", Duration::from_secs(60)).unwrap_err();
        server.resume();
        assert!(err.to_string().contains("redis lock manager at 127.0.0.1:"), "{err}");
        assert!(err.to_string().contains("did not answer within"), "{err}");
        // The connection that timed out was dropped; a new one works.
        manager.renew("k", "a", Duration::from_secs(60)).unwrap();
    }
}
