"""Functions as Lifeline ships them: Python source text with an entry point, or a shell command.

Lifeline never pickles code. A Python function travels as its source text, found with
:mod:`inspect`, dedented and with its decorators stripped, and runs in a warm ``python3`` worker
on the endpoint, whatever Python version that is. What the function uses from around it comes
along when it can be written as source:

- a module it uses becomes an ``import`` line (``np`` after ``import numpy as np`` becomes
  ``import numpy as np``);
- a function or class of an installed package becomes a ``from ... import ...`` line;
- a function of your own files is shipped as source too (with what it uses in turn);
- a constant that is a literal (numbers, strings, and lists, tuples, dicts and sets of them)
  is written out as an assignment.

Anything else (a lambda, a closure over local variables, a builtin, an object of your own) is a
:class:`ValueError` at registration that says why and what to do, not a failure on the endpoint
later. The endpoint must have the imported packages installed.
"""

from __future__ import annotations

import ast
import builtins
import dis
import functools
import inspect
import os
import sys
import sysconfig
import textwrap
import types
from dataclasses import dataclass
from typing import Any, Callable, Union

__all__ = ["PythonFunction", "ShellFunction", "python_function"]

#: Literal constants longer than this (as source) are refused: pass them as arguments.
MAX_CONSTANT_SOURCE = 64 * 1024


@dataclass(frozen=True)
class ShellFunction:
    """A shell command run by ``sh`` on the endpoint, with ``{name}`` placeholders filled from
    the task's keyword arguments. Usable wherever a function is expected::

        executor.submit(ShellFunction("gzip -k {path}"), path="data.csv")
    """

    command: str
    name: str = "shell"

    def __post_init__(self) -> None:
        if not isinstance(self.command, str) or not self.command.strip():
            raise ValueError("a shell function needs a command, such as 'gzip -k {path}'")


@dataclass(frozen=True)
class PythonFunction:
    """Python source that defines ``entrypoint``, as the service stores it."""

    name: str
    source: str
    entrypoint: str


FunctionLike = Union[Callable[..., Any], ShellFunction, PythonFunction]


def _installed_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    return tuple(os.path.realpath(d) + os.sep for d in dirs if d)


def _is_installed(module_name: str) -> bool:
    """Whether a module comes with Python or from an installed package (so that the endpoint can
    import it too), rather than from the user's own files."""
    if module_name in sys.builtin_module_names:
        return True
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if module is None or path is None:
        return module is not None and module_name != "__main__"
    return bool(os.path.realpath(path).startswith(_installed_dirs()))


def _refuse(fn: Any, why: str) -> ValueError:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return ValueError(f"cannot register {name} with Lifeline: {why}")


def _check_callable(fn: Any) -> types.FunctionType:
    """The plain function behind ``fn``, or a ValueError saying why there is none."""
    if isinstance(fn, functools.partial):
        raise _refuse(fn.func, "it is a functools.partial; pass its bound values as arguments")
    if isinstance(fn, types.MethodType):
        raise _refuse(
            fn,
            "it is a bound method, and its object would not travel; use a plain function "
            "defined with def and pass what it needs as arguments",
        )
    if isinstance(fn, (types.BuiltinFunctionType, types.BuiltinMethodType)) or (
        callable(fn)
        and not isinstance(fn, types.FunctionType)
        and not inspect.isclass(fn)
        and type(fn).__module__ == "builtins"
    ):
        raise _refuse(
            fn,
            "it is a builtin, which has no source to ship; call it from a function of your own "
            "defined with def",
        )
    if not isinstance(fn, types.FunctionType):
        raise _refuse(
            fn,
            f"it is a {type(fn).__name__}, not a function; Lifeline ships functions defined with "
            "def (or ShellFunction for shell commands)",
        )
    target = inspect.unwrap(fn)
    if not isinstance(target, types.FunctionType):
        raise _refuse(fn, "it wraps something that is not a function defined with def")
    if target.__name__ == "<lambda>":
        raise _refuse(
            fn,
            "it is a lambda, which has no name to call and no source of its own; define it "
            "with def",
        )
    if target.__closure__:
        names = ", ".join(target.__code__.co_freevars)
        raise _refuse(
            fn,
            f"it is a closure over the local variables {names} of the function that defines it; "
            "pass them as arguments, or define the function at module level",
        )
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        raise _refuse(
            fn,
            "it is an async function, and the worker would get a coroutine rather than a "
            "result; define a plain function (it may call asyncio.run inside)",
        )
    if inspect.isgeneratorfunction(target):
        raise _refuse(
            fn, "it is a generator function, and a generator is not JSON; return a list instead"
        )
    return target


