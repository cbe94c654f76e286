"""Writes BENCHMARKS.md from the `metric:` lines the benchmarks printed (scripts/bench).

    python3 benches/report.py test-output/bench > BENCHMARKS.md

Reads `metric: NAME = VALUE UNIT` lines and `not run: PEER = WHY` lines (a peer that could not
be installed or started) from the files scripts/bench wrote, prints every figure, then Lifeline
beside each peer as a ratio Lifeline / peer for every figure both measured.
"""

import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

FILES = [
    "service",
    "end_to_end",
    "end_to_end_slurm",
    "parsl",
    "globus_compute",
    "celery",
    "python",
    "dashboard",
]


class Peer(NamedTuple):
    label: str  # as in scripts/bench's `not run:` lines
    short: str
    prefix: str  # of its metrics' names


PEERS = [
    Peer("Parsl", "Parsl", "parsl"),
    Peer("Globus Compute (GlobusComputeEngine)", "Globus Compute", "globus compute engine"),
    Peer("Celery (Redis)", "Celery", "celery"),
]

# (figure, Lifeline's metric, the peer's metric after its prefix); {n} is the batch size the
# peer ran.
FIGURES = [
    (
        "throughput, {n} no-op Python tasks",
        "lifeline no-op Python tasks, batch of {n}",
        "no-op Python tasks, batch of {n}",
    ),
    ("round trip p50", "lifeline round trip p50", "round trip p50"),
    ("round trip p99", "lifeline round trip p99", "round trip p99"),
    (
        "start to first result",
        "lifeline start to first result (lifeline up)",
        "start to first result",
    ),
    (
        "peak RSS of the process tree, {n} tasks",
        "lifeline peak RSS of the process tree, batch of {n}",
        "peak RSS of the process tree",
    ),
    (
        "throughput through the Python Executor, {n} no-op tasks",
        "lifeline Python Executor no-op tasks, batch of {n}",
        "no-op Python tasks, batch of {n}",
    ),
    (
        "round trip p50 through the Python Executor",
        "lifeline Python Executor round trip p50",
        "round trip p50",
    ),
    (
        "round trip p99 through the Python Executor",
        "lifeline Python Executor round trip p99",
        "round trip p99",
    ),
]

Metrics = dict[str, tuple[float, str]]


def read(out: Path) -> tuple[Metrics, dict[str, str]]:
    """The figures, and why each peer that did not run did not."""
    metrics: Metrics = {}
    not_run: dict[str, str] = {}
    for name in FILES:
        path = out / f"{name}.txt"
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if m := re.match(r"metric: (.+?) = ([0-9.]+) (\S+)", line):
                metrics[m.group(1)] = (float(m.group(2)), m.group(3))
            elif m := re.match(r"not run: (.+?) = (.*)", line):
                not_run[m.group(1)] = m.group(2)
    return metrics, not_run


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def commit() -> str:
    git = ["git", "rev-parse", "--short", "HEAD"]
    return subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()


def number(value: float) -> str:
    return f"{int(value):,}" if value == int(value) and value >= 1000 else f"{value:g}"


def header() -> None:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
    now = datetime.datetime.now(datetime.timezone.utc)
    print("# Benchmarks\n")
    print("Measured by `scripts/bench` (one run; figures from one machine, shared and noisy, so")
    print("read ratios rather than absolute values). Every Lifeline task records every")
    print("transition durably.\n")
    print(f"- date: {now.strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"- commit: {commit()}")
    print(f"- machine: {os.cpu_count()} cores ({cpu()}), {memory} GiB, ", end="")
    print(f"{platform.system()} {platform.release()}")
    print("- command: `scripts/bench`\n")


def figures(metrics: Metrics) -> None:
    print("| figure | value | unit |")
    print("|---|---:|---|")
    for name, (value, unit) in metrics.items():
        print(f"| {name} | {number(value)} | {unit} |")


def batch(metrics: Metrics) -> str:
    """The batch size the peers' throughput was measured with (scripts/bench runs them all
    with the same)."""
    prefixes = "|".join(re.escape(p.prefix) for p in PEERS)
    for name in metrics:
        if m := re.fullmatch(f"(?:{prefixes}) no-op Python tasks, batch of (\\d+)", name):
            return m.group(1)
    return "10000"


def cell(metrics: Metrics, ours: str, theirs: str) -> str:
    """The peer's figure and the ratio Lifeline / peer, or dashes where it is missing."""
    if theirs not in metrics:
        return "| — | — "
    value = metrics[theirs][0]
    if value == 0:
        return f"| {number(value)} | — "
    return f"| {number(value)} | {metrics[ours][0] / value:.2f} "


def peers(metrics: Metrics, not_run: dict[str, str]) -> None:
    print("\n## Lifeline beside its peers (same machine, same run, 8 workers each)\n")
    print("| figure | Lifeline ", end="")
    print("".join(f"| {p.label} | Lifeline / {p.short} " for p in PEERS) + "|")
    print("|---|---:" + "|---:|---:" * len(PEERS) + "|")
    n = batch(metrics)
    for figure, ours, theirs in FIGURES:
        mine = ours.format(n=n)
        if mine not in metrics:
            continue
        value, unit = metrics[mine]
        line = f"| {figure.format(n=f'{int(n):,}')} ({unit}) | {number(value)} "
        for p in PEERS:
            line += cell(metrics, mine, f"{p.prefix} {theirs.format(n=n)}")
        print(line + "|")
    print("\nFor throughput a ratio above 1 favours Lifeline; for latency, first result and")
    print("memory, below 1. The first result counts from the launch of `lifeline up` on a fresh")
    print("data directory, and from the start of each peer's benchmark process (the interpreter,")
    print("the imports, the start of brokers and workers). Memory is the peak of the summed")
    print("resident sets of the whole process tree, sampled every 100 ms: Lifeline's service,")
    print("agent, managers and workers; each peer's client process with everything it started")
    print("(the executor lives in the client for Parsl and Globus Compute).")
    for p in PEERS:
        if p.label in not_run:
            print(f"\n{p.label} could not run: {not_run[p.label]}")


def main() -> None:
    metrics, not_run = read(Path(sys.argv[1]))
    header()
    figures(metrics)
    peers(metrics, not_run)


if __name__ == "__main__":
    main()
