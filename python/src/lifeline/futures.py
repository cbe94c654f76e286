"""The futures of :class:`lifeline.Executor`, which know where their task is in its life cycle."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

if TYPE_CHECKING:
    from ._engine import Engine

LOGGER = logging.getLogger("lifeline")


class Transition(NamedTuple):
    """One entry of a task's transition log, as the event stream or a status document gives it.

    ``state`` and ``previous`` are wire values (``"received"``, ``"waiting-for-ep"``, ...);
    ``at`` is the time of the transition in epoch seconds; ``seq`` is the event's sequence
    number when it came from the stream (None when it was read from a status document)."""

    task_id: str
    state: str
    previous: str | None
    actor: str
    attempt: int
    at: float
    reason: str | None = None
    seq: int | None = None

    @property
    def key(self) -> tuple[str, int, float]:
        """What identifies the transition whichever way it was read."""
        return (self.state, self.attempt, self.at)


StateCallback = Callable[[Transition], object]

# Where a future is on its way to the service.
_QUEUED, _SENDING, _SENT, _DROPPED = "queued", "sending", "sent", "dropped"


class TaskFuture(concurrent.futures.Future[Any]):
    """A :class:`concurrent.futures.Future` of one task that also follows its life cycle.

    ``task_id`` is known once the submission that carries it was sent (``task_id_ready`` waits
    for it); ``state`` and ``attempt`` follow the task live; ``add_state_callback`` is called on
    every transition; ``cancel()`` cancels the task on the service even while it runs. The
    result is the function's return value, or :class:`~lifeline.TaskFailed` with the remote
    traceback. ``running()`` is true while the task's state is ``running``.
    """

    def __init__(self, engine: Engine | None, function_name: str) -> None:
        super().__init__()
        self._engine = engine
        self.function_name = function_name
        # The future's own condition (over a reentrant lock) guards what this class adds too.
        # It must not be notified for anything but the end (result() waits on it once).
        self._lock = self._condition
        # Made only for a caller of task_id_ready who has to wait.
        self._id_event: threading.Event | None = None
        self._phase = _QUEUED
        self._task_id: str | None = None
        self._task_group_id: str | None = None
        self._life_state: str | None = None
        self._attempt = 0
        self._transitions: list[Transition] = []
        self._seen: set[tuple[str, int, float]] = set()
        self._callbacks: list[list[Any]] = []  # [callback, transitions delivered]
        self._delivering = False
        self._notified = False

    def __repr__(self) -> str:
        where = self._life_state or self._phase
        done = " done" if self.done() else ""
        return f"<TaskFuture {self._task_id or '(not sent)'} {self.function_name} {where}{done}>"

    # -- what users read --------------------------------------------------------------------

    @property
    def task_id(self) -> str | None:
        """The task's id, or None while its submission has not been sent."""
        return self._task_id

    @property
    def task_group_id(self) -> str | None:
        """The submission the task belongs to, once sent."""
        return self._task_group_id

    def task_id_ready(self, timeout: float | None = None) -> str:
        """Waits until the task was submitted and returns its id. Raises TimeoutError after
        ``timeout`` seconds, or the error that kept it from being submitted."""
        with self._lock:
            if self._task_id is None and not self.done():
                if self._id_event is None:
                    self._id_event = threading.Event()
                event: threading.Event | None = self._id_event
            else:
                event = None
        if event is not None and not event.wait(timeout):
            raise TimeoutError(f"the task was not submitted within {timeout} s")
        if self._task_id is None:
            if self.cancelled():
                raise concurrent.futures.CancelledError("cancelled before it was submitted")
            error = self.exception(timeout=0)
            raise error if error is not None else RuntimeError("the task was not submitted")
        return self._task_id

    @property
    def state(self) -> str | None:
        """The task's current life-cycle state, one of the wire values (``"received"``,
        ``"waiting-for-ep"``, ..., ``"running"``, ``"success"``, ``"failed"``,
        ``"cancelled"``); None before the task reached the service."""
        return self._life_state

    @property
    def attempt(self) -> int:
        """The task's attempt (1 at first, one more per retry); 0 before it was submitted."""
        return self._attempt

    @property
    def transitions(self) -> list[Transition]:
        """Every transition seen so far, oldest first."""
        with self._lock:
            return list(self._transitions)

    def add_state_callback(self, fn: StateCallback) -> None:
        """Calls ``fn(transition)`` for every transition of the task: at once for those already
        seen, then as they happen (on the executor's thread), in order, each once."""
        with self._lock:
            self._callbacks.append([fn, 0])
        self._deliver()

    def running(self) -> bool:
        return self._life_state == "running" and not self.done()

    def cancel(self) -> bool:
        """Cancels the task: locally if it was not sent yet, else on the service, wherever it
        is (running included). True if the task is cancelled, False if it had finished."""
        with self._lock:
            queued = self._phase == _QUEUED
            if queued:
                self._phase = _DROPPED
        if self.done():
            return self.cancelled()
        if queued:
            return self._resolve_cancelled()
        try:
            task_id = self.task_id_ready()
        except Exception:
            # The submission failed: the future holds its error, there is nothing to cancel.
            return self.cancelled()
        engine = self._engine
        if engine is None:
            return False
        from .errors import RequestError

        try:
            doc = engine.client.cancel(task_id)
        except RequestError as error:
            if error.status == 409:
                return self.cancelled()
            raise
        if doc.get("status") == "cancelled":
            engine.apply_document(self, doc)
            self._resolve_cancelled()
            return True
        return self.cancelled()

    # -- what the executor and its engine call ----------------------------------------------

    def _cancel_if_queued(self) -> bool:
        """Cancels the future if its call was not taken for a submission yet."""
        with self._lock:
            queued = self._phase == _QUEUED
            if queued:
                self._phase = _DROPPED
        return queued and self._resolve_cancelled()

    def _claim(self) -> bool:
        """Takes the future for a submission, unless it was cancelled while queued."""
        with self._lock:
            if self._phase != _QUEUED or self.done():
                return False
            self._phase = _SENDING
            return True

    def _sent(self, task_id: str, task_group_id: str) -> None:
        with self._lock:
            self._task_id = task_id
            self._task_group_id = task_group_id
            self._phase = _SENT
            if self._life_state is None:
                # Stored by the service; the `received` transition itself comes with the stream.
                self._life_state = "received"
                self._attempt = 1
        self._id_known()

    def _record(self, transitions: list[Transition], attempt: int | None = None) -> bool:
        """Adds transitions not seen before; True if any was new."""
        with self._lock:
            new = [t for t in transitions if t.key not in self._seen]
            for t in new:
                self._seen.add(t.key)
                self._transitions.append(t)
            if new:
                self._life_state = new[-1].state
                self._attempt = max(self._attempt, new[-1].attempt)
            if attempt is not None:
                self._attempt = max(self._attempt, attempt)
        if new and self._callbacks:
            self._deliver()
        return bool(new)

    def _deliver(self) -> None:
        """Runs state callbacks on transitions they have not had; one thread at a time, so
        that each callback sees the transitions in order."""
        with self._lock:
            if self._delivering:
                return
            self._delivering = True
        try:
            while True:
                with self._lock:
                    work = []
                    for entry in self._callbacks:
                        if entry[1] < len(self._transitions):
                            work.append((entry[0], self._transitions[entry[1] :]))
                            entry[1] = len(self._transitions)
                    if not work:
                        self._delivering = False
                        return
                for callback, transitions in work:
                    for transition in transitions:
                        try:
                            callback(transition)
                        except Exception:
                            LOGGER.exception("a state callback of %r raised", self)
        except BaseException:
            with self._lock:
                self._delivering = False
            raise

    def _resolve_result(self, value: Any) -> bool:
        try:
            self.set_result(value)
        except concurrent.futures.InvalidStateError:
            return False
        self._id_known()
        return True

    def _resolve_exception(self, error: BaseException) -> bool:
        try:
            self.set_exception(error)
        except concurrent.futures.InvalidStateError:
            return False
        self._id_known()
        return True

    def _resolve_cancelled(self) -> bool:
        if not super().cancel():
            return False
        with self._lock:
            first = not self._notified
            self._notified = True
        if first:
            # Tell waiters (wait, as_completed) too, as an executor does for a cancelled future.
            self.set_running_or_notify_cancel()
        self._id_known()
        return True

    def _id_known(self) -> None:
        """Wakes a caller of task_id_ready: the id is known, or will never be."""
        with self._lock:
            event = self._id_event
        if event is not None:
            event.set()
