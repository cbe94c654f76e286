"""What the client sends and reads: answers turned into values or errors, and calls encoded as
the JSON the service stores. Shared by :class:`~lifeline.Client` and the executor's engine."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from .errors import (
    AuthError,
    Expired,
    NotFound,
    RequestError,
    ServiceError,
    ServiceUnavailable,
)

#: The life-cycle states as they are named on the wire, in the order of the model.
STATES = (
    "received",
    "waiting-for-ep",
    "dispatched-to-ep",
    "waiting-for-nodes",
    "waiting-for-launch",
    "running",
    "success",
    "failed",
    "cancelled",
)
#: The states a task never leaves.
TERMINAL = frozenset({"success", "failed", "cancelled"})
#: How deep task arguments may nest (the service's ``MAX_ARGUMENT_DEPTH``).
MAX_ARGUMENT_DEPTH = 64
#: The most ids one batch-status request may carry.
BATCH_STATUS_LIMIT = 10_000

_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode


def unreachable(url: str, error: Exception) -> ServiceUnavailable:
    """The error of a request that got no answer."""
    if "CERTIFICATE_VERIFY_FAILED" in str(error):
        why = (
            f"its TLS certificate is not trusted ({error}): if a CA of your own signed it, "
            "pass ca_cert= (or set LIFELINE_CA_CERT) to that CA's certificate"
        )
    elif isinstance(error, httpx.ConnectError):
        why = "nothing answers there"
    elif isinstance(error, httpx.TimeoutException):
        why = "it did not answer in time"
    else:
        why = str(error) or type(error).__name__
    return ServiceUnavailable(url, why)


def error_of(status: int, body: bytes) -> ServiceError:
    """The exception of an error answer, with the service's code and message."""
    code, message = "http", f"HTTP {status}"
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            code = str(parsed.get("error", code))
            message = str(parsed.get("message", message))
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        if text:
            message = text[:500]
    if status in (401, 403):
        return AuthError(status, code, message)
    if status == 404:
        return NotFound(status, code, message)
    if status == 410:
        return Expired(status, code, message)
    if 400 <= status < 500:
        return RequestError(status, code, message)
    return ServiceError(status, code, message)


def answer(response: httpx.Response) -> Any:
    """The JSON of a success answer (None when empty); raises for an error answer."""
    if not response.is_success:
        raise error_of(response.status_code, response.content)
    if not response.content:
        return None
    return response.json()


def _depth(value: Any) -> int:
    """How deep a value nests lists and dicts, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, tuple)):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
        elif isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
    return deepest


def _refuse_json(values: Sequence[tuple[str, Any]]) -> None:
    """Raises a TypeError naming the first value that is not JSON."""
    for what, value in values:
        try:
            _encode(value)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"{what} ({type(value).__name__}) is not JSON, so it cannot travel to the "
                f"endpoint: {error}"
            ) from None


def _check_depth(text: str, container: Any, values: Sequence[tuple[str, Any]]) -> None:
    """Raises a ValueError naming a value that nests deeper than the service accepts (the
    outer array or object of args or kwargs counts as one level)."""
    if text.count("[") + text.count("{") <= MAX_ARGUMENT_DEPTH:
        return
    if _depth(container) <= MAX_ARGUMENT_DEPTH:
        return
    for what, value in values:
        if _depth(value) >= MAX_ARGUMENT_DEPTH:
            raise ValueError(
                f"{what} nests lists and dicts deeper than the {MAX_ARGUMENT_DEPTH - 1} levels "
                "an argument may have"
            )


def encode_call(
    function_id: str, args: Sequence[Any], kwargs: Mapping[str, Any], function_name: str
) -> str:
    """One task of a submission as JSON text. A TypeError names the argument that is not JSON,
    a ValueError one that nests too deep."""
    parts = [f'{{"function_id":"{function_id}"']
    if args:
        values = [(f"argument {i} of {function_name}", v) for i, v in enumerate(args)]
        try:
            text = _encode(list(args))
        except (TypeError, ValueError):
            _refuse_json(values)
            raise
        _check_depth(text, list(args), values)
        parts.append(f',"args":{text}')
    if kwargs:
        for key in kwargs:
            if not isinstance(key, str):
                raise TypeError(f"keyword {key!r} of {function_name} is not a string")
        values = [(f"keyword argument {k!r} of {function_name}", v) for k, v in kwargs.items()]
        try:
            text = _encode(dict(kwargs))
        except (TypeError, ValueError):
            _refuse_json(values)
            raise
        _check_depth(text, dict(kwargs), values)
        parts.append(f',"kwargs":{text}')
    parts.append("}")
    return "".join(parts)


def submission_body(calls: Sequence[str], max_retries: int | None) -> bytes:
    """The body of ``POST /v1/endpoints/{id}/submit`` from encoded calls."""
    tail = "" if max_retries is None else f',"max_retries":{int(max_retries)}'
    return f'{{"tasks":[{",".join(calls)}]{tail}}}'.encode()
