#!/usr/bin/env python3
"""Workers on a Redis queue (issue 14): throughput, the overhead a call pays, and value sizes.

    python3 bench/workers.py --cachehost "$CARGO_TARGET_DIR/release/cachehost" --examples build/examples

Every figure comes from whole processes of the release binary, with a redis-server of its own
on a free port of 127.0.0.1 and `cachehost worker` processes on this machine, each with a home
of its own (so each fetches the components by digest once and compiles them into its own
compiled cache, which stays warm between the runs of the bench); each run starts on an empty
result storage folder, so every call misses.

  * throughput: `run concurrency.wasm --flow fan-out --param n=CALLS --param ms=MS`, a flow
    that submits CALLS calls of `work`, which sleeps MS ms; on 1, 2 and 4 workers (each
    `--concurrency` CONCURRENCY), and locally without an executor for comparison. Calls per
    second = CALLS / the run's wall time (the process start is inside it).
  * overhead: `--flow chain --param n=N --param ms=0`, N plain calls one after the other, each
    waiting for the last: per call = (time at N - time at 1) / (N - 1), locally and through one
    worker; the overhead is the difference.
  * sizes: `run bench.wasm --flow sized --param size=S --param seed=7 --param n=1`, one call of
    a task taking S bytes, locally and through one worker started for that size (after one
    untimed 1-byte call, so its session is loaded): the wall time, the peak RSS of the flow's
    process (/usr/bin/time) and the worker's (VmHWM of /proc/<pid>/status).

Each time is the median of --runs runs. A run that fails is reported with its message and the
bench goes on. Output: markdown tables, printed and written to --out (default
$CARGO_TARGET_DIR/cachehost-bench/workers.md), and the figures as JSON beside it.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sizes  # noqa: E402  (measured runs, limits, size and RSS formats)

KiB, MiB = sizes.KiB, sizes.MiB
DEFAULT_SIZES = "1,1KiB,1MiB,16MiB,64MiB,256MiB"


def log(message):
    sizes.log(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, what, process, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited with status {process.returncode} before it listened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


class Redis:
    """A redis-server of the bench, without persistence."""

    def __init__(self):
        if shutil.which("redis-server") is None:
            sys.exit("redis-server is missing: run `make test-servers` (Debian's redis-server package)")
        self.port = free_port()
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, "redis-server", self.process)
        self.url = f"redis://127.0.0.1:{self.port}"

    def stop(self):
        self.process.terminate()
        self.process.wait()


class Workers:
    """`count` worker processes on `redis`, each with a home under `root`."""

    def __init__(self, binary, redis, root, count, concurrency, prefix="w"):
        self.processes = []
        self.logs = []
        root.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            name = f"{prefix}{index + 1}"
            env = dict(os.environ, CACHEHOST_HOME=str(root / f"home-{name}"), NO_COLOR="1")
            log_path = root / f"{name}.log"
            argv = [binary, "worker", "--queue", redis.url, "--name", name, "--concurrency", str(concurrency)]
            self.processes.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log_path.open("w")))
            self.logs.append(log_path)
        deadline = time.monotonic() + 60
        for process, log_path in zip(self.processes, self.logs):
            while "is taking task calls" not in log_path.read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"a worker did not start:\n{log_path.read_text()}")
                time.sleep(0.05)

    def peak_rss_kib(self):
        """The largest VmHWM of the workers, in KiB."""
        peaks = []
        for process in self.processes:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]))
        return max(peaks) if peaks else None

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Bench:
    """Runs of one binary, each on an empty result storage folder."""

    def __init__(self, binary, root, timeout):
        self.binary = binary
        self.root = root
        self.timeout = timeout
        self.count = 0

    def run(self, component, flow, params, executor=None, config=None):
        """(wall seconds, peak RSS KiB) of one run; sizes.RunFailed if it fails."""
        self.count += 1
        storage = self.root / f"storage-{self.count}"
        env = dict(
            os.environ,
            CACHEHOST_HOME=str(self.root / "home-flow"),
            CACHEHOST_LOCAL_STORAGE_PATH=str(storage),
            NO_COLOR="1",
        )
        argv = [self.binary, "run", component, "--flow", flow]
        if config is not None:
            argv += ["--config", str(config)]
        for name, value in params.items():
            argv += ["--param", f"{name}={value}"]
        if executor is not None:
            argv += ["--executor", executor, "--executor-timeout", f"{self.timeout}s"]
        try:
            seconds, rss, _ = sizes.measured(argv, env, self.timeout)
        finally:
            shutil.rmtree(storage, ignore_errors=True)
        return seconds, rss

    def median(self, runs, *args, **kwargs):
        """The median wall time of `runs` runs and the largest peak RSS."""
        results = [self.run(*args, **kwargs) for _ in range(runs)]
        return statistics.median(r[0] for r in results), max(r[1] for r in results)


def attempt(what, measure):
    """`measure()`, or the failure's message, logged; the bench goes on."""
    try:
        return {"ok": measure()}
    except sizes.RunFailed as failure:
        log(f"{what} failed: {failure}")
        return {"failed": str(failure)}


