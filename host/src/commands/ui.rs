//! `cachehost ui`: binds the address, checks that leaving loopback carries a token, prints
//! where the page is, and serves the run history and the store until stopped.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};

use super::{open_session, settings_and_config, typed_arguments};
use crate::cache_admin::{self, Call};
use crate::cli::{LoadArgs, UiArgs};
use crate::run::history::History;
use crate::ui::{self, ExplainRequest, UiConfig};

/// Runs the command.
pub fn run(args: UiArgs) -> anyhow::Result<ExitCode> {
    let token = match args.token.as_deref() {
        None => None,
        Some("") => Some(ui::random_token()),
        Some(given) if given.len() < 16 || !given.chars().all(|c| c.is_ascii_graphic() && c != ';') => bail!(
            "--token is too short or holds spaces or `;`; give at least 16 printable characters, or `--token` alone \
             for a random one"
        ),
        Some(given) => Some(given.to_owned()),
    };
    if !args.bind.is_loopback() && token.is_none() {
        bail!(
            "binding {} would show the cache and the runs to the network without a password; add --token (a random \
             one is made and printed), or bind 127.0.0.1",
            args.bind
        );
    }
    let (settings, config) = settings_and_config(Path::new("./cachehost.toml"), None)?;
    let store =
        cache_admin::open_store(args.storage.as_deref(), args.key_storage.as_deref(), &settings, config.as_ref())
            .map_err(|e| format!("the result store cannot be opened: {e}"));
    let listener = TcpListener::bind((args.bind, args.port)).with_context(|| {
        format!("cannot listen on {}:{}; choose another with --port (0 picks a free one)", args.bind, args.port)
    })?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    let host = if addr.is_ipv6() && !addr.ip().is_unspecified() { format!("[{host}]") } else { host };
    let page = match &token {
        Some(token) => format!("http://{host}:{}/?token={token}", addr.port()),
        None => format!("http://{host}:{}/", addr.port()),
    };
    // A closed stdout must not stop the server.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "cachehost ui: {page}");
    if let Some(token) = &token {
        let _ = writeln!(
            out,
            "token: {token} (every request needs it; the link above carries it once, then a cookie does)"
        );
    }
    let _ = writeln!(out, "runs from {}; stop with Ctrl-C", settings.home.join("runs").display());
    let _ = out.flush();
    drop(out);
    if args.open {
        if let Err(e) = std::process::Command::new("xdg-open").arg(&page).spawn() {
            eprintln!("warning: could not open a browser ({e}); open {page} yourself");
        }
    }
    let explainer: ui::Explainer = Arc::new(|request: ExplainRequest| explain(request).map_err(|e| format!("{e:#}")));
    ui::serve(UiConfig { listener, token, history: History::new(&settings.home), store, explainer })
        .context("the ui server stopped")?;
    Ok(ExitCode::SUCCESS)
}

/// Explains a call as `cachehost cache explain` does.
fn explain(request: ExplainRequest) -> anyhow::Result<crate::cache_admin::Explanation> {
    let (first, others) = request.components.split_first().context("no component to explain the call with")?;
    if !first.is_file() {
        bail!("{} does not exist (any more); rebuild it or explain with `cachehost cache explain`", first.display());
    }
    let load = LoadArgs {
        tasks: others.to_vec(),
        config: None,
        json: false,
        log_level: "error".into(),
        concurrency: 1,
        sandbox: None,
    };
    let session = open_session(first, &load)?;
    let route = session.find_task(&request.task).map_err(anyhow::Error::msg)?;
    let def = &session.components[route.component].tasks[route.task];
    let values =
        typed_arguments("argument", &request.args, &def.signature.params, &format!("task `{}`", def.function))?;
    let call = Call { route, args: &values, flow_run_id: request.flow_run_id.as_deref(), storage: None };
    Ok(cache_admin::explain_call(&session, call)?.0)
}
