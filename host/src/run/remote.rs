//! A task call run by a worker (`--executor`, DESIGN §9a): the flow's process answers
//! cache hits itself and sends every other call, with its encoded inputs and the digests of
//! the session's components, to the workers; their outcome reads as a local run's would.

use std::sync::Arc;

use super::ctx::TaskRunCtx;
use super::state::TaskOutcome;
use super::task::{stored_type, Caller};
use super::{Route, Session};
use crate::clock::now_ms;
use crate::log::{KeptLine, Level, Subject};
use crate::store::record;
use crate::value::Value;
use crate::worker::call::{self, CallHead, ComponentRef, ConfigRef, FlowRunRef, Payload, StoreRef};
use crate::worker::{queue, serve};

impl Session {
    /// Whether a call made by `caller` goes to the workers: the executor is started and the
    /// flow itself makes the call outside any transaction it opened (a call inside one is
    /// staged in it, so it runs here; calls nested in a task run where that task runs).
    pub(crate) fn runs_remotely(&self, caller: &Caller) -> bool {
        self.executor().is_some() && caller.flow_run.is_some() && caller.task_run.is_none() && caller.txn.is_none()
    }

    /// Sends the call to the workers and waits for its outcome, whose log lines and task
    /// runs become this process's. The error says why no outcome came.
    pub(crate) fn run_remote(
        self: &Arc<Self>,
        route: Route,
        caller: &Caller,
        task_run: &TaskRunCtx,
        args: &[Value],
    ) -> Result<TaskOutcome, String> {
        let executor = self.executor().expect("runs_remotely checked it").clone();
        let def = &self.components[route.component].tasks[route.task];
        let resolved = self.task_options(route);
        let flow = caller.flow_run.as_ref().expect("runs_remotely checked it");
        let store = self
            .result_store(resolved.result_storage.as_deref(), resolved.key_storage.as_deref())
            .map_err(|e| format!("cannot open the result storage to share the components with workers: {e}"))?;
        let mut components = Vec::new();
        for component in &self.components {
            executor.share_component(store.as_ref(), &component.digest, || std::fs::read(&component.path))?;
            components
                .push(ComponentRef { digest: component.digest.to_hex().to_string(), file: component.file_name() });
        }
        let mut settings: std::collections::BTreeMap<String, String> =
            std::env::vars().filter(|(name, _)| serve::is_carried(name)).collect();
        let local_storage = std::path::absolute(&self.settings.local_storage_path)
            .unwrap_or_else(|_| self.settings.local_storage_path.clone());
        settings.insert(crate::settings::Setting::LocalStoragePath.env_name(), local_storage.display().to_string());
        let head = CallHead {
            call: task_run.id.clone(),
            task: def.full_name.clone(),
            route: (route.component, route.task),
            components,
            store: StoreRef {
                result_storage: self.result_storage_of(route),
                key_storage: resolved.key_storage.clone(),
            },
            config: self.config.as_ref().map(|config| ConfigRef {
                path: std::path::absolute(&config.path).unwrap_or_else(|_| config.path.clone()).display().to_string(),
                text: config.text.clone(),
            }),
            settings,
            flow_run: FlowRunRef {
                id: flow.id.clone(),
                name: flow.name.clone(),
                parameter_digests: flow
                    .parameter_digests
                    .iter()
                    .map(|(n, d)| (n.clone(), d.to_hex().to_string()))
                    .collect(),
                persist_result: flow.persist_result,
                started_ms: now_ms() - flow.started.elapsed().as_millis() as i64,
            },
            reply: queue::reply_stream(&flow.id),
        };
        let inputs_name = call::inputs_name(&task_run.id);
        let inputs = Payload::keep(store.as_ref(), &inputs_name, record::encode_inputs(args))?;
        let answer = executor.call(&head, &inputs, |wait| self.pool.waiting(wait));
        if let Err(e) = inputs.release(store.as_ref(), &inputs_name) {
            self.logger.log(Level::Warning, &Subject::TaskRun(task_run.name.clone()), &e);
        }
        let (outcome, value) = answer?;
        for line in &outcome.logs {
            self.logger.relay(&KeptLine {
                at_ms: line.at_ms,
                level: Level::parse(&line.level).unwrap_or(Level::Info),
                subject: match &line.task_run {
                    Some(name) => Subject::TaskRun(name.clone()),
                    None => Subject::Host,
                },
                message: format!("{}{}", if line.task_run.is_none() { "[worker] " } else { "" }, line.message),
            });
        }
        if !outcome.task_runs.iter().any(|run| run.id == task_run.id) {
            // Refused before its task run began (say, a component whose bytes do not match
            // their digest): the failed run is this process's to record.
            let why = outcome.state.message.unwrap_or_else(|| "no reason given".to_owned());
            return Err(format!("worker '{}' refused it: {why}", outcome.worker));
        }
        for run in outcome.task_runs {
            self.record_task_run(run);
        }
        let value = match (&def.signature.result, value) {
            (Some(_), Some(value)) => {
                let name = call::value_name(&task_run.id);
                let decoded = value
                    .bytes(store.as_ref(), &name)
                    .map_err(|e| format!("the value worker '{}' sent back: {e}", outcome.worker))
                    .and_then(|bytes| {
                        record::decode_value_bytes(&bytes, &stored_type(&def.signature.result)).map_err(|e| {
                            format!(
                                "the value worker '{}' sent back does not fit the task's result: {e}",
                                outcome.worker
                            )
                        })
                    });
                if let Err(e) = value.release(store.as_ref(), &name) {
                    self.logger.log(Level::Warning, &Subject::TaskRun(task_run.name.clone()), &e);
                }
                Some(decoded?)
            }
            _ => None,
        };
        Ok(TaskOutcome {
            state: outcome.state.to_state(),
            cache_key: outcome.cache_key,
            value,
            trap: outcome.trap,
            value_json: None,
        })
    }
}
