//! One file per subcommand; each turns resolved settings into calls on the library.

pub mod cache;
pub mod call;
pub mod inspect;
pub mod key;
pub mod new;
pub mod run;
pub mod runs;
pub mod ui;
pub mod worker;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::cli::LoadArgs;
use crate::engine::Engine;
use crate::log::{Level, Logger};
use crate::run::report::RunReport;
use crate::run::Session;
use crate::settings::{ConfigFile, Settings};
use crate::value::{json::type_name, Ty, Value};

/// Exit status of a run whose flow (or task) completed.
pub const EXIT_COMPLETED: u8 = 0;
/// Exit status of a run whose flow (or task) failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status of bad usage or bad input.
pub const EXIT_USAGE: u8 = 2;

/// Reads `cachehost.toml` (given, or beside `component`), then the settings.
pub fn settings_and_config(component: &Path, config: Option<&Path>) -> anyhow::Result<(Settings, Option<ConfigFile>)> {
    settings_with_sandbox(component, config, None)
}

/// [`settings_and_config`] with the sandbox profile of `--sandbox`, which overrides
/// `CACHEHOST_SANDBOX` and `cachehost.toml` as any command-line flag does.
pub fn settings_with_sandbox(
    component: &Path,
    config: Option<&Path>,
    sandbox: Option<&str>,
) -> anyhow::Result<(Settings, Option<ConfigFile>)> {
    settings_with_overrides(component, config, &[(crate::settings::Setting::Sandbox, sandbox)])
}

/// [`settings_and_config`] with settings given by command-line flags, which override their
/// environment variables and `cachehost.toml`.
pub fn settings_with_overrides(
    component: &Path,
    config: Option<&Path>,
    overrides: &[(crate::settings::Setting, Option<&str>)],
) -> anyhow::Result<(Settings, Option<ConfigFile>)> {
    let path = match config {
        Some(path) => Some(path.to_owned()),
        None => {
            let beside = component.parent().unwrap_or(Path::new(".")).join("cachehost.toml");
            beside.is_file().then_some(beside)
        }
    };
    let config = match path {
        Some(path) => {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(ConfigFile::parse(&text, &path)?)
        }
        None => None,
    };
    let env = |name: &str| {
        let flag = overrides.iter().find(|(setting, value)| value.is_some() && setting.env_name() == name);
        match flag {
            Some((_, value)) => value.map(str::to_owned),
            None => std::env::var(name).ok(),
        }
    };
    let settings = Settings::load(env, config.as_ref())?;
    Ok((settings, config))
}

/// Loads and links the components of a run: `first`, then the `--tasks` providers.
pub fn open_session(first: &Path, load: &LoadArgs) -> anyhow::Result<Arc<Session>> {
    open_session_with(first, load, &[])
}

/// [`open_session`] with more settings given by flags (see [`settings_with_overrides`]).
pub fn open_session_with(
    first: &Path,
    load: &LoadArgs,
    flags: &[(crate::settings::Setting, Option<&str>)],
) -> anyhow::Result<Arc<Session>> {
    let mut overrides = vec![(crate::settings::Setting::Sandbox, load.sandbox.as_deref())];
    overrides.extend_from_slice(flags);
    let (settings, config) = settings_with_overrides(first, load.config.as_deref(), &overrides)?;
    let level = parse_level(&load.log_level)?;
    let logger = Arc::new(Logger::stderr(level));
    let fuel = crate::settings::needs_fuel(&settings, config.as_ref());
    let engine = Engine::new(Some(settings.home.join("compiled")), crate::engine::EngineOptions { fuel })?;
    let mut paths = vec![first.to_owned()];
    paths.extend(load.tasks.iter().cloned());
    Ok(Session::load(engine, settings, config, logger, &paths, crate::link::Providers::Required, load.concurrency)?)
}

pub(crate) fn parse_level(text: &str) -> anyhow::Result<Level> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "debug" => Level::Debug,
        "info" => Level::Info,
        "warning" | "warn" => Level::Warning,
        "error" => Level::Error,
        other => bail!("unknown log level {other:?}; use debug, info, warning or error"),
    })
}

/// Turns `NAME=JSON` arguments into typed values for `params`, in parameter order.
///
/// A value that is not valid JSON is taken as a string when the parameter is a string,
/// so `--param name=world` works. Missing `option` parameters are none.
pub fn typed_arguments(
    flag: &str,
    given: &[String],
    params: &[(String, Ty)],
    what: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut by_name: Vec<(String, serde_json::Value)> = Vec::new();
    for text in given {
        let Some((name, raw)) = text.split_once('=') else {
            bail!("{flag} {text:?} is not NAME=JSON");
        };
        let Some((_, ty)) = params.iter().find(|(p, _)| p == name) else {
            let known: Vec<&str> = params.iter().map(|(p, _)| p.as_str()).collect();
            bail!(
                "{what} has no parameter `{name}`; its parameters are: {}",
                if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
            );
        };
        let json = match serde_json::from_str(raw) {
            Ok(json) => json,
            Err(_) if *ty == Ty::String => serde_json::Value::String(raw.to_owned()),
            Err(e) => bail!("{flag} {name}: {raw:?} is not valid JSON ({e})"),
        };
        by_name.push((name.to_owned(), json));
    }
    let mut values = Vec::new();
    for (name, ty) in params {
        let json = match by_name.iter().find(|(n, _)| n == name) {
            Some((_, json)) => json.clone(),
            None if matches!(ty, Ty::Option(_)) => serde_json::Value::Null,
            None => bail!("{what} needs the parameter `{name}` ({}); pass {flag} {name}=JSON", type_name(ty)),
        };
        let value = Value::from_json(&json, ty)
            .map_err(|e| anyhow::anyhow!("{flag} {name} does not fit the type {}: {e}", type_name(ty)))?;
        values.push(value);
    }
    Ok(values)
}

/// Prints the result or the report on stdout; a closed stdout is not an error.
pub fn print_output(json: bool, report: &RunReport, result: Option<&serde_json::Value>) {
    use std::io::Write;
    let text = if json {
        serde_json::to_string_pretty(report).unwrap_or_default()
    } else {
        match result {
            Some(result) => serde_json::to_string(result).unwrap_or_default(),
            None => return,
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}

/// The exit status for a completed or failed run.
pub fn exit_status(completed: bool) -> ExitCode {
    ExitCode::from(if completed { EXIT_COMPLETED } else { EXIT_FAILED })
}

/// Whether `path` names an existing file; a clear error otherwise.
pub fn require_file(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    Ok(())
}
