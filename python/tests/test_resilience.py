"""The executor when the service goes away: a restart in the middle of a run loses no future,
and a service that stays away fails the open futures instead of leaving them hanging."""

from __future__ import annotations

import concurrent.futures
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeline import Executor, NotFound, ServiceUnavailable
from lifeline._engine import SENDERS

from .conftest import CONFIG, PATIENCE, Agent, Service


def add(a: int, b: int) -> int:
    return a + b


def sleeps(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Service, Agent]]:
    """A service and an endpoint of this test's own, since the test stops the service."""
    service = Service(tmp_path)
    agent = Agent(service, "site", CONFIG)
    yield service, agent
    agent.stop()
    service.kill()


def test_a_service_restart_mid_run_loses_no_future(site: tuple[Service, Agent]) -> None:
    service, _ = site
    client = service.client()
    with Executor(endpoint="site", client=client) as ex:
        finished = [ex.submit(add, i, 0) for i in range(50)]
        concurrent.futures.wait(finished, timeout=PATIENCE)
        # Four tasks run on the four workers, four wait for them; the service stops while
        # they sleep, so that the endpoint has nothing to report until it is back.
        sleepers = [ex.submit(sleeps, 3.0) for _ in range(8)]
        deadline = time.monotonic() + PATIENCE
        while sum(f.state == "running" for f in sleepers) < 4:
            assert time.monotonic() < deadline, [f.state for f in sleepers]
            time.sleep(0.01)
        time.sleep(0.3)
        service.kill()
        # Calls of a registered function made while the service is down wait for it.
        during = [ex.submit(add, i, 1) for i in range(20)]
        time.sleep(0.5)
        service.restart()
        after = [ex.submit(add, i, 2) for i in range(20)]
        everything = finished + sleepers + during + after
        _, not_done = concurrent.futures.wait(everything, timeout=120)
        assert not not_done, [repr(f) for f in list(not_done)[:5]]
        assert [f.result() for f in finished] == list(range(50))
        assert [f.result() for f in sleepers] == [3.0] * 8
        assert [f.result() for f in during] == [i + 1 for i in range(20)]
        assert [f.result() for f in after] == [i + 2 for i in range(20)]
        # Every future saw its task's whole life, across the restart.
        for f in everything:
            states = [t.state for t in f.transitions]
            assert states[0] == "received"
            assert states[-1] == "success"
            assert "running" in states
    client.close()


def test_open_futures_fail_when_the_service_stays_away(site: tuple[Service, Agent]) -> None:
    service, _ = site
    client = service.client()
    ex = Executor(endpoint="site", client=client, patience=2)
    try:
        ex.register_function(add)
        running = ex.submit(sleeps, 60)
        deadline = time.monotonic() + PATIENCE
        while running.state != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        service.kill()
        started = time.monotonic()
        error = running.exception(timeout=PATIENCE)
        assert isinstance(error, ServiceUnavailable)
        assert service.url in str(error)
        assert time.monotonic() - started < 15
        late = ex.submit(add, 1, 1)
        assert isinstance(late.exception(timeout=PATIENCE), ServiceUnavailable)
        assert late.task_id is None
    finally:
        ex.shutdown(wait=False)
        client.close()


def test_calls_not_yet_sent_are_cancelled_where_they_wait(site: tuple[Service, Agent]) -> None:
    service, _ = site
    client = service.client()
    ex = Executor(endpoint="site", client=client, batch_size=1, patience=1)
    ex.register_function(add)
    service.kill()
    futures = [ex.submit(add, i, i) for i in range(10)]
    # Each sender takes one call and waits for the service; the rest stay queued.
    time.sleep(0.3)
    assert futures[-1].cancel()
    assert futures[-1].cancelled()
    assert futures[-1].task_id is None
    ex.shutdown(wait=True, cancel_futures=True)
    cancelled = [f for f in futures if f.cancelled()]
    failed = [f for f in futures if not f.cancelled()]
    assert len(failed) == SENDERS
    assert len(cancelled) == 10 - SENDERS
    for f in failed:
        assert isinstance(f.exception(), ServiceUnavailable)
        with pytest.raises(ServiceUnavailable):
            f.task_id_ready(timeout=0)
    client.close()


def test_a_gap_the_stream_cannot_fill_is_closed_with_batch_status(
    site: tuple[Service, Agent],
) -> None:
    service, agent = site
    client = service.client()
    store = service.dir / "data" / "lifeline.sqlite3"
    backup = service.dir / "backup.sqlite3"
    with sqlite3.connect(store) as source, sqlite3.connect(backup) as copy:
        source.backup(copy)
    ex = Executor(endpoint="site", client=client)
    try:
        running = ex.submit(sleeps, 60)
        deadline = time.monotonic() + PATIENCE
        while running.state != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # The service comes back on a backup older than what the executor read: its log ends
        # before the executor's last event, so the stream cannot say what became of the task,
        # and the batch-status call that closes the gap can (the backup never heard of it).
        agent.stop()
        service.kill()
        for leftover in store.parent.glob("lifeline.sqlite3*"):
            leftover.unlink()
        backup.rename(store)
        store.chmod(0o600)
        service.restart()
        error = running.exception(timeout=PATIENCE)
        assert isinstance(error, NotFound), error
        assert running.task_id is not None
        assert running.task_id in str(error)
    finally:
        ex.shutdown(wait=False)
        client.close()
