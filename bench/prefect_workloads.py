"""The comparison workloads as Prefect 3.9.1 flows (run by bench/compare.py, one per process).

    python prefect_workloads.py hits|distinct|trivial [N]
    python prefect_workloads.py sized|sized-result SIZE [N]

`hits`: a cached task (INPUTS, persisted) called N times with the same input, after one call
that fills the cache. `distinct`: N calls with distinct inputs, each persisting its result.
Both print JSON with the seconds the N calls took inside the flow run. `trivial`: a
one-task flow run; the caller times the whole process.

`sized`: a cached task (INPUTS, persisted) taking SIZE bytes, called N times (default 6)
with the same bytes (byte i is 7 + i, wrapping, as in the cachehost bench example);
`sized-result`: a cached task (INPUTS, persisted) returning SIZE bytes for a seed, called N
times. The bytes are built, and the task called once on a tiny input (untimed, so the first
task run's set-up is left out, which favours Prefect), before the timed calls. Both print JSON
with the seconds of each timed call inside the flow run: a miss first on an empty result
store, hits after (only hits when the store already holds the result, from an earlier process
with the same PREFECT_HOME).
"""

import json
import random
import sys
import time

from prefect import flow, task
from prefect.cache_policies import INPUTS


@task(cache_policy=INPUTS, persist_result=True)
def add_one(x: int) -> int:
    return x + 1


@task
def add_one_plain(x: int) -> int:
    return x + 1


@task(cache_policy=INPUTS, persist_result=True)
def byte_count(data: bytes) -> int:
    return len(data)


@task(cache_policy=INPUTS, persist_result=True)
def filled(size: int, seed: int) -> bytes:
    # 64 KiB of seeded random bytes, repeated: deterministic, and about a memcpy per byte, so
    # the body costs little next to moving the bytes (as the cachehost task's xorshift fill).
    block = random.Random(seed).randbytes(min(size, 1 << 16))
    return (block * (size // max(len(block), 1) + 1))[:size]


def timed_calls(n: int, call) -> list[float]:
    seconds = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


@flow
def sized(size: int, n: int) -> list[float]:
    pattern = bytes((7 + i) % 256 for i in range(256))
    data = (pattern * (size // 256 + 1))[:size]
    byte_count(b"warm-up")
    return timed_calls(n, lambda: byte_count(data))


@flow
def sized_result(size: int, n: int) -> list[float]:
    filled(0, 0)
    return timed_calls(n, lambda: filled(size, 7))


@flow
def hits(n: int) -> float:
    add_one(0)
    started = time.perf_counter()
    for _ in range(n):
        add_one(0)
    return time.perf_counter() - started


@flow
def distinct(n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        add_one(i)
    return time.perf_counter() - started


@flow
def trivial() -> int:
    return add_one_plain(1)


if __name__ == "__main__":
    workload = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    if workload == "trivial":
        trivial()
    elif workload in ("sized", "sized-result"):
        calls = int(sys.argv[3]) if len(sys.argv) > 3 else 6
        seconds = {"sized": sized, "sized-result": sized_result}[workload](n, calls)
        print(json.dumps({"seconds": seconds, "size": n}))
    else:
        seconds = {"hits": hits, "distinct": distinct}[workload](n)
        print(json.dumps({"seconds": seconds, "calls": n}))
