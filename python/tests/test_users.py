"""Each user with their own token: the client and the executor see only what their user may."""

from __future__ import annotations

import httpx
import pytest

from lifeline import Client, Executor, NotFound

from .conftest import Agent, Service


def square(x: int) -> int:
    return x * x


def _admin(service: Service, method: str, path: str, body: object) -> dict[str, object]:
    answer = httpx.request(
        method,
        f"{service.url}{path}",
        json=body,
        headers={"authorization": f"Bearer {service.token}"},
        timeout=30,
    )
    answer.raise_for_status()
    result: dict[str, object] = answer.json()
    return result


def test_a_user_works_with_their_own_token_and_sees_only_their_tasks(
    service: Service, endpoint: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = str(_admin(service, "POST", "/v1/users", {"name": "ada"})["token"])
    monkeypatch.setenv("LIFELINE_URL", service.url)
    monkeypatch.setenv("LIFELINE_TOKEN", token)
    with Client() as ada:
        # Admin's endpoint does not exist for ada until it is shared with her.
        with pytest.raises(NotFound):
            ada.endpoint_id("local")
        _admin(service, "POST", f"/v1/endpoints/{endpoint.endpoint_id}/share", {"with": "ada"})
        with Executor(endpoint="local", client=ada) as ex:
            assert list(ex.map(square, [2, 3])) == [4, 9]
            mine = ex.submit(square, 5)
            assert mine.result(timeout=30) == 25
        task_id = mine.task_id
        assert task_id is not None
        ids = {t["task_id"] for t in ada.list_tasks(limit=100)}
        assert task_id in ids
        assert len(ids) == 3, "only her own tasks"
    with service.client() as admin:
        # Admin (the endpoint's owner) sees ada's task and its result.
        assert admin.get_result(task_id, timeout=30) == 25
