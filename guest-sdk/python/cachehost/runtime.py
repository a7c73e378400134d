"""The host's ``cachehost:task/runtime`` interface: the run context and logging.

The bindings are the ones componentize-py generates for the component's world, which must
``import cachehost:task/runtime@0.1.0``.
"""

from __future__ import annotations

from typing import Any, Optional

from . import _bindings

__all__ = ["current_task_run", "flow_run_id", "last_state", "log", "raw"]


def raw() -> Any:
    """The generated bindings of the runtime interface (``wit_world.imports.runtime``)."""
    return _bindings.need(_bindings.runtime, "import cachehost:task/runtime@0.1.0")


def flow_run_id() -> Optional[str]:
    """The id of the flow run this code runs in; None for a standalone task run."""
    return raw().flow_run_id()


def current_task_run() -> Any:
    """The task run this code runs in (``id``, ``name``, ``task``, ``flow_run_id``); None in a flow body."""
    return raw().current_task_run()


def last_state() -> Any:
    """The state of the last task call this instance made (``name``, ``type``, ``message``,
    ``cache_key``; Prefect's ``return_state=True``); None before the first."""
    return raw().last_state()


def log(level: str, message: str) -> None:
    """Writes a log line on the current flow or task run; level is debug, info, warning or error."""
    raw().log(_bindings.LogLevel[level.upper()], message)
