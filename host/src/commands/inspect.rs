//! `cachehost inspect COMPONENT.wasm`: tasks, flows, signatures, resolved options and where
//! each came from, and the TASK_SOURCE digest.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use super::{require_file, settings_with_sandbox};
use crate::cli::InspectArgs;
use crate::component::{ExportedFn, Signature};
use crate::engine::Engine;
use crate::link::Providers;
use crate::log::{Level, Logger};
use crate::run::Route;
use crate::run::Session;
use crate::settings::{Setting, Settings};
use crate::value::json::type_name;

/// Runs the command.
pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    require_file(&args.component)?;
    let (settings, config) = settings_with_sandbox(&args.component, args.config.as_deref(), args.sandbox.as_deref())?;
    let logger = Arc::new(Logger::stderr(Level::Warning));
    let fuel = crate::settings::needs_fuel(&settings, config.as_ref());
    let engine = Engine::new(Some(settings.home.join("compiled")), crate::engine::EngineOptions { fuel })?;
    let session =
        Session::load(engine, settings, config, logger, std::slice::from_ref(&args.component), Providers::Optional, 1)?;
    let component = &session.components[0];
    let tasks: Vec<serde_json::Value> = component
        .tasks
        .iter()
        .enumerate()
        .map(|(index, task)| {
            let resolved = session.task_options(Route { component: 0, task: index });
            let s = &resolved.sources;
            json!({
                "name": task.function,
                "full_name": task.full_name,
                "signature": wit_signature(task),
                "options": {
                    "cache_policy": {"value": resolved.policy.to_string(), "source": s.cache_policy.to_string()},
                    "persist_result": {"value": resolved.persist_result, "source": s.persist_result.to_string()},
                    "refresh_cache": {"value": resolved.refresh_cache, "source": s.refresh_cache.to_string()},
                    "cache_expiration_ms": {
                        "value": resolved.cache_expiration.map(|d| d.as_millis() as u64),
                        "source": s.cache_expiration.to_string(),
                    },
                    "result_storage": {"value": resolved.result_storage, "source": s.result_storage.to_string()},
                    "isolation_level": {"value": resolved.isolation_level, "source": s.isolation_level.to_string()},
                    "lock_manager": {"value": resolved.lock_manager, "source": s.lock_manager.to_string()},
                    "key_storage": {"value": resolved.key_storage, "source": s.key_storage.to_string()},
                    "retries": {"value": resolved.retries.unwrap_or(0), "source": s.retries.to_string()},
                    "replayable": {"value": resolved.replayable, "source": s.replayable.to_string()},
                    "retry_delay_ms": {
                        "value": resolved.retry_delay.map(|d| d.as_millis() as u64),
                        "source": s.retry_delay.to_string(),
                    },
                },
                "limits": limits_json(&session.task_limits(Route { component: 0, task: index })),
                "warnings": resolved.warnings,
            })
        })
        .collect();
    let flows: Vec<serde_json::Value> =
        component.flows.iter().map(|f| json!({"name": f.function, "signature": wit_signature(f)})).collect();
    let imports: Vec<serde_json::Value> = component
        .task_imports
        .iter()
        .flat_map(|i| {
            i.functions.iter().map(move |(name, sig)| json!(format!("{}#{name}: {}", i.interface, render(name, sig))))
        })
        .collect();
    let settings: serde_json::Map<String, serde_json::Value> = Setting::ALL
        .iter()
        .map(|&setting| {
            let value = setting_value(&session.settings, setting);
            (setting.env_name(), json!({"value": value, "source": session.settings.source(setting).to_string()}))
        })
        .collect();
    let description = json!({
        "component": component.path.display().to_string(),
        "size": component.size,
        "task_source_digest": component.digest.to_hex().to_string(),
        "flows": flows,
        "tasks": tasks,
        "imported_tasks": imports,
        "exports_options": component.options_export.is_some(),
        "exports_key_function": component.keys_export.is_some(),
        "settings": settings,
        "sandbox": sandbox_json(&session),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&description)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}  ({} bytes)", component.path.display(), component.size);
    println!("TASK_SOURCE digest: {}", component.digest.to_hex());
    if !component.flows.is_empty() {
        println!("\nFlows:");
        for flow in &component.flows {
            println!("  {}", wit_signature(flow));
        }
    }
    println!("\nTasks:");
    if component.tasks.is_empty() {
        println!("  (none)");
    }
    for (index, task) in component.tasks.iter().enumerate() {
        let resolved = session.task_options(Route { component: 0, task: index });
        let s = &resolved.sources;
        println!("  {}", task.full_name);
        println!("    {}", wit_signature(task));
        let rows = [
            ("cache_policy", resolved.policy.to_string(), s.cache_policy.to_string()),
            (
                "persist_result",
                optional(resolved.persist_result.map(|b| b.to_string()), "decided per run"),
                s.persist_result.to_string(),
            ),
            (
                "refresh_cache",
                optional(resolved.refresh_cache.map(|b| b.to_string()), "unset"),
                s.refresh_cache.to_string(),
            ),
            (
                "cache_expiration",
                optional(resolved.cache_expiration.map(|d| format!("{d:?}")), "never"),
                s.cache_expiration.to_string(),
            ),
            (
                "result_storage",
                optional(resolved.result_storage.clone(), "local storage"),
                s.result_storage.to_string(),
            ),
            (
                "isolation_level",
                optional(resolved.isolation_level.clone(), "READ_COMMITTED"),
                s.isolation_level.to_string(),
            ),
            ("lock_manager", optional(resolved.lock_manager.clone(), "none"), s.lock_manager.to_string()),
            ("key_storage", optional(resolved.key_storage.clone(), "with the results"), s.key_storage.to_string()),
            ("retries", resolved.retries.unwrap_or(0).to_string(), s.retries.to_string()),
        ];
        for (name, value, source) in rows {
            println!("    {name:<17} {value:<34} ({source})");
        }
        let limits = session.task_limits(Route { component: 0, task: index });
        println!(
            "    limits            memory {}, timeout {}, fuel {}, result {}, nesting depth {}",
            crate::units::size_text(limits.memory),
            limits.timeout.map(crate::units::duration_text).unwrap_or_else(|| "none".into()),
            limits.fuel.map(|f| f.to_string()).unwrap_or_else(|| "unmetered".into()),
            crate::units::size_text(limits.max_result_size),
            limits.max_nesting_depth
        );
        println!("    replayable        {:<34} ({})", resolved.replayable, s.replayable);
        for warning in &resolved.warnings {
            println!("    warning: {warning}");
        }
    }
    if !component.task_imports.is_empty() {
        println!("\nImported tasks:");
        for import in &component.task_imports {
            for (name, sig) in &import.functions {
                println!("  {}#{name}: {}", import.interface, render(name, sig));
            }
        }
    }
    println!("\nSandbox: {}", sandbox_text(&session));
    println!("\nSettings:");
    for setting in Setting::ALL {
        let value = setting_value(&session.settings, setting);
        println!("  {:<38} {:<34} ({})", setting.env_name(), value, session.settings.source(setting));
    }
    Ok(ExitCode::SUCCESS)
}

