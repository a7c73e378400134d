//! `cachehost cache ls|show|rm|prune|explain`: the result store for people (aligned tables,
//! human sizes and ages, colour on a terminal) and for scripts (`--json`).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::{json, Value as Json};

use super::{open_session, require_file, settings_and_config, typed_arguments};
use crate::cache_admin::{
    self, AdminStore, Call, Explanation, Filter, PartStatus, Replay, SignerFilter, Verdict, VerifySelection,
};
use crate::cache_stats::{self, cost_text, micros_text};
use crate::cli::{
    CacheArgs, CacheCommand, CacheExplainArgs, CacheLsArgs, CachePruneArgs, CacheRmArgs, CacheShowArgs, CacheStatsArgs,
    CacheVerifyArgs, FilterArgs, LoadArgs, StoreArgs,
};
use crate::clock::now_ms;
use crate::run::history::History;
use crate::run::report::RunReport;
use crate::run::Route;
use crate::store::{record, RecordMeta};
use crate::trust;
use crate::units::{human_size, parse_duration, parse_size, relative, short_key};
use crate::value::json::type_name;

/// Runs the command.
pub fn run(args: CacheArgs) -> anyhow::Result<ExitCode> {
    let paint = Paint::for_stdout();
    let text = match args.command {
        CacheCommand::Ls(args) => ls(args, paint)?,
        CacheCommand::Show(args) => show(args, paint)?,
        CacheCommand::Rm(args) => rm(args)?,
        CacheCommand::Prune(args) => prune(args)?,
        CacheCommand::Stats(args) => stats(args, paint)?,
        CacheCommand::Explain(args) => explain(args, paint)?,
        CacheCommand::Verify(args) => {
            let (text, differs) = verify(args, paint)?;
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            return Ok(if differs { ExitCode::from(super::EXIT_FAILED) } else { ExitCode::SUCCESS });
        }
    };
    // A closed stdout (`| head`) is not an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// The store given by `--storage` and `--key-storage`, or the settings' local storage
/// (environment, then `cachehost.toml` in the current folder, which also holds `[s3]`).
fn open_store(args: &StoreArgs) -> anyhow::Result<AdminStore> {
    let (settings, config) = settings_and_config(Path::new("./cachehost.toml"), None)?;
    Ok(cache_admin::open_store(args.storage.as_deref(), args.key_storage.as_deref(), &settings, config.as_ref())?)
}

fn filter(args: &FilterArgs) -> anyhow::Result<Filter> {
    let age = |flag: &str, text: &Option<String>| -> anyhow::Result<_> {
        text.as_deref()
            .map(|t| {
                parse_duration(t).with_context(|| format!("--{flag} {t:?} is not an age; write e.g. 30s, 5m, 2h or 1d"))
            })
            .transpose()
    };
    let component = match &args.component {
        None => None,
        Some(given) if Path::new(given).is_file() => Some(cache_admin::file_digest(Path::new(given))?),
        Some(given) if !given.is_empty() && given.chars().all(|c| c.is_ascii_hexdigit()) => {
            Some(given.to_ascii_lowercase())
        }
        Some(given) => bail!("--component {given:?} is neither a component file nor the start of a hex digest"),
    };
    Ok(Filter {
        task: args.task.clone(),
        component,
        older_than: age("older-than", &args.older_than)?,
        newer_than: age("newer-than", &args.newer_than)?,
        expired: args.expired,
        signer: args
            .signer
            .as_deref()
            .map(|text| {
                SignerFilter::parse(text).map_err(|e| {
                    anyhow::anyhow!("--signer: {e}; give a key as `cachehost key show` prints it, or unsigned")
                })
            })
            .transpose()?,
    })
}

fn ls(args: CacheLsArgs, paint: Paint) -> anyhow::Result<String> {
    let opened = open_store(&args.store)?;
    let store = opened.store();
    let now = now_ms();
    let filter = filter(&args.filter)?;
    let selection = cache_admin::select(store, &filter, now)?;
    if args.store.json {
        let records: Vec<Json> = selection.records.iter().map(|m| meta_json(m, now)).collect();
        let unreadable: Vec<Json> =
            selection.unreadable.iter().map(|(key, reason)| json!({"key": key, "reason": reason})).collect();
        return Ok(pretty(&json!({"storage": store.describe(), "records": records, "unreadable": unreadable})));
    }
    let mut out = String::new();
    if selection.records.is_empty() {
        let which = if filter.is_empty() { "No records" } else { "No records match" };
        out.push_str(&format!("{which} in {}.\n", store.describe()));
    } else {
        let rows = selection
            .records
            .iter()
            .map(|m| {
                vec![
                    short_key(&m.key).to_owned(),
                    function_name(&m.task).to_owned(),
                    component_label(m),
                    human_size(m.value_len),
                    cost_text(m.cost),
                    relative(m.created_ms, now),
                    expiry(m.expiration_ms, now),
                    trust::signer(m).map_or_else(|| "unsigned".to_owned(), |key| key.short()),
                ]
            })
            .collect();
        let headers = ["KEY", "TASK", "COMPONENT", "SIZE", "COST", "CREATED", "EXPIRES", "SIGNER"];
        out.push_str(&table(paint, &headers, rows, &[3, 4]));
        let total: u64 = selection.records.iter().map(|m| m.value_len).sum();
        let count = selection.records.len();
        out.push_str(&format!(
            "{count} record{}, {} of results, in {}\n",
            plural(count),
            human_size(total),
            store.describe()
        ));
    }
    for (key, reason) in &selection.unreadable {
        out.push_str(&format!("{} {key}: {reason}\n", paint.yellow("unreadable")));
    }
    Ok(out)
}

fn show(args: CacheShowArgs, paint: Paint) -> anyhow::Result<String> {
    let opened = open_store(&args.store)?;
    let store = opened.store();
    let key = cache_admin::resolve_key(store, &args.key)?;
    let bytes = store.read(&key)?.with_context(|| format!("the record {key:?} was removed while it was read"))?;
    let meta = record::decode_meta(&bytes).with_context(|| format!("the record {key:?} cannot be read"))?;
    let record =
        record::decode(&bytes, &meta.value_type).with_context(|| format!("the record {key:?} cannot be read"))?;
    let value = record.value.to_json(&meta.value_type).context("the record's value cannot be shown as JSON")?;
    let now = now_ms();
    if args.store.json {
        let mut out = meta_json(&meta, now);
        out["value"] = value;
        return Ok(pretty(&out));
    }
    let mut rows = vec![
        ("key", meta.key.clone()),
        ("task", meta.task.clone()),
        ("component", format!("{} (digest {})", or_unknown(&meta.component_file), meta.component_digest)),
        ("policy", or_unknown(&meta.policy).to_owned()),
        ("created", format!("{} ({})", timestamp(meta.created_ms), relative(meta.created_ms, now))),
        ("expires", expiry_long(meta.expiration_ms, now)),
        ("type", type_name(&meta.value_type)),
        ("size", human_size(meta.value_len)),
        ("cost", cost_text(meta.cost)),
        ("signer", signer_long(&meta)),
        ("inputs", inputs_text(&meta)),
    ];
    let mut out = String::new();
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, text) in rows.drain(..) {
        out.push_str(&format!("{} {text}\n", paint.bold(&format!("{label:<width$}"))));
    }
    out.push_str(&format!("{}\n", paint.bold("key parts")));
    for part in &meta.parts {
        out.push_str(&format!("  {:<16} {}\n", part.name, part.key));
        for (label, text) in &part.detail {
            out.push_str(&format!("    {label:<14} {text}\n"));
        }
    }
    if !meta.reads.is_empty() {
        out.push_str(&format!("{}\n", paint.bold("reads")));
        for (what, digest) in &meta.reads {
            out.push_str(&format!("  {what:<30} {digest}\n"));
        }
    }
    out.push_str(&format!("{}\n{}\n", paint.bold("value"), serde_json::to_string_pretty(&value)?));
    Ok(out)
}

