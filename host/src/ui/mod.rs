//! `cachehost ui`: a local web server (axum) over the run history and the result store.
//! Pages are rendered on the server ([`pages`]), the stylesheet and the one script are
//! embedded in the binary, and nothing is fetched from elsewhere.
//!
//! Security: every request must carry the token when one is set (`?token=` once, then an
//! HttpOnly cookie, or `Authorization: Bearer`); without a token the server listens on
//! loopback only and refuses a `Host` that is not a loopback name (DNS rebinding). Removing
//! a record is a POST carrying this server's CSRF token. Responses forbid framing and
//! inline scripts.

pub mod html;
pub mod pages;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};

use crate::cache_admin::{self, AdminStore, Explanation, Filter};
use crate::cache_stats;
use crate::clock::now_ms;
use crate::run::history::History;
use crate::store::record;
use crate::units::parse_duration;
use html::Nav;

/// A call to explain: the components to load (the flow's first), the task, its arguments as
/// `NAME=JSON`, and the flow run to explain it in.
#[derive(Clone, Debug)]
pub struct ExplainRequest {
    /// Component files, the first one holding the task or the flow calling it.
    pub components: Vec<PathBuf>,
    /// The task's function name or full name.
    pub task: String,
    /// Arguments as `NAME=JSON`.
    pub args: Vec<String>,
    /// The flow run id to explain the call in.
    pub flow_run_id: Option<String>,
}

/// Explains a call (the command wires it to `cachehost cache explain`'s code); the error is a
/// message for the page.
pub type Explainer = Arc<dyn Fn(ExplainRequest) -> Result<Explanation, String> + Send + Sync>;

/// What the server serves.
pub struct UiConfig {
    /// The bound listener.
    pub listener: TcpListener,
    /// The token every request must carry, if any.
    pub token: Option<String>,
    /// The run history shown.
    pub history: History,
    /// The result store shown, or why it cannot be opened.
    pub store: Result<AdminStore, String>,
    /// Explains calls for the run and cache pages.
    pub explainer: Explainer,
}

struct Shared {
    token: Option<String>,
    csrf: String,
    loopback_only: bool,
    port: u16,
    history: History,
    store: Result<AdminStore, String>,
    explainer: Explainer,
}

type App = Arc<Shared>;

/// A random token: 256 bits from the operating system's generator, as hex.
pub fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Serves until the process is stopped.
pub fn serve(config: UiConfig) -> std::io::Result<()> {
    let addr = config.listener.local_addr()?;
    config.listener.set_nonblocking(true)?;
    let shared = Arc::new(Shared {
        token: config.token,
        csrf: random_token(),
        loopback_only: addr.ip().is_loopback(),
        port: addr.port(),
        history: config.history,
        store: config.store,
        explainer: config.explainer,
    });
    let app = Router::new()
        .route("/", get(runs_list))
        .route("/runs/{id}", get(run_page))
        .route("/api/runs/{id}/stamp", get(run_stamp))
        .route("/cache", get(cache_list))
        .route("/cache/explain", get(cache_explain))
        .route("/record", get(record_page))
        .route("/record/rm", get(confirm_rm).post(rm))
        .route("/stats", get(stats))
        .route("/assets/style.css", get(|| async { asset("text/css", include_str!("assets/style.css")) }))
        .route("/assets/app.js", get(|| async { asset("text/javascript", include_str!("assets/app.js")) }))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(config.listener)?;
        axum::serve(listener, app).await
    })
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], text).into_response()
}

