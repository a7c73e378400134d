"""Isolation levels and the lock managers of SERIALIZABLE, named as in Prefect; each lock
manager stands for the specification cachehost takes (``memory``, ``file``, ``redis://host:port``)."""

from __future__ import annotations

import enum
from typing import Optional

__all__ = [
    "FileSystemLockManager",
    "IsolationLevel",
    "MemoryLockManager",
    "RedisLockManager",
    "isolation_level_name",
    "lock_manager_spec",
]


class MemoryLockManager:
    """Locks held in the host process: one process, many tasks (``memory``)."""

    spec = "memory"


class FileSystemLockManager:
    """Lock files on one machine, for many processes (``file``, or ``file:DIR``)."""

    def __init__(self, lock_files_directory: Optional[str] = None) -> None:
        self.spec = "file" if lock_files_directory is None else f"file:{lock_files_directory}"


class RedisLockManager:
    """Leases in a Redis server, for many machines (``redis://host:port``)."""

    def __init__(self, host: str = "localhost", port: int = 6379, db: int = 0) -> None:
        self.spec = f"redis://{host}:{port}" + (f"/{db}" if db else "")


def lock_manager_spec(manager: object) -> str:
    """The specification of a lock manager object, or of one given as its specification string."""
    if isinstance(manager, (MemoryLockManager, FileSystemLockManager, RedisLockManager)):
        return manager.spec
    if isinstance(manager, type) and manager is MemoryLockManager:
        return MemoryLockManager.spec
    if isinstance(manager, str) and (manager in ("memory", "file") or manager.startswith(("file:", "redis://"))):
        return manager
    raise ValueError(
        f"unknown lock manager {manager!r}: use MemoryLockManager(), FileSystemLockManager(), "
        "RedisLockManager(host, port), or 'memory', 'file', 'file:DIR', 'redis://host:port'"
    )


class IsolationLevel(enum.Enum):
    """Prefect's ``IsolationLevel``: SERIALIZABLE takes a lock on the cache key."""

    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


def isolation_level_name(level: object) -> str:
    """``READ_COMMITTED`` or ``SERIALIZABLE``, from an ``IsolationLevel`` or its name."""
    if isinstance(level, IsolationLevel):
        return level.value
    if isinstance(level, str) and level.upper() in IsolationLevel.__members__:
        return level.upper()
    raise ValueError(f"unknown isolation_level {level!r}: use IsolationLevel.READ_COMMITTED or SERIALIZABLE")
