//! Workers across machines (DESIGN §9a): a flow's task calls become entries of a Redis
//! stream, read by a consumer group of `cachehost worker` processes, which run them through
//! the same task-run code as a local run and reply on the flow run's own stream.
//!
//! [`queue`] names and reads the streams; [`call`] is what an entry and a reply hold;
//! [`executor`] is the flow's side, [`serve`] the worker's, [`status`] what both report.
//! Components travel by digest through the task's result storage (`.components/<blake3>`).

pub mod call;
pub mod executor;
pub mod queue;
pub mod serve;
pub mod status;