/// A setting's resolved value as text.
fn setting_value(settings: &Settings, setting: Setting) -> String {
    match setting {
        Setting::Home => settings.home.display().to_string(),
        Setting::LocalStoragePath => settings.local_storage_path.display().to_string(),
        Setting::ResultsPersistByDefault => settings.results_persist_by_default.to_string(),
        Setting::TasksRefreshCache => settings.tasks_refresh_cache.to_string(),
        Setting::TasksDefaultPersistResult => {
            optional(settings.tasks_default_persist_result.map(|b| b.to_string()), "unset")
        }
        Setting::TasksDefaultNoCache => settings.tasks_default_no_cache.to_string(),
        Setting::TasksDisableCaching => settings.tasks_disable_caching.to_string(),
        Setting::TasksDefaultRetries => settings.tasks_default_retries.to_string(),
        Setting::TasksDefaultRetryDelay => format!("{:?}", settings.tasks_default_retry_delay),
        Setting::SigningKey => optional(settings.signing_key.as_ref().map(|p| p.display().to_string()), "none"),
        Setting::TrustedKeys => {
            if settings.trusted_keys.is_empty() {
                "none".to_owned()
            } else {
                settings.trusted_keys.join(", ")
            }
        }
        Setting::TrustedKeysFile => {
            optional(settings.trusted_keys_file.as_ref().map(|p| p.display().to_string()), "none")
        }
        Setting::RequireSigned => settings.require_signed.to_string(),
        Setting::Sandbox => settings.sandbox.name().to_owned(),
        Setting::RunsKeep => settings.runs_keep.to_string(),
        Setting::Determinism => settings.determinism.name().to_owned(),
        Setting::Executor => optional(settings.executor.clone(), "none"),
        Setting::ExecutorTimeout => crate::units::duration_text(settings.executor_timeout),
        Setting::WorkerLease => crate::units::duration_text(settings.worker_lease),
    }
}

