//! The pages of `cachehost ui`, rendered on the server from the run history and the store:
//! every value passes through [`esc`] (or [`json_block`]) on its way into the HTML.

use std::collections::BTreeMap;

use super::html::{esc, json_block, page, state_badge, state_class, url, Nav};
use crate::cache_admin::{Explanation, PartStatus, Verdict};
use crate::cache_stats::{cost_text, micros_text, TaskStats};
use crate::run::history::Listed;
use crate::run::report::{RunReport, TaskRunReport};
use crate::store::RecordMeta;
use crate::units::{human_size, millis_text, relative, short_key};
use crate::value::json::type_name;

/// The list of kept runs.
pub fn runs_list(listed: &[Listed], now_ms: i64) -> String {
    let mut body = String::from("<h1>Runs</h1>");
    if listed.is_empty() {
        body.push_str("<p class=\"muted\">No runs yet: every <code>cachehost run</code> keeps its report here.</p>");
        return page(Nav::Runs, "Runs", &body);
    }
    body.push_str(
        "<table id=\"runs\"><tr><th>Name</th><th>Flow</th><th>State</th><th>Started</th><th>Duration</th>\
         <th>Task runs</th></tr>",
    );
    for l in listed {
        let report = match &l.report {
            Ok(report) => report,
            Err(reason) => {
                body.push_str(&format!(
                    "<tr><td><code>{}</code></td><td colspan=\"5\" class=\"muted\">unreadable: {}</td></tr>",
                    esc(&l.id),
                    esc(reason)
                ));
                continue;
            }
        };
        let Some(flow) = &report.flow_run else { continue };
        let cached = report.task_runs.iter().filter(|t| t.state.name == "Cached").count();
        body.push_str(&format!(
            "<tr><td><a href=\"/runs/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{} ({} cached)</td></tr>",
            url(&l.id),
            esc(&flow.name),
            esc(&flow.flow),
            state_badge(&flow.state.name),
            esc(&relative(flow.started_ms, now_ms)),
            flow.duration_ms.map_or_else(|| "running".to_owned(), millis_text),
            report.task_runs.len(),
            cached
        ));
    }
    body.push_str("</table>");
    page(Nav::Runs, "Runs", &body)
}

/// What the run page shows besides the run.
pub struct RunView<'a> {
    /// The flow run id.
    pub id: &'a str,
    /// Changes whenever the report is rewritten (the page of a running flow polls it).
    pub stamp: &'a str,
    /// The task run clicked, if any.
    pub selected: Option<&'a str>,
    /// The explanation of the selected task run's call, when asked for.
    pub explanation: Option<Result<Explanation, String>>,
}

/// A run: its flow run, the timeline of its task runs, and the task run clicked.
pub fn run_page(report: &RunReport, view: RunView<'_>) -> String {
    let Some(flow) = &report.flow_run else {
        return page(Nav::Runs, "Run", "<p class=\"error\">This report has no flow run.</p>");
    };
    let running = flow.duration_ms.is_none();
    let mut body = format!(
        "<h1 id=\"run\" data-stamp=\"{}\"{}>{} {}</h1>",
        esc(view.stamp),
        if running { format!(" data-live-run=\"{}\"", esc(view.id)) } else { String::new() },
        esc(&flow.name),
        state_badge(&flow.state.name),
    );
    body.push_str(&format!(
        "<p class=\"muted\">flow <code>{}</code> · id <code>{}</code> · {} · parameters <code>{}</code></p>",
        esc(&flow.flow),
        esc(&flow.id),
        flow.duration_ms.map_or_else(|| "running".to_owned(), millis_text),
        esc(&serde_json::to_string(&flow.parameters).unwrap_or_default()),
    ));
    if let Some(message) = &flow.state.message {
        body.push_str(&format!("<p class=\"error\">{}</p>", esc(message)));
    }
    body.push_str(&gantt(report, view.id, view.selected));
    if let Some(result) = &flow.result {
        body.push_str("<h2>Flow result</h2>");
        body.push_str(&json_block(result));
    }
    if let Some(task) = view.selected.and_then(|id| report.task_runs.iter().find(|t| t.id == id)) {
        body.push_str(&task_detail(report, view.id, task, view.explanation.as_ref()));
    }
    let flow_logs: Vec<_> = report.logs.iter().filter(|l| l.task_run.is_none()).collect();
    if !flow_logs.is_empty() {
        body.push_str("<h2>Flow run logs</h2><pre class=\"json\">");
        for line in flow_logs {
            body.push_str(&format!("{} {}\n", esc(&line.level), esc(&line.message)));
        }
        body.push_str("</pre>");
    }
    page(Nav::Runs, &flow.name, &body)
}

