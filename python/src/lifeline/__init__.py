"""Lifeline for Python: run Python functions and shell commands on Lifeline endpoints.

::

    from lifeline import Executor

    def add(a, b):
        return a + b

    with Executor(endpoint="local") as ex:
        future = ex.submit(add, 1, 2)
        print(future.task_id_ready(), future.state)
        print(future.result())  # 3

:class:`Client` is the whole HTTP API (functions, submissions, status, results, cancellation,
listing); :class:`Executor` is a :class:`concurrent.futures.Executor` whose
:class:`TaskFuture` objects follow their task's life cycle live. See the package's README.
"""

from ._wire import STATES, TERMINAL
from .client import Client, Submitted
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
from .executor import Executor
from .functions import PythonFunction, ShellFunction, python_function
from .futures import TaskFuture, Transition

__version__ = "0.1.0"

__all__ = [
    "STATES",
    "TERMINAL",
    "AuthError",
    "Client",
    "Executor",
    "Expired",
    "LifelineError",
    "NotFound",
    "PythonFunction",
    "RequestError",
    "ServiceError",
    "ServiceUnavailable",
    "ShellFunction",
    "Submitted",
    "TaskCancelled",
    "TaskFailed",
    "TaskFuture",
    "Transition",
    "__version__",
    "python_function",
]
