# Lifeline's Python worker: a long-lived (warm) process that runs one function call at a time.
# The manager starts it as `python3 -c` with a bootstrap that reads this program from stdin, so
# it never exists as a file.
#
# It reads one JSON request per line on stdin:
#   {"function_id": ..., "name": ..., "source": ..., "entrypoint": ..., "args": [...], "kwargs": {...}}
# and answers each with one JSON line on its protocol channel (the stdout it started with):
#   {"ok": true, "result": <the JSON-serialised return value>}
#   {"ok": false, "exception": "<traceback>"}
# Whatever the function prints goes to stderr, so it cannot corrupt the protocol.
import json
import linecache
import os
import sys
import traceback

protocol = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

functions = {}

# The name this program runs under (the manager compiles it as "<lifeline worker>"): frames of
# this file are Lifeline's, not the user's.
WORKER_FILE = (lambda: None).__code__.co_filename


def user_frames(tb):
    """The traceback from the user's first frame on, without the worker's own frames (this loop,
    `load`, the `exec` of the module): a user's traceback shows only their code."""
    while tb is not None and tb.tb_frame.f_code.co_filename == WORKER_FILE:
        tb = tb.tb_next
    return tb


def load(request):
    key = request["function_id"]
    if key not in functions:
        filename = "<lifeline function %s>" % request["name"]
        source = request["source"]
        # Tracebacks then show the function's own lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = {"__name__": "__lifeline__"}
        exec(compile(source, filename, "exec"), namespace)
        entry = namespace.get(request["entrypoint"])
        if not callable(entry):
            raise NameError("the function's source defines no function named %r" % request["entrypoint"])
        functions[key] = entry
    return functions[key]


def send(line):
    try:
        protocol.write(line)
    except BrokenPipeError:
        # The manager is gone (it stopped or died): nobody is left to answer, so leave quietly.
        os._exit(0)


def answer(message):
    send(json.dumps(message) + "\n")


for line in sys.stdin:
    try:
        request = json.loads(line)
        args, kwargs = request["args"], request["kwargs"]
    except Exception as error:
        # Nothing one request carries may stop the worker: it is that task's failure.
        answer({"ok": False, "exception": "the worker could not read the task: %s: %s" % (type(error).__name__, error)})
        continue
    try:
        value = load(request)(*args, **kwargs)
    except BaseException as error:
        # Leave out the worker's frames: the traceback starts in the user's code. An error of
        # the function's file itself (a syntax error, a missing entry point) keeps its message.
        frames = user_frames(error.__traceback__)
        text = "".join(traceback.format_exception(type(error), error, frames))
        answer({"ok": False, "exception": text.rstrip("\n")})
        continue
    try:
        result = json.dumps(value)
    except (TypeError, ValueError) as error:
        answer({"ok": False, "exception": "the result is not JSON-serialisable: %s: %s" % (type(error).__name__, error)})
        continue
    send('{"ok": true, "result": ' + result + "}\n")