def throughput(bench, redis, args, concurrency_wasm):
    rows = []
    params = {"n": args.calls, "ms": args.ms}
    local = attempt("local fan-out", lambda: bench.median(args.runs, concurrency_wasm, "fan-out", params))
    rows.append({"workers": 0, **local})
    log(f"throughput, local: {local}")
    for count in args.workers:
        workers = Workers(bench.binary, redis, bench.root / f"throughput-{count}", count, args.concurrency)
        try:
            # A first run fetches and compiles the components on every worker; it is not timed.
            attempt("warm-up", lambda: bench.run(concurrency_wasm, "fan-out", {"n": 4 * count, "ms": 0}, redis.url))
            result = attempt(
                f"fan-out on {count} workers",
                lambda: bench.median(args.runs, concurrency_wasm, "fan-out", params, executor=redis.url),
            )
        finally:
            workers.stop()
        rows.append({"workers": count, **result})
        log(f"throughput, {count} workers: {result}")
    return rows


def overhead(bench, redis, args, concurrency_wasm):
    counts = sorted(set([1, *args.counts]))
    local, remote = {}, {}
    workers = Workers(bench.binary, redis, bench.root / "overhead", 1, args.concurrency)
    try:
        attempt("warm-up", lambda: bench.run(concurrency_wasm, "chain", {"n": 2, "ms": 0}, redis.url))
        for n in counts:
            params = {"n": n, "ms": 0}
            local[n] = attempt(f"local chain n={n}", lambda: bench.median(args.runs, concurrency_wasm, "chain", params))
            remote[n] = attempt(
                f"chain n={n} on a worker",
                lambda: bench.median(args.runs, concurrency_wasm, "chain", params, executor=redis.url),
            )
            log(f"overhead, n={n}: local {local[n]}, worker {remote[n]}")
    finally:
        workers.stop()
    return counts, local, remote


def size_sweep(bench, redis, args, bench_wasm):
    rows = []
    for size in args.sizes:
        config = bench.root / f"limits-{size}.toml"
        config.write_text(sizes.limits_toml(size, False))
        params = {"size": size, "seed": 7, "n": 1}
        runs = args.runs if size < 64 * MiB else 1
        local = attempt(f"local {size}", lambda: bench.median(runs, bench_wasm, "sized", params, config=config))
        # A fresh process per size (its peak RSS is this size's), sharing one home: its
        # compiled cache is warm, and a first call loads the session before the timed one.
        workers = Workers(bench.binary, redis, bench.root / "sizes", 1, args.concurrency)
        try:
            attempt("warm-up", lambda: bench.run(bench_wasm, "sized", {"size": 1, "seed": 7, "n": 1}, redis.url))
            remote = attempt(
                f"worker {size}",
                lambda: bench.median(runs, bench_wasm, "sized", params, executor=redis.url, config=config),
            )
            worker_rss = workers.peak_rss_kib()
        finally:
            workers.stop()
        rows.append({"size": size, "local": local, "worker": remote, "worker_rss_kib": worker_rss})
        log(f"size {sizes.size_text(size)}: local {local}, worker {remote}, worker RSS {worker_rss} KiB")
    return rows


def seconds(result):
    return result["ok"][0] if "ok" in result else None


def cell(result, show=lambda r: f"{r['ok'][0]:.3f} s"):
    return show(result) if "ok" in result else f"failed: {result['failed'][:120]}"


