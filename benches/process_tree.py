"""The memory of a peer benchmark's process tree and the age of its process, measured as
Lifeline's end-to-end benchmark (`crates/lifeline/benches/end_to_end.rs`) measures its own.

The tree is this process and every process below it: the peer's client, its brokers,
interchanges, managers and workers. Each benchmark first makes itself the child subreaper of
its tree, so that processes started in the background by a shell (as Parsl's local provider
does) stay in it rather than leaving for init. Its size is the sum of their resident set sizes,
sampled from /proc every 100 ms.
"""

import ctypes
import os
import threading
from pathlib import Path

PROC = Path("/proc")
PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> None:
    """Makes this process the subreaper of its descendants (Linux's prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def process_age() -> float:
    """Seconds since this process started, as the kernel counts (10 ms steps): the start to
    first result includes the interpreter's start and the import of the peer's library, as
    Lifeline's includes the start of its binary."""
    fields = (PROC / "self" / "stat").read_text().rsplit(")", 1)[1].split()
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    uptime = float((PROC / "uptime").read_text().split()[0])
    return uptime - started


def parents() -> dict[int, int]:
    """Every process's parent, read from /proc."""
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def tree(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents().items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_kib(pid: int) -> int:
    """A process's resident set size (0 once it is gone)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakTreeRss:
    """Samples the resident memory of this process's tree in a thread; `peak_mib` is the
    largest sum seen so far."""

    def __init__(self, period: float = 0.1) -> None:
        self._period = period
        self._peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        root = os.getpid()
        while not self._stop.wait(self._period):
            self._peak_kib = max(self._peak_kib, sum(rss_kib(p) for p in tree(root)))

    def peak_mib(self) -> float:
        self._stop.set()
        self._thread.join()
        return self._peak_kib / 1024
