#!/usr/bin/env python3
"""cachehost and Prefect 3.9.1 side by side, on the same workloads, measured in one run.

    python3 bench/compare.py --cachehost target/release/cachehost --examples build/examples

Workloads (each as a Prefect flow, bench/prefect_workloads.py, and as the cachehost bench
example, examples/rust/bench):
  * a cached task called 1,000 times with the same input (per call, inside the flow run);
  * 1,000 calls with distinct inputs, each persisting its result (per call);
  * a trivial one-task flow, whole process;
  * a cached task taking a 1 MiB `list<u8>` (Prefect: `bytes`), and one returning it
    (`sized` and `sized-result`; --sized-size): a miss and a hit, per call;
  * (cachehost only) `cachehost run` of the demo flow, whole process;
  * (cachehost only) a second start of the Python example component (`cachehost call
    poly-py.wasm greet`, a cache hit, compiled cache warm), when it is built (`make polyglot`).

cachehost is measured as whole processes with the compiled cache warm: a per-call figure
is (time of a run making 1,000 calls - time of a run making none) / 1,000; a sized hit is
(time at n=6 - time at n=1) / 5 on a settled record, a sized miss is time at n=1 on an empty
store - time at n=0 (bench/sizes.py sweeps the sizes this way). Prefect times
its calls inside the flow run (its process start, ~10 s with its temporary local server,
is left out, which favours Prefect), with a fresh PREFECT_HOME per process so the event
backlog of one run does not slow the next. Whole processes are timed with hyperfine when it
is installed, else with a Python timing loop; figures are medians.

Prefect is installed into bench/.prefect-venv (ignored by git) the first time, as
../shared/reference/prefect-install.md says: `pip install --no-deps prefect==3.9.1`, then
its dependencies from bench/prefect-requirements.txt (the wheel's list without the certifi
pin that fails here).
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".prefect-venv"
PREFECT_VERSION = "3.9.1"


def log(message):
    print(message, file=sys.stderr, flush=True)


def ensure_prefect():
    """Installs Prefect 3.9.1 into bench/.prefect-venv unless it is already there."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", f"import prefect, sys; sys.exit(prefect.__version__ != '{PREFECT_VERSION}')"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    log(f"Installing Prefect {PREFECT_VERSION} into {VENV} (about a minute, once)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["--no-deps", f"prefect=={PREFECT_VERSION}"], check=True)
    subprocess.run(pip + ["-r", str(HERE / "prefect-requirements.txt")], check=True)
    subprocess.run(check, check=True)
    return python


def time_process(argv, env, runs, prepare=None):
    """Median wall time of `argv` in seconds over `runs` runs; `prepare` runs untimed before each."""
    hyperfine = shutil.which("hyperfine")
    if hyperfine:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [hyperfine, "--style", "none", "--runs", str(runs), "--warmup", "1", "-N", "--export-json", out.name]
            if prepare:
                cmd += ["--prepare", prepare]
            subprocess.run(cmd + [shlex.join(argv)], env=env, check=True, stdout=subprocess.DEVNULL)
            return json.load(open(out.name))["results"][0]["median"]
    times = []
    for _ in range(runs + 1):
        if prepare:
            subprocess.run(prepare, shell=True, env=env, check=True)
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def prefect_env(home):
    """The environment of one Prefect process with its own PREFECT_HOME."""
    # The server's default 20 s to start is too short on a loaded 2-core machine.
    return dict(
        os.environ,
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        PREFECT_LOGGING_LEVEL="WARNING",
    )


def checked_stdout(argv, env):
    return subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout


def prefect_sized(python, workload, size, hits=5, run=checked_stdout):
    """Prefect on `sized` or `sized-result` (prefect_workloads.py) of `size` bytes, in a fresh
    PREFECT_HOME: (miss, hit) seconds inside the flow run, the miss being the one call of a
    process on an empty result store and the hit the mean of calls 2 to `hits` + 1 of a second
    process on that store. `run(argv, env)` runs a process and returns its stdout."""
    script = str(HERE / "prefect_workloads.py")
    with tempfile.TemporaryDirectory(prefix="prefect-home-") as home:
        env = prefect_env(home)
        out = run([str(python), script, workload, str(size), "1"], env)
        miss = json.loads(out.splitlines()[-1])["seconds"][0]
        out = run([str(python), script, workload, str(size), str(1 + hits)], env)
        calls = json.loads(out.splitlines()[-1])["seconds"]
    return miss, statistics.mean(calls[1:])


def measure_cachehost(binary, examples, runs, calls, sized_size):
    home = Path(tempfile.mkdtemp(prefix="cachehost-compare-"))
    env = dict(os.environ, CACHEHOST_HOME=str(home), NO_COLOR="1")
    env.pop("CACHEHOST_LOCAL_STORAGE_PATH", None)
    bench = str(examples / "bench.wasm")
    demo = str(examples / "persist-default.wasm")

    def repeat(n, start, distinct):
        return [binary, "run", bench, "--flow", "repeat", "--param", f"n={n}", "--param", f"start={start}", "--param", f"distinct={str(distinct).lower()}"]

    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Warm the compiled cache (and the digest cache, which trusts files older than 2 s).
    for argv in (repeat(1, 0, False), [binary, "run", demo]):
        subprocess.run(argv, env=env, check=True, **quiet)
    time.sleep(2.1)
    for argv in (repeat(0, 0, False), [binary, "run", demo]):
        subprocess.run(argv, env=env, check=True, **quiet)
    storage = home / "storage"
    wipe = f"rm -rf {storage}"
    results = {}
    zero = time_process(repeat(0, 0, False), env, runs)
    hits = time_process(repeat(calls, 0, False), env, runs)
    results["hits_per_call"] = (hits - zero) / calls
    distinct = time_process(repeat(calls, 1, True), env, runs, prepare=wipe)
    results["distinct_per_call"] = (distinct - zero) / calls
    results["trivial_process"] = time_process(repeat(1, 1, True), env, runs, prepare=wipe)
    for label, flow in (("sized", "sized"), ("sized_result", "sized-result")):

        def sized(n):
            params = [f"size={sized_size}", "seed=7", f"n={n}"]
            return [binary, "run", bench, "--flow", flow] + [arg for p in params for arg in ("--param", p)]

        sized_zero = time_process(sized(0), env, runs)
        results[f"{label}_miss"] = time_process(sized(1), env, runs, prepare=wipe) - sized_zero
        subprocess.run(sized(1), env=env, check=True, **quiet)
        time.sleep(2.1)  # the record settles, as any record of an earlier run has
        results[f"{label}_hit"] = (time_process(sized(6), env, runs) - time_process(sized(1), env, runs)) / 5
    results["demo_process"] = time_process([binary, "run", demo], env, runs)
    results["empty_flow_process"] = zero
    python_component = examples / "poly-py.wasm"
    if python_component.is_file():
        greet = [binary, "call", str(python_component), "greet", "--arg", 'name="Ada"']
        # The first start compiles the component (about 10 s); the next ones are second starts.
        subprocess.run(greet, env=env, check=True, **quiet)
        time.sleep(2.1)
        subprocess.run(greet, env=env, check=True, **quiet)
        results["python_second_start"] = time_process(greet, env, runs)
    else:
        log(f"{python_component} is not built (make polyglot): its second start is left out")
    shutil.rmtree(home, ignore_errors=True)
    return results


def measure_prefect(python, runs, calls, sized_size):
    results = {}
    script = str(HERE / "prefect_workloads.py")

    for workload in ("hits", "distinct"):
        per_call = []
        for run in range(runs):
            with tempfile.TemporaryDirectory(prefix="prefect-home-") as home:
                log(f"Prefect: {workload}, run {run + 1} of {runs}")
                out = subprocess.run([str(python), script, workload, str(calls)], env=prefect_env(home), check=True, capture_output=True, text=True)
                line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
                per_call.append(json.loads(line)["seconds"] / calls)
        results[f"{workload}_per_call"] = statistics.median(per_call)
    times = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="prefect-home-") as home:
            log(f"Prefect: trivial flow, run {run + 1} of {runs}")
            started = time.perf_counter()
            subprocess.run([str(python), script, "trivial"], env=prefect_env(home), check=True, capture_output=True)
            times.append(time.perf_counter() - started)
    results["trivial_process"] = statistics.median(times)
    for label, workload in (("sized", "sized"), ("sized_result", "sized-result")):
        figures = []
        for run in range(runs):
            log(f"Prefect: {workload} of {sized_size} bytes, run {run + 1} of {runs}")
            figures.append(prefect_sized(python, workload, sized_size))
        results[f"{label}_miss"] = statistics.median(miss for miss, _ in figures)
        results[f"{label}_hit"] = statistics.median(hit for _, hit in figures)
    return results


