"""The example:poly tasks in Python (world py-tasks-world), built with componentize-py.

The class below implements the exported interface; componentize-py finds it by name.
``@task`` declares each task's options with Prefect's parameter names; the ``Options`` and
``Keys`` exports that cachehost reads are the SDK's, generated from the decorators.
"""

import logging
from datetime import timedelta
from typing import List, Optional

from cachehost import INPUTS, Keys, MemoryLockManager, Options, runtime, task, transaction  # noqa: F401
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.example_poly_types import Item, Summary

U32_MAX = 2**32 - 1
U64_MOD = 2**64


def ascii_upper(text: str) -> str:
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)


def ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def shout_key(task_run, parameters) -> Optional[str]:
    # Prefect's cache_key_fn(context, parameters): the parameters arrive decoded from JSON.
    return "shout-" + ascii_lower(parameters["word"])


class PyTasks(exports.PyTasks):
    @task(cache_policy=INPUTS, cache_expiration=timedelta(days=1))
    def greet(self, name: str, punctuation: Optional[str]) -> str:
        run = runtime.current_task_run()
        run_name = run.name if run is not None else "no task run"
        logging.info(f"greeting {name} in Python ({run_name})")
        return f"Hello, {name}{'!' if punctuation is None else punctuation}"

    # No cache_policy: the default policy, and results are not persisted (Prefect's default).
    @task(retries=2, retry_delay_seconds=0.5)
    def word_lengths(self, words: List[str]) -> List[int]:
        return [len(word) for word in words]

    @task(cache_policy=INPUTS, persist_result=True)
    def summarize(self, items: List[Item]) -> Summary:
        total = 0
        most_expensive = None
        top_price = 0
        for item in items:
            total = (total + item.quantity * item.price_cents) % U64_MOD
            if most_expensive is None or item.price_cents > top_price:
                most_expensive, top_price = item.name, item.price_cents
        return Summary(
            count=len(items),
            total_cents=total,
            names=[item.name for item in items],
            most_expensive=most_expensive,
        )

    @task(cache_policy=INPUTS, timeout_seconds=60, replayable=True)
    def parse_quantity(self, text: str) -> int:
        # Not int(text): it also accepts signs, spaces, underscores and non-ASCII digits.
        if not 1 <= len(text) <= 10 or any(not "0" <= c <= "9" for c in text):
            raise Err(f"not a quantity: {text}")
        value = 0
        for c in text:
            value = value * 10 + (ord(c) - ord("0"))
        if value > U32_MAX:
            raise Err(f"not a quantity: {text}")
        return value

    @task(cache_key_fn=shout_key, refresh_cache=False)
    def shout(self, word: str) -> str:
        return ascii_upper(word)

    @task(cache_policy=INPUTS, isolation_level="READ_COMMITTED", lock_manager=MemoryLockManager())
    def ledger(self, entry: str) -> str:
        # The run context: this task run, in the flow run the runtime reports (if any).
        run = runtime.current_task_run()
        if run is None or run.task != "ledger" or run.flow_run_id != runtime.flow_run_id():
            raise RuntimeError(f"ledger runs in a task run of its own, not {run}")
        # A transaction inside the task run's own; a failure to open it raises Err.
        with transaction() as txn:
            txn.set("entry", entry)
            stored = txn.get("entry")
            if stored != entry:
                raise RuntimeError(f"get returned {stored!r}, not the value set")
        return f"{entry} recorded in a ledger transaction, committed={'true' if txn.committed else 'false'}"

    @task(cache_policy=INPUTS)
    def reverse_bytes(self, data: bytes) -> bytes:
        # list<u8> arrives as bytes; slicing reverses it in C, not byte by byte in Python.
        return data[::-1]

    @task(cache_policy=INPUTS)
    def reverse_floats(self, xs: List[float]) -> List[float]:
        return xs[::-1]