/// The timeline: one row per task run, nested runs indented under their caller, each bar
/// placed by its start and length within the run and coloured by its state.
fn gantt(report: &RunReport, run_id: &str, selected: Option<&str>) -> String {
    if report.task_runs.is_empty() {
        return "<p class=\"muted\">No task runs (yet).</p>".to_owned();
    }
    let end = report
        .task_runs
        .iter()
        .map(|t| t.start_offset_ms + t.duration_ms)
        .chain(report.flow_run.as_ref().and_then(|f| f.duration_ms))
        .fold(0.0_f64, f64::max)
        .max(1e-3);
    // Children follow their caller; the report lists task runs as they finished, so a
    // caller comes after its children there.
    let mut order: Vec<&TaskRunReport> = report.task_runs.iter().collect();
    order.sort_by(|a, b| a.start_offset_ms.total_cmp(&b.start_offset_ms));
    let mut rows = String::new();
    let mut placed = Vec::new();
    fn place<'r>(
        parent: Option<&str>,
        order: &[&'r TaskRunReport],
        depth: usize,
        placed: &mut Vec<(&'r TaskRunReport, usize)>,
    ) {
        for task in order.iter().filter(|t| t.parent_task_run.as_deref() == parent) {
            placed.push((task, depth));
            if depth < 64 {
                place(Some(&task.id), order, depth + 1, placed);
            }
        }
    }
    place(None, &order, 0, &mut placed);
    // Task runs whose caller is not in the report (it is still running) go last, unindented.
    for task in &order {
        if !placed.iter().any(|(t, _)| t.id == task.id) {
            placed.push((task, report.nesting_depth(task.parent_task_run.as_deref())));
        }
    }
    for (task, depth) in placed {
        let left = (task.start_offset_ms / end * 100.0).clamp(0.0, 99.0);
        let width = (task.duration_ms / end * 100.0).clamp(0.5, 100.0 - left);
        let selected = if selected == Some(task.id.as_str()) { " selected" } else { "" };
        rows.push_str(&format!(
            "<div class=\"row\" data-task-run=\"{id}\"><div class=\"label\" style=\"padding-left:{pad}px\">{name}</div>\
             <div class=\"track\"><a class=\"bar {class}{selected}\" data-state=\"{state}\" data-left=\"{left:.3}\" \
             data-width=\"{width:.3}\" title=\"{name}: {state}, {duration}\" href=\"/runs/{run}?task={task_url}#detail\">\
             {state}</a></div></div>",
            id = esc(&task.id),
            pad = 8 + 18 * depth,
            name = esc(&task.name),
            class = state_class(&task.state.name),
            state = esc(&task.state.name),
            duration = esc(&millis_text(task.duration_ms)),
            run = url(run_id),
            task_url = url(&task.id),
        ));
    }
    format!(
        "<h2>Timeline</h2><div class=\"gantt\" id=\"gantt\">{rows}<div class=\"axis\"><span>0</span><span>{}</span>\
         </div></div>",
        esc(&millis_text(end))
    )
}

fn task_detail(
    report: &RunReport,
    run_id: &str,
    task: &TaskRunReport,
    explanation: Option<&Result<Explanation, String>>,
) -> String {
    let mut out = format!(
        "<section class=\"detail\" id=\"detail\" data-task-run=\"{}\"><h2>{} {}</h2><p class=\"muted\"><code>{}</code> \
         from {} · {} · {} attempt{}</p>",
        esc(&task.id),
        esc(&task.name),
        state_badge(&task.state.name),
        esc(&task.task),
        esc(&task.component),
        esc(&millis_text(task.duration_ms)),
        task.attempts,
        if task.attempts == 1 { "" } else { "s" },
    );
    if let Some(message) = &task.state.message {
        out.push_str(&format!("<p class=\"error\">{}</p>", esc(message)));
    }
    out.push_str("<h2>Cache key</h2>");
    match &task.cache_key {
        Some(key) => out.push_str(&format!(
            "<p><a href=\"/record?key={}\"><code id=\"cache-key\">{}</code></a>{}</p>",
            url(key),
            esc(key),
            if task.persisted { " (written)" } else { "" }
        )),
        None => out.push_str("<p class=\"muted\">No key: this task run was not cached.</p>"),
    }
    if !task.cache_key_parts.is_empty() {
        out.push_str("<table id=\"key-parts\"><tr><th>Part</th><th>Key</th></tr>");
        for part in &task.cache_key_parts {
            out.push_str(&format!("<tr><td>{}</td><td><code>{}</code></td></tr>", esc(&part.part), esc(&part.key)));
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>Inputs</h2>");
    match &task.inputs {
        Some(inputs) => out.push_str(&json_block(&serde_json::Value::Object(inputs.clone()))),
        None => out.push_str("<p class=\"muted\">Not kept (too large, or not recorded).</p>"),
    }
    out.push_str("<h2>Value</h2>");
    match &task.result {
        Some(result) => out.push_str(&format!("<div id=\"value\">{}</div>", json_block(result))),
        None => out.push_str("<p class=\"muted\">None kept (no result, too large, or the run failed).</p>"),
    }
    out.push_str("<h2>Logs</h2><pre class=\"json\" id=\"logs\">");
    for line in report.logs.iter().filter(|l| l.task_run.as_deref() == Some(task.name.as_str())) {
        out.push_str(&format!("{} {}\n", esc(&line.level), esc(&line.message)));
    }
    out.push_str("</pre><h2>Explain</h2>");
    match explanation {
        None => out.push_str(&format!(
            "<p><a id=\"explain\" href=\"/runs/{}?task={}&amp;explain=1#detail\">Explain this call now</a> \
             <span class=\"muted\">(would it hit today, and why not)</span></p>",
            url(run_id),
            url(&task.id)
        )),
        Some(Ok(explanation)) => out.push_str(&explanation_html(explanation)),
        Some(Err(message)) => out.push_str(&format!("<p class=\"error\">{}</p>", esc(message))),
    }
    out.push_str("</section>");
    out
}

/// An explanation: the verdict, then each key part compared with the nearest record.
pub fn explanation_html(e: &Explanation) -> String {
    let verdict = match &e.verdict {
        Verdict::Hit => "HIT: a record is stored under this key, so the call would be Cached".to_owned(),
        Verdict::Miss => "MISS: no record under this key, so the task would run".to_owned(),
        Verdict::Expired { .. } => "MISS: the record under this key expired".to_owned(),
        Verdict::Unreadable { reason } => format!("MISS: the record under this key is unreadable ({reason})"),
        Verdict::NoKey { reason } => format!("NOT CACHED: {reason}"),
        Verdict::Refresh => "REFRESH: refresh_cache is set, so the task runs and overwrites its record".to_owned(),
    };
    let mut out = format!(
        "<div id=\"explanation\"><p><b>{}</b></p><p class=\"muted\">policy <code>{}</code> · key <code>{}</code></p>",
        esc(&verdict),
        esc(&e.policy),
        esc(e.key.as_deref().unwrap_or("(none)"))
    );
    if !e.parts.is_empty() {
        out.push_str("<table><tr><th>Part</th><th>Status</th><th>Key</th><th>Why</th></tr>");
        for p in &e.parts {
            let status = match p.status {
                PartStatus::Same => "same",
                PartStatus::Differs => "differs",
                PartStatus::New => "new",
                PartStatus::Gone => "gone",
                PartStatus::NoRecord => "no record",
            };
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&p.part),
                status,
                esc(p.key.as_deref().map(short_key).unwrap_or("-")),
                esc(&p.reasons.join("; "))
            ));
        }
        out.push_str("</table>");
    }
    for note in &e.notes {
        out.push_str(&format!("<p class=\"muted\">{}</p>", esc(note)));
    }
    out.push_str("</div>");
    out
}

