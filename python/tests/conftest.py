"""Fixtures that run Lifeline as its users do: the real ``lifeline serve`` on port 0 with a fresh
data directory, and a real endpoint agent (``lifeline endpoint start``) with real workers.

The binary is ``$LIFELINE_BIN``, else ``target/debug/lifeline`` of this repository (``cargo build
-p lifeline``). ``LIFELINE_TEST_LOG=info`` shows the service's and the agent's logs.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeline import Client

REPO = Path(__file__).resolve().parents[2]
#: How long a test waits for something that should happen promptly.
PATIENCE = 30.0


def binary() -> str:
    path = os.environ.get("LIFELINE_BIN") or str(REPO / "target" / "debug" / "lifeline")
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"no lifeline binary at {path}: run `cargo build -p lifeline` or set LIFELINE_BIN"
        )
    return path


def _log_level() -> str:
    return os.environ.get("LIFELINE_TEST_LOG", "error")


def _environment() -> dict[str, str]:
    """This process's environment without Lifeline's variables: the service refuses a
    ``LIFELINE_*`` variable it does not know, and the tests set what they mean to."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}


def _drain(stream: object | None) -> None:
    """Reads a child's output so that it never blocks on a full pipe."""
    if stream is None:
        return
    show = "LIFELINE_TEST_LOG" in os.environ

    def run() -> None:
        for line in stream:  # type: ignore[attr-defined]
            if show:
                print(line, end="")

    threading.Thread(target=run, daemon=True).start()


class Service:
    """``lifeline serve`` in a temporary directory."""

    def __init__(
        self,
        directory: Path,
        settings: dict[str, str] | None = None,
        ca_cert: Path | None = None,
    ) -> None:
        self.dir = directory
        #: ``LIFELINE_*`` settings beyond the tests' own, such as a short retention.
        self.settings = settings or {}
        #: The CA that signed the service's certificate, when it serves HTTPS.
        self.ca_cert = ca_cert
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.start("127.0.0.1:0", heartbeat_threshold="2")
        self.token = (directory / "data" / "token").read_text().strip()

    def start(self, bind: str, heartbeat_threshold: str) -> None:
        env = {
            **_environment(),
            "LIFELINE_HEARTBEAT_PERIOD": "0.2",
            "LIFELINE_HEARTBEAT_THRESHOLD": heartbeat_threshold,
            "LIFELINE_DISPATCH_ACK_TIMEOUT": "5",
            "LIFELINE_LOG": _log_level(),
            **self.settings,
        }
        self.process = subprocess.Popen(
            [
                binary(),
                "serve",
                "--bind",
                bind,
                "--data-dir",
                str(self.dir / "data"),
                "--dashboard-dir",
                str(self.dir / "no-dashboard"),
            ],
            stdout=subprocess.PIPE,
            stderr=None if "LIFELINE_TEST_LOG" in os.environ else subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + PATIENCE
        for line in self.process.stdout:
            if line.startswith("Lifeline is listening on "):
                self.url = line.removeprefix("Lifeline is listening on ").strip().rstrip("/")
                break
            if time.monotonic() > deadline:
                break
        else:
            raise RuntimeError("lifeline serve stopped before it listened")
        _drain(self.process.stdout)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Starts the service again on the same address and store. Its heartbeat threshold
        leaves agents that back off time to reconnect before they count as lost."""
        bind = self.url.removeprefix("http://")
        self.start(bind, heartbeat_threshold="30")

    def client(self) -> Client:
        return Client(self.url, self.token, ca_cert=self.ca_cert)


class Agent:
    """``lifeline endpoint start`` for an endpoint registered on the service."""

    def __init__(self, service: Service, name: str, config: str) -> None:
        admin = service.client()
        registered = admin.register_endpoint(name)
        admin.close()
        self.endpoint_id = str(registered["endpoint_id"])
        self.name = name
        self.dir = service.dir / f"agent-{name}"
        self.dir.mkdir()
        token_file = self.dir / "endpoint.token"
        token_file.touch(mode=0o600)
        token_file.write_text(str(registered["token"]) + "\n")
        (self.dir / "endpoint.toml").write_text(config)
        env = {**_environment(), "LIFELINE_LOG": _log_level()}
        self.process = subprocess.Popen(
            [
                binary(),
                "endpoint",
                "start",
                "--service",
                service.url,
                "--token-file",
                str(token_file),
                "--dir",
                str(self.dir),
                "--config",
                str(self.dir / "endpoint.toml"),
                *(["--ca-cert", str(service.ca_cert)] if service.ca_cert else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=None if "LIFELINE_TEST_LOG" in os.environ else subprocess.DEVNULL,
            env=env,
        )
        self.wait_online(service)

    def wait_online(self, service: Service) -> None:
        client = service.client()
        deadline = time.monotonic() + PATIENCE
        try:
            while time.monotonic() < deadline:
                for endpoint in client.endpoints():
                    if (
                        endpoint["endpoint_id"] == self.endpoint_id
                        and endpoint["status"] == "online"
                    ):
                        return
                time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"endpoint {self.name} never came online")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


#: One node with four workers: room for tasks that sleep beside tasks that run.
CONFIG = '[[executor]]\nlabel = "cpu"\nnodes = 1\nworkers_per_node = 4\n'


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    s = Service(tmp_path_factory.mktemp("lifeline"))
    yield s
    s.kill()


@pytest.fixture(scope="module")
def endpoint(service: Service) -> Iterator[Agent]:
    agent = Agent(service, "local", CONFIG)
    yield agent
    agent.stop()


@pytest.fixture
def client(service: Service) -> Iterator[Client]:
    c = service.client()
    yield c
    c.close()
