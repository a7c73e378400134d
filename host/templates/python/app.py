"""The {{name}} component's tasks and flow (wit/world.wit), on cachehost's Python SDK."""

import logging
from datetime import timedelta
from typing import List

from cachehost import INPUTS, TASK_SOURCE, Keys, MemoryLockManager, Options, task  # noqa: F401
from wit_world import exports
from wit_world.imports import tasks


def word_count_key(task_run, parameters) -> str:
    # Prefect's cache_key_fn(context, parameters): the parameters arrive decoded.
    return "words-" + parameters["text"].lower()


class Tasks(exports.Tasks):
    @task(
        cache_policy=INPUTS - "verbose" + TASK_SOURCE,
        cache_expiration=timedelta(days=1),
        retries=2,
        retry_delay_seconds=1,
        timeout_seconds=30,
    )
    def greet(self, name: str, verbose: bool) -> str:
        logging.info(f"greeting {name}")
        if verbose:
            logging.info("verbosely")
        return f"Hello, {name}!"

    @task(cache_key_fn=word_count_key, persist_result=True, isolation_level="SERIALIZABLE", lock_manager=MemoryLockManager())
    def word_count(self, text: str) -> int:
        return len(text.split())


class Flow(exports.Flow):
    def main(self, name: str) -> List[str]:
        # Calls through the import run through cachehost: the second greet is a cache hit.
        quiet = tasks.greet(name, False)
        verbose = tasks.greet(name, True)
        return [quiet, verbose, str(tasks.word_count(quiet))]
