"""The standard ``logging`` module, routed to the host's log of the current flow or task run."""

from __future__ import annotations

import logging

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


def install() -> None:
    """Routes the root logger to the host at INFO (Prefect's default level), once."""
    root = logging.getLogger()
    if not any(isinstance(handler, HostHandler) for handler in root.handlers):
        root.addHandler(HostHandler())
        root.setLevel(logging.INFO)


def get_run_logger() -> logging.Logger:
    """A logger whose lines go to the current run's log (Prefect's ``get_run_logger()``)."""
    return logging.getLogger("cachehost")
