//! `cachehost run FLOW.wasm`: runs a flow and prints its result (or the report).

use std::process::ExitCode;

use anyhow::{bail, Context};

use super::{exit_status, open_session_with, print_output, require_file, typed_arguments};
use crate::cli::RunArgs;
use crate::settings::Setting;

/// Runs the command.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    require_file(&args.flow)?;
    let flags =
        [(Setting::Executor, args.executor.as_deref()), (Setting::ExecutorTimeout, args.executor_timeout.as_deref())];
    let session = open_session_with(&args.flow, &args.load, &flags)?;
    if let Some(url) = &session.settings.executor {
        session.start_executor().with_context(|| {
            format!(
                "cannot send task calls to workers: the executor {url} does not answer; is redis-server running there?"
            )
        })?;
    }
    let flows = &session.components[0].flows;
    let flow = match (&args.flow_name, flows.len()) {
        (_, 0) => bail!(
            "{} exports no flow; a flow is a function of an exported interface named `flow` (use `cachehost call` to \
                run a task on its own)",
            session.components[0].file_name()
        ),
        (None, 1) => 0,
        (None, _) => bail!(
            "{} exports several flows ({}); choose one with --flow NAME",
            session.components[0].file_name(),
            flows.iter().map(|f| f.function.as_str()).collect::<Vec<_>>().join(", ")
        ),
        (Some(name), _) => flows.iter().position(|f| &f.function == name).ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no flow named `{name}`; its flows are: {}",
                session.components[0].file_name(),
                flows.iter().map(|f| f.function.as_str()).collect::<Vec<_>>().join(", ")
            )
        })?,
    };
    let def = &flows[flow];
    session.keep_history();
    let parameters =
        typed_arguments("--param", &args.params, &def.signature.params, &format!("flow `{}`", def.function))?;
    let outcome = session.run_flow(flow, parameters);
    if let Some(executor) = session.executor() {
        executor.finish();
    }
    let result = outcome.report.result.clone();
    let completed = outcome.completed;
    let report = session.report(Some(outcome.report));
    print_output(args.load.json, &report, result.as_ref().filter(|_| completed));
    Ok(exit_status(completed))
}
