//! What a loaded component offers and needs: its tasks, flows and task imports.
//!
//! A task is a function of an exported interface other than `cachehost:task/*` and the
//! flow interface; a flow is a function of an exported interface named `flow`. Task
//! signatures are converted to [`Ty`] here, so a signature that holds a resource, stream
//! or future is refused when the component is loaded (DESIGN §3).

use std::path::PathBuf;

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex};

use crate::engine::LoadedBytes;
use crate::value::Ty;

/// The WIT package of cachehost's own interfaces.
pub const CACHEHOST_PACKAGE: &str = "cachehost:task/";

/// A function with a WIT signature converted to owned types.
#[derive(Clone, Debug)]
pub struct Signature {
    /// Parameter names and types, in order.
    pub params: Vec<(String, Ty)>,
    /// The result type; none for a function without a result.
    pub result: Option<Ty>,
}

/// An exported function that the host can call: a task or a flow.
#[derive(Clone, Debug)]
pub struct ExportedFn {
    /// The exported interface, e.g. `example:math/tasks` (empty for a top-level function).
    pub interface: String,
    /// The function's name, e.g. `add-one`.
    pub function: String,
    /// `<interface>#<function>`, the task's full name.
    pub full_name: String,
    /// Its signature.
    pub signature: Signature,
    /// Where to find it in an instance.
    pub export: ComponentExportIndex,
}

/// An imported interface whose functions are tasks served by the host.
#[derive(Clone, Debug)]
pub struct TaskImport {
    /// The imported interface, e.g. `example:math/tasks`.
    pub interface: String,
    /// Its functions: name and signature.
    pub functions: Vec<(String, Signature)>,
}

/// A component, compiled and introspected.
pub struct ComponentInfo {
    /// The file it came from.
    pub path: PathBuf,
    /// BLAKE3 of its bytes.
    pub digest: blake3::Hash,
    /// Its size in bytes.
    pub size: u64,
    /// The compiled component.
    pub component: Component,
    /// Exported tasks.
    pub tasks: Vec<ExportedFn>,
    /// Exported flows.
    pub flows: Vec<ExportedFn>,
    /// Imported task interfaces, which the host serves.
    pub task_imports: Vec<TaskImport>,
    /// Whether it imports `cachehost:task/runtime`.
    pub imports_runtime: bool,
    /// The export of `cachehost:task/options#task-options`, if any.
    pub options_export: Option<ComponentExportIndex>,
    /// The export of `cachehost:task/keys#cache-key`, if any.
    pub keys_export: Option<ComponentExportIndex>,
    /// The exports of `cachehost:task/hooks#on-commit` and `#on-rollback`, if any.
    pub hook_exports: Option<(ComponentExportIndex, ComponentExportIndex)>,
}

/// Why a component's interface cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum InterfaceError {
    /// A task or flow signature holds a type that cannot cross into a task's own Store.
    #[error(
        "{what} `{function}` cannot be a task: its {place} is a {refused}, and only plain data (no resources, \
        streams or futures) can be cached"
    )]
    Unsupported {
        /// "task" or "flow" or "imported task".
        what: &'static str,
        /// The function's full name.
        function: String,
        /// "parameter `x`" or "result".
        place: String,
        /// What was found.
        refused: String,
    },
    /// The component imports a bare function, which no provider can serve.
    #[error(
        "the component imports the function `{name}` outside any interface; cachehost serves only imported interfaces"
    )]
    BareImport {
        /// The import's name.
        name: String,
    },
}

