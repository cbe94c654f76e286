"""A :class:`concurrent.futures.Executor` that runs calls on a Lifeline endpoint.

Its futures (:class:`~lifeline.TaskFuture`) follow their task's life cycle live, pushed from one
event-stream subscription per executor; :mod:`lifeline._engine` does the work.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Callable

from ._engine import Engine, Pending, settle
from ._wire import encode_call
from .client import Client, Function, _name_of
from .futures import TaskFuture


class Executor(concurrent.futures.Executor):
    """Runs calls on one Lifeline endpoint and returns :class:`TaskFuture` objects.

    ``endpoint`` is the endpoint's name or id (``endpoint_id=`` is accepted too, as in Globus
    Compute). ``client`` is a :class:`~lifeline.Client` (default: ``Client()``, configured like
    the ``lifeline`` command). Calls are sent in submissions of up to ``batch_size`` tasks;
    ``max_retries`` bounds retries after system failures under a running function (default: the
    service's). If the service stays unreachable for ``patience`` seconds, the open futures fail
    with :class:`~lifeline.ServiceUnavailable`. ``task_group_id`` names an earlier run's
    submission for :meth:`reload_tasks` to reattach to.

    ::

        with Executor(endpoint="local") as ex:
            future = ex.submit(add, 1, 2)
            future.add_state_callback(lambda t: print(t.state))
            print(future.result())
    """

    def __init__(
        self,
        endpoint: str | None = None,
        task_group_id: str | None = None,
        batch_size: int = 128,
        client: Client | None = None,
        *,
        endpoint_id: str | None = None,
        max_retries: int | None = None,
        patience: float = 60.0,
    ) -> None:
        target = endpoint if endpoint is not None else endpoint_id
        if target is None:
            raise ValueError("an Executor needs an endpoint: Executor(endpoint='name or id')")
        if not 1 <= batch_size <= 10_000:
            raise ValueError("batch_size is from 1 to 10,000 tasks")
        self._own_client = client is None
        self.client = client if client is not None else Client()
        try:
            self.endpoint_id = self.client.endpoint_id(str(target))
        except BaseException:
            if self._own_client:
                self.client.close()
            raise
        self._initial_group = task_group_id
        self._lock = threading.Lock()
        self._futures: set[TaskFuture] = set()
        self._shutdown = False
        self._engine = Engine(self.client, self.endpoint_id, batch_size, max_retries, patience)

    def __repr__(self) -> str:
        return f"lifeline.Executor(endpoint_id={self.endpoint_id!r}, {self.client.url!r})"

    @property
    def task_group_ids(self) -> list[str]:
        """The groups of the submissions this executor made (and reloaded), oldest first."""
        with self._engine.lock:
            return list(self._engine.all_groups)

    @property
    def task_group_id(self) -> str | None:
        """The group of the latest submission (or the one given to the constructor)."""
        groups = self.task_group_ids
        return groups[-1] if groups else self._initial_group

    def register_function(self, fn: Callable[..., Any]) -> str:
        """Registers ``fn`` (once per function) and returns its id."""
        return self.client.function_id(fn)

    def submit(self, fn: Function, /, *args: Any, **kwargs: Any) -> TaskFuture:
        """Submits ``fn(*args, **kwargs)``. ``fn`` is a Python function, a
        :class:`~lifeline.ShellFunction`, or the id of a registered function. A non-JSON
        argument is a TypeError here, naming it."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to an executor that was shut down")
        function_id = self.client.function_id(fn)
        name = _name_of(fn)
        call = encode_call(function_id, args, kwargs, name)
        future = TaskFuture(self._engine, name)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._finished)
        self._engine.enqueue(Pending(future, call))
        return future

    def submit_to_registered_function(
        self,
        function_id: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> TaskFuture:
        """Submits a call of a function registered before, by id (as in Globus Compute)."""
        return self.submit(function_id, *args, **(kwargs or {}))

    def _finished(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)
            last = self._shutdown and not self._futures
        if last:
            self._engine.stop()

    def reload_tasks(self, task_group_id: str | Iterable[str] | None = None) -> list[TaskFuture]:
        """Futures for the tasks of earlier submissions (a task group id, or several), in
        submission order: finished tasks resolve at once, the others follow the stream."""
        given = task_group_id if task_group_id is not None else self._initial_group
        if given is None:
            raise ValueError("reload_tasks needs a task group id")
        groups = [given] if isinstance(given, str) else list(given)
        futures: list[TaskFuture] = []
        for group in groups:
            futures.extend(self._reload(group))
        return futures

    def _reload(self, group: str) -> list[TaskFuture]:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot reload tasks into an executor that was shut down")
        # Every transition after this point comes from the stream; those before, from the
        # status documents read next.
        after = int(self.client.health()["seq"])
        ids = [t["task_id"] for t in self.client.list_tasks(task_group_id=group)]
        ids.reverse()
        docs = self.client.get_batch_status(ids)
        futures: list[TaskFuture] = []
        following: dict[str, TaskFuture] = {}
        endpoint_id = self.endpoint_id
        for task_id in ids:
            with self._engine.lock:
                known = self._engine.open.get(task_id)
            if known is not None:
                # This executor follows the task already: the same future, not a second one.
                futures.append(known)
                continue
            doc = docs[task_id]
            future = TaskFuture(self._engine, str(doc.get("details", {}).get("function_id", "")))
            future._claim()
            future._sent(task_id, group)
            endpoint_id = str(doc.get("details", {}).get("endpoint_id", endpoint_id))
            self._engine.apply_document(future, doc)
            futures.append(future)
            if doc.get("pending", False):
                following[task_id] = future
                with self._lock:
                    self._futures.add(future)
                future.add_done_callback(self._finished)
            else:
                settle(future, doc)
        if following:
            self._engine.adopt(group, endpoint_id, after, following)
        return futures

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stops taking calls. ``cancel_futures`` cancels those not yet sent to the service;
        ``wait`` waits for every other future, then stops the executor's threads. Without
        ``wait``, the threads stop by themselves once the last future resolves."""
        with self._lock:
            self._shutdown = True
            pending = list(self._futures)
        if cancel_futures:
            for future in pending:
                future._cancel_if_queued()
        if wait:
            concurrent.futures.wait(pending)
            self._engine.stop()
            self._engine.join()
            if self._own_client:
                self.client.close()
        else:
            with self._lock:
                idle = not self._futures
            if idle:
                self._engine.stop()
