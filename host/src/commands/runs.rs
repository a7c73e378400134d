//! `cachehost runs ls|show|rm`: the run history ($CACHEHOST_HOME/runs) for people and, with
//! `--json`, for scripts.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;

use super::cache::{plural, pretty, table, timestamp, Paint};
use super::settings_and_config;
use crate::cli::{RunsArgs, RunsCommand, RunsLsArgs, RunsRmArgs, RunsShowArgs};
use crate::clock::now_ms;
use crate::run::history::History;
use crate::run::report::RunReport;
use crate::units::{millis_text, relative, short_key};

/// Runs the command.
pub fn run(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let (settings, _) = settings_and_config(Path::new("./cachehost.toml"), None)?;
    let history = History::new(&settings.home);
    let paint = Paint::for_stdout();
    let text = match args.command {
        RunsCommand::Ls(args) => ls(&history, args, paint)?,
        RunsCommand::Show(args) => show(&history, args, paint)?,
        RunsCommand::Rm(args) => rm(&history, args)?,
    };
    // A closed stdout (`| head`) is not an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// How many task runs a report holds, and how many of them were cache hits.
pub fn task_run_counts(report: &RunReport) -> (usize, usize) {
    let cached = report.task_runs.iter().filter(|t| t.state.name == "Cached").count();
    (report.task_runs.len(), cached)
}

fn ls(history: &History, args: RunsLsArgs, paint: Paint) -> anyhow::Result<String> {
    let listed = history.list()?;
    if args.json {
        let runs: Vec<serde_json::Value> = listed
            .iter()
            .map(|l| match &l.report {
                Ok(report) => {
                    let (task_runs, cached) = task_run_counts(report);
                    let flow = report.flow_run.as_ref();
                    json!({
                        "id": l.id,
                        "name": flow.map(|f| &f.name),
                        "flow": flow.map(|f| &f.flow),
                        "state": flow.map(|f| &f.state.name),
                        "started_ms": flow.map(|f| f.started_ms),
                        "duration_ms": flow.and_then(|f| f.duration_ms),
                        "task_runs": task_runs,
                        "cached": cached,
                    })
                }
                Err(reason) => json!({"id": l.id, "unreadable": reason}),
            })
            .collect();
        return Ok(pretty(&json!({"history": history.dir().display().to_string(), "runs": runs})));
    }
    if listed.is_empty() {
        return Ok(format!(
            "No runs kept in {}; every `cachehost run` keeps its report there.\n",
            history.dir().display()
        ));
    }
    let now = now_ms();
    let mut unreadable = String::new();
    let rows = listed
        .iter()
        .filter_map(|l| {
            let report = match &l.report {
                Ok(report) => report,
                Err(reason) => {
                    unreadable.push_str(&format!("{} {}: {reason}\n", paint.yellow("unreadable"), l.id));
                    return None;
                }
            };
            let flow = report.flow_run.as_ref()?;
            let (task_runs, cached) = task_run_counts(report);
            Some(vec![
                short_key(&l.id).to_owned(),
                flow.name.clone(),
                flow.flow.clone(),
                paint_state(paint, &flow.state.name),
                relative(flow.started_ms, now),
                flow.duration_ms.map_or_else(|| "running".to_owned(), millis_text),
                format!("{task_runs} ({cached} cached)"),
            ])
        })
        .collect();
    let mut out = table(paint, &["ID", "NAME", "FLOW", "STATE", "STARTED", "DURATION", "TASK RUNS"], rows, &[5]);
    out.push_str(&format!("{} run{} in {}\n", listed.len(), plural(listed.len()), history.dir().display()));
    out.push_str(&unreadable);
    Ok(out)
}

fn show(history: &History, args: RunsShowArgs, paint: Paint) -> anyhow::Result<String> {
    let report = history.load(&args.id)?;
    if args.json {
        return Ok(pretty(&serde_json::to_value(&report)?));
    }
    let Some(flow) = &report.flow_run else { bail!("the report {} has no flow run; it cannot be shown", args.id) };
    let mut out = String::new();
    let mut line =
        |label: &str, text: String| out.push_str(&format!("{} {text}\n", paint.bold(&format!("{label:<9}"))));
    line("flow run", format!("{} ({})", flow.name, flow.id));
    line("flow", flow.flow.clone());
    line(
        "state",
        paint_state(paint, &flow.state.name)
            + &flow.state.message.as_ref().map(|m| format!(": {m}")).unwrap_or_default(),
    );
    line("started", timestamp(flow.started_ms));
    line("duration", flow.duration_ms.map_or_else(|| "running".to_owned(), millis_text));
    line("params", serde_json::to_string(&flow.parameters)?);
    if let Some(result) = &flow.result {
        line("result", serde_json::to_string(result)?);
    }
    out.push('\n');
    if report.task_runs.is_empty() {
        out.push_str("No task runs.\n");
        return Ok(out);
    }
    let depth = |id: &Option<String>| report.nesting_depth(id.as_deref());
    let rows = report
        .task_runs
        .iter()
        .map(|t| {
            vec![
                format!("{}{}", "  ".repeat(depth(&t.parent_task_run)), t.name),
                paint_state(paint, &t.state.name),
                t.cache_key.as_deref().map(short_key).unwrap_or("-").to_owned(),
                millis_text(t.duration_ms),
            ]
        })
        .collect();
    out.push_str(&table(paint, &["TASK RUN", "STATE", "KEY", "DURATION"], rows, &[3]));
    Ok(out)
}

fn rm(history: &History, args: RunsRmArgs) -> anyhow::Result<String> {
    let ids: Vec<String> = if args.all {
        history.list()?.into_iter().map(|l| l.id).collect()
    } else if args.ids.is_empty() {
        bail!("runs rm needs flow run ids (or starts of them), or --all; nothing was removed");
    } else {
        args.ids.iter().map(|given| history.resolve(given)).collect::<Result<_, _>>()?
    };
    let removed = history.remove(&ids)?;
    if args.json {
        return Ok(pretty(&json!({"removed": removed, "ids": ids})));
    }
    let mut out: String = ids.iter().map(|id| format!("{id}\n")).collect();
    out.push_str(&format!("Removed {removed} run{} from {}.\n", plural(removed), history.dir().display()));
    Ok(out)
}

fn paint_state(paint: Paint, state: &str) -> String {
    match state {
        "Completed" => paint.green(state),
        "Cached" => paint.bold(state),
        "Running" => paint.yellow(state),
        _ => paint.red(state),
    }
}
