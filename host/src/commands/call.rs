//! `cachehost call COMPONENT.wasm TASK`: one standalone task run (RUN_ID = its task run id).

use std::process::ExitCode;

use super::{exit_status, open_session, print_output, require_file, typed_arguments};
use crate::cli::CallArgs;
use crate::run::Route;

/// Runs the command.
pub fn run(args: CallArgs) -> anyhow::Result<ExitCode> {
    require_file(&args.component)?;
    let session = open_session(&args.component, &args.load)?;
    let component = &session.components[0];
    let Some(task) = component.tasks.iter().position(|t| t.function == args.task || t.full_name == args.task) else {
        let known: Vec<&str> = component.tasks.iter().map(|t| t.function.as_str()).collect();
        anyhow::bail!(
            "{} has no task `{}`; its tasks are: {}",
            component.file_name(),
            args.task,
            if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
        );
    };
    let def = &component.tasks[task];
    let values = typed_arguments("--arg", &args.args, &def.signature.params, &format!("task `{}`", def.function))?;
    let route = Route { component: 0, task };
    let outcome = session.run_standalone(route, values);
    let completed = outcome.state.is_completed();
    let result = match (&def.signature.result, &outcome.value) {
        (Some(ty), Some(value)) => value.to_json(ty).ok(),
        _ => Some(serde_json::Value::Null),
    };
    let report = session.report(None);
    print_output(args.load.json, &report, result.as_ref().filter(|_| completed));
    Ok(exit_status(completed))
}
