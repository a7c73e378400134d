"""The SDK's checks and records, on the host's Python (no component build): what @task turns
into the task-defaults records of the options export, and the errors it raises at build time.

Run: python3 -m unittest discover -s guest-sdk/python/tests (make test does).
"""

import sys
import unittest
import warnings
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cachehost  # noqa: E402
from cachehost import (  # noqa: E402
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    FileSystemLockManager,
    IsolationLevel,
    MemoryLockManager,
    RedisLockManager,
    task,
)
from cachehost import tasks as registry  # noqa: E402


def declared(name):
    return next(record for record in registry.declared_options() if record["task"] == name)


class Policies(unittest.TestCase):
    def test_expressions_are_the_ones_cachehost_toml_takes(self):
        self.assertEqual(str(INPUTS - "debug" + TASK_SOURCE), "INPUTS - 'debug' + TASK_SOURCE")
        self.assertEqual(str(TASK_SOURCE + (INPUTS - "x")), "TASK_SOURCE + (INPUTS - 'x')")
        self.assertEqual(str(DEFAULT + FLOW_PARAMETERS + RUN_ID), "DEFAULT + FLOW_PARAMETERS + RUN_ID")
        self.assertEqual(str(NONE), "NONE")
        self.assertEqual(str(INPUTS - "it's"), "INPUTS - \"it's\"")

    def test_a_name_no_expression_can_hold_fails_at_once(self):
        with self.assertRaisesRegex(ValueError, "both quote characters"):
            INPUTS - "a'b\"c"
        with self.assertRaisesRegex(ValueError, "empty name"):
            INPUTS - ""
        with self.assertRaises(TypeError):
            INPUTS + "TASK_SOURCE"

    def test_configure_carries_lock_settings_into_the_record(self):
        @task(cache_policy=INPUTS.configure(isolation_level=IsolationLevel.SERIALIZABLE, lock_manager=FileSystemLockManager()))
        def configured(self):
            pass

        record = declared("configured")
        self.assertEqual(record["isolation_level"], "SERIALIZABLE")
        self.assertEqual(record["lock_manager"], "file")


class Options(unittest.TestCase):
    def test_every_option_becomes_its_field(self):
        @task(
            cache_policy=INPUTS - "debug",
            cache_expiration=timedelta(days=1, milliseconds=5),
            refresh_cache=True,
            persist_result=False,
            result_storage="s3://bucket/results",
            key_storage="keys",
            retries=3,
            retry_delay_seconds=1.5,
            timeout_seconds=30,
            isolation_level="SERIALIZABLE",
            lock_manager=RedisLockManager("redis", 6380),
            replayable=True,
        )
        def every_option(self, x, debug):
            pass

        self.assertEqual(
            declared("every-option"),
            {
                "task": "every-option",
                "cache_policy": "INPUTS - 'debug'",
                "cache_expiration_ms": 86_400_005,
                "refresh_cache": True,
                "persist_result": False,
                "isolation_level": "SERIALIZABLE",
                "lock_manager": "redis://redis:6380",
                "key_storage": "keys",
                "result_storage": "s3://bucket/results",
                "retries": 3,
                "retry_delay_ms": 1500,
                "timeout_ms": 30_000,
                "replayable": True,
            },
        )
        self.assertEqual(every_option.task_name, "every-option")

    def test_a_key_function_makes_the_policy_key_fn_as_in_prefect(self):
        def key(run, parameters):
            return "k-" + parameters["word"]

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")

            @task(cache_policy=INPUTS, cache_key_fn=key, name="keyed", lock_manager=MemoryLockManager())
            def anything(self, word):
                pass

        self.assertEqual(declared("keyed")["cache_policy"], "KEY_FN")
        self.assertIn("`cache_key_fn` will be used", str(caught[0].message))

        class Run:
            task = "keyed"

        self.assertEqual(cachehost.Keys().cache_key(Run(), [("word", '"ada"')]), "k-ada")
        Run.task = "other"
        self.assertIsNone(cachehost.Keys().cache_key(Run(), [("word", '"ada"')]))

    def test_an_unknown_option_is_an_error_naming_the_closest(self):
        with self.assertRaisesRegex(TypeError, "unknown option 'cache_polcy'; did you mean cache_policy?"):

            @task(cache_polcy=INPUTS)
            def misspelt(self):
                pass

    def test_wrong_values_are_errors(self):
        cases = [
            ({"cache_expiration": 60}, TypeError, "timedelta"),
            ({"retries": -1}, TypeError, "whole number"),
            ({"retry_delay_seconds": [1, 2]}, TypeError, "not a list"),
            ({"isolation_level": "SERIAL"}, ValueError, "unknown isolation_level"),
            ({"lock_manager": "etcd"}, ValueError, "unknown lock manager"),
            ({"persist_result": "yes"}, TypeError, "True or False"),
            ({"cache_policy": 3}, TypeError, "cache_policy"),
        ]
        for number, (options, error, message) in enumerate(cases):
            with self.subTest(options=options), self.assertRaisesRegex(error, message):
                task(name=f"wrong-{number}", **options)(lambda self: None)

    def test_a_task_declared_twice_is_an_error(self):
        task(name="twice")(lambda self: None)
        with self.assertRaisesRegex(ValueError, "twice"):
            task(name="twice")(lambda self: None)


if __name__ == "__main__":
    unittest.main()
