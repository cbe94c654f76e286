"""What ``register_function`` ships: the function's source without decorators, dedented, with
what it uses written as source; and a clear ValueError for what cannot travel. No service is
needed: this is the client's own work."""

from __future__ import annotations

import functools
import json
import math
import os.path
from json import dumps as to_json
from typing import Any, Callable

import pytest

from lifeline import ShellFunction, python_function

SCALE = 3
LIMITS = {"low": [1, 2], "high": (3.5, None)}
LOOKUP = object()


def plain(a: int, b: int = 2) -> int:
    return a + b


def traced(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


@traced
def decorated(x: int) -> int:
    return x * 2


def helper(x: float) -> float:
    return math.sqrt(x) * SCALE


def uses_everything(x: float) -> str:
    return to_json({"root": helper(x), "limits": LIMITS, "joined": os.path.join("a", "b")})


def uses_an_object() -> bool:
    return LOOKUP is None


def uses_json_module() -> str:
    return json.dumps([1])


class Holder:
    def method(self) -> int:
        return 1


def run(source: str, entrypoint: str, *args: Any) -> Any:
    """Runs shipped source as the worker does: in a fresh namespace."""
    namespace: dict[str, Any] = {"__name__": "__lifeline__"}
    exec(compile(source, "<shipped>", "exec"), namespace)
    return namespace[entrypoint](*args)


def test_a_function_ships_as_its_own_source() -> None:
    spec = python_function(plain)
    assert spec.entrypoint == "plain"
    assert "def plain(a: int, b: int = 2) -> int:\n    return a + b\n" in spec.source
    assert run(spec.source, "plain", 1) == 3


def test_decorators_are_stripped_and_nested_functions_dedented() -> None:
    spec = python_function(decorated)
    assert "@traced" not in spec.source
    assert run(spec.source, "decorated", 4) == 8

    def nested(y: int) -> int:
        return y - 1

    spec = python_function(nested)
    assert "\ndef nested(y: int) -> int:\n    return y - 1\n" in spec.source
    assert run(spec.source, "nested", 1) == 0


def test_what_a_function_uses_travels_as_source() -> None:
    spec = python_function(uses_everything)
    assert "import math\n" in spec.source
    assert "import posixpath as path" not in spec.source  # os.path is reached through os
    assert "import os\n" in spec.source
    assert "from json import dumps as to_json\n" in spec.source
    assert "SCALE = 3\n" in spec.source
    assert "def helper(x: float) -> float:" in spec.source
    expected = uses_everything(16.0)
    assert run(spec.source, "uses_everything", 16.0) == expected
    assert "import json\n" in python_function(uses_json_module).source


@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (lambda x: x, "lambda"),
        (len, "builtin"),
        (str.upper, "builtin"),
        (functools.partial(plain, 1), "functools.partial"),
        (Holder().method, "bound method"),
        (Holder, "not a function"),
        (uses_an_object, "the global 'LOOKUP' (an object of type object)"),
    ],
)
def test_what_cannot_travel_is_refused_with_the_reason(fn: Any, words: str) -> None:
    with pytest.raises(ValueError, match="cannot register") as refused:
        python_function(fn)
    assert words in str(refused.value)


def test_closures_async_and_generators_are_refused() -> None:
    offset = 5

    def closure(x: int) -> int:
        return x + offset

    async def coroutine() -> None:
        pass

    def generator() -> Any:
        yield 1

    with pytest.raises(ValueError, match="closure over the local variables offset"):
        python_function(closure)
    with pytest.raises(ValueError, match="async function"):
        python_function(coroutine)
    with pytest.raises(ValueError, match="generator"):
        python_function(generator)


def test_a_shell_function_needs_a_command() -> None:
    assert ShellFunction("gzip -k {path}").command == "gzip -k {path}"
    with pytest.raises(ValueError, match="needs a command"):
        ShellFunction("  ")