/// Checks the token and the Host of every request, remembers a token given in the query in
/// a cookie, and adds the security headers to every response.
async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    if app.loopback_only && app.token.is_none() {
        let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let allowed = ["127.0.0.1", "localhost", "[::1]"].iter().any(|name| host == format!("{name}:{}", app.port));
        if !allowed {
            return refuse(
                StatusCode::MISDIRECTED_REQUEST,
                "This cachehost ui answers only to 127.0.0.1, localhost and [::1]; open the address it printed.",
            );
        }
    }
    let mut set_cookie = None;
    if let Some(token) = &app.token {
        let query_token = request.uri().query().and_then(|q| query_value(q, "token"));
        let cookie_token = request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|c| c.to_str().ok())
            .flat_map(|c| c.split(';'))
            .find_map(|c| c.trim().strip_prefix("cachehost_token=").map(str::to_owned));
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::to_owned);
        let given = [&query_token, &cookie_token, &bearer];
        if !given.iter().any(|t| t.as_deref().is_some_and(|t| same(t, token))) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "This cachehost ui needs its token: open the address it printed (…/?token=…), or send \
                 `Authorization: Bearer <token>`.",
            );
        }
        if query_token.as_deref().is_some_and(|t| same(t, token)) && cookie_token.is_none() {
            set_cookie = Some(format!("cachehost_token={token}; HttpOnly; SameSite=Strict; Path=/"));
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; connect-src \
             'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Compares two secrets in time independent of where they differ.
fn same(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn query_value(query: &str, name: &str) -> Option<String> {
    let pairs: HashMap<String, String> = serde_urlencoded_pairs(query);
    pairs.get(name).cloned()
}

fn serde_urlencoded_pairs(query: &str) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(
        &format!("/?{query}").parse().unwrap_or_else(|_| axum::http::Uri::from_static("/")),
    )
    .map(|q| q.0)
    .unwrap_or_default()
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.to_owned()).into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// Runs `render` (which reads files) off the async threads.
async fn blocking(render: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(render).await.unwrap_or_else(|e| {
        html(StatusCode::INTERNAL_SERVER_ERROR, pages::error_page(Nav::Runs, &format!("the page failed: {e}")))
    })
}

async fn runs_list(State(app): State<App>) -> Response {
    blocking(move || match app.history.list() {
        Ok(listed) => html(StatusCode::OK, pages::runs_list(&listed, now_ms())),
        Err(e) => html(StatusCode::INTERNAL_SERVER_ERROR, pages::error_page(Nav::Runs, &e.to_string())),
    })
    .await
}

#[derive(serde::Deserialize)]
struct RunQuery {
    task: Option<String>,
    explain: Option<String>,
}

async fn run_page(State(app): State<App>, UrlPath(id): UrlPath<String>, Query(query): Query<RunQuery>) -> Response {
    blocking(move || {
        let report = match app.history.load(&id) {
            Ok(report) => report,
            Err(e) => return html(StatusCode::NOT_FOUND, pages::error_page(Nav::Runs, &e.to_string())),
        };
        let stamp = app.history.stamp(&id).unwrap_or_default();
        let selected = query.task.as_deref().and_then(|t| report.task_runs.iter().find(|r| r.id == t));
        let explanation = match (selected, query.explain.is_some()) {
            (Some(task), true) => Some(explain_task_run(&app, &report, task)),
            _ => None,
        };
        let view = pages::RunView { id: &id, stamp: &stamp, selected: selected.map(|t| t.id.as_str()), explanation };
        html(StatusCode::OK, pages::run_page(&report, view))
    })
    .await
}

/// Explains a task run's call again: its components, task and kept inputs, in its flow run.
fn explain_task_run(
    app: &Shared,
    report: &crate::run::report::RunReport,
    task: &crate::run::report::TaskRunReport,
) -> Result<Explanation, String> {
    if report.components.is_empty() {
        return Err("this report does not name its components (it was written by an older cachehost)".into());
    }
    let inputs = task.inputs.as_ref().ok_or("this task run's inputs were not kept (too large), so it cannot be explained here; use `cachehost cache explain`")?;
    let args = inputs.iter().map(|(name, value)| format!("{name}={value}")).collect();
    (app.explainer)(ExplainRequest {
        components: report.components.iter().map(PathBuf::from).collect(),
        task: task.task.clone(),
        args,
        flow_run_id: report.flow_run.as_ref().map(|f| f.id.clone()),
    })
}

async fn run_stamp(State(app): State<App>, UrlPath(id): UrlPath<String>) -> Response {
    blocking(move || match app.history.stamp(&id) {
        Some(stamp) => ([(header::CONTENT_TYPE, "text/plain")], stamp).into_response(),
        None => refuse(StatusCode::NOT_FOUND, "no such run"),
    })
    .await
}

fn filter_of(query: &pages::CacheQuery) -> Result<Filter, String> {
    let age = |flag: &str, text: &str| -> Result<_, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        parse_duration(text)
            .map(Some)
            .ok_or_else(|| format!("{flag} {text:?} is not an age; write e.g. 30s, 5m, 2h or 1d"))
    };
    let component = query.component.trim().to_ascii_lowercase();
    if !component.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("component {component:?} is not the start of a hex digest"));
    }
    Ok(Filter {
        task: Some(query.task.trim().to_owned()).filter(|t| !t.is_empty()),
        component: Some(component).filter(|c| !c.is_empty()),
        older_than: age("older than", &query.older_than)?,
        newer_than: age("newer than", &query.newer_than)?,
        expired: query.expired.is_some(),
        // The ui filters by what people type; signers are shown by `cachehost cache ls`.
        signer: None,
    })
}

async fn cache_list(State(app): State<App>, Query(query): Query<pages::CacheQuery>) -> Response {
    blocking(move || {
        let now = now_ms();
        let store = match &app.store {
            Ok(store) => store,
            Err(e) => return html(StatusCode::OK, pages::cache_list("", &query, Err(e.clone()), now)),
        };
        let selection = filter_of(&query)
            .and_then(|filter| cache_admin::select(store.store(), &filter, now).map_err(|e| e.to_string()));
        let body = match &selection {
            Ok(s) => pages::cache_list(&store.store().describe(), &query, Ok((&s.records, &s.unreadable)), now),
            Err(e) => pages::cache_list(&store.store().describe(), &query, Err(e.clone()), now),
        };
        html(StatusCode::OK, body)
    })
    .await
}

