"""The bindings componentize-py generated for the component's world, imported once, when the
app is imported at build time: the built component holds no files to import them from later.
Outside a component build (the SDK's own tests) they are None."""

from __future__ import annotations

from types import ModuleType
from typing import Any

try:
    from wit_world.imports import runtime
except ImportError:  # the world does not import cachehost:task/runtime
    runtime = None

# componentize-py names the module of cachehost:task/types `types`, or `cachehost_task_types`
# when the world has another `types` interface: take the one the runtime bindings use.
_types = next(
    (module for module in vars(runtime or ModuleType("none")).values() if isinstance(module, ModuleType) and hasattr(module, "LogLevel")),
    None,
)
CommitMode = getattr(_types, "CommitMode", None)
LogLevel = getattr(_types, "LogLevel", None)
TransactionOptions = getattr(_types, "TransactionOptions", None)

try:
    from wit_world.exports.options import TaskDefaults
except ImportError:  # the world does not export cachehost:task/options
    TaskDefaults = None


def need(binding: Any, what: str) -> Any:
    """``binding``, or an error saying which line the world lacks."""
    if binding is None:
        raise RuntimeError(f"the component's world lacks `{what};`, which cachehost's Python SDK needs here")
    return binding
