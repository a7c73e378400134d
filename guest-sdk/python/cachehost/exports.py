"""The classes that implement the ``cachehost:task/options`` and ``cachehost:task/keys``
exports from what ``@task`` declared. An app makes them its own with
``from cachehost import Options, Keys``: componentize-py finds export classes by name."""

from __future__ import annotations

import json
from typing import Any, List, Optional, Tuple

from . import _bindings
from .tasks import declared_options, key_function

__all__ = ["Keys", "Options"]


class Options:
    """``cachehost:task/options``: the options of every ``@task``, as task-defaults records."""

    def task_options(self) -> List[Any]:
        """Every task's declared options."""
        task_defaults = _bindings.need(_bindings.TaskDefaults, "export cachehost:task/options@0.1.0")
        return [task_defaults(**record) for record in declared_options()]


class Keys:
    """``cachehost:task/keys``: calls the ``cache_key_fn`` of the task being keyed."""

    def cache_key(self, task_run: Any, inputs: List[Tuple[str, str]]) -> Optional[str]:
        """The key of one call: ``cache_key_fn(task_run, parameters)``; None runs it uncached."""
        key_fn = key_function(task_run.task)
        if key_fn is None:
            return None
        key = key_fn(task_run, {name: json.loads(value) for name, value in inputs})
        if key is not None and not isinstance(key, str):
            raise TypeError(f"the cache_key_fn of {task_run.task!r} returned {key!r}, not a str or None")
        return key
