"""``lifeline.Client`` against the real service and a real local endpoint."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import trustme

import lifeline
from lifeline import (
    AuthError,
    Client,
    Expired,
    NotFound,
    RequestError,
    ServiceUnavailable,
    ShellFunction,
    TaskFailed,
)

from .conftest import CONFIG, PATIENCE, Agent, Service


def add(a: int, b: int) -> int:
    return a + b


def fails(message: str) -> None:
    raise RuntimeError(message)


def slow(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "done"


def test_client_reads_the_environment_then_the_file_lifeline_up_writes(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIFELINE_URL", raising=False)
    monkeypatch.delenv("LIFELINE_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="lifeline up"):
        Client()
    config = tmp_path / "lifeline" / "cli.toml"
    config.parent.mkdir()
    config.write_text(f'url = "{service.url}"\ntoken = "{service.token}"\n')
    with Client() as c:
        assert c.url == service.url
        assert c.health()["status"] == "ok"
    monkeypatch.setenv("LIFELINE_URL", "http://127.0.0.1:9")
    assert Client().url == "http://127.0.0.1:9"
    assert Client(url=service.url).url == service.url


def test_submit_and_get_result(client: Client, endpoint: Agent) -> None:
    submitted = client.submit("local", add, 2, b=3)
    assert len(submitted.task_group_id) == 36
    assert client.get_result(submitted.task_id, timeout=30) == 5
    doc = client.get_task(submitted.task_id)
    assert doc["status"] == "success"
    assert doc["pending"] is False
    states = [t["state"] for t in doc["details"]["task_transitions"]]
    assert states[0] == "received"
    assert states[-1] == "success"
    # By id as well as by name, and with the function registered once.
    again = client.submit(endpoint.endpoint_id, add, 1, 1)
    assert client.get_result(again.task_id, timeout=30) == 2
    assert client.function_id(add) == client.function_id(add)


def test_a_user_exception_carries_the_remote_traceback(client: Client, endpoint: Agent) -> None:
    task = client.submit("local", fails, "no such sample").task_id
    with pytest.raises(TaskFailed) as failed:
        client.get_result(task, timeout=30)
    error = failed.value
    assert error.task_id == task
    assert "RuntimeError: no such sample" in error.traceback
    assert "raise RuntimeError(message)" in error.traceback
    assert error.reasons == [(1, error.traceback)]
    assert "no such sample" in str(error)


def test_batches_batch_status_listing_and_cancel(client: Client, endpoint: Agent) -> None:
    batch = client.submit_batch("local", [(add, [i, i]) for i in range(5)] + [(slow, [60], {})])
    assert len(batch.task_ids) == 6
    results = [client.get_result(t, timeout=30) for t in batch.task_ids[:5]]
    assert results == [0, 2, 4, 6, 8]
    statuses = client.get_batch_status([*batch.task_ids, "not-an-id"])
    assert statuses[batch.task_ids[0]]["result"] == 0
    assert statuses["not-an-id"]["error"] == "invalid_id"

    listed = list(client.list_tasks(task_group_id=batch.task_group_id, page_size=2))
    assert sorted(t["task_id"] for t in listed) == sorted(batch.task_ids)
    assert len(list(client.list_tasks(endpoint="local", limit=3))) == 3
    assert all(
        t["state"] == "success" for t in client.list_tasks(endpoint="local", state="success")
    )

    long_task = batch.task_ids[5]
    doc = client.cancel(long_task)
    assert doc["status"] == "cancelled"
    with pytest.raises(lifeline.TaskCancelled):
        client.get_result(long_task)
    with pytest.raises(RequestError) as finished:
        client.cancel(batch.task_ids[0])
    assert finished.value.status == 409


def test_shell_commands(client: Client, endpoint: Agent) -> None:
    task = client.submit("local", ShellFunction("echo {word}"), word="hello").task_id
    assert client.get_result(task, timeout=30)["stdout"] == "hello\n"
    function_id = client.register_shell("printf %s {word}", name="printf")
    task = client.submit("local", function_id, word="hi").task_id
    assert client.get_result(task, timeout=30)["stdout"] == "hi"


def test_errors_name_what_went_wrong(service: Service, client: Client, endpoint: Agent) -> None:
    with pytest.raises(AuthError):
        Client(service.url, "wrong-token").endpoints()
    with pytest.raises(NotFound):
        client.get_task("0192f0a0-0000-7000-8000-000000000000")
    with pytest.raises(NotFound, match="no endpoint is named"):
        client.submit("nowhere", add, 1, 2)
    with pytest.raises(TypeError, match=r"argument 1 of add \(set\) is not JSON"):
        client.submit("local", add, 1, {2})
    with pytest.raises(TypeError, match="keyword argument 'b' of add"):
        client.submit("local", add, 1, b=object())
    with pytest.raises(TypeError, match="not JSON"):
        client.submit("local", add, 1, float("nan"))
    deep: list[object] = []
    for _ in range(70):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper than the 63 levels"):
        client.submit("local", add, 1, deep)
    with pytest.raises(ValueError, match="lambda"):
        client.submit("local", lambda: 1)
    with pytest.raises(RequestError) as refused:
        client.submit("local", "not-a-function-id")
    assert refused.value.status == 400

    # Nothing listens on a port just released.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServiceUnavailable, match=f"127.0.0.1:{port}"):
        Client(f"http://127.0.0.1:{port}", "t").endpoints()


def test_a_task_past_the_retention_is_expired(tmp_path: Path) -> None:
    brief = Service(tmp_path, settings={"LIFELINE_RETENTION": "1s"})
    agent = Agent(brief, "brief", CONFIG)
    client = brief.client()
    try:
        submitted = client.submit("brief", add, 1, 2)
        assert client.get_result(submitted.task_id, timeout=30) == 3
        deadline = time.monotonic() + PATIENCE
        while not expired(client, submitted.task_id):
            assert time.monotonic() < deadline, "the task never expired"
            time.sleep(0.1)
        with pytest.raises(Expired, match="retention") as gone:
            client.get_result(submitted.task_id)
        assert gone.value.status == 410
    finally:
        client.close()
        agent.stop()
        brief.kill()


def expired(client: Client, task_id: str) -> bool:
    try:
        client.get_task(task_id)
    except Expired:
        return True
    return False


def test_over_tls_with_the_site_s_own_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_file))
    secure = Service(
        tmp_path,
        settings={"LIFELINE_TLS_CERT": str(chain), "LIFELINE_TLS_KEY": str(key)},
        ca_cert=ca_file,
    )
    assert secure.url.startswith("https://")
    agent = Agent(secure, "secure", CONFIG)
    client = secure.client()
    try:
        submitted = client.submit("secure", add, 20, 22)
        assert client.get_result(submitted.task_id, timeout=30) == 42
        with lifeline.Executor(endpoint="secure", client=client) as executor:
            assert executor.submit(add, 1, 1).result(timeout=30) == 2
        # Without the CA, the system's roots do not trust the certificate: refused, saying why.
        with pytest.raises(ServiceUnavailable, match="certificate is not trusted"):
            Client(secure.url, secure.token).endpoints()
    finally:
        client.close()
        agent.stop()
        secure.kill()
