"""``transaction()``: Prefect's ``with transaction(...) as txn:`` over the runtime interface."""

from __future__ import annotations

import json
from typing import Any, Optional

from . import _bindings
from .locking import isolation_level_name, lock_manager_spec
from .runtime import raw

__all__ = ["CommitMode", "Transaction", "transaction"]


class CommitMode:
    """When a transaction's records are written (Prefect's ``CommitMode``)."""

    #: At the outermost transaction's commit (the default).
    LAZY = "lazy"
    #: At this transaction's own exit.
    EAGER = "eager"
    #: Never: the outermost exit rolls everything back.
    OFF = "off"


class Transaction:
    """The open transaction of a ``with transaction(...)`` block. Values are JSON-compatible."""

    def __init__(self, options: Any) -> None:
        self._options = options
        #: Whether the transaction committed at its exit; None while it is open.
        self.committed: Optional[bool] = None

    def __enter__(self) -> "Transaction":
        raw().begin_transaction(self._options)
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        # An exception rolls the transaction back and goes on, as in Prefect.
        self.committed = raw().end_transaction(kind is not None)

    def set(self, name: str, value: Any) -> None:
        """Sets a value on the transaction."""
        raw().set(name, json.dumps(value))

    def get(self, name: str, default: Any = None) -> Any:
        """A value of the transaction or, failing that, of its parents; ``default`` when unset."""
        stored = raw().get(name)
        return default if stored is None else json.loads(stored)

    def stage(self, value: Any) -> None:
        """Stages a value as the keyed transaction's record."""
        raw().stage(json.dumps(value))

    def is_committed(self) -> bool:
        """Whether the transaction is committed (a keyed one: its record exists)."""
        return raw().is_committed()

    def rollback(self) -> bool:
        """Rolls the transaction back now; returns whether it did."""
        return raw().rollback()


def transaction(
    key: Optional[str] = None,
    *,
    commit_mode: Optional[str] = None,
    isolation_level: object = None,
    lock_manager: object = None,
    write_on_commit: Optional[bool] = None,
    overwrite: Optional[bool] = None,
) -> Transaction:
    """A transaction for a ``with`` block, with Prefect's arguments; unset ones keep the defaults.

    Task calls made inside are its children: their records are written when it commits. An
    exception leaving the block rolls it back. Opening it fails (``Err``) when it cannot be
    opened, e.g. SERIALIZABLE without a lock manager.
    """
    need = "import cachehost:task/runtime@0.1.0"
    wit_commit_mode = _bindings.need(_bindings.CommitMode, need)

    mode = None
    if commit_mode is not None:
        name = getattr(commit_mode, "value", commit_mode)
        if str(name).lower() not in ("lazy", "eager", "off"):
            raise ValueError(f"unknown commit_mode {commit_mode!r}: use CommitMode.LAZY, EAGER or OFF")
        mode = wit_commit_mode[str(name).upper()]
    options = _bindings.need(_bindings.TransactionOptions, need)(
        key=key,
        commit_mode=mode,
        write_on_commit=write_on_commit,
        overwrite=overwrite,
        isolation_level=isolation_level_name(isolation_level) if isolation_level is not None else None,
        lock_manager=lock_manager_spec(lock_manager) if lock_manager is not None else None,
    )
    return Transaction(options)
