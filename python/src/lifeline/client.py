"""The Lifeline client: register functions, submit tasks, read their status and results.

Every method is one or a few calls of the service's ``/v1`` HTTP API (described by
``GET /v1/openapi.json``) and returns its JSON answer as plain Python values. Errors are
:mod:`lifeline.errors`. The client is thread-safe; one is enough for a program.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Union

import httpx

from . import _config
from ._wire import BATCH_STATUS_LIMIT, TERMINAL, answer, encode_call, submission_body, unreachable
from .errors import NotFound, TaskCancelled, failure_from_status
from .functions import PythonFunction, ShellFunction, python_function

#: A function as ``submit`` takes it: a Python function, a shell command, or a registered id.
Function = Union[Callable[..., Any], ShellFunction, PythonFunction, str]
#: One call in a batch: ``(function, args)`` or ``(function, args, kwargs)``.
Call = Union[tuple[Function, Sequence[Any]], tuple[Function, Sequence[Any], dict[str, Any]]]


#: The longest the service holds a status request (``?wait=``), in seconds.
MAX_WAIT = 60.0


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission: its task group, and one task id per call, in order."""

    task_group_id: str
    task_ids: list[str]

    @property
    def task_id(self) -> str:
        """The id of the submission's only task."""
        if len(self.task_ids) != 1:
            raise ValueError(f"this submission holds {len(self.task_ids)} tasks; use task_ids")
        return self.task_ids[0]


