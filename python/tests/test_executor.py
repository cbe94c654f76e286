"""``lifeline.Executor`` and its futures against the real service and a real local endpoint."""

from __future__ import annotations

import concurrent.futures
import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import lifeline
from lifeline import Client, Executor, ShellFunction, TaskFailed, TaskFuture, Transition

from .conftest import PATIENCE, Agent


def add(a: int, b: int) -> int:
    return a + b


def noop() -> None:
    return None


def fails(message: str) -> None:
    raise ValueError(message)


def sleeps(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def crashes_once(marker: str) -> str:
    # The first attempt kills its own worker, as a segfault would: a system failure under a
    # running function, retried on the next attempt.
    import os

    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), 9)
    return "survived"


def record_state(history: list[str], transition: Transition) -> None:
    history.append(transition.state)


def wait_for_state(future: TaskFuture, state: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while future.state != state:
        assert time.monotonic() < deadline, f"{future!r} never became {state}"
        time.sleep(0.01)


@pytest.fixture
def executor(client: Client, endpoint: Agent) -> Iterator[Executor]:
    with Executor(endpoint="local", client=client) as ex:
        yield ex


def test_submit_result_and_the_live_state(executor: Executor) -> None:
    future = executor.submit(add, 1, 2)
    seen: list[Transition] = []
    future.add_state_callback(seen.append)
    assert future.result(timeout=PATIENCE) == 3
    task_id = future.task_id_ready(timeout=0)
    assert task_id == future.task_id
    assert future.task_group_id in executor.task_group_ids
    assert future.state == "success"
    assert future.attempt == 1
    assert not future.running()
    states = [t.state for t in seen]
    assert states == [
        "received",
        "dispatched-to-ep",
        "waiting-for-nodes",
        "waiting-for-launch",
        "running",
        "success",
    ]
    assert [t.previous for t in seen] == [None, *states[:-1]]
    assert all(t.task_id == task_id for t in seen)
    # A callback added later hears the whole story at once.
    late: list[str] = []
    future.add_state_callback(lambda t: late.append(t.state))
    assert late == states


def test_a_user_exception_is_task_failed_with_the_traceback(executor: Executor) -> None:
    future = executor.submit(fails, "bad input")
    error = future.exception(timeout=PATIENCE)
    assert isinstance(error, TaskFailed)
    assert "ValueError: bad input" in error.traceback
    assert "raise ValueError(message)" in error.traceback
    assert future.state == "failed"
    with pytest.raises(TaskFailed):
        future.result()


def test_a_killed_worker_is_retried_and_the_future_shows_it(
    client: Client, endpoint: Agent, tmp_path: Path
) -> None:
    with Executor(endpoint="local", client=client, max_retries=2) as ex:
        future = ex.submit(crashes_once, str(tmp_path / "crashed"))
        assert future.result(timeout=PATIENCE) == "survived"
        assert future.attempt == 2
        path = [(t.state, t.attempt) for t in future.transitions]
        assert ("running", 1) in path
        assert path.index(("waiting-for-nodes", 2)) == path.index(("running", 1)) + 1
        retry = path.index(("waiting-for-nodes", 2))
        assert "worker" in (future.transitions[retry].reason or "")
        assert path[-1] == ("success", 2)


def test_cancel_a_running_task(executor: Executor) -> None:
    future = executor.submit(sleeps, 60)
    wait_for_state(future, "running")
    assert future.running()
    assert future.cancel()
    assert future.cancelled()
    assert future.state == "cancelled"
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(timeout=0)
    assert executor.client.get_task(future.task_id_ready())["status"] == "cancelled"
    # A finished future cannot be cancelled.
    done = executor.submit(add, 1, 1)
    done.result(timeout=PATIENCE)
    assert not done.cancel()


def test_map_as_completed_and_wait(executor: Executor) -> None:
    assert list(executor.map(add, range(20), range(20), timeout=PATIENCE)) == [
        2 * i for i in range(20)
    ]
    futures = [executor.submit(sleeps, 0.01 * (i % 3)) for i in range(12)]
    finished = list(concurrent.futures.as_completed(futures, timeout=PATIENCE))
    assert sorted(map(id, finished)) == sorted(map(id, futures))
    slow = executor.submit(sleeps, 60)
    quick = executor.submit(add, 2, 2)
    done, not_done = concurrent.futures.wait(
        [slow, quick], timeout=PATIENCE, return_when=concurrent.futures.FIRST_COMPLETED
    )
    assert done == {quick}
    assert not_done == {slow}
    assert slow.cancel()
    done, _ = concurrent.futures.wait([slow], timeout=PATIENCE)
    assert done == {slow}


def test_shell_functions_and_registered_ids(executor: Executor) -> None:
    echo = executor.submit(ShellFunction("echo {word}"), word="hi")
    assert echo.result(timeout=PATIENCE)["stdout"] == "hi\n"
    function_id = executor.register_function(add)
    future = executor.submit_to_registered_function(function_id, (4, 5))
    assert future.result(timeout=PATIENCE) == 9


def test_globus_compute_style_construction(client: Client, endpoint: Agent) -> None:
    with Executor(endpoint_id=endpoint.endpoint_id, client=client, batch_size=16) as ex:
        assert ex.endpoint_id == endpoint.endpoint_id
        assert ex.submit(add, 20, 22).result(timeout=PATIENCE) == 42


def test_reload_tasks_reattaches_to_an_earlier_run(client: Client, endpoint: Agent) -> None:
    with Executor(endpoint="local", client=client) as first:
        finished = first.submit(add, 1, 1)
        finished.result(timeout=PATIENCE)
        running = first.submit(sleeps, 1.5)
        wait_for_state(running, "running")
        groups = [str(finished.task_group_id), str(running.task_group_id)]
        with Executor(endpoint="local", client=client) as second:
            reloaded = second.reload_tasks(groups)
            assert [f.task_id for f in reloaded] == [finished.task_id, running.task_id]
            assert reloaded[0].done()
            assert reloaded[0].result() == 2
            assert reloaded[1].state == "running"
            assert not reloaded[1].done()
            # An executor reloading a task it follows already gives the future it has.
            assert first.reload_tasks(groups[1]) == [running]
            assert reloaded[1].result(timeout=PATIENCE) == 1.5
            assert reloaded[1].state == "success"
            assert next(t.state for t in reloaded[1].transitions) == "received"


def test_ten_thousand_tasks_through_one_executor(client: Client, endpoint: Agent) -> None:
    ex = Executor(endpoint="local", client=client)
    try:
        futures = [ex.submit(add, i, 1) for i in range(10_000)]
        _, not_done = concurrent.futures.wait(futures, timeout=240)
        assert not not_done, unresolved(client, not_done)
        assert [f.result() for f in futures] == [i + 1 for i in range(10_000)]
        assert all(f.state == "success" for f in futures)
        assert len({f.task_id for f in futures}) == 10_000
    finally:
        ex.shutdown(wait=False, cancel_futures=True)


def unresolved(client: Client, futures: set[concurrent.futures.Future[object]]) -> str:
    """What the service says of futures that never resolved."""
    lines = [f"{len(futures)} futures never resolved:"]
    for f in list(futures)[:5]:
        assert isinstance(f, TaskFuture)
        doc = client.get_task(f.task_id) if f.task_id else None
        lines.append(f"{f!r}: {[t.state for t in f.transitions]}; service: {doc}")
    return "\n".join(lines)


def test_bad_inputs_fail_at_once(client: Client, endpoint: Agent) -> None:
    with Executor(endpoint="local", client=client) as ex:
        with pytest.raises(TypeError, match="argument 0 of add"):
            ex.submit(add, object(), 1)
        offset = 1

        def closure(x: int) -> int:
            return x + offset

        with pytest.raises(ValueError, match="closure"):
            ex.submit(closure, 1)
        with pytest.raises(ValueError, match="lambda"):
            ex.submit(lambda: None)
    with pytest.raises(RuntimeError, match="shut down"):
        ex.submit(add, 1, 1)
    with pytest.raises(lifeline.NotFound):
        Executor(endpoint="nowhere", client=client)
    with pytest.raises(ValueError, match="needs an endpoint"):
        Executor(client=client)


def test_callbacks_run_in_order_while_other_threads_submit(executor: Executor) -> None:
    futures: list[TaskFuture] = []
    lock = threading.Lock()

    def submit_some() -> None:
        for i in range(50):
            f = executor.submit(add, i, i)
            with lock:
                futures.append(f)

    threads = [threading.Thread(target=submit_some) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    histories: dict[int, list[str]] = {}
    for f in futures:
        history = histories.setdefault(id(f), [])
        f.add_state_callback(functools.partial(record_state, history))
    concurrent.futures.wait(futures, timeout=PATIENCE)
    assert all(f.result() == f.result() for f in futures)
    for f in futures:
        assert histories[id(f)][0] == "received"
        assert histories[id(f)][-1] == "success"
        # Each transition once, in order. A state may come back: a dispatch the endpoint did
        # not acknowledge in time (a loaded machine) is sent again, through waiting-for-ep.
        history = histories[id(f)]
        assert all(a != b for a, b in zip(history, history[1:])), history
        assert history.count("success") == 1, history
