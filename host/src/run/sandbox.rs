//! The sandbox at run time: a Store gets its limits ([`crate::limits`]) and a WASI context
//! with only what its component is granted, guest code runs on a thread with stack enough
//! for the deepest nesting allowed, and a failed call is classified as an exhausted limit
//! or a trap.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx};

use super::reads;
use super::state::{State, StateName};
use crate::limits::{ComponentGrants, DirMode, LimitExceeded, Limits, EPOCH_TICK};
use crate::log::{GuestOutput, Level, Logger, Subject};
use crate::store::record::Cost;

/// wasmtime's message when a call copies more data out of a guest than its hostcall fuel
/// allows. Its error type is private, so this text is how it is recognised; the sandbox
/// integration tests fail if a wasmtime upgrade changes it.
const HOSTCALL_FUEL_EXHAUSTED: &str =
    "too much data is being copied between the host and the guest: fuel allocated for hostcalls has been exhausted";

/// The final state of a run that exhausted `limit`: TimedOut for the timeout, else Failed.
pub fn limit_state(limit: &LimitExceeded) -> State {
    let message = format!("Task run failed: {limit}");
    match limit {
        LimitExceeded::Timeout { .. } => State { name: StateName::TimedOut, message: Some(message) },
        _ => State::failed(message),
    }
}

/// Why running guest code failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunFailure {
    /// A limit was exhausted.
    Limit(LimitExceeded),
    /// The guest trapped (panic, `unreachable`, stack overflow...) or could not start.
    Trap(String),
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunFailure::Limit(limit) => limit.fmt(f),
            RunFailure::Trap(message) => f.write_str(message),
        }
    }
}

/// Classifies the error of a call into guest code run under `limits`.
pub fn classify(error: &wasmtime::Error, limits: &Limits) -> RunFailure {
    if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        return RunFailure::Limit(limit.clone());
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            RunFailure::Limit(LimitExceeded::Timeout { limit: limits.timeout.unwrap_or_default() })
        }
        Some(Trap::OutOfFuel) => RunFailure::Limit(LimitExceeded::Fuel { limit: limits.fuel.unwrap_or_default() }),
        _ => {
            let root = error.root_cause().to_string();
            if root == HOSTCALL_FUEL_EXHAUSTED {
                return RunFailure::Limit(LimitExceeded::ResultSize { size: None, limit: limits.max_result_size });
            }
            // The cause first (`wasm trap: ...`), then the chain with the guest's backtrace.
            RunFailure::Trap(format!("{root}\n{error:#}"))
        }
    }
}

/// The memory limiter of one Store: the sum of its linear memories stays under the limit.
pub struct MemoryLimiter {
    limit: u64,
    used: u64,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes in total.
    pub fn new(limit: u64) -> MemoryLimiter {
        MemoryLimiter { limit, used: 0 }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let used = self.used - current as u64 + desired as u64;
        if used > self.limit {
            // An error, not `Ok(false)`: the guest traps at once with the reason, instead of
            // seeing a failed `memory.grow` and aborting with a message of its own.
            return Err(wasmtime::Error::new(LimitExceeded::Memory { limit: self.limit }));
        }
        self.used = used;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Table elements are pointers: count them against the same budget.
        Ok((desired as u64).saturating_mul(8) <= self.limit)
    }
}

/// Applies `limits` to a new Store: memory, fuel and the epoch deadline.
pub fn apply_limits<T: 'static>(
    store: &mut Store<T>,
    limits: &Limits,
    fuel_metered: bool,
    limiter: fn(&mut T) -> &mut MemoryLimiter,
) {
    store.limiter(move |data| limiter(data) as &mut dyn ResourceLimiter);
    if fuel_metered {
        // A Store of a fuel-metered engine starts empty; runs without a fuel limit get all of it.
        let _ = store.set_fuel(fuel_given(limits));
    }
    let ticks = match limits.timeout {
        Some(timeout) => timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1) as u64,
        // The deadline is the current epoch plus this, which must not overflow.
        None => u64::MAX / 2,
    };
    store.set_epoch_deadline(ticks);
    // wasmtime bounds what the host allocates to lift a guest's values (one `Val` per list
    // item): allow a result of `max_result_size` bytes and no more.
    store.set_hostcall_fuel(hostcall_fuel(limits.max_result_size));
}