fn rm(args: CacheRmArgs) -> anyhow::Result<String> {
    let opened = open_store(&args.store)?;
    let store = opened.store();
    let filter = filter(&args.filter)?;
    if args.keys.is_empty() && filter.is_empty() {
        bail!(
            "cache rm needs keys or a filter (--task, --component, --older-than, --newer-than, --expired); nothing \
            was removed"
        );
    }
    let mut keys = Vec::new();
    for given in &args.keys {
        keys.push(cache_admin::resolve_key(store, given)?);
    }
    if !filter.is_empty() {
        keys.extend(cache_admin::select(store, &filter, now_ms())?.records.into_iter().map(|m| m.key));
    }
    keys.sort();
    keys.dedup();
    let removed = if args.dry_run { keys.len() } else { cache_admin::remove(store, &keys)? };
    if args.store.json {
        return Ok(pretty(&json!({"dry_run": args.dry_run, "removed": removed, "keys": keys})));
    }
    let verb = if args.dry_run { "Would remove" } else { "Removed" };
    let mut out: String = keys.iter().map(|key| format!("{key}\n")).collect();
    out.push_str(&format!("{verb} {removed} record{} from {}.\n", plural(removed), store.describe()));
    Ok(out)
}

fn prune(args: CachePruneArgs) -> anyhow::Result<String> {
    let opened = open_store(&args.store)?;
    let store = opened.store();
    let present = if args.missing_components.is_empty() {
        None
    } else {
        for path in &args.missing_components {
            require_file(path)?;
        }
        Some(cache_admin::component_digests(&args.missing_components)?)
    };
    let max_size = args
        .max_size
        .as_deref()
        .map(|text| {
            parse_size(text)
                .with_context(|| format!("--max-size {text:?} is not a size; write e.g. 500MiB, 2GB or 1048576"))
        })
        .transpose()?;
    let mut plan = cache_admin::plan_prune(store, now_ms(), present.as_ref(), args.unreadable)?;
    if let Some(max_bytes) = max_size {
        plan.fit(max_bytes, &cache_stats::hits_by_key(&kept_reports()?));
    }
    let keys = plan.keys();
    let over_size_bytes: u64 = plan.over_size.iter().map(|r| r.meta.value_len).sum();
    let over_size_saved_us: u64 = plan.over_size.iter().map(|r| r.saved_us()).sum();
    let kept_bytes: u64 = plan.kept.iter().map(|m| m.value_len).sum();
    let removed = if args.dry_run { keys.len() } else { cache_admin::remove(store, &keys)? };
    // With key storage, values the removed keys shared with nothing else go too.
    let values_removed = if args.dry_run { 0 } else { opened.collect_garbage()? };
    // Inputs and values of calls sent to workers by a flow killed before their outcome came.
    let call_data_removed = if args.dry_run {
        0
    } else {
        store.remove_shared_older_than(crate::store::Shared::CallData, crate::store::CALL_DATA_GRACE)?
    };
    if args.store.json {
        let keys_of = |records: &[RecordMeta]| records.iter().map(|m| m.key.clone()).collect::<Vec<_>>();
        return Ok(pretty(&json!({
            "dry_run": args.dry_run,
            "removed": removed,
            "values_removed": values_removed,
            "call_data_removed": call_data_removed,
            "expired": keys_of(&plan.expired),
            "missing_component": keys_of(&plan.missing_component),
            "unreadable": plan.unreadable.iter().map(|(key, _)| key).collect::<Vec<_>>(),
            "over_size": max_size.map(|max_bytes| json!({
                "max_bytes": max_bytes,
                "keys": plan.over_size.iter().map(|r| &r.meta.key).collect::<Vec<_>>(),
                "count": plan.over_size.len(),
                "bytes": over_size_bytes,
                "compute_saved_us": over_size_saved_us,
                "kept_bytes": kept_bytes,
            })),
        })));
    }
    let mut out = String::new();
    for meta in &plan.expired {
        out.push_str(&format!("{}  expired\n", meta.key));
    }
    for meta in &plan.missing_component {
        out.push_str(&format!("{}  component {} is gone\n", meta.key, short_key(&meta.component_digest)));
    }
    for ranked in &plan.over_size {
        out.push_str(&format!(
            "{}  over size: {}, cost {} × {} recent hit{}\n",
            ranked.meta.key,
            human_size(ranked.meta.value_len),
            cost_text(ranked.meta.cost),
            ranked.hits,
            plural(ranked.hits as usize)
        ));
    }
    for (key, reason) in &plan.unreadable {
        out.push_str(&format!("{key}  unreadable: {reason}\n"));
    }
    let verb = if args.dry_run { "Would prune" } else { "Pruned" };
    let over_size =
        if max_size.is_some() { format!(", {} over --max-size", plan.over_size.len()) } else { String::new() };
    out.push_str(&format!(
        "{verb} {removed} record{} from {} ({} expired, {} of missing components{over_size}, {} unreadable).\n",
        plural(removed),
        store.describe(),
        plan.expired.len(),
        plan.missing_component.len(),
        plan.unreadable.len()
    ));
    if let Some(max_bytes) = max_size {
        let count = plan.over_size.len();
        out.push_str(&format!(
            "To fit in {}: {count} record{} of {} {}, which had saved {} in their recent hits; {} kept.\n",
            human_size(max_bytes),
            plural(count),
            human_size(over_size_bytes),
            if args.dry_run { "would be removed" } else { "removed" },
            micros_text(over_size_saved_us),
            human_size(kept_bytes),
        ));
    }
    if values_removed > 0 {
        out.push_str(&format!(
            "Removed {values_removed} stored value{} no record references any more.\n",
            plural(values_removed)
        ));
    }
    if call_data_removed > 0 {
        out.push_str(&format!(
            "Removed {call_data_removed} file{} of call data older than a day (of flows that stopped before their \
             calls' outcomes came).\n",
            plural(call_data_removed)
        ));
    }
    Ok(out)
}