#[derive(serde::Deserialize)]
struct ExplainQuery {
    #[serde(default)]
    component: String,
    #[serde(default)]
    task: String,
    #[serde(default)]
    args: String,
    #[serde(default)]
    flow_run_id: String,
}

async fn cache_explain(State(app): State<App>, Query(query): Query<ExplainQuery>) -> Response {
    blocking(move || {
        if query.component.trim().is_empty() || query.task.trim().is_empty() {
            return html(
                StatusCode::BAD_REQUEST,
                pages::explain_page(Err("give the component file and the task to explain".into())),
            );
        }
        let request = ExplainRequest {
            components: vec![PathBuf::from(query.component.trim())],
            task: query.task.trim().to_owned(),
            args: query.args.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect(),
            flow_run_id: Some(query.flow_run_id.trim().to_owned()).filter(|id| !id.is_empty()),
        };
        html(StatusCode::OK, pages::explain_page((app.explainer)(request)))
    })
    .await
}

#[derive(serde::Deserialize)]
struct KeyQuery {
    key: String,
}

/// The record under `key` (or the start of one), with its value as JSON or why not.
fn read_record(app: &Shared, key: &str) -> Result<(record::RecordMeta, Result<serde_json::Value, String>), String> {
    let store = app.store.as_ref().map_err(Clone::clone)?.store();
    let key = cache_admin::resolve_key(store, key).map_err(|e| e.to_string())?;
    let bytes =
        store.read(&key).map_err(|e| e.to_string())?.ok_or_else(|| format!("the record {key:?} was removed"))?;
    let meta = record::decode_meta(&bytes).map_err(|e| format!("the record {key:?} cannot be read: {e}"))?;
    let value = record::decode(&bytes, &meta.value_type)
        .map_err(|e| format!("the record's value cannot be read: {e}"))
        .and_then(|r| r.value.to_json(&meta.value_type).map_err(|e| format!("the value cannot be shown as JSON: {e}")));
    Ok((meta, value))
}

async fn record_page(State(app): State<App>, Query(query): Query<KeyQuery>) -> Response {
    blocking(move || match read_record(&app, &query.key) {
        Ok((meta, value)) => html(StatusCode::OK, pages::record_page(&meta, value, now_ms())),
        Err(e) => html(StatusCode::NOT_FOUND, pages::error_page(Nav::Cache, &e)),
    })
    .await
}

async fn confirm_rm(State(app): State<App>, Query(query): Query<KeyQuery>) -> Response {
    blocking(move || match read_record(&app, &query.key) {
        Ok((meta, _)) => html(StatusCode::OK, pages::confirm_rm(&meta, &app.csrf)),
        Err(e) => html(StatusCode::NOT_FOUND, pages::error_page(Nav::Cache, &e)),
    })
    .await
}

#[derive(serde::Deserialize)]
struct RmForm {
    key: String,
    csrf: String,
}

async fn rm(State(app): State<App>, Form(form): Form<RmForm>) -> Response {
    if !same(&form.csrf, &app.csrf) {
        return refuse(
            StatusCode::FORBIDDEN,
            "This removal does not carry the page's CSRF token; open the record and remove it from its page.",
        );
    }
    blocking(move || {
        let removed = app.store.as_ref().map_err(Clone::clone).and_then(|store| {
            cache_admin::remove(store.store(), std::slice::from_ref(&form.key)).map_err(|e| e.to_string())
        });
        match removed {
            Ok(n) => {
                let done = format!("Removed {n} record{} ({}).", if n == 1 { "" } else { "s" }, form.key);
                let location = format!("/cache?done={}", html::url(&done));
                (StatusCode::SEE_OTHER, [(header::LOCATION, location)], Body::empty()).into_response()
            }
            Err(e) => html(StatusCode::INTERNAL_SERVER_ERROR, pages::error_page(Nav::Cache, &e)),
        }
    })
    .await
}

async fn stats(State(app): State<App>) -> Response {
    blocking(move || {
        let listed = match app.history.list() {
            Ok(listed) => listed,
            Err(e) => return html(StatusCode::INTERNAL_SERVER_ERROR, pages::error_page(Nav::Stats, &e.to_string())),
        };
        let reports: Vec<_> = listed.iter().filter_map(|l| l.report.as_ref().ok()).collect();
        let records = match &app.store {
            Ok(store) => {
                cache_admin::select(store.store(), &Filter::default(), now_ms()).map(|s| s.records).unwrap_or_default()
            }
            Err(_) => Vec::new(),
        };
        let stats = cache_stats::task_stats(reports.iter().copied(), &records);
        html(StatusCode::OK, pages::stats_page(&stats, reports.len()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same("abc", "abc"));
        assert!(!same("abd", "abc") && !same("ab", "abc") && !same("", "abc"));
    }

    #[test]
    fn a_token_is_read_from_the_query() {
        assert_eq!(query_value("a=1&token=xyz%21", "token").as_deref(), Some("xyz!"));
        assert_eq!(query_value("a=1", "token"), None);
        assert_eq!(random_token().len(), 64);
    }
}