def report(args, rows, counts, local, remote, size_rows):
    lines = [
        f"Throughput: {args.calls} submitted calls of a {args.ms} ms task (`fan-out`), "
        f"each worker `--concurrency {args.concurrency}`, median of {args.runs} runs",
        "",
        "| where | wall time | calls/s | bound by sleeping (workers x concurrency / ms) |",
        "|---|---|---|---|",
    ]
    for row in rows:
        where = "local, no executor" if row["workers"] == 0 else f"{row['workers']} workers"
        bound = "-" if row["workers"] == 0 else f"{row['workers'] * args.concurrency * 1000 / args.ms:.0f}/s"
        rate = f"{args.calls / seconds(row):.0f}" if seconds(row) else "-"
        lines.append(f"| {where} | {cell(row)} | {rate} | {bound} |")
    lines += [
        "",
        f"Overhead: `chain`, N plain calls of `work` with ms=0 one after another, median of {args.runs} runs",
        "",
        "| N | local | through 1 worker |",
        "|---|---|---|",
    ]
    for n in counts:
        lines.append(f"| {n} | {cell(local[n])} | {cell(remote[n])} |")
    top = counts[-1]
    if top > 1 and all(seconds(d[k]) is not None for d in (local, remote) for k in (1, top)):
        per_local = (seconds(local[top]) - seconds(local[1])) / (top - 1)
        per_remote = (seconds(remote[top]) - seconds(remote[1])) / (top - 1)
        lines += [
            "",
            f"Per call, (time at {top} - time at 1) / {top - 1}: local {per_local * 1e3:.3f} ms, "
            f"through a worker {per_remote * 1e3:.3f} ms: the queue adds {(per_remote - per_local) * 1e3:.3f} ms",
        ]
    lines += [
        "",
        "Sizes: one call of `sized` (a task taking S bytes), on an empty store, one fresh worker",
        "",
        "| size | local | through a worker | flow's peak RSS, local | flow's peak RSS, worker run | worker's peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for row in size_rows:
        rss = lambda r: sizes.rss_text(r["ok"][1])  # noqa: E731
        lines.append(
            f"| {sizes.size_text(row['size'])} | {cell(row['local'])} | {cell(row['worker'])} | "
            f"{cell(row['local'], rss)} | {cell(row['worker'], rss)} | {sizes.rss_text(row['worker_rss_kib'])} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cachehost", required=True, help="the release binary")
    parser.add_argument("--examples", required=True, type=Path, help="the folder of concurrency.wasm and bench.wasm")
    parser.add_argument("--calls", type=int, default=1000, help="submitted calls of the throughput runs")
    parser.add_argument("--ms", type=int, default=20, help="how long each call of the throughput runs sleeps")
    parser.add_argument(
        "--workers", type=lambda t: [int(n) for n in t.split(",")], default=[1, 2, 4], help="worker counts"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="calls each worker runs at once")
    parser.add_argument(
        "--counts", type=lambda t: [int(n) for n in t.split(",")], default=[1, 10, 100, 1000], help="chain lengths"
    )
    parser.add_argument(
        "--sizes",
        type=lambda t: [sizes.parse_size(s) for s in t.split(",")],
        default=[sizes.parse_size(s) for s in DEFAULT_SIZES.split(",")],
        help=f"value sizes (default {DEFAULT_SIZES})",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (the median is shown)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds before a run counts as failed")
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    parser.add_argument("--out", type=Path, default=target / "cachehost-bench" / "workers.md")
    args = parser.parse_args()
    sizes.ensure_time()
    concurrency_wasm = str((args.examples / "concurrency.wasm").resolve())
    bench_wasm = str((args.examples / "bench.wasm").resolve())
    root = Path(tempfile.mkdtemp(prefix="cachehost-workers-"))
    bench = Bench(os.path.abspath(args.cachehost), root, args.timeout)
    redis = Redis()
    try:
        rows = throughput(bench, redis, args, concurrency_wasm)
        counts, local, remote = overhead(bench, redis, args, concurrency_wasm)
        size_rows = size_sweep(bench, redis, args, bench_wasm)
    finally:
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)
    text = report(args, rows, counts, local, remote, size_rows)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    figures = {"throughput": rows, "overhead": {"local": local, "worker": remote}, "sizes": size_rows}
    args.out.with_suffix(".json").write_text(json.dumps(figures, indent=2, default=str))
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