/// The readable reports of the run history ($CACHEHOST_HOME/runs), where hits are counted
/// ([`cache_stats`]).
fn kept_reports() -> anyhow::Result<Vec<RunReport>> {
    let (settings, _) = settings_and_config(Path::new("./cachehost.toml"), None)?;
    Ok(History::new(&settings.home).list()?.into_iter().filter_map(|listed| listed.report.ok()).collect())
}

fn stats(args: CacheStatsArgs, paint: Paint) -> anyhow::Result<String> {
    let opened = open_store(&args.store)?;
    let store = opened.store();
    let reports = kept_reports()?;
    let records = cache_admin::select(store, &Filter::default(), now_ms())?.records;
    let stats = cache_stats::task_stats(&reports, &records);
    let saved_us: u64 = stats.values().map(|s| s.saved_us).sum();
    if args.store.json {
        let tasks: Vec<Json> = stats
            .iter()
            .map(|(task, s)| {
                let mut row = serde_json::to_value(s).expect("stats serialize");
                row["task"] = json!(task);
                row
            })
            .collect();
        return Ok(pretty(&json!({
            "runs": reports.len(),
            "storage": store.describe(),
            "compute_saved_us": saved_us,
            "tasks": tasks,
        })));
    }
    let mut out = String::new();
    if stats.is_empty() {
        out.push_str(&format!("No task runs kept and no records in {}.\n", store.describe()));
        return Ok(out);
    }
    let rows = stats
        .iter()
        .map(|(task, s)| {
            vec![
                function_name(task).to_owned(),
                s.runs.to_string(),
                s.hits.to_string(),
                s.misses.to_string(),
                micros_text(s.saved_us),
                s.records.to_string(),
                human_size(s.bytes),
            ]
        })
        .collect();
    let headers = ["TASK", "TASK RUNS", "HITS", "MISSES", "SAVED", "RECORDS", "STORED"];
    out.push_str(&table(paint, &headers, rows, &[1, 2, 3, 4, 5, 6]));
    let count = reports.len();
    out.push_str(&format!(
        "{} of compute saved over the {count} kept run{}; records in {}.\n",
        micros_text(saved_us),
        plural(count),
        store.describe()
    ));
    let without_cost: usize = stats.values().map(|s| s.hits_without_cost).sum();
    if without_cost > 0 {
        out.push_str(&format!(
            "{without_cost} hit{} on records written before costs were kept are not counted in compute saved.\n",
            plural(without_cost)
        ));
    }
    Ok(out)
}