def show(seconds):
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cachehost", required=True, type=Path, help="the cachehost binary (a release build)")
    parser.add_argument("--examples", required=True, type=Path, help="the folder of built examples (bench.wasm, persist-default.wasm, poly-py.wasm)")
    parser.add_argument("--runs", type=int, default=10, help="cachehost runs per figure (default 10)")
    parser.add_argument("--prefect-runs", type=int, default=3, help="Prefect runs per figure (default 3)")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--sized-size", type=int, default=1 << 20, help="bytes of the sized workloads (1 MiB)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    python = ensure_prefect()
    log(f"cachehost: {args.runs} runs per figure")
    binary, examples = str(args.cachehost.resolve()), args.examples.resolve()
    ours = measure_cachehost(binary, examples, args.runs, args.calls, args.sized_size)
    theirs = measure_prefect(python, args.prefect_runs, args.calls, args.sized_size)
    size = f"{args.sized_size >> 20} MiB" if args.sized_size % (1 << 20) == 0 else f"{args.sized_size:,} B"

    rows = [
        (f"cached task, {args.calls:,} same-input calls, per call", "hits_per_call"),
        (f"{args.calls:,} distinct inputs, persisted, per call", "distinct_per_call"),
        ("trivial one-task flow, whole process", "trivial_process"),
        (f"{size} list<u8> input, miss, per call", "sized_miss"),
        (f"{size} list<u8> input, hit, per call", "sized_hit"),
        (f"{size} list<u8> result, miss, per call", "sized_result_miss"),
        (f"{size} list<u8> result, hit, per call", "sized_result_hit"),
        ("demo flow (persist-default), whole process", "demo_process"),
        ("flow making no task call, whole process", "empty_flow_process"),
        ("second start of the Python component (a hit)", "python_second_start"),
    ]
    print(f"{'workload':<48} {'cachehost':>12} {'Prefect 3.9.1':>14} {'Prefect / cachehost':>20}")
    for label, key in rows:
        a, b = ours.get(key), theirs.get(key)
        ratio = "-" if not (a and b) or a <= 0 else f"{b / a:,.1f}x" if b / a < 10 else f"{b / a:,.0f}x"
        print(f"{label:<48} {show(a):>12} {show(b):>14} {ratio:>20}")
    timer = "hyperfine" if shutil.which("hyperfine") else "a Python timing loop"
    print(f"(cachehost: medians of {args.runs} whole-process runs timed with {timer}; Prefect: medians of {args.prefect_runs} runs)")
    if args.json:
        args.json.write_text(json.dumps({"cachehost": ours, "prefect": theirs}, indent=2))


if __name__ == "__main__":
    main()
