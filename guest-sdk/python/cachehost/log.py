"""The standard ``logging`` module, routed to the host's log of the current flow or task run."""

from __future__ import annotations

import logging
import time

from . import _bindings

__all__ = ["HostHandler", "get_run_logger", "install"]


class HostHandler(logging.Handler):
    """Writes each record as a host log line (runtime ``log``) at the nearest host level."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            LogLevel = _bindings.LogLevel
            if record.levelno >= logging.ERROR:
                level = LogLevel.ERROR
            elif record.levelno >= logging.WARNING:
                level = LogLevel.WARNING
            elif record.levelno >= logging.INFO:
                level = LogLevel.INFO
            else:
                level = LogLevel.DEBUG
            _bindings.need(_bindings.runtime, "import cachehost:task/runtime@0.1.0").log(level, self.format(record))
        except Exception:  # noqa: BLE001  logging must never fail the task
            self.handleError(record)


class _NoClock:
    """The ``time`` module as ``logging`` sees it, without a clock: the host stamps every log
    line itself, so a record needs no time of its own, and logging alone never makes a task
    read the wall clock (which the host would see, and its determinism guard report)."""

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    @staticmethod
    def time() -> float:
        return 0.0

    @staticmethod
    def time_ns() -> int:
        return 0


def install() -> None:
    """Routes the root logger to the host at INFO (Prefect's default level), once."""
    logging.time = _NoClock()  # type: ignore[attr-defined]
    root = logging.getLogger()
    if not any(isinstance(handler, HostHandler) for handler in root.handlers):
        root.addHandler(HostHandler())
        root.setLevel(logging.INFO)


def get_run_logger() -> logging.Logger:
    """A logger whose lines go to the current run's log (Prefect's ``get_run_logger()``)."""
    return logging.getLogger("cachehost")