fn explain(args: CacheExplainArgs, paint: Paint) -> anyhow::Result<String> {
    require_file(&args.component)?;
    let load = LoadArgs {
        tasks: args.tasks.clone(),
        config: args.config.clone(),
        json: false,
        log_level: "warning".into(),
        concurrency: 1,
        sandbox: None,
    };
    let session = open_session(&args.component, &load)?;
    let route = session
        .components
        .iter()
        .enumerate()
        .find_map(|(component, info)| {
            let task = info.tasks.iter().position(|t| t.function == args.task || t.full_name == args.task)?;
            Some(Route { component, task })
        })
        .with_context(|| {
            let known: Vec<&str> =
                session.components.iter().flat_map(|c| c.tasks.iter().map(|t| t.function.as_str())).collect();
            format!(
                "no loaded component has a task `{}`; the tasks are: {} (a flow's tasks in another component need \
                    --tasks)",
                args.task,
                if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
            )
        })?;
    let component = &session.components[route.component];
    let def = &component.tasks[route.task];
    let values = typed_arguments("--arg", &args.args, &def.signature.params, &format!("task `{}`", def.function))?;
    let call =
        Call { route, args: &values, flow_run_id: args.flow_run_id.as_deref(), storage: args.store.storage.as_deref() };
    let (explanation, storage) = cache_admin::explain_call(&session, call)?;
    let resolved = session.task_options(route);
    if args.store.json {
        let mut out = serde_json::to_value(&explanation)?;
        out["component"] = json!(component.file_name());
        out["storage"] = json!(storage);
        return Ok(pretty(&out));
    }
    let policy_source = resolved.sources.cache_policy.to_string();
    Ok(render_explanation(&explanation, &component.file_name(), &policy_source, paint, now_ms()))
}

