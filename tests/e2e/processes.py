"""Real processes for end-to-end tests: started on free ports, stopped by their PID."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

EXECUTABLE = Path(sys.executable).parent / "mail-autoconf"
REPOSITORY = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Started:
    """A process of ours, with the file that holds its output."""

    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Stop it by its PID: terminate, then kill if it does not go."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)


def start(
    command: Sequence[str], log: Path, *, cwd: Path, env: dict[str, str] | None = None
) -> Started:
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            list(command), stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd, env=env
        )
    return Started(process, log)


def wait_until(ready: Callable[[], bool], started: Started, what: str) -> None:
    """Poll ``ready`` until it holds; fail with the process's output if it never does."""
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if started.process.poll() is not None:
            raise AssertionError(
                f"{what} exited with {started.process.returncode}:\n{started.log_text()}"
            )
        if time.monotonic() > deadline:
            started.stop()
            raise AssertionError(
                f"{what} not ready within {START_TIMEOUT} s:\n{started.log_text()}"
            )
        time.sleep(0.1)


def start_service(
    folder: Path, workdir: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[Started, int]:
    """The real `mail-autoconf serve` on a free port, ready when /healthz answers.

    The service sees none of this environment's AUTOCONF_* settings, only ``env``'s;
    a folder of the repository (tests/data/...) keeps its state folder in
    ``workdir``, not beside it; any other keeps the default, beside it.
    """
    assert EXECUTABLE.exists(), f"{EXECUTABLE} is not installed"
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCONF_")}
    if folder.resolve().is_relative_to(REPOSITORY):
        environment["AUTOCONF_STATE"] = str(workdir / "state")
    environment.update(env or {})
    environment["HOME"] = str(workdir)  # nothing of gunicorn's lands in the real home
    command = [str(EXECUTABLE), "serve", "--domains", str(folder)]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "2", *extra]
    started = start(command, workdir / "service.log", cwd=workdir, env=environment)

    def healthy() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(healthy, started, "mail-autoconf serve")
    return started, port
