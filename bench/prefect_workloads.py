"""The comparison workloads as Prefect 3.9.1 flows (run by bench/compare.py, one per process).

    python prefect_workloads.py hits|distinct|trivial [N]

`hits`: a cached task (INPUTS, persisted) called N times with the same input, after one call
that fills the cache. `distinct`: N calls with distinct inputs, each persisting its result.
Both print JSON with the seconds the N calls took inside the flow run. `trivial`: a
one-task flow run; the caller times the whole process.
"""

import json
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
    else:
        seconds = {"hits": hits, "distinct": distinct}[workload](n)
        print(json.dumps({"seconds": seconds, "calls": n}))