/// The values of the cache page's filter form, as given.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct CacheQuery {
    /// Task name.
    #[serde(default)]
    pub task: String,
    /// Component digest prefix.
    #[serde(default)]
    pub component: String,
    /// An age, e.g. `1h`.
    #[serde(default)]
    pub older_than: String,
    /// An age, e.g. `10m`.
    #[serde(default)]
    pub newer_than: String,
    /// Only expired records (`on`).
    #[serde(default)]
    pub expired: Option<String>,
    /// What was just done, e.g. after a removal.
    #[serde(default)]
    pub done: Option<String>,
}

/// The records a filter selected and the unreadable entries, or why the store could not be
/// listed.
pub type Listing<'a> = Result<(&'a [RecordMeta], &'a [(String, String)]), String>;

/// The cache: the filter form, the matching records, and the explain form.
pub fn cache_list(storage: &str, query: &CacheQuery, records: Listing<'_>, now_ms: i64) -> String {
    let mut body = format!("<h1>Cache</h1><p class=\"muted\">{}</p>", esc(storage));
    if let Some(done) = &query.done {
        body.push_str(&format!("<p class=\"flash\" id=\"flash\">{}</p>", esc(done)));
    }
    body.push_str(&format!(
        "<form class=\"filters\" method=\"get\" action=\"/cache\">\
         <label>task<input name=\"task\" value=\"{}\"></label>\
         <label>component digest<input name=\"component\" value=\"{}\"></label>\
         <label>older than<input name=\"older_than\" value=\"{}\" placeholder=\"1h\"></label>\
         <label>newer than<input name=\"newer_than\" value=\"{}\" placeholder=\"10m\"></label>\
         <label>expired<input type=\"checkbox\" name=\"expired\"{}></label><button>Filter</button></form>",
        esc(&query.task),
        esc(&query.component),
        esc(&query.older_than),
        esc(&query.newer_than),
        if query.expired.is_some() { " checked" } else { "" },
    ));
    match records {
        Err(message) => body.push_str(&format!("<p class=\"error\">{}</p>", esc(&message))),
        Ok((records, unreadable)) => {
            let total: u64 = records.iter().map(|m| m.value_len).sum();
            body.push_str(&format!(
                "<p>{} record{}, {} of results</p><table id=\"records\"><tr><th>Key</th><th>Task</th>\
                 <th>Component</th><th>Size</th><th>Cost</th><th>Created</th><th>Expires</th></tr>",
                records.len(),
                if records.len() == 1 { "" } else { "s" },
                esc(&human_size(total))
            ));
            for m in records {
                body.push_str(&format!(
                    "<tr><td><a href=\"/record?key={}\"><code>{}</code></a></td><td>{}</td><td>{} <code>{}</code></td>\
                     <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                    url(&m.key),
                    esc(short_key(&m.key)),
                    esc(function_name(&m.task)),
                    esc(&m.component_file),
                    esc(short_key(&m.component_digest)),
                    esc(&human_size(m.value_len)),
                    esc(&cost_text(m.cost)),
                    esc(&relative(m.created_ms, now_ms)),
                    esc(&expiry(m.expiration_ms, now_ms)),
                ));
            }
            body.push_str("</table>");
            for (key, reason) in unreadable {
                body.push_str(&format!("<p class=\"error\">unreadable {}: {}</p>", esc(key), esc(reason)));
            }
        }
    }
    body.push_str(
        "<h2>Explain a call</h2><form class=\"filters\" method=\"get\" action=\"/cache/explain\">\
         <label>component (.wasm path)<input name=\"component\" size=\"40\"></label>\
         <label>task<input name=\"task\"></label>\
         <label>arguments (NAME=JSON, one per line)<textarea name=\"args\" rows=\"2\"></textarea></label>\
         <label>flow run id<input name=\"flow_run_id\"></label><button>Explain</button></form>",
    );
    page(Nav::Cache, "Cache", &body)
}

