//! Linking: every imported task function is served by a host function that runs the
//! cache protocol (DESIGN §2), and `cachehost:task/runtime` is provided by the host.

use std::collections::HashMap;

use wasmtime::component::{InstancePre, Linker, Val};

use crate::component::{interface_base, ComponentInfo, CACHEHOST_PACKAGE};
use crate::log::Level;
use crate::run::ctx::{task_run_info_val, LastState, RunCtx};
use crate::run::state::State;
use crate::run::task::serve_task_import;
use crate::run::Route;
use crate::txn;
use crate::value::abi;

/// Why the components of a run cannot be linked.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No component exports an interface a component imports.
    #[error(
        "no component provides the interface `{interface}` that {importer} imports; pass the component that \
        exports it with --tasks"
    )]
    MissingProvider {
        /// The interface.
        interface: String,
        /// The importing component's file name.
        importer: String,
    },
    /// Two components export the same task interface.
    #[error("two components provide the interface `{interface}`: {first} and {second}; give only one of them")]
    TwoProviders {
        /// The interface.
        interface: String,
        /// One provider's file name.
        first: String,
        /// The other's.
        second: String,
    },
    /// The provider's function does not exist or has another signature.
    #[error("{importer} imports `{function}` but {provider} {problem}")]
    Mismatch {
        /// The importing component.
        importer: String,
        /// The function's full name.
        function: String,
        /// The provider.
        provider: String,
        /// What is wrong.
        problem: String,
    },
    /// wasmtime refused the link.
    #[error("cannot link {component}: {message}")]
    Wasmtime {
        /// The component.
        component: String,
        /// wasmtime's explanation.
        message: String,
    },
}

/// Whether every imported task interface must have a provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Providers {
    /// A missing provider is an error (running).
    Required,
    /// A missing provider's functions trap when called (inspecting).
    Optional,
}

/// Maps each exported task interface to its provider, refusing duplicates.
pub fn providers(components: &[ComponentInfo]) -> Result<HashMap<String, usize>, LinkError> {
    let mut providers: HashMap<String, usize> = HashMap::new();
    for (index, component) in components.iter().enumerate() {
        let mut interfaces: Vec<&str> = component.tasks.iter().map(|t| t.interface.as_str()).collect();
        interfaces.dedup();
        for interface in interfaces {
            if let Some(&first) = providers.get(interface) {
                if first != index {
                    return Err(LinkError::TwoProviders {
                        interface: interface.to_owned(),
                        first: components[first].file_name(),
                        second: component.file_name(),
                    });
                }
            }
            providers.insert(interface.to_owned(), index);
        }
    }
    Ok(providers)
}

/// Builds the pre-instantiated form of `components[index]`: WASI, the runtime interface,
/// and a routed host function for each imported task.
pub fn link(
    engine: &wasmtime::Engine,
    components: &[ComponentInfo],
    providers: &HashMap<String, usize>,
    index: usize,
    mode: Providers,
) -> Result<InstancePre<RunCtx>, LinkError> {
    let component = &components[index];
    let wasmtime_error =
        |e: wasmtime::Error| LinkError::Wasmtime { component: component.file_name(), message: format!("{e:#}") };
    let mut linker: Linker<RunCtx> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(wasmtime_error)?;
    crate::run::reads::shadow_wasi(&mut linker).map_err(wasmtime_error)?;
    for (name, _) in component.component.component_type().imports(engine) {
        if name.starts_with(CACHEHOST_PACKAGE) {
            let mut instance = linker.instance(name).map_err(wasmtime_error)?;
            if interface_base(name) == "cachehost:task/runtime" {
                define_runtime(&mut instance).map_err(wasmtime_error)?;
            }
        }
    }
    for import in &component.task_imports {
        let mut instance = linker.instance(&import.interface).map_err(wasmtime_error)?;
        for (function, signature) in &import.functions {
            let full_name = format!("{}#{function}", import.interface);
            let Some(&provider_index) = providers.get(&import.interface) else {
                if mode == Providers::Optional {
                    let message = format!("no component provides `{full_name}`");
                    instance
                        .func_new(function, move |_, _, _, _| Err(wasmtime::Error::msg(message.clone())))
                        .map_err(wasmtime_error)?;
                    continue;
                }
                return Err(LinkError::MissingProvider {
                    interface: import.interface.clone(),
                    importer: component.file_name(),
                });
            };
            let provider = &components[provider_index];
            let mismatch = |problem: String| LinkError::Mismatch {
                importer: component.file_name(),
                function: full_name.clone(),
                provider: provider.file_name(),
                problem,
            };
            let task = provider
                .tasks
                .iter()
                .position(|t| t.interface == import.interface && &t.function == function)
                .ok_or_else(|| mismatch("does not export it".to_owned()))?;
            let exported = &provider.tasks[task].signature;
            if exported.params != signature.params || exported.result != signature.result {
                return Err(mismatch("exports it with another signature".to_owned()));
            }
            let route = Route { component: provider_index, task };
            let (params, result) = abi::signature_abi(&signature.params, signature.result.as_ref());
            abi::define_import(&mut instance, function, params, result, move |store, args| {
                serve_task_import(store, route, args)
            })
            .map_err(wasmtime_error)?;
        }
    }
    linker.instantiate_pre(&component.component).map_err(wasmtime_error)
}

