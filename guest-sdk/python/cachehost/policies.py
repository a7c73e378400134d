"""Cache policies as Prefect writes them: ``INPUTS``, ``TASK_SOURCE``, ``RUN_ID``,
``FLOW_PARAMETERS``, ``NONE`` (also ``NO_CACHE``) and ``DEFAULT``, combined with ``+`` and
``- "name"``.

A policy is rendered as the expression cachehost.toml takes (``INPUTS - 'debug' +
TASK_SOURCE``) and the host parses it when it loads the component, with the parser that
reads cachehost.toml, so a bad expression fails the load with the same message.
"""

from __future__ import annotations

from typing import Optional

from .locking import isolation_level_name, lock_manager_spec

__all__ = [
    "CachePolicy",
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NONE",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "policy_expression",
]


def _quote(name: str) -> str:
    """The parameter name quoted as the expression parser reads it."""
    if not isinstance(name, str):
        raise TypeError(f"a cache policy excludes a parameter by its name (a str), not {name!r}")
    if not name:
        raise ValueError("a cache policy cannot exclude a parameter with an empty name")
    if "'" not in name:
        return f"'{name}'"
    if '"' not in name:
        return f'"{name}"'
    raise ValueError(f"the parameter name {name!r} holds both quote characters, which a policy cannot express")


class CachePolicy:
    """A cache policy: which parts make up a task's cache key (Prefect's ``CachePolicy``).

    ``a + b`` keys on the parts of both, ``p - "name"`` leaves a parameter out of ``INPUTS``
    (a no-op, with a warning from the host, on a policy without ``INPUTS``), and
    ``p.configure(...)`` adds the key storage, lock manager or isolation level, as in Prefect.
    """

    __slots__ = ("_expression", "_compound", "key_storage", "lock_manager", "isolation_level")

    def __init__(
        self,
        expression: str,
        *,
        compound: bool = False,
        key_storage: Optional[str] = None,
        lock_manager: Optional[str] = None,
        isolation_level: Optional[str] = None,
    ) -> None:
        self._expression = expression
        self._compound = compound
        self.key_storage = key_storage
        self.lock_manager = lock_manager
        self.isolation_level = isolation_level

    def __add__(self, other: "CachePolicy") -> "CachePolicy":
        if not isinstance(other, CachePolicy):
            return NotImplemented
        right = f"({other._expression})" if other._compound else other._expression
        return CachePolicy(
            f"{self._expression} + {right}",
            compound=True,
            key_storage=self.key_storage or other.key_storage,
            lock_manager=self.lock_manager or other.lock_manager,
            isolation_level=self.isolation_level or other.isolation_level,
        )

    def __sub__(self, name: str) -> "CachePolicy":
        return CachePolicy(
            f"{self._expression} - {_quote(name)}",
            compound=True,
            key_storage=self.key_storage,
            lock_manager=self.lock_manager,
            isolation_level=self.isolation_level,
        )

    def configure(
        self,
        *,
        key_storage: Optional[str] = None,
        lock_manager: object = None,
        isolation_level: object = None,
    ) -> "CachePolicy":
        """A copy of this policy with the given key storage, lock manager or isolation level."""
        return CachePolicy(
            self._expression,
            compound=self._compound,
            key_storage=str(key_storage) if key_storage is not None else self.key_storage,
            lock_manager=lock_manager_spec(lock_manager) if lock_manager is not None else self.lock_manager,
            isolation_level=(
                isolation_level_name(isolation_level) if isolation_level is not None else self.isolation_level
            ),
        )

    def __str__(self) -> str:
        return self._expression

    def __repr__(self) -> str:
        return f"CachePolicy({self._expression!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CachePolicy) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self._expression)


#: The task's arguments (Prefect's ``Inputs``).
INPUTS = CachePolicy("INPUTS")
#: The providing component's bytes and the task's name (Prefect's ``TaskSource``).
TASK_SOURCE = CachePolicy("TASK_SOURCE")
#: The flow run id, or the task run id of a standalone task run (Prefect's ``RunId``).
RUN_ID = CachePolicy("RUN_ID")
#: The enclosing flow run's parameters (Prefect's ``FlowParameters``).
FLOW_PARAMETERS = CachePolicy("FLOW_PARAMETERS")
#: No key: no lookup, no lock, no write (Prefect's ``NO_CACHE``).
NONE = CachePolicy("NONE")
#: Prefect's other name for ``NONE``.
NO_CACHE = NONE
#: ``INPUTS + TASK_SOURCE + RUN_ID`` (Prefect's ``DEFAULT``).
DEFAULT = CachePolicy("DEFAULT")


def policy_expression(policy: object) -> str:
    """The expression of a ``cache_policy`` argument: a ``CachePolicy`` or an expression string."""
    if isinstance(policy, CachePolicy):
        return str(policy)
    if isinstance(policy, str):
        return policy
    raise TypeError(f"cache_policy must be a cache policy such as INPUTS or an expression string, not {policy!r}")