/// One record: its metadata, key parts and value, and the button that asks to remove it.
pub fn record_page(meta: &RecordMeta, value: Result<serde_json::Value, String>, now_ms: i64) -> String {
    let mut body = format!("<h1>Record <code>{}</code></h1><table id=\"record\">", esc(short_key(&meta.key)));
    let rows = [
        ("key", meta.key.clone()),
        ("task", meta.task.clone()),
        ("component", format!("{} (digest {})", meta.component_file, meta.component_digest)),
        ("policy", meta.policy.clone()),
        ("created", relative(meta.created_ms, now_ms)),
        ("expires", expiry(meta.expiration_ms, now_ms)),
        ("type", type_name(&meta.value_type)),
        ("size", human_size(meta.value_len)),
        ("cost", cost_text(meta.cost)),
    ];
    for (label, text) in rows {
        body.push_str(&format!("<tr><th>{label}</th><td>{}</td></tr>", esc(&text)));
    }
    body.push_str(
        "</table><h2>Key parts</h2><table id=\"key-parts\"><tr><th>Part</th><th>Key</th><th>Detail</th></tr>",
    );
    for part in &meta.parts {
        let detail: Vec<String> = part.detail.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        body.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&part.name),
            esc(&part.key),
            esc(&detail.join(", "))
        ));
    }
    body.push_str("</table><h2>Value</h2>");
    match value {
        Ok(value) => body.push_str(&format!("<div id=\"value\">{}</div>", json_block(&value))),
        Err(message) => body.push_str(&format!("<p class=\"error\">{}</p>", esc(&message))),
    }
    body.push_str(&format!("<p><a id=\"rm\" href=\"/record/rm?key={}\">Remove this record…</a></p>", url(&meta.key)));
    page(Nav::Cache, "Record", &body)
}

