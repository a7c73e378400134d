#!/usr/bin/env python3
"""Large values: cachehost and Prefect 3.9.1 by value size, measured in one run (issue 13).

    python3 bench/sizes.py --cachehost "$CARGO_TARGET_DIR/release/cachehost" --examples build/examples

For each size (default 1 B, 1 KiB, 1 MiB, 16 MiB, 64 MiB, 256 MiB) and each workload of the
bench example (examples/rust/bench) and of bench/prefect_workloads.py:

  * input: `sized`, a cached task (INPUTS, persisted) taking a `list<u8>` (Prefect: `bytes`)
    of that size;
  * result: `sized-result`, a cached task (INPUTS, persisted) returning a `list<u8>` (`bytes`)
    of that size, made from a seed (cachehost: an xorshift fill; Prefect: 64 KiB of seeded
    random bytes repeated);

it measures a miss, a hit, and the peak RSS of every process (`/usr/bin/time -f %M`).

cachehost, whole processes of the release binary (`cachehost run bench.wasm --flow sized
--param size=S --param seed=7 --param n=N`), compiled cache warm:
  * miss = time at n=1 on an empty store - time at n=0 on an empty store (the flow builds
    the input bytes and calls its task once on an empty value, as Prefect's task is called
    once on a tiny input first), so process start, the bytes' making and what only a
    process's first call pays are left out;
  * hit = (time at n=6 - time at n=1) / 5, both on the stored record, once it has settled
    (older than 2 s, as any record of an earlier run is); below 1 MiB, where five hits take
    less than a process start varies, (time at n=101 - time at n=1) / 100 (--small-hits);
  * first hit = time at n=1 on the stored record - time at n=0 on it: the one hit of a process,
    which reads the record file (later hits of the process may use the record it decoded);
  * each time is the median of --runs runs (--large-runs from 64 MiB up); the peak RSS is the
    largest of the miss runs and of the n=6 runs.
  `max_result_size` (default 16 MiB) is raised to max(16 MiB, 2 x size) and the memory limit
  (default 512 MiB) to max(512 MiB, 4 x size), through `[limits]` of a cachehost.toml given
  with `--config` (`--default-limits` keeps both defaults, to show where they stop a size).

Prefect, timed inside its flow run (its process start, ~10 s with its temporary local
server, is left out, which favours Prefect), one PREFECT_HOME per size and workload:
  * miss = the one call of a process on an empty result store;
  * hit = the mean of calls 2 to 6 of a second process on that store (all six are hits).

A run that fails is reported with its message, and the sweep goes on. Output: a markdown
table for inputs and one for results, printed and written to --out (default
$CARGO_TARGET_DIR/cachehost-bench/sizes.md), the figures as JSON beside it.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402  (Prefect's venv and environment, and the time format)

HERE = Path(__file__).resolve().parent
TIME = "/usr/bin/time"
KiB, MiB = 1 << 10, 1 << 20
DEFAULT_SIZES = "1,1KiB,1MiB,16MiB,64MiB,256MiB"
# The store keeps a decoded record only once its file is older than 2 s (host/src/stamp.rs).
SETTLE = 2.1
HITS = 5
WORKLOADS = {"input": "sized", "result": "sized-result"}


def log(message):
    compare.log(message)


def parse_size(text):
    match = re.fullmatch(r"\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size like 16MiB: {text!r}")
    unit = {None: 1, "B": 1, "KiB": KiB, "MiB": MiB, "GiB": 1 << 30}[match.group(2)]
    return int(match.group(1)) * unit


def size_text(size):
    for unit, name in ((1 << 30, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} B"


def rss_text(kib):
    if kib is None:
        return "-"
    mib = kib / 1024
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


class RunFailed(Exception):
    """A measured process failed: the message says how."""


def failure_message(returncode, stderr):
    """One line saying why a process failed: the task run's Failed state, else the error."""
    if returncode < 0:
        return f"killed by signal {-returncode}"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "Finished in state Failed(" in line or "Finished in state Crashed(" in line:
            return line.split("Finished in state ", 1)[1][:300]
    for line in reversed(lines):
        if line.lower().startswith(("error", "traceback")) or "Error" in line:
            return line[:300]
    return (lines[-1][:300] if lines else "") + f" (exit status {returncode})"