class Client:
    """A client of one Lifeline service with one token.

    ``Client()`` finds the service as the ``lifeline`` command does: ``LIFELINE_URL`` and
    ``LIFELINE_TOKEN``, else the file ``lifeline up`` writes; ``url=`` and ``token=`` win over
    both. ``timeout`` bounds each request, in seconds.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        ca_cert: str | os.PathLike[str] | None = None,
    ) -> None:
        self.url, self._token = _config.resolve(url, token)
        self.timeout = timeout
        #: What an ``https://`` service's certificate must chain to: the system's roots, and
        #: the CA certificates in ``ca_cert`` (or ``LIFELINE_CA_CERT``) when given.
        self._verify = _config.trust(ca_cert)
        self._http = httpx.Client(
            base_url=self.url,
            headers={"authorization": f"Bearer {self._token}"},
            timeout=timeout,
            verify=self._verify,
        )
        self._lock = threading.Lock()
        # Registrations, so that a function is registered once however often it is submitted:
        # by object (cheap, no source read) and by what was registered (across redefinitions).
        self._by_object: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._by_spec: dict[tuple[str, ...], str] = {}
        self._endpoints: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"lifeline.Client({self.url!r})"

    def close(self) -> None:
        """Closes the connections; the client cannot be used afterwards."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise unreachable(self.url, error) from None
        return answer(response)

    # -- the service and its endpoints ------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: ``{"status": "ok", "seq": <last event's sequence number>}``."""
        result: dict[str, Any] = self._call("GET", "/healthz")
        return result

    def endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint: id, name, online or offline, heartbeat, executors and task counts."""
        result: list[dict[str, Any]] = self._call("GET", "/v1/endpoints")
        return result

    def register_endpoint(self, name: str) -> dict[str, Any]:
        """Registers an endpoint: ``{"endpoint_id", "name", "token"}``; the token is shown once."""
        result: dict[str, Any] = self._call("POST", "/v1/endpoints", json={"name": name})
        return result

    def endpoint_id(self, endpoint: str) -> str:
        """The id of an endpoint given by name or id; NotFound when none matches."""
        with self._lock:
            known = self._endpoints.get(endpoint)
        if known is not None:
            return known
        wanted = endpoint.lower()
        found = [
            e["endpoint_id"]
            for e in self.endpoints()
            if e["endpoint_id"] == wanted or e["name"] == endpoint
        ]
        if not found:
            raise NotFound(404, "not_found", f"no endpoint is named or numbered {endpoint!r}")
        if len(set(found)) > 1:
            raise ValueError(f"several endpoints are named {endpoint!r}; use the id instead")
        with self._lock:
            self._endpoints[endpoint] = found[0]
        return str(found[0])

    # -- functions ----------------------------------------------------------------------------

    def register_function(self, fn: Callable[..., Any], *, name: str | None = None) -> str:
        """Registers a Python function (its source, see :mod:`lifeline.functions`) and returns
        its id. A lambda, a closure, a builtin or anything else that cannot travel is a
        ValueError saying why."""
        spec = fn if isinstance(fn, PythonFunction) else python_function(fn)
        return self._register(
            ("python", name or spec.name, spec.source, spec.entrypoint),
            {
                "name": name or spec.name,
                "kind": "python",
                "source": spec.source,
                "entrypoint": spec.entrypoint,
            },
        )

    def register_shell(self, command: str, *, name: str | None = None) -> str:
        """Registers a shell command (``{name}`` placeholders are filled from the task's keyword
        arguments) and returns its id."""
        shell = ShellFunction(command, name or "shell")
        return self._register(
            ("shell", shell.name, shell.command),
            {"name": shell.name, "kind": "shell", "command": shell.command},
        )

    def _register(self, key: tuple[str, ...], body: dict[str, Any]) -> str:
        with self._lock:
            known = self._by_spec.get(key)
        if known is not None:
            return known
        function_id = str(self._call("POST", "/v1/functions", json=body)["function_id"])
        with self._lock:
            self._by_spec[key] = function_id
        return function_id

    def function_id(self, function: Function) -> str:
        """The id of a function, registering it the first time this client sees it. A string
        is taken as the id of a function registered before."""
        if isinstance(function, str):
            return function
        if isinstance(function, ShellFunction):
            return self.register_shell(function.command, name=function.name)
        try:
            with self._lock:
                known = self._by_object.get(function)
        except TypeError:
            known = None
        if known is not None:
            return known
        if isinstance(function, PythonFunction):
            function_id = self.register_function(function)  # type: ignore[arg-type]
        else:
            function_id = self.register_function(function)
        try:
            with self._lock:
                self._by_object[function] = function_id
        except TypeError:
            pass
        return function_id

    def get_function(self, function_id: str) -> dict[str, Any]:
        """A registered function: its name, kind, source or command."""
        result: dict[str, Any] = self._call("GET", f"/v1/functions/{function_id}")
        return result

    # -- tasks --------------------------------------------------------------------------------

    def submit(self, endpoint: str, function: Function, /, *args: Any, **kwargs: Any) -> Submitted:
        """Submits one call of ``function`` to ``endpoint`` (a name or an id)."""
        return self.submit_batch(endpoint, [(function, args, kwargs)])

    def submit_batch(
        self, endpoint: str, calls: Iterable[Call], *, max_retries: int | None = None
    ) -> Submitted:
        """Submits many calls in one request: ``[(function, args, kwargs), ...]`` (kwargs may be
        left out). ``max_retries`` bounds the retries after system failures under a running
        function (default: the service's). At most 10,000 calls (the service's limit)."""
        endpoint_id = self.endpoint_id(endpoint)
        encoded = []
        for call in calls:
            function, args = call[0], call[1]
            kwargs: dict[str, Any] = call[2] if len(call) > 2 else {}
            function_id = self.function_id(function)
            encoded.append(encode_call(function_id, args, kwargs, _name_of(function)))
        if not encoded:
            raise ValueError("a submission needs at least one call")
        answer_ = self._call(
            "POST",
            f"/v1/endpoints/{endpoint_id}/submit",
            content=submission_body(encoded, max_retries),
            headers={"content-type": "application/json"},
        )
        return Submitted(str(answer_["task_group_id"]), [str(t) for t in answer_["task_ids"]])

    def get_task(self, task_id: str) -> dict[str, Any]:
        """A task's status document: ``{task_id, pending, status, result | exception,
        completion_t, details: {endpoint_id, function_id, attempt, max_retries,
        task_transitions}}``."""
        result: dict[str, Any] = self._call("GET", f"/v1/tasks/{task_id}")
        return result

    def get_result(self, task_id: str, timeout: float | None = None) -> Any:
        """Waits for a task to finish and returns its result. Raises :class:`TaskFailed` (the
        remote traceback, every attempt's reason), :class:`TaskCancelled`, or TimeoutError after
        ``timeout`` seconds (None: no limit). The service holds each request until the task
        ends (``?wait=``, up to a minute at a time), so the result arrives as soon as it is
        stored, without polling; an :class:`~lifeline.Executor` is told of results instead."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = MAX_WAIT if deadline is None else max(0.0, deadline - time.monotonic())
            wait = min(left, MAX_WAIT)
            doc: dict[str, Any] = self._call(
                "GET",
                f"/v1/tasks/{task_id}",
                params={"wait": f"{wait:.3f}"},
                timeout=self.timeout + wait,
            )
            if not doc["pending"]:
                return result_of(doc)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"task {task_id} is still {doc['status']} after {timeout} s")

    def get_batch_status(self, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Status documents of many tasks, keyed by id. An id the service does not know (or
        that is malformed) maps to an error body ``{"error", "message"}`` instead."""
        results: dict[str, dict[str, Any]] = {}
        ids = list(task_ids)
        for start in range(0, len(ids), BATCH_STATUS_LIMIT):
            chunk = ids[start : start + BATCH_STATUS_LIMIT]
            answer_ = self._call("POST", "/v1/tasks/batch_status", json={"task_ids": chunk})
            results.update(answer_["results"])
        return results

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancels a task that has not finished, wherever it is (running included), and returns
        its status document. A finished task is a RequestError (409)."""
        result: dict[str, Any] = self._call("POST", f"/v1/tasks/{task_id}/cancel")
        return result

    def list_tasks(
        self,
        endpoint: str | None = None,
        state: str | Sequence[str] | None = None,
        limit: int | None = None,
        *,
        function_id: str | None = None,
        task_group_id: str | None = None,
        page_size: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Task summaries, newest first, fetched a page at a time as the iterator is read.
        ``state`` takes a state or several; ``limit`` stops after that many tasks."""
        params: dict[str, Any] = {}
        if endpoint is not None:
            params["endpoint_id"] = self.endpoint_id(endpoint)
        if state is not None:
            params["state"] = state if isinstance(state, str) else ",".join(state)
        if function_id is not None:
            params["function_id"] = function_id
        if task_group_id is not None:
            params["task_group_id"] = task_group_id
        given = 0
        while True:
            size = page_size if limit is None else max(1, min(page_size, limit - given))
            page = self._call("GET", "/v1/tasks", params={**params, "limit": size})
            for task in page["tasks"]:
                if limit is not None and given >= limit:
                    return
                given += 1
                yield task
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and given >= limit):
                return
            params["cursor"] = cursor


def result_of(doc: dict[str, Any]) -> Any:
    """The result of a finished task's status document, or its exception raised."""
    status = doc["status"]
    if status == "success":
        return doc.get("result")
    if status == "failed":
        raise failure_from_status(doc)
    if status == "cancelled":
        raise TaskCancelled(str(doc["task_id"]))
    assert status not in TERMINAL
    raise ValueError(f"task {doc['task_id']} has not finished: it is {status}")


def _name_of(function: Function) -> str:
    if isinstance(function, str):
        return f"function {function}"
    if isinstance(function, ShellFunction):
        return f"shell command {function.command!r}"
    if isinstance(function, PythonFunction):
        return function.name
    return getattr(function, "__qualname__", None) or repr(function)