/// The confirmation before a record is removed: a POST form carrying the CSRF token.
pub fn confirm_rm(meta: &RecordMeta, csrf: &str) -> String {
    let body = format!(
        "<h1>Remove this record?</h1><p>The record <code>{key}</code> of <code>{task}</code> ({size}) will be deleted; \
         the next call with this key runs the task again.</p>\
         <form method=\"post\" action=\"/record/rm\" id=\"confirm-rm\"><input type=\"hidden\" name=\"key\" \
         value=\"{key}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button class=\"danger\">Remove</button> \
         <a href=\"/record?key={key_url}\">Keep it</a></form>",
        key = esc(&meta.key),
        task = esc(&meta.task),
        size = esc(&human_size(meta.value_len)),
        key_url = url(&meta.key),
        csrf = esc(csrf),
    );
    page(Nav::Cache, "Remove a record", &body)
}

/// A result of the explain form.
pub fn explain_page(result: Result<Explanation, String>) -> String {
    let body = match result {
        Ok(e) => format!("<h1>Explain <code>{}</code></h1>{}", esc(&e.task), explanation_html(&e)),
        Err(message) => format!("<h1>Explain</h1><p class=\"error\">{}</p>", esc(&message)),
    };
    page(Nav::Cache, "Explain", &body)
}

/// The stats page.
pub fn stats_page(stats: &BTreeMap<String, TaskStats>, runs: usize) -> String {
    let mut body = format!(
        "<h1>Stats</h1><p class=\"muted\">Over the {runs} kept run{}; compute saved is the sum over the hits of the \
         cost their record keeps (the wall time of the body that computed it).</p><table id=\"stats\"><tr>\
         <th>Task</th><th>Task runs</th><th>Hits</th><th>Misses</th><th>Not cached</th><th>Hit rate</th>\
         <th>Compute saved</th><th>Records</th><th>Stored</th></tr>",
        if runs == 1 { "" } else { "s" }
    );
    for (task, s) in stats {
        let keyed = s.hits + s.misses;
        body.push_str(&format!(
            "<tr data-task=\"{}\"><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num hits\">{}</td>\
             <td class=\"num misses\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num saved\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(task),
            esc(task),
            s.runs,
            s.hits,
            s.misses,
            s.uncached,
            if keyed == 0 { "-".to_owned() } else { format!("{:.0} %", s.hits as f64 * 100.0 / keyed as f64) },
            esc(&micros_text(s.saved_us)),
            s.records,
            esc(&human_size(s.bytes)),
        ));
    }
    body.push_str("</table>");
    let without_cost: usize = stats.values().map(|s| s.hits_without_cost).sum();
    if without_cost > 0 {
        body.push_str(&format!(
            "<p class=\"muted\">{without_cost} hit{} on records written before costs were kept are not counted in \
             compute saved.</p>",
            if without_cost == 1 { "" } else { "s" }
        ));
    }
    page(Nav::Stats, "Stats", &body)
}

