"""The workload of Lifeline's end-to-end benchmark, run through Parsl's HighThroughputExecutor
with the same worker count (2 blocks x 4 workers), for a side-by-side comparison.

    python parsl_compare.py [--tasks 10000] [--round-trips 1000]

Prints `metric: NAME = VALUE UNIT` lines, as Lifeline's benchmarks do. Run by scripts/bench,
which installs Parsl into a virtual environment of its own.
"""
import argparse
import statistics
import time

import parsl
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider


def noop():
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--run-dir", default="parsl-runinfo")
    args = parser.parse_args()

    config = Config(
        executors=[
            HighThroughputExecutor(
                label="bench",
                address="127.0.0.1",
                max_workers_per_node=4,
                provider=LocalProvider(init_blocks=2, min_blocks=2, max_blocks=2),
            )
        ],
        run_dir=args.run_dir,
        strategy="none",
    )
    dfk = parsl.load(config)
    app = parsl.python_app(noop)
    try:
        # Warm up: every worker started.
        for f in [app() for _ in range(200)]:
            f.result()

        start = time.perf_counter()
        futures = [app() for _ in range(args.tasks)]
        for f in futures:
            f.result()
        elapsed = time.perf_counter() - start
        print(f"metric: parsl no-op Python tasks, batch of {args.tasks} = {args.tasks / elapsed:.1f} tasks/s", flush=True)

        times = []
        for _ in range(args.round_trips):
            t = time.perf_counter()
            app().result()
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"metric: parsl round trip p50 = {statistics.median(times):.2f} ms", flush=True)
        print(f"metric: parsl round trip p99 = {p99:.2f} ms", flush=True)
    finally:
        dfk.cleanup()


if __name__ == "__main__":
    main()