fn render_explanation(e: &Explanation, component: &str, policy_source: &str, paint: Paint, now: i64) -> String {
    let verdict = match &e.verdict {
        Verdict::Hit => {
            format!("{}: a record is stored under this key, so the call would be Cached", paint.green("HIT"))
        }
        Verdict::Miss => format!("{}: no record under this key, so the task would run", paint.red("MISS")),
        Verdict::Expired { expiration_ms } => format!(
            "{}: the record under this key expired {} ({}); hits never extend a record",
            paint.red("MISS"),
            relative(*expiration_ms, now),
            timestamp(*expiration_ms)
        ),
        Verdict::Unreadable { reason } => {
            format!(
                "{}: the record under this key is unreadable ({reason}); the task would run and overwrite it",
                paint.red("MISS")
            )
        }
        Verdict::NoKey { reason } => format!("{}: {reason}", paint.yellow("NOT CACHED")),
        Verdict::Refresh => {
            format!("{}: refresh_cache is set, so the task runs and overwrites its record", paint.yellow("REFRESH"))
        }
    };
    let mut out = String::new();
    let mut line =
        |label: &str, text: String| out.push_str(&format!("{} {text}\n", paint.bold(&format!("{label:<8}"))));
    line("task", format!("{} ({component})", e.task));
    line("policy", format!("{} ({policy_source})", e.policy));
    line("key", e.key.clone().unwrap_or_else(|| "(none)".into()));
    line("verdict", verdict);
    if let Some(nearest) = &e.nearest {
        if Some(&nearest.key) != e.key.as_ref() {
            line(
                "nearest",
                format!(
                    "{} (created {}, policy {})",
                    nearest.key,
                    relative(nearest.created_ms, now),
                    or_unknown(&nearest.policy)
                ),
            );
        }
    }
    if !e.parts.is_empty() {
        out.push('\n');
        let rows = e
            .parts
            .iter()
            .map(|p| {
                let status = match p.status {
                    PartStatus::Same => paint.green("same"),
                    PartStatus::Differs => paint.red("differs"),
                    PartStatus::New => paint.red("new"),
                    PartStatus::Gone => paint.red("gone"),
                    PartStatus::NoRecord => "no record".to_owned(),
                };
                vec![p.part.clone(), status, p.key.as_deref().map(short_key).unwrap_or("-").to_owned()]
            })
            .collect();
        out.push_str(&table(paint, &["PART", "STATUS", "KEY"], rows, &[]));
    }
    if !e.reasons.is_empty() && e.key.is_some() && !matches!(e.verdict, Verdict::Hit) {
        out.push_str(&format!("\n{} {}\n", paint.bold("why:"), e.reasons.join("; ")));
    }
    for note in &e.notes {
        out.push_str(&format!("{} {note}\n", paint.bold("note:")));
    }
    out
}

