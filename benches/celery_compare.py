"""The workload of Lifeline's end-to-end benchmark, run through Celery with a Redis broker and
result backend, with the same worker count (one worker of 8 prefork processes).

    python benches/celery_compare.py [--tasks 10000] [--round-trips 1000] --dir DIR

Starts a private `redis-server` on a free loopback port (no persistence, its files in DIR) and a
Celery worker (`celery -A celery_compare worker --pool prefork --concurrency 8`, without gossip,
mingle or heartbeats, which one worker alone does not need), submits with `noop.delay()` and
reads each result with `AsyncResult.get()`; both stop afterwards. Prints
`metric: NAME = VALUE UNIT` lines (`workload.py`). Run by scripts/bench, which installs
`celery[redis]` into a virtual environment of its own and Debian's `redis-server`.
"""

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from celery import Celery
from celery.result import AsyncResult

import workload
from process_tree import PeakTreeRss, adopt_orphans

BROKER = "CELERY_COMPARE_BROKER"
WORKERS = 8

app = Celery("celery_compare", broker=os.environ.get(BROKER), backend=os.environ.get(BROKER))


@app.task(name="noop")
def noop() -> None:
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def process(command: list[str], **options: object) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, terminated and waited for when the block ends."""
    child = subprocess.Popen(command, **options)  # type: ignore[call-overload]
    try:
        yield child
    finally:
        child.terminate()
        child.wait(timeout=30)


def redis_command(port: int, directory: Path) -> list[str]:
    """A redis-server on loopback alone, keeping nothing on disk."""
    return [
        "redis-server",
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
        "--loglevel", "warning",
    ]  # fmt: skip


def wait_for_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def worker_command() -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "celery_compare", "worker",
        "--pool", "prefork", "--concurrency", str(WORKERS),
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--loglevel", "warning",
    ]  # fmt: skip


def submit() -> AsyncResult:
    return noop.delay()


def wait(result: AsyncResult) -> None:
    result.get(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()

    adopt_orphans()
    memory = PeakTreeRss()
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    app.conf.update(broker_url=url, result_backend=url)
    here = Path(__file__).resolve().parent
    environment = {**os.environ, BROKER: url, "PYTHONPATH": str(here)}
    with process(redis_command(port, Path(args.dir))):
        wait_for_redis(url)
        with process(worker_command(), cwd=here, env=environment):
            workload.run(
                "celery", submit, wait, tasks=args.tasks, trips=args.round_trips, memory=memory
            )


if __name__ == "__main__":
    main()
