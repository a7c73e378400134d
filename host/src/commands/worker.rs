//! `cachehost worker`: runs the task calls flows send to a Redis queue; `worker status`
//! shows the queue.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};

use super::{parse_level, EXIT_COMPLETED};
use crate::cli::{WorkerArgs, WorkerCommand, WorkerStatusArgs};
use crate::log::Logger;
use crate::settings::Settings;
use crate::worker::queue::Queue;
use crate::worker::serve::{hostname, Worker, WorkerOptions};
use crate::worker::status;

/// Runs the command.
pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    if let Some(WorkerCommand::Status(status_args)) = args.command {
        return show_status(&status_args);
    }
    let Some(url) = args.queue else {
        bail!("cachehost worker needs the queue to take calls from: --queue redis://host:port");
    };
    if args.concurrency == 0 {
        bail!("--concurrency must be 1 or more");
    }
    let sandbox_variable = crate::settings::Setting::Sandbox.env_name();
    let strict = match args.sandbox.as_deref() {
        None | Some("default") => false,
        Some("strict") => true,
        Some(other) => bail!("--sandbox {other:?} is not a sandbox profile; use strict or default"),
    };
    // The worker's own settings: its home, and its lease unless --lease says.
    let settings = Settings::load(|name| if name == sandbox_variable { None } else { std::env::var(name).ok() }, None)?;
    let lease = match &args.lease {
        Some(text) => crate::units::parse_duration(text)
            .filter(|d| !d.is_zero())
            .with_context(|| format!("--lease {text:?} is not a duration such as 10s or 1m"))?,
        None => settings.worker_lease,
    };
    let logger = Arc::new(Logger::stderr(parse_level(&args.log_level)?));
    let name = args.name.unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let options = WorkerOptions { queue: url.clone(), name, concurrency: args.concurrency, lease, strict };
    let worker = Arc::new(Worker::new(options, settings.home.clone(), logger)?);
    worker
        .serve()
        .with_context(|| format!("the worker cannot take calls from {url}; is redis-server running there?"))?;
    Ok(ExitCode::from(EXIT_COMPLETED))
}

fn show_status(args: &WorkerStatusArgs) -> anyhow::Result<ExitCode> {
    let queue = Queue::open(&args.queue)?;
    let status =
        status::status(&queue).with_context(|| format!("cannot read the queue's status from {}", args.queue))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", status::render(&status, crate::clock::now_ms()));
    }
    Ok(ExitCode::from(EXIT_COMPLETED))
}
