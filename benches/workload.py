"""The no-op workload of Lifeline's end-to-end benchmark, run through a peer: the first result
after the start, 200 tasks to warm every worker, a batch of tasks submitted at once until every
result is in, then sequential round trips, and the peak memory of the whole process tree.

A peer gives two functions: `submit` sends one call of a no-op function and returns its
future; `wait` blocks until that call's result is in and raises if the call failed.
"""

import math
import time
from collections.abc import Callable
from typing import TypeVar

from process_tree import PeakTreeRss, process_age

Future = TypeVar("Future")

WARM_UP = 200


def metric(name: str, value: float, unit: str) -> None:
    """One `metric: NAME = VALUE UNIT` line, as every benchmark prints them."""
    print(f"metric: {name} = {value:.2f} {unit}", flush=True)


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank percentile, as Lifeline's benchmarks compute it."""
    index = min(len(sorted_values), max(1, math.ceil(len(sorted_values) * q))) - 1
    return sorted_values[index]


def throughput(submit: Callable[[], Future], wait: Callable[[Future], None], n: int) -> float:
    """Tasks per second for `n` calls submitted at once, until the last result is in."""
    start = time.perf_counter()
    futures = [submit() for _ in range(n)]
    for future in futures:
        wait(future)
    return n / (time.perf_counter() - start)


def round_trips(
    submit: Callable[[], Future], wait: Callable[[Future], None], n: int
) -> list[float]:
    """The milliseconds of `n` sequential calls, each from submission to its result, sorted."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        wait(submit())
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


def run(
    peer: str,
    submit: Callable[[], Future],
    wait: Callable[[Future], None],
    *,
    tasks: int,
    trips: int,
    memory: PeakTreeRss,
) -> None:
    """Runs the workload and prints its figures, each named after `peer`."""
    wait(submit())
    metric(f"{peer} start to first result", process_age(), "s")
    throughput(submit, wait, WARM_UP)
    rate = throughput(submit, wait, tasks)
    metric(f"{peer} no-op Python tasks, batch of {tasks}", rate, "tasks/s")
    times = round_trips(submit, wait, trips)
    metric(f"{peer} round trip p50", percentile(times, 0.5), "ms")
    metric(f"{peer} round trip p99", percentile(times, 0.99), "ms")
    metric(f"{peer} peak RSS of the process tree", memory.peak_mib(), "MiB")