/// The sandbox profile, the limits it imposes and what the component is granted, as JSON.
fn sandbox_json(session: &Session) -> serde_json::Value {
    let grants = session.grants(0);
    json!({
        "profile": session.settings.sandbox.name(),
        "limits": limits_json(&session.settings.limits),
        "grants": {
            "dirs": grants.map(|g| g.dirs.iter().map(|d| json!({
                "host": d.host.display().to_string(),
                "guest": d.guest,
                "mode": if d.mode == crate::limits::DirMode::ReadWrite { "rw" } else { "ro" },
            })).collect::<Vec<_>>()).unwrap_or_default(),
            "env": grants.map(|g| g.env.clone()).unwrap_or_default(),
        },
    })
}

/// The sandbox profile in one line: its name, the global limits, and the grants.
fn sandbox_text(session: &Session) -> String {
    let limits = &session.settings.limits;
    let grants = match session.grants(0) {
        Some(g) if !g.dirs.is_empty() || !g.env.is_empty() => {
            let mut granted: Vec<String> =
                g.dirs.iter().map(|d| format!("{} at {}", d.host.display(), d.guest)).collect();
            granted.extend(g.env.iter().map(|e| format!("${e}")));
            granted.join(", ")
        }
        _ if !session.settings.sandbox.allows_grants() => "nothing (the strict profile grants nothing)".to_owned(),
        _ => "nothing".to_owned(),
    };
    format!(
        "{} (timeout {}, memory {}, nesting depth {}); granted {grants}",
        session.settings.sandbox.name(),
        limits.timeout.map(crate::units::duration_text).unwrap_or_else(|| "none".into()),
        crate::units::size_text(limits.memory),
        limits.max_nesting_depth
    )
}

/// The global limits as JSON.
fn limits_json(limits: &crate::limits::Limits) -> serde_json::Value {
    json!({
        "memory": limits.memory,
        "timeout_ms": limits.timeout.map(|d| d.as_millis() as u64),
        "fuel": limits.fuel,
        "max_nesting_depth": limits.max_nesting_depth,
        "max_result_size": limits.max_result_size,
    })
}

fn optional(value: Option<String>, unset: &str) -> String {
    value.unwrap_or_else(|| unset.to_owned())
}

fn wit_signature(def: &ExportedFn) -> String {
    render(&def.function, &def.signature)
}

fn render(name: &str, signature: &Signature) -> String {
    let params: Vec<String> = signature.params.iter().map(|(p, ty)| format!("{p}: {}", type_name(ty))).collect();
    match &signature.result {
        Some(ty) => format!("{name}: func({}) -> {}", params.join(", "), type_name(ty)),
        None => format!("{name}: func({})", params.join(", ")),
    }
}