def measured(argv, env, timeout):
    """Runs `argv` under /usr/bin/time: (wall seconds, peak RSS in KiB, stdout); RunFailed if it fails."""
    with tempfile.NamedTemporaryFile(prefix="sizes-rss-", suffix=".txt") as rss:
        started = time.perf_counter()
        try:
            out = subprocess.run(
                [TIME, "-f", "%M", "-o", rss.name, *argv], env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise RunFailed(f"timed out after {timeout} s") from None
        seconds = time.perf_counter() - started
        report = Path(rss.name).read_text().split()
    if out.returncode != 0:
        raise RunFailed(failure_message(out.returncode, out.stderr))
    return seconds, int(report[-1]), out.stdout


def ensure_time():
    """GNU time, for peak RSS: installed with apt-get (package `time`) when missing and root."""
    if Path(TIME).is_file():
        return
    if os.geteuid() == 0:
        log("Installing GNU time (apt-get install time) for peak RSS")
        install = ["apt-get", "install", "-y", "time"]
        if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(install, check=True, stdout=subprocess.DEVNULL)
    if not Path(TIME).is_file():
        sys.exit(f"{TIME} is missing: install the Debian package `time` (apt-get install time)")


def limits_toml(size, default_limits):
    if default_limits:
        return ""
    max_result = max(16 * MiB, 2 * size)
    memory = max(512 * MiB, 4 * size)
    return f"[limits]\nmax_result_size = {max_result}\nmemory = {memory}\n"


def seconds_text(seconds):
    """A time, or that it was lost in the noise of whole processes (a negative difference)."""
    if seconds is not None and seconds < 0:
        return "< noise"
    return compare.show(seconds)


def measure_cachehost(binary, examples, sizes, runs_for, hits_for, default_limits, timeout):
    home = Path(tempfile.mkdtemp(prefix="cachehost-sizes-"))
    env = dict(os.environ, CACHEHOST_HOME=str(home), NO_COLOR="1")
    env.pop("CACHEHOST_LOCAL_STORAGE_PATH", None)
    bench = str(examples / "bench.wasm")
    storage = home / "storage"
    config = home / "cachehost.toml"

    def run(flow, size, n):
        argv = [binary, "run", bench, "--config", str(config), "--flow", flow]
        argv += ["--param", f"size={size}", "--param", "seed=7", "--param", f"n={n}"]
        return measured(argv, env, timeout)

    # Warm the compiled cache and the digest cache (which trusts files older than 2 s).
    config.write_text(limits_toml(0, default_limits))
    run("sized", 1, 1)
    time.sleep(SETTLE)
    run("sized", 1, 1)
    results = {}
    for kind, flow in WORKLOADS.items():
        for size in sizes:
            config.write_text(limits_toml(size, default_limits))
            runs, hits = runs_for(size), hits_for(size)
            log(f"cachehost: {kind} of {size_text(size)}, {runs} run(s), {hits} hits")
            times = {"miss": [], "zero": [], "zero_stored": [], "one": [], "six": []}
            rss = {"miss": 0, "hit": 0}
            entry = {"runs": runs, "hits": hits}
            try:
                for _ in range(runs):
                    # The flow's warm-up call (on an empty value) misses in both runs on an
                    # empty store, and hits in both runs on the stored records.
                    shutil.rmtree(storage, ignore_errors=True)
                    seconds, _, _ = run(flow, size, 0)
                    times["zero"].append(seconds)
                    shutil.rmtree(storage, ignore_errors=True)
                    seconds, kib, _ = run(flow, size, 1)
                    times["miss"].append(seconds)
                    rss["miss"] = max(rss["miss"], kib)
                    time.sleep(SETTLE)
                    seconds, _, _ = run(flow, size, 0)
                    times["zero_stored"].append(seconds)
                    seconds, _, _ = run(flow, size, 1)
                    times["one"].append(seconds)
                    seconds, kib, _ = run(flow, size, 1 + hits)
                    times["six"].append(seconds)
                    rss["hit"] = max(rss["hit"], kib)
                median = {name: statistics.median(values) for name, values in times.items()}
                entry.update(
                    miss=median["miss"] - median["zero"],
                    hit=(median["six"] - median["one"]) / hits,
                    first_hit=median["one"] - median["zero_stored"],
                    miss_process=median["miss"],
                    rss_miss_kib=rss["miss"],
                    rss_hit_kib=rss["hit"],
                    times=times,
                )
            except RunFailed as failed:
                entry["error"] = str(failed)
                log(f"cachehost: {kind} of {size_text(size)} failed: {failed}")
            shutil.rmtree(storage, ignore_errors=True)
            results[(kind, size)] = entry
    shutil.rmtree(home, ignore_errors=True)
    return results


def measure_prefect(python, sizes, timeout):
    results = {}
    for kind, workload in WORKLOADS.items():
        for size in sizes:
            log(f"Prefect: {kind} of {size_text(size)}, a miss, then hits in a second process")
            rss = []

            def run(argv, env):
                _, kib, out = measured(argv, env, timeout)
                rss.append(kib)
                return out

            try:
                miss, hit = compare.prefect_sized(python, workload, size, HITS, run)
                entry = {"miss": miss, "hit": hit, "rss_miss_kib": rss[0], "rss_hit_kib": rss[1]}
            except RunFailed as failed:
                entry = {"error": str(failed)}
                log(f"Prefect: {kind} of {size_text(size)} failed: {failed}")
            results[(kind, size)] = entry
    return results


def ratio(theirs, ours):
    if theirs is None or not ours or ours <= 0:
        return "-"
    return f"{theirs / ours:,.1f}x" if theirs / ours < 10 else f"{theirs / ours:,.0f}x"


def cells(entry, first_hit=False):
    """(miss, hit, [first hit,] peak RSS) of one measurement; "failed" where it failed (the message follows the
    table)."""
    if entry is None:
        return ["-"] * (4 if first_hit else 3)
    missing = "failed" if "error" in entry else "-"

    def figure(name, show):
        return show(entry[name]) if name in entry else missing

    rss = f"{figure('rss_miss_kib', rss_text)} / {figure('rss_hit_kib', rss_text)}"
    first = [figure("first_hit", seconds_text)] if first_hit else []
    return [figure("miss", seconds_text), figure("hit", seconds_text), *first, rss]


def table(kind, sizes, ours, theirs):
    thing = "`list<u8>` input" if kind == "input" else "`list<u8>` result (Prefect: `bytes`)"
    header = [
        f"{thing}",
        "cachehost miss",
        "cachehost hit",
        "cachehost first hit in a process",
        "cachehost peak RSS (miss / hit run)",
        "Prefect miss",
        "Prefect hit",
        "Prefect peak RSS (miss / hit run)",
        "Prefect / cachehost, miss",
        "Prefect / cachehost, hit",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    failures = []
    for size in sizes:
        a, b = ours.get((kind, size)), theirs.get((kind, size))
        row = [size_text(size), *cells(a, first_hit=True), *cells(b)]
        row += [ratio((b or {}).get("miss"), (a or {}).get("miss")), ratio((b or {}).get("hit"), (a or {}).get("hit"))]
        lines.append("| " + " | ".join(row) + " |")
        for who, entry in (("cachehost", a), ("Prefect", b)):
            if entry and "error" in entry:
                failures.append(f"- {who}, {kind} of {size_text(size)}: {entry['error']}")
    return "\n".join(lines + ([""] + failures if failures else []))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cachehost", required=True, type=Path, help="the cachehost binary (a release build)")
    parser.add_argument("--examples", required=True, type=Path, help="the folder holding bench.wasm")
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated sizes (default {DEFAULT_SIZES})")
    # Nine: on a VM whose fresh pages cost a host-side fault, a whole process holding 64 MiB
    # or more now and then takes twice its usual time, and a median of three follows those.
    parser.add_argument("--runs", type=int, default=9, help="cachehost runs per figure below 64 MiB (default 9)")
    parser.add_argument("--large-runs", type=int, default=9, help="cachehost runs per figure from 64 MiB (default 9)")
    parser.add_argument("--small-hits", type=int, default=100, help="cachehost hits timed below 1 MiB (default 100)")
    parser.add_argument("--no-prefect", action="store_true", help="measure cachehost only")
    parser.add_argument("--default-limits", action="store_true", help="keep max_result_size and memory at defaults")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a process may take (default 1800)")
    parser.add_argument("--label", default="", help="a line printed above the tables (e.g. the commit)")
    default_out = Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "cachehost-bench" / "sizes.md"
    parser.add_argument("--out", type=Path, default=default_out, help=f"the markdown file (default {default_out})")
    args = parser.parse_args()
    sizes = [parse_size(text) for text in args.sizes.split(",")]

    ensure_time()
    python = None if args.no_prefect else compare.ensure_prefect()
    started = time.time()
    ours = measure_cachehost(
        str(args.cachehost.resolve()),
        args.examples.resolve(),
        sizes,
        lambda size: args.large_runs if size >= 64 * MiB else args.runs,
        lambda size: args.small_hits if size < MiB else HITS,
        args.default_limits,
        args.timeout,
    )
    theirs = {} if python is None else measure_prefect(python, sizes, args.timeout)
    limits = "max_result_size = max(16 MiB, 2 x size), memory = max(512 MiB, 4 x size)"
    if args.default_limits:
        limits = "default limits"
    text = "\n\n".join(
        part
        for part in (
            args.label,
            "### Inputs",
            table("input", sizes, ours, theirs),
            "### Results",
            table("result", sizes, ours, theirs),
            f"cachehost: whole processes, medians of {args.runs} runs ({args.large_runs} from 64 MiB), "
            f"hit = (time at n={1 + HITS} - time at n=1) / {HITS} ({args.small_hits} hits below 1 MiB), "
            f"miss = time at n=1 - time at n=0, {limits}. Prefect 3.9.1: timed inside its flow run, one run, "
            f"hit = mean of calls 2 to {1 + HITS} of a process on the stored result. "
            f"Sweep took {time.time() - started:.0f} s.",
        )
        if part
    )
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    figures = {
        who: {f"{kind} {size}": entry for (kind, size), entry in data.items()}
        for who, data in (("cachehost", ours), ("prefect", theirs))
    }
    args.out.with_suffix(".json").write_text(json.dumps(figures, indent=2))
    log(f"Written to {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