/// A record's metadata as JSON, for `ls --json` and `show --json`.
fn meta_json(meta: &RecordMeta, now: i64) -> Json {
    let parts: Vec<Json> = meta
        .parts
        .iter()
        .map(|p| {
            let detail: serde_json::Map<String, Json> = p.detail.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            json!({"part": p.name, "key": p.key, "detail": detail})
        })
        .collect();
    json!({
        "key": meta.key,
        "task": meta.task,
        "component_digest": meta.component_digest,
        "component_file": meta.component_file,
        "policy": meta.policy,
        "parts": parts,
        "created_ms": meta.created_ms,
        "expiration_ms": meta.expiration_ms,
        "expired": cache_admin::is_expired(meta, now),
        "value_type": type_name(&meta.value_type),
        "value_len": meta.value_len,
        "signer": trust::signer(meta).map(|key| key.to_string()),
        "signature_checks": record::signature_checks(meta),
        "replayable": meta.inputs.is_some(),
        "cost": meta.cost,
        "reads": meta.reads,
    })
}

/// The signer of a record and whether its signature checks, for `cache show`.
fn signer_long(meta: &RecordMeta) -> String {
    match trust::signer(meta) {
        None => "unsigned".to_owned(),
        Some(key) if record::signature_checks(meta) => format!("{key} (signature checks)"),
        Some(key) => format!("{key} (signature does NOT check: the record was changed after signing)"),
    }
}

/// Whether a record keeps its inputs for `cache verify`, for `cache show`.
fn inputs_text(meta: &RecordMeta) -> String {
    match &meta.inputs {
        None => "not kept (the task is not replayable)".to_owned(),
        Some(record::StoredInputs::Inline(bytes)) => format!("kept, {}", human_size(bytes.len() as u64)),
        Some(record::StoredInputs::ByDigest { digest, len }) => format!(
            "kept apart, {} (digest {})",
            human_size(*len),
            short_key(&blake3::Hash::from_bytes(*digest).to_hex())
        ),
    }
}

fn verify(args: CacheVerifyArgs, paint: Paint) -> anyhow::Result<(String, bool)> {
    let opened = open_store(&args.store)?;
    let store = opened.store();
    let components = if args.components.is_empty() { vec![std::path::PathBuf::from(".")] } else { args.components };
    for path in &components {
        require_file(path)?;
    }
    let selection =
        VerifySelection { sample: if args.all { None } else { Some(args.sample.unwrap_or(10)) }, task: args.task };
    let open = |path: &Path| -> Result<std::sync::Arc<crate::run::Session>, String> {
        let load = LoadArgs {
            tasks: Vec::new(),
            config: None,
            json: false,
            log_level: "warning".into(),
            concurrency: 1,
            sandbox: None,
        };
        open_session(path, &load).map_err(|e| format!("{e:#}"))
    };
    let verification = cache_admin::verify(store, &selection, &components, &open)?;
    let (matched, differs, cannot) = verification.counts();
    if args.store.json {
        let out = json!({
            "storage": store.describe(),
            "records": verification.records,
            "matched": matched,
            "differs": differs,
            "cannot_replay": cannot,
            "not_replayable": verification.not_replayable,
        });
        return Ok((pretty(&out), differs > 0));
    }
    let mut out = String::new();
    for replayed in &verification.records {
        let name = function_name(&replayed.task);
        match &replayed.outcome {
            Replay::Match => out.push_str(&format!("{} {} {name}\n", paint.green("match  "), short_key(&replayed.key))),
            Replay::Differs { recorded_digest, replayed_digest, recorded, replayed: again } => {
                out.push_str(&format!("{} {} {name}\n", paint.red("DIFFERS"), replayed.key));
                out.push_str(&format!("  recorded  {} {recorded}\n", short_key(recorded_digest)));
                out.push_str(&format!("  replayed  {} {again}\n", short_key(replayed_digest)));
            }
            Replay::CannotReplay { reason } => out.push_str(&format!(
                "{} {} {name}: {reason}\n",
                paint.yellow("cannot replay"),
                short_key(&replayed.key)
            )),
        }
    }
    out.push_str(&format!(
        "{} replayed: {matched} match, {differs} differ, {cannot} cannot replay; {} record{} of the selection keep no \
         inputs (set replayable = true on their task). Store: {}.\n",
        verification.records.len(),
        verification.not_replayable,
        plural(verification.not_replayable),
        store.describe()
    ));
    Ok((out, differs > 0))
}

