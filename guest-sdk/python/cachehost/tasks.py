"""``@task(...)``: a task's options with Prefect's parameter names, gathered into the
component's ``cachehost:task/options`` export (and its ``keys`` export for ``cache_key_fn``).

The decorated function is still the task: it stays the method of the exported interface's
class that componentize-py calls. Options are checked when the decorator runs, that is when
componentize-py imports the app to build the component, so a wrong option fails the build.
"""

from __future__ import annotations

import difflib
import functools
import warnings
from datetime import timedelta
from typing import Any, Callable, Dict, List, Optional

from .futures import submit
from .locking import IsolationLevel, isolation_level_name, lock_manager_spec
from .policies import CachePolicy, policy_expression

__all__ = ["declared_options", "key_function", "task"]


#: The options ``@task`` takes: Prefect's parameter names (and key_storage, which Prefect
#: sets with ``cache_policy.configure(key_storage=...)``).
OPTIONS = (
    "name",
    "cache_policy",
    "cache_key_fn",
    "cache_expiration",
    "refresh_cache",
    "persist_result",
    "result_storage",
    "key_storage",
    "retries",
    "retry_delay_seconds",
    "timeout_seconds",
    "isolation_level",
    "lock_manager",
    "replayable",
)

# Every task this component declares, by WIT function name, in declaration order.
_declared: Dict[str, Dict[str, Any]] = {}
_key_fns: Dict[str, Callable[..., Optional[str]]] = {}


def _wit_name(function: Callable[..., Any]) -> str:
    # componentize-py names a WIT function `parse-quantity` `parse_quantity` in Python.
    return function.__name__.replace("_", "-")


def _flag(option: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{option} must be True or False, not {value!r}")
    return value


def _millis(option: str, seconds: object) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        if isinstance(seconds, (list, tuple)):
            raise TypeError(f"{option}: cachehost takes one delay for every retry, not a list ({seconds!r})")
        raise TypeError(f"{option} must be a number of seconds, not {seconds!r}")
    if seconds < 0:
        raise ValueError(f"{option} must not be negative, not {seconds!r}")
    return round(seconds * 1000)


def _options_of(task: str, given: Dict[str, Any]) -> Dict[str, Any]:
    """The task-defaults record of the WIT, as a dict of its Python field names."""
    unknown = [name for name in given if name not in OPTIONS]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, OPTIONS, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; the options are {', '.join(OPTIONS)}"
        raise TypeError(f"@task for {task!r} got an unknown option {name!r}{hint}")
    record: Dict[str, Any] = {
        "task": task,
        "cache_policy": None,
        "cache_expiration_ms": None,
        "refresh_cache": None,
        "persist_result": None,
        "isolation_level": None,
        "lock_manager": None,
        "key_storage": None,
        "result_storage": None,
        "retries": None,
        "retry_delay_ms": None,
        "timeout_ms": None,
        "replayable": None,
    }
    policy = given.get("cache_policy")
    if policy is not None:
        record["cache_policy"] = policy_expression(policy)
        if isinstance(policy, CachePolicy):
            record["key_storage"] = policy.key_storage
            record["lock_manager"] = policy.lock_manager
            record["isolation_level"] = policy.isolation_level
    if given.get("cache_key_fn") is not None:
        if not callable(given["cache_key_fn"]):
            raise TypeError(f"cache_key_fn must be a function, not {given['cache_key_fn']!r}")
        if policy is not None:
            # Prefect 2.2-2.3: the key function replaces the policy, with this warning.
            warnings.warn(
                f"Both `cache_policy` and `cache_key_fn` are set on task {task!r}. `cache_key_fn` will be used.",
                stacklevel=3,
            )
        record["cache_policy"] = "KEY_FN"
    expiration = given.get("cache_expiration")
    if expiration is not None:
        if not isinstance(expiration, timedelta):
            raise TypeError(f"cache_expiration must be a datetime.timedelta, not {expiration!r}")
        if expiration < timedelta(0):
            raise ValueError(f"cache_expiration must not be negative, not {expiration!r}")
        record["cache_expiration_ms"] = expiration // timedelta(milliseconds=1)
    for flag in ("refresh_cache", "persist_result", "replayable"):
        if given.get(flag) is not None:
            record[flag] = _flag(flag, given[flag])
    for storage in ("result_storage", "key_storage"):
        if given.get(storage) is not None:
            record[storage] = str(given[storage])
    if given.get("retries") is not None:
        retries = given["retries"]
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries < 2**32:
            raise TypeError(f"retries must be a whole number from 0, not {retries!r}")
        record["retries"] = retries
    if given.get("retry_delay_seconds") is not None:
        record["retry_delay_ms"] = _millis("retry_delay_seconds", given["retry_delay_seconds"])
    if given.get("timeout_seconds") is not None:
        record["timeout_ms"] = _millis("timeout_seconds", given["timeout_seconds"])
    if given.get("isolation_level") is not None:
        record["isolation_level"] = isolation_level_name(given["isolation_level"])
    if given.get("lock_manager") is not None:
        record["lock_manager"] = lock_manager_spec(given["lock_manager"])
    return record


def task(__fn: Optional[Callable[..., Any]] = None, **options: Any) -> Any:
    """Declares a task's options, as Prefect's ``@task(...)`` does; ``@task`` alone declares none.

    ``@task(cache_policy=INPUTS - "debug", cache_expiration=timedelta(days=1), retries=2)``
    on a method of the exported interface's class. The task is the WIT function of the same
    name (``parse_quantity`` is ``parse-quantity``; ``name=`` gives another). Options:
    ``cache_policy``, ``cache_key_fn`` (``fn(task_run, parameters) -> str | None``, the
    parameters decoded from JSON), ``cache_expiration`` (a ``timedelta``), ``refresh_cache``,
    ``persist_result``, ``result_storage``, ``key_storage``, ``retries``,
    ``retry_delay_seconds``, ``timeout_seconds``, ``isolation_level`` and ``lock_manager``.
    An unknown option raises ``TypeError``: the build fails. The function gains
    ``submit(**arguments)`` (see :func:`cachehost.submit`).
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        name = options.get("name") or _wit_name(function)
        if name in _declared:
            raise ValueError(f"@task declares {name!r} twice")
        _declared[name] = _options_of(name, options)
        if options.get("cache_key_fn") is not None:
            _key_fns[name] = options["cache_key_fn"]
        function.task_name = name  # type: ignore[attr-defined]
        function.submit = functools.partial(submit, name)  # type: ignore[attr-defined]
        return function

    if __fn is not None:
        if options or not callable(__fn):
            raise TypeError("use @task or @task(option=value, ...)")
        return decorate(__fn)
    return decorate


def declared_options() -> List[Dict[str, Any]]:
    """Every task's options as declared, as task-defaults records (dicts of their fields)."""
    return [dict(record) for record in _declared.values()]


def key_function(task: str) -> Optional[Callable[..., Optional[str]]]:
    """The ``cache_key_fn`` declared for a task, if any."""
    return _key_fns.get(task)