impl ComponentInfo {
    /// Introspects a compiled component.
    pub fn new(engine: &wasmtime::Engine, loaded: LoadedBytes) -> Result<ComponentInfo, InterfaceError> {
        let component = loaded.component;
        let ty = component.component_type();
        let mut info = ComponentInfo {
            path: loaded.path,
            digest: loaded.digest,
            size: loaded.size,
            component: component.clone(),
            tasks: Vec::new(),
            flows: Vec::new(),
            task_imports: Vec::new(),
            imports_runtime: false,
            options_export: None,
            keys_export: None,
            hook_exports: None,
        };
        let mut on_commit = None;
        let mut on_rollback = None;
        for (name, item) in ty.exports(engine) {
            match item.ty {
                ComponentItem::ComponentInstance(instance) => {
                    let Some(instance_index) = component.get_export_index(None, name) else { continue };
                    let is_flow = is_flow_interface(name);
                    for (fname, item) in instance.exports(engine) {
                        let ComponentItem::ComponentFunc(func) = item.ty else { continue };
                        let Some(export) = component.get_export_index(Some(&instance_index), fname) else { continue };
                        if name.starts_with(CACHEHOST_PACKAGE) {
                            match (interface_base(name), fname) {
                                ("cachehost:task/options", "task-options") => info.options_export = Some(export),
                                ("cachehost:task/keys", "cache-key") => info.keys_export = Some(export),
                                ("cachehost:task/hooks", "on-commit") => on_commit = Some(export),
                                ("cachehost:task/hooks", "on-rollback") => on_rollback = Some(export),
                                _ => {}
                            }
                            continue;
                        }
                        let what = if is_flow { "flow" } else { "task" };
                        let exported = exported_fn(what, name, fname, &func, export)?;
                        if is_flow {
                            info.flows.push(exported)
                        } else {
                            info.tasks.push(exported)
                        }
                    }
                }
                ComponentItem::ComponentFunc(func) => {
                    let Some(export) = component.get_export_index(None, name) else { continue };
                    info.tasks.push(exported_fn("task", "", name, &func, export)?);
                }
                _ => {}
            }
        }
        info.hook_exports = on_commit.zip(on_rollback);
        for (name, item) in ty.imports(engine) {
            match item.ty {
                ComponentItem::ComponentInstance(instance) => {
                    if name.starts_with("wasi:") {
                        continue;
                    }
                    if name.starts_with(CACHEHOST_PACKAGE) {
                        info.imports_runtime |= interface_base(name) == "cachehost:task/runtime";
                        continue;
                    }
                    let mut functions = Vec::new();
                    for (fname, item) in instance.exports(engine) {
                        if let ComponentItem::ComponentFunc(func) = item.ty {
                            let full = format!("{name}#{fname}");
                            functions.push((fname.to_owned(), signature("imported task", &full, &func)?));
                        }
                    }
                    info.task_imports.push(TaskImport { interface: name.to_owned(), functions });
                }
                ComponentItem::ComponentFunc(_) => return Err(InterfaceError::BareImport { name: name.to_owned() }),
                _ => {}
            }
        }
        Ok(info)
    }

    /// The file name, for messages.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// Finds an exported task by its function name or full name.
    pub fn find_task(&self, name: &str) -> Option<&ExportedFn> {
        self.tasks.iter().find(|t| t.full_name == name || t.function == name)
    }
}

/// An interface name without its `@version`.
pub fn interface_base(name: &str) -> &str {
    name.split_once('@').map(|(base, _)| base).unwrap_or(name)
}

/// Whether an exported interface holds flows: it is named `flow` (`pkg:ns/flow` or `flow`).
fn is_flow_interface(name: &str) -> bool {
    let base = interface_base(name);
    base == "flow" || base.rsplit_once('/').is_some_and(|(_, last)| last == "flow")
}

fn exported_fn(
    what: &'static str,
    interface: &str,
    function: &str,
    func: &ComponentFunc,
    export: ComponentExportIndex,
) -> Result<ExportedFn, InterfaceError> {
    let full_name = if interface.is_empty() { function.to_owned() } else { format!("{interface}#{function}") };
    let signature = signature(what, &full_name, func)?;
    Ok(ExportedFn { interface: interface.to_owned(), function: function.to_owned(), full_name, signature, export })
}

fn signature(what: &'static str, full_name: &str, func: &ComponentFunc) -> Result<Signature, InterfaceError> {
    let unsupported = |place: String, e: crate::value::convert::UnsupportedType| InterfaceError::Unsupported {
        what,
        function: full_name.to_owned(),
        place,
        refused: e.to_string(),
    };
    let mut params = Vec::new();
    for (name, ty) in func.params() {
        let ty = Ty::from_component_type(&ty).map_err(|e| unsupported(format!("parameter `{name}`"), e))?;
        params.push((name.to_owned(), ty));
    }
    let result = match func.results().next() {
        Some(ty) => Some(Ty::from_component_type(&ty).map_err(|e| unsupported("result".to_owned(), e))?),
        None => None,
    };
    Ok(Signature { params, result })
}
