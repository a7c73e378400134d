//! cachehost: runs tasks compiled as WebAssembly components and gives them Prefect 3's
//! task caching, enforced by the host.
//!
//! One call of a task, end to end (see DESIGN.md §1):
//! flow calls an imported task function -> [`link`] serves it -> [`options`] resolved ->
//! [`key`] computed from the [`policy`] -> [`store`] lookup -> hit: decoded [`value`];
//! miss: a fresh instance from [`engine`] runs the export -> record written -> [`run`]
//! logs the state and records it in the report.

pub mod buffers;
pub mod cache_admin;
pub mod cache_stats;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod component;
pub mod engine;
pub mod files;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod hash;
pub mod key;
pub mod limits;
pub mod link;
pub mod lock;
pub mod log;
pub mod options;
pub mod parallel;
pub mod policy;
pub mod progress;
pub mod run;
pub mod scaffold;
pub mod settings;
pub mod stamp;
pub mod store;
pub mod trust;
pub mod txn;
pub mod ui;
pub mod units;
pub mod value;
pub mod worker;