/// The fuel [`apply_limits`] gives a Store of a fuel-metered engine.
fn fuel_given(limits: &Limits) -> u64 {
    limits.fuel.unwrap_or(u64::MAX)
}

/// What a run in `store` cost after `wall` time: the wall time, and the fuel it consumed
/// when the engine meters fuel (`get_fuel` fails on an engine that does not).
pub fn cost<T>(store: &Store<T>, limits: &Limits, wall: Duration) -> Cost {
    Cost {
        wall_us: u64::try_from(wall.as_micros()).unwrap_or(u64::MAX),
        fuel: store.get_fuel().ok().map(|left| fuel_given(limits).saturating_sub(left)),
    }
}

/// The hostcall fuel that lets wasmtime lift a value of up to `items` list items: its
/// dynamic API lifts a `list<u8>` as one `Val` per byte and charges `size_of::<Val>()`
/// (32 bytes) for each.
pub fn hostcall_fuel(items: u64) -> usize {
    let per_item = std::mem::size_of::<wasmtime::component::Val>() as u64;
    usize::try_from(items.saturating_mul(per_item)).unwrap_or(usize::MAX)
}

/// Builds the WASI context of a Store of `component`: stdout/stderr become log lines of
/// `subject`; nothing else unless `grants` give it. A granted folder that cannot be opened
/// is logged at ERROR and left out (denied). Its clocks and random sources report their
/// use to `sources` (see `run::reads`).
pub fn wasi_ctx(
    logger: &Arc<Logger>,
    subject: &Subject,
    grants: Option<&ComponentGrants>,
    sources: Arc<reads::Sources>,
) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .wall_clock(reads::ObservedWallClock::new(sources.clone()))
        .monotonic_clock(reads::ObservedMonotonicClock::new(sources.clone()))
        .secure_random(reads::ObservedRandom::new(sources.clone()))
        .insecure_random(reads::ObservedRandom::new(sources));
    builder
        .stdout(GuestOutput::new(logger.clone(), subject.clone(), Level::Info))
        .stderr(GuestOutput::new(logger.clone(), subject.clone(), Level::Warning))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if let Some(grants) = grants {
        for dir in &grants.dirs {
            let perms = match dir.mode {
                DirMode::ReadOnly => FsPerms::ReadOnly,
                DirMode::ReadWrite => FsPerms::ReadWrite,
            };
            if let Err(e) = builder.preopened_dir(&dir.host, &dir.guest, perms) {
                logger.log(
                    Level::Error,
                    subject,
                    &format!(
                        "Cannot open the granted folder {} for {}: {e:#}; it is not given",
                        dir.host.display(),
                        dir.guest
                    ),
                );
            }
        }
        for name in &grants.env {
            if let Ok(value) = std::env::var(name) {
                builder.env(name, value);
            }
        }
    }
    builder.build()
}

/// Runs `f` on a thread whose stack fits guests nested as deep as `limits` allow: each
/// nested task run has its own Store, so each level may use
/// [`MAX_WASM_STACK`](crate::limits::MAX_WASM_STACK) of native stack on top of the host's
/// frames, more than a main thread has.
pub fn on_deep_stack<T: Send>(limits: &Limits, f: impl FnOnce() -> T + Send) -> T {
    // The run is still the work of the caller's thread: its log lines go where the caller's go.
    let capture = crate::log::Capture::current();
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("cachehost-run".into())
            .stack_size(limits.stack_size())
            .spawn_scoped(scope, move || crate::log::Capture::carry(capture, f))
            .expect("the operating system starts a thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_memory_limiter_counts_every_memory_of_the_store() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(60, 80, None).unwrap());
        let err = limiter.memory_growing(0, 30, None).unwrap_err();
        assert_eq!(err.downcast_ref::<LimitExceeded>(), Some(&LimitExceeded::Memory { limit: 100 }));
        assert!(limiter.memory_growing(0, 20, None).unwrap());
    }

    #[test]
    fn only_the_timeout_is_timed_out() {
        let timeout = LimitExceeded::Timeout { limit: Duration::from_millis(1500) };
        assert_eq!(limit_state(&timeout).name, StateName::TimedOut);
        let memory = LimitExceeded::Memory { limit: crate::limits::DEFAULT_MEMORY };
        assert_eq!(limit_state(&memory).name, StateName::Failed);
        assert_eq!(limit_state(&memory).message.as_deref(), Some(&*format!("Task run failed: {memory}")));
    }
}
