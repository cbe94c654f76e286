"""The end-to-end workload through Lifeline's Python client: the real `lifeline serve` and a
local endpoint with 2 nodes x 4 workers (as the end-to-end benchmark and the Parsl comparison
have), driven by `lifeline.Executor`.

    python benches/python_client.py [--binary target/release/lifeline] [--tasks 10000] \
        [--round-trips 1000]

Prints `metric: NAME = VALUE UNIT` lines, as Lifeline's other benchmarks do: the throughput of
`--tasks` no-op tasks submitted with `Executor.submit` until every result is in, and the p50 and
p99 of `--round-trips` sequential `submit(...).result()` calls. Run by scripts/bench, which
installs the package (`pip install ./python`) into a virtual environment of its own.
"""

import argparse
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lifeline import Client, Executor

REPO = Path(__file__).resolve().parents[1]
CONFIG = '[[executor]]\nlabel = "bench"\nnodes = 2\nworkers_per_node = 4\n'


def noop():
    return None


def environment(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}
    env.update(extra)
    return env


def start_service(binary, directory):
    serve = subprocess.Popen(
        [
            binary,
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            str(directory / "data"),
            "--dashboard-dir",
            str(directory / "no-dashboard"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=environment(LIFELINE_LOG="warn", LIFELINE_MAX_PAYLOAD_BYTES="67108864"),
    )
    for line in serve.stdout:
        if line.startswith("Lifeline is listening on "):
            url = line[len("Lifeline is listening on ") :].strip().rstrip("/")
            break
    else:
        sys.exit("lifeline serve stopped before it listened")
    threading.Thread(target=lambda: [None for _ in serve.stdout], daemon=True).start()
    token = (directory / "data" / "token").read_text().strip()
    return serve, url, token


def start_agent(binary, directory, url, client):
    registered = client.register_endpoint("bench")
    agent_dir = directory / "agent"
    agent_dir.mkdir()
    token_file = agent_dir / "endpoint.token"
    token_file.touch(mode=0o600)
    token_file.write_text(registered["token"])
    (agent_dir / "endpoint.toml").write_text(CONFIG)
    agent = subprocess.Popen(
        [
            binary,
            "endpoint",
            "start",
            "--service",
            url,
            "--token-file",
            str(token_file),
            "--dir",
            str(agent_dir),
            "--config",
            str(agent_dir / "endpoint.toml"),
        ],
        stdout=subprocess.DEVNULL,
        env=environment(LIFELINE_LOG="warn"),
    )
    while not any(e["name"] == "bench" and e["online"] for e in client.endpoints()):
        time.sleep(0.05)
    return agent


def percentile(sorted_values, q):
    index = min(len(sorted_values), max(1, math.ceil(len(sorted_values) * q))) - 1
    return sorted_values[index]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(REPO / "target" / "release" / "lifeline"))
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--round-trips", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        serve, url, token = start_service(args.binary, directory)
        client = Client(url, token)
        agent = start_agent(args.binary, directory, url, client)
        try:
            print(
                f"Lifeline's Python client: one local endpoint, 2 nodes x 4 workers, "
                f"{os.cpu_count()} cores",
                flush=True,
            )
            with Executor(endpoint="bench", client=client) as ex:
                # Warm up: every worker started, the function registered.
                for f in [ex.submit(noop) for _ in range(200)]:
                    f.result()

                start = time.perf_counter()
                futures = [ex.submit(noop) for _ in range(args.tasks)]
                for f in futures:
                    f.result()
                elapsed = time.perf_counter() - start
                rate = args.tasks / elapsed
                print(
                    f"metric: lifeline Python Executor no-op tasks, batch of {args.tasks} = "
                    f"{rate:.1f} tasks/s",
                    flush=True,
                )

                times = []
                for _ in range(args.round_trips):
                    t = time.perf_counter()
                    ex.submit(noop).result()
                    times.append((time.perf_counter() - t) * 1000)
                times.sort()
                print(
                    f"metric: lifeline Python Executor round trip p50 = "
                    f"{percentile(times, 0.5):.2f} ms",
                    flush=True,
                )
                print(
                    f"metric: lifeline Python Executor round trip p99 = "
                    f"{percentile(times, 0.99):.2f} ms",
                    flush=True,
                )
        finally:
            agent.terminate()
            agent.wait()
            serve.terminate()
            serve.wait()
            client.close()


if __name__ == "__main__":
    main()