/// A page saying what went wrong and what to do.
pub fn error_page(nav: Nav, message: &str) -> String {
    page(nav, "Error", &format!("<h1>Something went wrong</h1><p class=\"error\">{}</p>", esc(message)))
}

fn function_name(task: &str) -> &str {
    task.rsplit_once('#').map_or(task, |(_, function)| function)
}

fn expiry(expiration_ms: Option<i64>, now_ms: i64) -> String {
    match expiration_ms {
        None => "never".into(),
        Some(at) if at <= now_ms => format!("expired {}", relative(at, now_ms)),
        Some(at) => relative(at, now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::report::{FlowRunReport, KeyPartReport, StateReport};

    fn task(id: &str, state: &str, parent: Option<&str>, result: serde_json::Value) -> TaskRunReport {
        TaskRunReport {
            id: id.into(),
            name: format!("echo-{id}"),
            task: "example:x/tasks#echo".into(),
            component: "x.wasm".into(),
            parent_task_run: parent.map(Into::into),
            state: StateReport { name: state.into(), type_name: "COMPLETED".into(), message: None },
            cache_key: Some(format!("key-{id}")),
            cache_key_parts: vec![KeyPartReport { part: "INPUTS".into(), key: "abc".into() }],
            persisted: true,
            attempts: u32::from(state != "Cached"),
            duration_ms: 2.0,
            start_offset_ms: 1.0,
            inputs: None,
            result: Some(result),
            reads: None,
            cost: None,
            worker: None,
            earlier_workers: Vec::new(),
        }
    }

    fn report(tasks: Vec<TaskRunReport>) -> RunReport {
        RunReport {
            flow_run: Some(FlowRunReport {
                id: "0190-aa".into(),
                name: "<b>bold</b>-otter".into(),
                flow: "main".into(),
                parameters: Default::default(),
                state: StateReport { name: "Completed".into(), type_name: "COMPLETED".into(), message: None },
                result: None,
                started_ms: 0,
                duration_ms: Some(10.0),
            }),
            task_runs: tasks,
            instantiations: Default::default(),
            object_store_requests: 0,
            components: Vec::new(),
            logs: Vec::new(),
        }
    }

    #[test]
    fn a_run_page_escapes_values_and_indents_nested_task_runs() {
        let report = report(vec![
            task("b", "Cached", Some("a"), serde_json::json!("<script>alert(1)</script>")),
            task("a", "Completed", None, serde_json::json!(1)),
        ]);
        let html = run_page(&report, RunView { id: "0190-aa", stamp: "1", selected: Some("b"), explanation: None });
        assert!(!html.contains("<script>alert") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(!html.contains("<b>bold</b>") && html.contains("&lt;b&gt;bold&lt;/b&gt;-otter"));
        // The caller's row comes first, its child's after it, indented one step.
        let a = html.find("data-task-run=\"a\"><div class=\"label\" style=\"padding-left:8px\"").expect("a at depth 0");
        let b =
            html.find("data-task-run=\"b\"><div class=\"label\" style=\"padding-left:26px\"").expect("b at depth 1");
        assert!(a < b);
        assert!(!html.contains("data-live-run"), "a finished run does not poll");
    }

    #[test]
    fn a_running_flow_polls() {
        let mut running = report(vec![task("a", "Completed", None, serde_json::json!(1))]);
        running.flow_run.as_mut().unwrap().duration_ms = None;
        let html = run_page(&running, RunView { id: "0190-aa", stamp: "7", selected: None, explanation: None });
        assert!(html.contains("data-live-run=\"0190-aa\"") && html.contains("data-stamp=\"7\""));
    }

    #[test]
    fn the_stats_page_shows_compute_saved_per_task() {
        let stats = BTreeMap::from([(
            "example:x/tasks#<echo>".to_owned(),
            TaskStats { runs: 3, hits: 2, misses: 1, saved_us: 14_000, hits_without_cost: 1, ..TaskStats::default() },
        )]);
        let html = stats_page(&stats, 1);
        assert!(html.contains("<td class=\"num saved\">14.0 ms</td>"), "{html}");
        assert!(html.contains("example:x/tasks#&lt;echo&gt;") && html.contains("1 hit on records written before"));
    }
}
