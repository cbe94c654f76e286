"""The workload of Lifeline's end-to-end benchmark, run through Globus Compute's
`GlobusComputeEngine` (the engine a Globus Compute endpoint runs, over Parsl's
HighThroughputExecutor) with the same worker count (2 blocks x 4 workers), on this machine alone:
no web service, no AMQP broker, nothing leaves the machine.

    python benches/globus_compute_compare.py [--tasks 10000] [--round-trips 1000] --run-dir DIR

Tasks reach the engine as an endpoint hands them over: a messagepack `Task` holding the
serialized function and arguments, submitted with `engine.submit(GCFuture(task_id), packed,
resource_specification={})`; the future's result is the packed `Result` the endpoint would send
back. The workers' CurveZMQ encryption is on, as an endpoint's default. Prints
`metric: NAME = VALUE UNIT` lines (`workload.py`). Run by scripts/bench, which installs
`globus-compute-endpoint` into a virtual environment of its own and puts its `bin/` first on
PATH, where the engine finds `globus-compute-endpoint` to start its interchange and workers.
"""

import argparse
import uuid
from collections.abc import Callable

from globus_compute_common import messagepack
from globus_compute_common.messagepack.message_types import Result, Task
from globus_compute_endpoint.engines import GlobusComputeEngine
from globus_compute_endpoint.engines.base import GCFuture
from globus_compute_sdk.serialize import ComputeSerializer
from parsl.providers import LocalProvider

import workload
from process_tree import PeakTreeRss, adopt_orphans


def noop() -> None:
    return None


def engine() -> GlobusComputeEngine:
    """Two blocks of 4 workers on this machine, always running."""
    return GlobusComputeEngine(
        label="bench",
        address="127.0.0.1",
        max_workers_per_node=4,
        provider=LocalProvider(init_blocks=2, min_blocks=2, max_blocks=2),
        job_status_kwargs={"strategy": "none"},
    )


def submitter(gce: GlobusComputeEngine) -> Callable[[], GCFuture]:
    """Submits calls of `noop` as an endpoint does: one packed task each, under a new id."""
    serde = ComputeSerializer()
    body = serde.pack_buffers([serde.serialize(noop), serde.serialize(()), serde.serialize({})])

    def submit() -> GCFuture:
        task_id = uuid.uuid4()
        future = GCFuture(task_id)
        packed = messagepack.pack(Task(task_id=task_id, task_buffer=body))
        gce.submit(future, packed, resource_specification={})
        return future

    return submit


def wait(future: GCFuture) -> None:
    """Waits for the packed result and checks that the call returned."""
    result = messagepack.unpack(future.result())
    if not isinstance(result, Result) or result.is_error:
        raise RuntimeError(f"the task failed: {result}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--run-dir", required=True)
    args = parser.parse_args()

    adopt_orphans()
    memory = PeakTreeRss()
    gce = engine()
    gce.start(endpoint_id=uuid.uuid4(), run_dir=args.run_dir)
    try:
        workload.run(
            "globus compute engine",
            submitter(gce),
            wait,
            tasks=args.tasks,
            trips=args.round_trips,
            memory=memory,
        )
    finally:
        gce.shutdown()


if __name__ == "__main__":
    main()