fn define_runtime(instance: &mut wasmtime::component::LinkerInstance<'_, RunCtx>) -> wasmtime::Result<()> {
    instance.func_new("flow-run-id", |store, _ty, _params, results| {
        results[0] = Val::Option(store.data().flow_run.as_ref().map(|f| Box::new(Val::String(f.id.clone()))));
        Ok(())
    })?;
    instance.func_new("current-task-run", |store, _ty, _params, results| {
        let data = store.data();
        results[0] = Val::Option(data.task_run.as_ref().map(|task| {
            Box::new(task_run_info_val(&task.id, &task.name, &task.task, data.flow_run.as_ref().map(|f| f.id.as_str())))
        }));
        Ok(())
    })?;
    instance.func_new("last-state", |store, _ty, _params, results| {
        results[0] = Val::Option(
            store.data().last_state.as_ref().map(|last| Box::new(state_val(&last.state, last.cache_key.clone()))),
        );
        Ok(())
    })?;
    instance.func_new("submit", |mut store, _ty, params, results| {
        let (Val::String(task), Val::List(args)) = (&params[0], &params[1]) else {
            return Err(wasmtime::Error::msg("runtime.submit: bad arguments"));
        };
        let args = string_pairs(args);
        let data = store.data();
        let session = data.session.clone();
        results[0] = match session.submit(data, task, &args) {
            Ok(submission) => {
                let data = store.data_mut();
                let handle = data.submitted.len() as u64 + 1;
                data.submitted.insert(handle, submission);
                Val::Result(Ok(Some(Box::new(Val::U64(handle)))))
            }
            Err(message) => Val::Result(Err(Some(Box::new(Val::String(message))))),
        };
        Ok(())
    })?;
    instance.func_new("wait", |mut store, _ty, params, results| {
        let Val::U64(handle) = params[0] else { return Err(wasmtime::Error::msg("runtime.wait: bad handle")) };
        let Some(submission) = store.data().submitted.get(&handle).cloned() else {
            results[0] =
                Val::Result(Err(Some(Box::new(Val::String(format!("no submitted call has the handle {handle}"))))));
            return Ok(());
        };
        let session = store.data().session.clone();
        let outcome = session.pool.wait(&submission);
        store.data_mut().last_state =
            Some(LastState { state: outcome.state.clone(), cache_key: outcome.cache_key.clone() });
        results[0] = match (&outcome.trap, &outcome.value) {
            (Some(trap), _) => Val::Result(Err(Some(Box::new(Val::String(trap.clone()))))),
            (None, value) => {
                Val::Result(Ok(Some(Box::new(Val::String(outcome.value_json.clone().unwrap_or_else(|| {
                    debug_assert!(value.is_none());
                    "null".to_owned()
                }))))))
            }
        };
        Ok(())
    })?;
    instance.func_new("submitted-state", |store, _ty, params, results| {
        let Val::U64(handle) = params[0] else {
            return Err(wasmtime::Error::msg("runtime.submitted-state: bad handle"));
        };
        let outcome = store.data().submitted.get(&handle).and_then(|s| s.outcome());
        results[0] = Val::Option(outcome.map(|o| Box::new(state_val(&o.state, o.cache_key.clone()))));
        Ok(())
    })?;
    instance.func_new("begin-transaction", |mut store, _ty, params, results| {
        let session = store.data().session.clone();
        results[0] = match session.begin_transaction(store.data_mut(), &params[0]) {
            Ok(()) => Val::Result(Ok(None)),
            Err(message) => Val::Result(Err(Some(Box::new(Val::String(message))))),
        };
        Ok(())
    })?;
    instance.func_new("end-transaction", |mut store, _ty, params, results| {
        let Val::Bool(failed) = params[0] else {
            return Err(wasmtime::Error::msg("runtime.end-transaction: bad argument"));
        };
        let session = store.data().session.clone();
        results[0] = Val::Bool(session.end_transaction(store.data_mut(), failed));
        Ok(())
    })?;
    instance.func_new("is-committed", |store, _ty, _params, results| {
        results[0] = Val::Bool(store.data().current_txn().is_some_and(|t| txn::is_committed(&t)));
        Ok(())
    })?;
    instance.func_new("stage", |store, _ty, params, _results| {
        let Val::String(json) = &params[0] else { return Err(wasmtime::Error::msg("runtime.stage: bad argument")) };
        if let Some(current) = store.data().current_txn() {
            store.data().session.stage_user_value(&current, json);
        }
        Ok(())
    })?;
    instance.func_new("set", |store, _ty, params, _results| {
        let (Val::String(name), Val::String(value)) = (&params[0], &params[1]) else {
            return Err(wasmtime::Error::msg("runtime.set: bad arguments"));
        };
        if let Some(current) = store.data().current_txn() {
            txn::set(&current, name, value.clone());
        }
        Ok(())
    })?;
    instance.func_new("get", |store, _ty, params, results| {
        let Val::String(name) = &params[0] else { return Err(wasmtime::Error::msg("runtime.get: bad argument")) };
        let value = store.data().current_txn().and_then(|t| txn::get(&t, name));
        results[0] = Val::Option(value.map(|v| Box::new(Val::String(v))));
        Ok(())
    })?;
    instance.func_new("rollback", |store, _ty, _params, results| {
        let session = store.data().session.clone();
        results[0] = Val::Bool(store.data().current_txn().is_some_and(|t| txn::rollback(&t, &session)));
        Ok(())
    })?;
    instance.func_new("log", |store, _ty, params, _results| {
        let level = match &params[0] {
            Val::Enum(name) if name == "debug" => Level::Debug,
            Val::Enum(name) if name == "warning" => Level::Warning,
            Val::Enum(name) if name == "error" => Level::Error,
            _ => Level::Info,
        };
        let Val::String(message) = &params[1] else {
            return Err(wasmtime::Error::msg("runtime.log: the message is not a string"));
        };
        let data = store.data();
        data.session.logger.log(level, &data.subject(), message);
        Ok(())
    })?;
    Ok(())
}

/// The `state` record of the WIT `types` interface.
fn state_val(state: &State, cache_key: Option<String>) -> Val {
    Val::Record(vec![
        ("name".into(), Val::String(state.name_str().into())),
        ("type".into(), Val::String(state.type_name().into())),
        ("message".into(), Val::Option(state.message.clone().map(|m| Box::new(Val::String(m))))),
        ("cache-key".into(), Val::Option(cache_key.map(|k| Box::new(Val::String(k))))),
    ])
}

/// A `list<tuple<string, string>>` as pairs.
fn string_pairs(list: &[Val]) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|item| match item {
            Val::Tuple(pair) => match pair.as_slice() {
                [Val::String(a), Val::String(b)] => Some((a.clone(), b.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
