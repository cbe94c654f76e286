"""The exceptions of the Lifeline client.

Every error the service answers becomes one of these, carrying the service's own message:

- :class:`AuthError`: the token was refused (401 or 403).
- :class:`NotFound`: no such task, function or endpoint (404).
- :class:`Expired`: the task finished longer ago than the service keeps tasks (410).
- :class:`RequestError`: any other refused request (4xx), such as a malformed argument.
- :class:`ServiceError`: the service failed (5xx).
- :class:`ServiceUnavailable`: nothing answered at the service's address.

and a task that ends badly raises :class:`TaskFailed` (with the remote traceback and every
attempt's reason) or :class:`TaskCancelled`.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any


class LifelineError(Exception):
    """The base of every Lifeline error."""


class ServiceUnavailable(LifelineError):
    """Nothing answered at the service's address, or it stopped answering for too long."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(
            f"cannot reach the Lifeline service at {url} ({why}); is it running? "
            "Start one with `lifeline up`"
        )
        self.url = url
        self.why = why


class ServiceError(LifelineError):
    """The service answered with an error: its HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"the service answered {status} ({code}): {message}")
        self.status = status
        self.code = code
        self.message = message


class RequestError(ServiceError):
    """The service refused the request (4xx): the message says why."""


class AuthError(RequestError):
    """The service refused the token (401 or 403)."""


class NotFound(RequestError):
    """The task, function or endpoint does not exist (404)."""


class Expired(RequestError):
    """The task finished longer ago than the service's retention (410): its result is gone."""


class TaskFailed(LifelineError):
    """A task failed: a user exception, a walltime, a rejection, or system failures on every
    attempt.

    ``traceback`` is the remote traceback (for a task tried several times, every attempt's
    reason under a heading per attempt), ``reasons`` lists ``(attempt, reason)`` for every
    attempt that failed, and ``status`` is the task's whole status document.
    """

    def __init__(
        self,
        task_id: str,
        traceback: str,
        reasons: list[tuple[int, str]],
        status: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"task {task_id} failed:\n{traceback}")
        self.task_id = task_id
        self.traceback = traceback
        self.reasons = reasons
        self.status = status


class TaskCancelled(LifelineError, concurrent.futures.CancelledError):
    """The task was cancelled before it finished."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} was cancelled")
        self.task_id = task_id


def failure_from_status(doc: dict[str, Any]) -> TaskFailed:
    """The :class:`TaskFailed` of a failed task's status document."""
    reasons: list[tuple[int, str]] = []
    previous_attempt = 1
    for record in doc.get("details", {}).get("task_transitions", []):
        attempt = int(record.get("attempt", previous_attempt))
        reason = record.get("reason")
        if record.get("state") == "failed":
            reasons.append((attempt, reason or "no reason given"))
        elif attempt > previous_attempt:
            # A retry: the reason is why the attempt before it was lost.
            reasons.append((attempt - 1, reason or "no reason given"))
        previous_attempt = attempt
    text = doc.get("exception") or (reasons[-1][1] if reasons else "no reason given")
    return TaskFailed(str(doc.get("task_id", "?")), text, reasons, doc)