def _definition(fn: types.FunctionType) -> tuple[str, ast.FunctionDef]:
    """The function's own source, dedented, from its ``def`` line (decorators stripped)."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        raise _refuse(
            fn,
            "Python cannot find its source (was it typed at an interactive prompt or made with "
            "exec?); define it in a file",
        ) from None
    source = textwrap.dedent(source)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        raise _refuse(fn, "its source could not be read on its own") from None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef):
        raise _refuse(fn, "its source is not a def statement")
    lines = source.splitlines(keepends=True)[node.lineno - 1 :]
    text = "".join(lines)
    if not text.endswith("\n"):
        text += "\n"
    return text, node


def _global_names(code: types.CodeType) -> list[str]:
    """The globals a code object (and the code nested in it) reads, in order of first use."""
    seen: dict[str, None] = {}
    stack = [code]
    while stack:
        current = stack.pop()
        for instruction in dis.get_instructions(current):
            if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME") and isinstance(
                instruction.argval, str
            ):
                seen.setdefault(instruction.argval, None)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return list(seen)


def _definition_names(node: ast.FunctionDef) -> list[str]:
    """Names read when the ``def`` itself runs: its defaults."""
    names: list[str] = []
    defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
    for default in defaults:
        names.extend(n.id for n in ast.walk(default) if isinstance(n, ast.Name))
    return names


def _literal_source(value: Any) -> str | None:
    """``repr(value)`` when it reads back as the same literal, else None."""
    if not isinstance(
        value,
        (int, float, complex, str, bytes, bool, type(None), tuple, list, dict, set, frozenset),
    ):
        return None
    try:
        text = repr(value)
        if ast.literal_eval(text) != value:
            return None
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        return None
    return text


class _Bundle:
    """The source of a function and of everything it uses, gathered once per registration."""

    def __init__(self, entry: types.FunctionType) -> None:
        self.entry = entry
        self.imports: dict[str, str] = {}
        self.constants: dict[str, str] = {}
        self.helpers: dict[str, str] = {}
        self.visiting: set[int] = set()

    def add_function(self, fn: types.FunctionType, *, as_name: str) -> str:
        source, node = _definition(fn)
        if node.name != as_name:
            # A helper known by another name than its def's (imported under an alias).
            source += f"{as_name} = {node.name}\n"
        self.visiting.add(id(fn))
        for name in [*_definition_names(node), *_global_names(fn.__code__)]:
            self.resolve(fn, name)
        return source

    def resolve(self, user: types.FunctionType, name: str) -> None:
        if name in self.imports or name in self.constants or name in self.helpers:
            return
        namespace = user.__globals__
        if name not in namespace:
            # A builtin, or a name that does not exist (which fails on the endpoint as here).
            return
        value = namespace[name]
        if value is self.entry or (
            isinstance(value, types.FunctionType) and id(value) in self.visiting
        ):
            return
        if name in vars(builtins) and vars(builtins)[name] is value:
            return
        if isinstance(value, types.ModuleType):
            module = value.__name__
            if module == "__main__" or not _is_installed(module.split(".")[0]):
                raise self.refusal(user, name, f"the module {module} of your own files")
            self.imports[name] = (
                f"import {module}\n" if module == name else f"import {module} as {name}\n"
            )
            return
        module_name = getattr(value, "__module__", None)
        qualname = getattr(value, "__qualname__", None)
        if isinstance(value, types.FunctionType) and (
            module_name is None or not _is_installed(module_name.split(".")[0])
        ):
            self.helpers[name] = ""  # placeholder against cycles
            self.helpers[name] = self.add_function(_check_callable(value), as_name=name)
            return
        if (
            isinstance(module_name, str)
            and isinstance(qualname, str)
            and "." not in qualname
            and "<" not in qualname
            and module_name != "__main__"
            and _is_installed(module_name.split(".")[0])
            and getattr(sys.modules.get(module_name), qualname, None) is value
        ):
            line = f"from {module_name} import {qualname}"
            self.imports[name] = line + ("\n" if qualname == name else f" as {name}\n")
            return
        literal = _literal_source(value)
        if literal is not None and len(literal) <= MAX_CONSTANT_SOURCE:
            self.constants[name] = f"{name} = {literal}\n"
            return
        raise self.refusal(user, name, f"an object of type {type(value).__name__}")

    def refusal(self, user: types.FunctionType, name: str, what: str) -> ValueError:
        return _refuse(
            user,
            f"it uses the global {name!r} ({what}), which the endpoint's worker would not have; "
            "pass it as an argument, or import or define it inside the function",
        )

    def source(self, body: str) -> str:
        parts = ["from __future__ import annotations\n"]
        parts.extend(self.imports.values())
        parts.extend(self.constants.values())
        parts.extend(f"\n{s}" for s in self.helpers.values())
        parts.append(f"\n{body}")
        return "".join(parts)


def python_function(fn: Callable[..., Any]) -> PythonFunction:
    """The source Lifeline ships for ``fn``, or a ValueError saying why it cannot travel."""
    target = _check_callable(fn)
    bundle = _Bundle(target)
    _, node = _definition(target)
    body = bundle.add_function(target, as_name=node.name)
    return PythonFunction(name=node.name, source=bundle.source(body), entrypoint=node.name)