pub(super) fn pretty(json: &Json) -> String {
    format!("{}\n", serde_json::to_string_pretty(json).unwrap_or_default())
}

pub(super) fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() {
        "(unknown)"
    } else {
        text
    }
}

fn function_name(task: &str) -> &str {
    task.rsplit_once('#').map_or(task, |(_, function)| function)
}

fn component_label(meta: &RecordMeta) -> String {
    format!("{} {}", or_unknown(&meta.component_file), short_key(&meta.component_digest))
}

fn expiry(expiration_ms: Option<i64>, now: i64) -> String {
    match expiration_ms {
        None => "never".into(),
        Some(at) if at <= now => format!("expired {}", relative(at, now)),
        Some(at) => relative(at, now),
    }
}

fn expiry_long(expiration_ms: Option<i64>, now: i64) -> String {
    match expiration_ms {
        None => "never".into(),
        Some(at) => format!("{} ({})", timestamp(at), expiry(Some(at), now)),
    }
}

/// Unix milliseconds as `2025-01-02 03:04:05 UTC`.
pub(super) fn timestamp(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Columns padded to their widest cell; the columns in `right` are right-aligned.
pub(super) fn table(paint: Paint, headers: &[&str], rows: Vec<Vec<String>>, right: &[usize]) -> String {
    let visible = |cell: &str| strip_ansi(cell).chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(visible(cell));
        }
    }
    let render = |cells: Vec<String>| -> String {
        let last = cells.len() - 1;
        let mut line = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            let pad = " ".repeat(widths[i] - visible(&cell));
            let cell = if right.contains(&i) {
                format!("{pad}{cell}")
            } else if i == last {
                cell
            } else {
                format!("{cell}{pad}")
            };
            line.push_str(&cell);
            if i != last {
                line.push_str("  ");
            }
        }
        format!("{}\n", line.trim_end())
    };
    let mut out = render(headers.iter().map(|h| paint.bold(h)).collect());
    for row in rows {
        out.push_str(&render(row));
    }
    out
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// ANSI colours, on only when stdout is a terminal and NO_COLOR is unset.
#[derive(Clone, Copy)]
pub(super) struct Paint {
    on: bool,
}

impl Paint {
    pub(super) fn for_stdout() -> Paint {
        Paint { on: use_colour(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref()) }
    }

    fn wrap(self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub(super) fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }

    pub(super) fn green(self, text: &str) -> String {
        self.wrap("32", text)
    }

    pub(super) fn red(self, text: &str) -> String {
        self.wrap("31", text)
    }

    pub(super) fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }
}

/// Colour only on a terminal, and never when NO_COLOR is set to anything non-empty
/// (no-color.org).
fn use_colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn expiry_is_relative() {
        assert_eq!(expiry(Some(0), 2_000), "expired 2s ago");
        assert_eq!(expiry(None, 0), "never");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn tables_align_columns_ignoring_colour_codes() {
        let paint = Paint { on: true };
        let text = table(
            paint,
            &["A", "SIZE", "C"],
            vec![vec![paint.red("xyz"), "1 B".into(), "c".into()], vec!["q".into(), "10 B".into(), "".into()]],
            &[1],
        );
        let plain = strip_ansi(&text);
        assert_eq!(plain, "A    SIZE  C\nxyz   1 B  c\nq    10 B\n");
    }

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(timestamp(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
    }
}
