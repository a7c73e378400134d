"""The bindings componentize-py generated for the component's world, imported once, when the
app is imported at build time: the built component holds no files to import them from later.
Outside a component build (the SDK's own tests) they are None."""

from __future__ import annotations

from typing import Any

try:
    from wit_world.imports import runtime
    from wit_world.imports.cachehost_task_types import CommitMode, LogLevel, TransactionOptions
except ImportError:  # the world does not import cachehost:task/runtime
    runtime = CommitMode = LogLevel = TransactionOptions = None

try:
    from wit_world.exports.options import TaskDefaults
except ImportError:  # the world does not export cachehost:task/options
    TaskDefaults = None


def need(binding: Any, what: str) -> Any:
    """``binding``, or an error saying which line the world lacks."""
    if binding is None:
        raise RuntimeError(f"the component's world lacks `{what};`, which cachehost's Python SDK needs here")
    return binding
