//! Linking: every imported task function is served by a host function that runs the
//! cache protocol (DESIGN §2), and `cachehost:task/runtime` is provided by the host.

use std::collections::HashMap;

use wasmtime::component::{InstancePre, Linker, Val};

use crate::component::{interface_base, ComponentInfo, CACHEHOST_PACKAGE};
use crate::log::Level;
use crate::run::ctx::RunCtx;
use crate::run::task::serve_task_import;

/// Which exported task serves an imported task function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Index of the providing component in the session.
    pub component: usize,
    /// Index of the task in that component's `tasks`.
    pub task: usize,
}

/// Why the components of a run cannot be linked.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No component exports an interface a component imports.
    #[error("no component provides the interface `{interface}` that {importer} imports; pass the component that exports it with --tasks")]
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
    let wasmtime_error = |e: wasmtime::Error| LinkError::Wasmtime { component: component.file_name(), message: format!("{e:#}") };
    let mut linker: Linker<RunCtx> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(wasmtime_error)?;
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
                return Err(LinkError::MissingProvider { interface: import.interface.clone(), importer: component.file_name() });
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
            instance
                .func_new(function, move |store, _ty, params, results| serve_task_import(store, route, params, results))
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
        results[0] = Val::Option(store.data().last_state.as_ref().map(|last| {
            Box::new(Val::Record(vec![
                ("name".into(), Val::String(last.state.name_str().into())),
                ("type".into(), Val::String(last.state.type_name().into())),
                ("message".into(), Val::Option(last.state.message.clone().map(|m| Box::new(Val::String(m))))),
                ("cache-key".into(), Val::Option(last.cache_key.clone().map(|k| Box::new(Val::String(k))))),
            ]))
        }));
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

/// The `task-run-info` record of the WIT `types` interface.
pub fn task_run_info_val(id: &str, name: &str, task: &str, flow_run_id: Option<&str>) -> Val {
    Val::Record(vec![
        ("id".into(), Val::String(id.into())),
        ("name".into(), Val::String(name.into())),
        ("task".into(), Val::String(task.into())),
        ("flow-run-id".into(), Val::Option(flow_run_id.map(|id| Box::new(Val::String(id.into()))))),
    ])
}
