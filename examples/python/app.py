"""The example:poly tasks in Python (world py-tasks-world), built with componentize-py.

Each class below implements one exported interface; componentize-py finds them by name.
"""

import json
from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.options import TaskDefaults
from wit_world.imports import runtime
from wit_world.imports.cachehost_task_types import LogLevel, TaskRunInfo, TransactionOptions
from wit_world.imports.example_poly_types import Item, Summary

U32_MAX = 2**32 - 1
U64_MOD = 2**64


def ascii_upper(text: str) -> str:
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)


def ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


class PyTasks(exports.PyTasks):
    def greet(self, name: str, punctuation: Optional[str]) -> str:
        run = runtime.current_task_run()
        run_name = run.name if run is not None else "no task run"
        runtime.log(LogLevel.INFO, f"greeting {name} in Python ({run_name})")
        return f"Hello, {name}{'!' if punctuation is None else punctuation}"

    def word_lengths(self, words: List[str]) -> List[int]:
        return [len(word) for word in words]

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

    def shout(self, word: str) -> str:
        return ascii_upper(word)

    def ledger(self, entry: str) -> str:
        # The run context: this task run, in the flow run the runtime reports (if any).
        run = runtime.current_task_run()
        if run is None or run.task != "ledger" or run.flow_run_id != runtime.flow_run_id():
            raise RuntimeError(f"ledger runs in a task run of its own, not {run}")
        # A transaction inside the task run's own; a failure to open it raises Err.
        runtime.begin_transaction(TransactionOptions(None, None, None, None, None, None))
        runtime.set("entry", json.dumps(entry))
        stored = runtime.get("entry")
        if stored is None or json.loads(stored) != entry:
            raise RuntimeError(f"get returned {stored!r}, not the value set")
        committed = runtime.end_transaction(False)
        return f"{entry} recorded in a ledger transaction, committed={'true' if committed else 'false'}"

    def reverse_bytes(self, data: bytes) -> bytes:
        # list<u8> arrives as bytes; slicing reverses it in C, not byte by byte in Python.
        return data[::-1]


class Options(exports.Options):
    def task_options(self) -> List[TaskDefaults]:
        def declare(task: str, policy: str) -> TaskDefaults:
            return TaskDefaults(task, policy, None, None, None, None, None, None, None)

        return [
            declare("greet", "INPUTS"),
            declare("summarize", "INPUTS"),
            declare("parse-quantity", "INPUTS"),
            declare("shout", "KEY_FN"),
            declare("ledger", "INPUTS"),
            declare("reverse-bytes", "INPUTS"),
        ]


class Keys(exports.Keys):
    def cache_key(self, task_run: TaskRunInfo, inputs: List[Tuple[str, str]]) -> Optional[str]:
        if task_run.task != "shout":
            return None
        word = json.loads(dict(inputs)["word"])
        return "shout-" + ascii_lower(word)
