"""cachehost's Python SDK: tasks with Prefect's options, for components built by componentize-py.

::

    from datetime import timedelta
    from cachehost import INPUTS, Keys, Options, task   # Options, Keys: the generated exports
    from wit_world import exports

    class Tasks(exports.Tasks):
        @task(cache_policy=INPUTS - "debug", cache_expiration=timedelta(days=1), retries=2)
        def add_one(self, x: int, debug: bool) -> int:
            return x + 1

The WIT functions are still the tasks: ``@task`` only declares their options, and
``Options`` exports them (``cachehost:task/options``), ``Keys`` runs each task's
``cache_key_fn`` (``cachehost:task/keys``). The world must import
``cachehost:task/runtime@0.1.0`` and export the options (and keys) interfaces. Importing
this package routes the standard ``logging`` module to the host's log.
"""

from . import runtime
from .exports import Keys, Options
from .futures import TaskFuture, submit
from .locking import FileSystemLockManager, IsolationLevel, MemoryLockManager, RedisLockManager
from .log import get_run_logger, install as _install_logging
from .policies import DEFAULT, FLOW_PARAMETERS, INPUTS, NO_CACHE, NONE, RUN_ID, TASK_SOURCE, CachePolicy
from .tasks import task
from .transactions import CommitMode, Transaction, transaction

__all__ = [
    "CachePolicy",
    "CommitMode",
    "DEFAULT",
    "FLOW_PARAMETERS",
    "FileSystemLockManager",
    "INPUTS",
    "IsolationLevel",
    "Keys",
    "MemoryLockManager",
    "NONE",
    "NO_CACHE",
    "Options",
    "RUN_ID",
    "RedisLockManager",
    "TASK_SOURCE",
    "TaskFuture",
    "Transaction",
    "get_run_logger",
    "runtime",
    "submit",
    "task",
    "transaction",
]

_install_logging()
