"""The engine behind :class:`lifeline.Executor`: a few daemon threads sharing one HTTP
connection pool.

- *Senders* (four) take queued calls in submissions of up to ``batch_size`` tasks, so that calls
  made while a request is in flight travel together, and the service's writer stores concurrent
  submissions in one transaction.
- The *streamer* holds one subscription to the service's event stream, filtered on the service
  to the executor's task groups (every submission is a group), and applies each transition to its
  future. When a submission adds a group it resubscribes from the last event it read or from
  before that submission, whichever is older, so that nothing is skipped (a transition seen twice
  is applied once); after a dropped connection it resumes with ``Last-Event-ID``. A gap the
  stream cannot fill (the service's log ends before the last event read) is closed with one
  batch-status call.
- The *fetcher* reads the results of finished tasks in batch-status requests.

If the service stays unreachable for longer than ``patience`` seconds, every open future fails
with :class:`~lifeline.ServiceUnavailable`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Callable, NamedTuple

import httpx
from httpx_sse import SSEError, connect_sse

from ._wire import BATCH_STATUS_LIMIT, answer, error_of, submission_body, unreachable
from .client import Client, result_of
from .errors import (
    AuthError,
    Expired,
    LifelineError,
    NotFound,
    RequestError,
    ServiceError,
    ServiceUnavailable,
    TaskCancelled,
    TaskFailed,
)
from .futures import TaskFuture, Transition

LOGGER = logging.getLogger("lifeline")

#: Beyond this many open task groups, the stream follows the endpoint instead (shorter URLs);
#: events of other tasks are then read and ignored.
MAX_STREAM_GROUPS = 200
#: Results read per batch-status request.
FETCH_CHUNK = 1000
#: How long a resubscription waits for a burst of submissions to be sent, in seconds.
COALESCE = 0.1
#: Submissions in flight at once.
SENDERS = 4
#: An event read this recently (seconds) marks where a new submission's events will follow,
#: saving a request for the head; an older one could make the service replay too much.
FRESH = 0.5


class Pending(NamedTuple):
    future: TaskFuture
    call: str


class _Resubscribe(Exception):
    """The subscription must change: groups were added, or none is left."""


def transitions_of(task_id: str, doc: dict[str, Any]) -> list[Transition]:
    """The transition log of a status document."""
    out = []
    previous: str | None = None
    for record in doc.get("details", {}).get("task_transitions", []):
        out.append(
            Transition(
                task_id=task_id,
                state=record["state"],
                previous=previous,
                actor=record["actor"],
                attempt=int(record["attempt"]),
                at=float(record["at"]),
                reason=record.get("reason"),
            )
        )
        previous = record["state"]
    return out


class Engine:
    """The executor's threads and what they share, guarded by ``lock``. Futures' callbacks never
    run under it."""

    def __init__(
        self,
        client: Client,
        endpoint_id: str,
        batch_size: int,
        max_retries: int | None,
        patience: float,
    ) -> None:
        self.client = client
        self.endpoint_id = endpoint_id
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.patience = patience
        self.http = httpx.Client(
            base_url=client.url,
            headers={"authorization": f"Bearer {client._token}"},
            timeout=client.timeout,
            verify=client._verify,
            limits=httpx.Limits(max_connections=SENDERS + 4, max_keepalive_connections=SENDERS + 4),
        )
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        # Calls waiting for a sender, and submissions being sent.
        self.queue: deque[Pending] = deque()
        self.submit_ready = threading.Condition(self.lock)
        self.in_flight = 0
        self.submit_idle = threading.Event()
        self.submit_idle.set()
        # Unfinished sent tasks, by id; their ids by group, and each group's endpoint.
        self.open: dict[str, TaskFuture] = {}
        self.groups: dict[str, set[str]] = {}
        self.group_endpoint: dict[str, str] = {}
        # Groups not yet in the subscription, with a sequence number their events all follow.
        self.unsubscribed: dict[str, int] = {}
        self.subscribed: set[str] = set()
        # Where the subscription is: the last event it read, or where it started.
        self.cursor: int | None = None
        # The last event read: its sequence number and when (monotonic seconds).
        self.last_event: tuple[int, float] | None = None
        self.stream_wanted = threading.Condition(self.lock)
        self.resubscribe = False
        self.stream_socket: socket.socket | None = None
        # After a dropped connection, whether the service still holds what was read; whether a
        # gap the stream cannot fill must be closed with batch status.
        self.check_store = False
        self.gap = False
        self.failing_since: float | None = None
        self.pause = 0.05
        # Every group sent or adopted, oldest first.
        self.all_groups: dict[str, None] = {}
        # Finished tasks whose results are to be read.
        self.to_fetch: dict[str, None] = {}
        self.fetch_ready = threading.Condition(self.lock)
        self.threads = [
            threading.Thread(target=self._guard, args=(job,), name=f"lifeline-{name}", daemon=True)
            for name, job in [
                *((f"sender-{i}", self._sender) for i in range(SENDERS)),
                ("streamer", self._streamer),
                ("fetcher", self._fetcher),
            ]
        ]
        for thread in self.threads:
            thread.start()

    # -- from other threads -------------------------------------------------------------------

    def enqueue(self, pending: Pending) -> None:
        with self.lock:
            self.queue.append(pending)
            self.submit_idle.clear()
            self.submit_ready.notify()

    def adopt(
        self, group: str, endpoint_id: str, after: int, futures: dict[str, TaskFuture]
    ) -> None:
        """Follows an earlier submission's unfinished tasks, from event ``after`` on."""
        with self.lock:
            self.open.update(futures)
            self.groups.setdefault(group, set()).update(futures)
            self.all_groups[group] = None
            self.group_endpoint[group] = endpoint_id
            self.unsubscribed[group] = min(after, self.unsubscribed.get(group, after))
            self._poke_stream()

    def apply_document(self, future: TaskFuture, doc: dict[str, Any]) -> None:
        """Records the transitions of a status document on a future."""
        task_id = future.task_id or str(doc.get("task_id"))
        future._record(transitions_of(task_id, doc), doc.get("details", {}).get("attempt"))

    def stop(self) -> None:
        """Stops the threads (without waiting for them); whatever is still open fails."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        with self.lock:
            self.submit_ready.notify_all()
            self.fetch_ready.notify_all()
            self._poke_stream()
        self._fail_everything(RuntimeError("the executor was shut down"))

    def join(self) -> None:
        current = threading.current_thread()
        for thread in self.threads:
            if thread is not current:
                thread.join()
        self.http.close()

    def _guard(self, job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as error:
            if self.stopping.is_set():
                return
            LOGGER.exception("the Lifeline executor's %s failed", threading.current_thread().name)
            self.stopping.set()
            self._fail_everything(error)

    def _fail_everything(self, error: BaseException) -> None:
        with self.lock:
            futures = [p.future for p in self.queue] + list(self.open.values())
            self.queue.clear()
            self.open.clear()
            self.groups.clear()
            self.unsubscribed.clear()
            self.to_fetch.clear()
        for future in futures:
            future._resolve_exception(error)

    def _sleep(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def _request(
        self, method: str, path: str, *, idempotent: bool, atomic: bool = True, **kwargs: Any
    ) -> Any:
        """One request, retried while the service is unreachable or unavailable (503) for up to
        ``patience`` seconds. A request that is not idempotent is retried only when nothing was
        sent, or when the service said 503 and the request is ``atomic`` (stored all or not at
        all)."""
        started: float | None = None
        pause = 0.05
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
                if response.status_code != 503 or not (idempotent or atomic):
                    return answer(response)
                error: Exception = error_of(503, response.content)
            except httpx.TransportError as transport:
                if not idempotent and not isinstance(transport, httpx.ConnectError):
                    raise unreachable(self.client.url, transport) from None
                error = unreachable(self.client.url, transport)
            now = time.monotonic()
            started = started if started is not None else now
            if now - started > self.patience or self.stopping.is_set():
                raise error
            self._sleep(pause * random.uniform(0.5, 1.0))
            pause = min(pause * 2, 2.0)

    # -- senders ------------------------------------------------------------------------------

    def _sender(self) -> None:
        while True:
            with self.lock:
                while not self.queue and not self.stopping.is_set():
                    self.submit_ready.wait()
                if self.stopping.is_set():
                    return
                batch: list[Pending] = []
                while self.queue and len(batch) < self.batch_size:
                    pending = self.queue.popleft()
                    if pending.future._claim():
                        batch.append(pending)
                self.in_flight += 1
            try:
                if batch:
                    self._send(batch)
            finally:
                with self.lock:
                    self.in_flight -= 1
                    if not self.in_flight and not self.queue:
                        self.submit_idle.set()

    def _bound(self) -> int:
        """A sequence number that every event of a submission made now will follow: the last
        event read, when recent, else the service's head."""
        last = self.last_event
        if last is not None and time.monotonic() - last[1] < FRESH:
            return last[0]
        return int(self._request("GET", "/healthz", idempotent=True)["seq"])

    def _send(self, batch: list[Pending]) -> None:
        try:
            bound = self._bound()
            answer_ = self._request(
                "POST",
                f"/v1/endpoints/{self.endpoint_id}/submit",
                idempotent=False,
                # The service stores a submission in write jobs of 500 tasks.
                atomic=len(batch) <= 500,
                content=submission_body([p.call for p in batch], self.max_retries),
                headers={"content-type": "application/json"},
            )
        except LifelineError as error:
            for pending in batch:
                pending.future._resolve_exception(error)
            return
        group = str(answer_["task_group_id"])
        ids = [str(t) for t in answer_["task_ids"]]
        for pending, task_id in zip(batch, ids):
            pending.future._sent(task_id, group)
        with self.lock:
            for pending, task_id in zip(batch, ids):
                self.open[task_id] = pending.future
            self.groups[group] = set(ids)
            self.all_groups[group] = None
            self.group_endpoint[group] = self.endpoint_id
            self.unsubscribed[group] = bound
            self._poke_stream()

    # -- the streamer -------------------------------------------------------------------------

    def _poke_stream(self) -> None:
        """Tells the streamer that the subscription must change (called under the lock)."""
        self.resubscribe = True
        self.stream_wanted.notify()
        if self.stream_socket is not None:
            # Wakes the streamer's blocked read: the connection ends, the stream resubscribes.
            with contextlib.suppress(OSError):
                self.stream_socket.shutdown(socket.SHUT_RDWR)
            self.stream_socket = None

    def _streamer(self) -> None:
        refused = 0
        while not self.stopping.is_set():
            with self.lock:
                while not self.groups and not self.stopping.is_set():
                    self.subscribed.clear()
                    self.cursor = None
                    self.stream_wanted.wait()
                burst = bool(self.unsubscribed and self.subscribed)
            if self.stopping.is_set():
                return
            if burst and not self.submit_idle.is_set():
                # A burst of submissions: let it finish (briefly) and subscribe to it all at once.
                self.submit_idle.wait(COALESCE)
            try:
                if self.check_store:
                    self._check_store()
                if self.gap:
                    self._close_gap()
                self._follow()
                refused = 0
            except _Resubscribe:
                refused = 0
            except AuthError as error:
                self._give_up(error)
            except RequestError as error:
                # The service refused where the stream resumes: start from now, and read what
                # happened meanwhile in one batch-status call. Refused again: give up.
                refused += 1
                if refused > 2:
                    self._give_up(error)
                self.gap = True
            except (httpx.TransportError, SSEError, ServiceUnavailable, ServiceError) as error:
                if self.stopping.is_set():
                    return
                now = time.monotonic()
                if self.failing_since is None:
                    self.failing_since = now
                self.check_store = True
                if now - self.failing_since > self.patience:
                    failure = (
                        error
                        if isinstance(error, LifelineError)
                        else unreachable(self.client.url, error)
                    )
                    self._give_up(failure)
                    self.failing_since = None
                    continue
                self._sleep(self.pause * random.uniform(0.5, 1.0))
                self.pause = min(self.pause * 2, 2.0)

    def _give_up(self, error: LifelineError) -> None:
        with self.lock:
            futures = list(self.open.values())
            self.open.clear()
            self.groups.clear()
            self.unsubscribed.clear()
            self.to_fetch.clear()
        for future in futures:
            future._resolve_exception(error)

    def _subscription(self) -> tuple[dict[str, str], int]:
        """The query of the next subscription and the event it starts after (under the lock)."""
        groups = sorted(self.groups)
        starts = [self.unsubscribed[g] for g in groups if g in self.unsubscribed]
        if self.cursor is not None and self.subscribed.intersection(groups):
            starts.append(self.cursor)
        after = min(starts) if starts else (self.cursor or 0)
        for group in groups:
            self.unsubscribed.pop(group, None)
        self.subscribed = set(groups)
        self.cursor = after
        self.resubscribe = False
        endpoints = {self.group_endpoint.get(g, self.endpoint_id) for g in groups}
        params: dict[str, str] = {}
        if len(endpoints) == 1:
            params["endpoint_id"] = endpoints.pop()
        if len(groups) <= MAX_STREAM_GROUPS:
            params["task_group_id"] = ",".join(groups)
        return params, after

    def _follow(self) -> None:
        """Follows one subscription until it must change (raising _Resubscribe) or drops."""
        with self.lock:
            if not self.groups:
                return
            params, after = self._subscription()
        with connect_sse(
            self.http,
            "GET",
            "/v1/events",
            params=params,
            headers={"Last-Event-ID": str(after)},
            # The service sends a keep-alive every 15 s: a longer silence is a dead connection.
            timeout=httpx.Timeout(self.client.timeout, read=45.0),
        ) as source:
            response = source.response
            if response.status_code != 200:
                response.read()
                raise error_of(response.status_code, response.content)
            self.failing_since, self.pause = None, 0.05
            stream = response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            with self.lock:
                if self.resubscribe or self.stopping.is_set():
                    raise _Resubscribe()
                self.stream_socket = sock
            try:
                for event in source.iter_sse():
                    if event.event == "reset":
                        # Retention removed events after our cursor: read every open task's
                        # status instead, and follow on from the head.
                        self.gap = True
                        raise _Resubscribe()
                    self._read(event.id, event.data)
                    if self.resubscribe:
                        raise _Resubscribe()
            except (httpx.TransportError, SSEError):
                if self.resubscribe or self.stopping.is_set():
                    raise _Resubscribe() from None
                raise
            finally:
                with self.lock:
                    self.stream_socket = None
            if self.resubscribe or self.stopping.is_set():
                raise _Resubscribe()
            raise httpx.RemoteProtocolError("the service ended the event stream")

    def _read(self, event_id: str, data: str) -> None:
        if event_id:
            try:
                seq = int(event_id)
            except ValueError:
                pass
            else:
                self.cursor = seq
                self.last_event = (seq, time.monotonic())
        if not data:
            return
        try:
            event = json.loads(data)
        except ValueError:
            LOGGER.warning("skipped an event that is not JSON: %.200s", data)
            return
        if event.get("type") == "transition":
            self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        task_id = event.get("task_id")
        # A lone read of a dict other threads write is safe without the lock.
        future = self.open.get(task_id) if isinstance(task_id, str) else None
        if future is None or not isinstance(task_id, str):
            return
        if future.done():
            self._forget(task_id)
            return
        to = event["to"]
        future._record(
            [
                Transition(
                    task_id=task_id,
                    state=to,
                    previous=event.get("from"),
                    actor=event["actor"],
                    attempt=int(event["attempt"]),
                    at=float(event["at"]),
                    reason=event.get("reason"),
                    seq=event.get("seq"),
                )
            ]
        )
        if to in ("success", "failed"):
            with self.lock:
                self.to_fetch[task_id] = None
                self.fetch_ready.notify()
        elif to == "cancelled":
            future._resolve_cancelled()
            self._forget(task_id)

    def _forget(self, task_id: str) -> None:
        with self.lock:
            future = self.open.pop(task_id, None)
            group = future.task_group_id if future is not None else None
            members = self.groups.get(group) if group is not None else None
            if group is None or members is None:
                return
            members.discard(task_id)
            if not members:
                del self.groups[group]
                self.unsubscribed.pop(group, None)
                self.group_endpoint.pop(group, None)
                if not self.groups:
                    self._poke_stream()

    def _check_store(self) -> None:
        """After a dropped connection: a service whose log ends before our cursor is not the
        one we read (a store restored from a backup), so the stream cannot fill the gap."""
        head = int(self._request("GET", "/healthz", idempotent=True)["seq"])
        self.check_store = False
        if self.cursor is not None and head < self.cursor:
            self.gap = True

    def _close_gap(self) -> None:
        """Reads every open task's status in batch-status calls and follows on from the head
        read before them, so that the stream and the documents overlap rather than miss."""
        head = int(self._request("GET", "/healthz", idempotent=True)["seq"])
        with self.lock:
            ids = list(self.open)
        self._fetch(ids)
        with self.lock:
            for group in self.groups:
                self.unsubscribed[group] = head
            self.subscribed.clear()
            self.cursor = None
        self.gap = False

    # -- the fetcher --------------------------------------------------------------------------

    def _fetcher(self) -> None:
        while True:
            with self.lock:
                while not self.to_fetch and not self.stopping.is_set():
                    self.fetch_ready.wait()
                if self.stopping.is_set():
                    return
                ids = []
                for task_id in self.to_fetch:
                    ids.append(task_id)
                    if len(ids) == FETCH_CHUNK:
                        break
                for task_id in ids:
                    del self.to_fetch[task_id]
            self._fetch(ids)

    def _fetch(self, ids: Sequence[str]) -> None:
        """Reads status documents and settles the futures of finished tasks."""
        for start in range(0, len(ids), BATCH_STATUS_LIMIT):
            chunk = list(ids[start : start + BATCH_STATUS_LIMIT])
            try:
                answer_ = self._request(
                    "POST", "/v1/tasks/batch_status", idempotent=True, json={"task_ids": chunk}
                )
            except LifelineError as error:
                for task_id in chunk:
                    with self.lock:
                        future = self.open.get(task_id)
                    if future is not None:
                        future._resolve_exception(error)
                        self._forget(task_id)
                continue
            for task_id, doc in answer_["results"].items():
                self._settle(task_id, doc)

    def _settle(self, task_id: str, doc: dict[str, Any]) -> None:
        with self.lock:
            future = self.open.get(task_id)
        if future is None:
            return
        if "status" not in doc:
            code, message = str(doc.get("error", "not_found")), str(doc.get("message", ""))
            if code == "expired":
                future._resolve_exception(Expired(410, code, message))
            else:
                future._resolve_exception(NotFound(404, code, message))
            self._forget(task_id)
            return
        log = doc.get("details", {}).get("task_transitions", [])
        if len(future._transitions) < len(log):
            # Transitions the stream did not bring (a gap, or a reloaded task).
            self.apply_document(future, doc)
        if doc["pending"]:
            return
        settle(future, doc)
        self._forget(task_id)


def settle(future: TaskFuture, doc: dict[str, Any]) -> None:
    """Resolves a future from its finished task's status document."""
    try:
        future._resolve_result(result_of(doc))
    except TaskCancelled:
        future._resolve_cancelled()
    except TaskFailed as failure:
        future._resolve_exception(failure)
