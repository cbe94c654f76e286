"""The workload of Lifeline's end-to-end benchmark, run through Parsl's HighThroughputExecutor
with the same worker count (2 blocks x 4 workers), for a side-by-side comparison.

    python benches/parsl_compare.py [--tasks 10000] [--round-trips 1000] [--run-dir DIR]

Prints `metric: NAME = VALUE UNIT` lines, as Lifeline's benchmarks do (`workload.py`). Run by
scripts/bench, which installs Parsl into a virtual environment of its own and puts its `bin/`
first on PATH, where the local provider finds `process_worker_pool.py`.
"""

import argparse

import parsl
from parsl.config import Config
from parsl.dataflow.futures import AppFuture
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

import workload
from process_tree import PeakTreeRss, adopt_orphans


def noop() -> None:
    return None


def config(run_dir: str) -> Config:
    """Two blocks of 4 workers on this machine, always running."""
    executor = HighThroughputExecutor(
        label="bench",
        address="127.0.0.1",
        max_workers_per_node=4,
        provider=LocalProvider(init_blocks=2, min_blocks=2, max_blocks=2),
    )
    return Config(executors=[executor], run_dir=run_dir, strategy="none")


def wait(future: AppFuture) -> None:
    future.result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--run-dir", default="parsl-runinfo")
    args = parser.parse_args()

    adopt_orphans()
    memory = PeakTreeRss()
    dfk = parsl.load(config(args.run_dir))
    app = parsl.python_app(noop)
    try:
        workload.run("parsl", app, wait, tasks=args.tasks, trips=args.round_trips, memory=memory)
    finally:
        dfk.cleanup()


if __name__ == "__main__":
    main()
