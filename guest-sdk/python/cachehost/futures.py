"""``submit()``: a task call that runs concurrently on the host's pool (Prefect's ``.submit()``)."""

from __future__ import annotations

import json
from typing import Any

from .runtime import raw

__all__ = ["TaskFuture", "submit"]


class TaskFuture:
    """A submitted task call (Prefect's ``PrefectFuture``)."""

    def __init__(self, task: str, handle: int) -> None:
        self.task = task
        self._handle = handle
        self._result: Any = None
        self._done = False

    def wait(self) -> None:
        """Waits until the call has finished; a failed call raises ``Err`` with its message."""
        if not self._done:
            self._result = json.loads(raw().wait(self._handle))
            self._done = True

    def result(self) -> Any:
        """The call's result, decoded from JSON, once it has finished."""
        self.wait()
        return self._result

    @property
    def state(self) -> Any:
        """The call's final state (``name``, ``type``, ``message``, ``cache_key``) once waited for."""
        return raw().submitted_state(self._handle)


def submit(task: str, **arguments: Any) -> TaskFuture:
    """Submits a call of ``task`` (its WIT function name or full name) with keyword arguments
    given as JSON-compatible values (records as dicts of their WIT field names); returns at once.

    ``cachehost.submit("add-one", x=1).result()``, or ``Tasks.add_one.submit(x=1)`` for a
    method decorated with ``@task``.
    """
    args = [(name, json.dumps(value)) for name, value in arguments.items()]
    return TaskFuture(task, raw().submit(task, args))
