"""The real Delta Chat core for client tests: PyPI's ``deltachat-rpc-server`` (a
static binary of the Rust core), driven over JSON-RPC by ``deltachat-rpc-client``.

The core resolves names with the C library's way, statically linked: /etc/hosts,
then the name servers of /etc/resolv.conf, asking only A and AAAA. So
:func:`start_core` runs it in a mount namespace of its own (``namespace.with_files``)
with the test's hosts file and resolv.conf bind-mounted over the machine's,
inside the network namespace the calling thread is in: every name the test
wrote leads to 127.0.0.1 there, every other one to the test's own name server.

The client's calls wait without a bound; :meth:`Core.call` bounds each one and
stops the core (by its PID) when one does not answer in time, which fails every
call still waiting. The core's events (its log among them) are read from the
client's queue with a timeout too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import sqlite3
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from deltachat_rpc_client import Rpc

from tests.e2e.namespace import with_files


def _rpc_server() -> Path:
    """The binary inside the ``deltachat_rpc_server`` package (its script in the
    venv's bin/ is a Python wrapper that execs it)."""
    spec = importlib.util.find_spec("deltachat_rpc_server")
    assert spec is not None and spec.origin, "pip install deltachat-rpc-server"
    return Path(spec.origin).parent / "deltachat-rpc-server"


RPC_SERVER = _rpc_server()
CALL_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def write_hosts(path: Path, names: Sequence[str]) -> Path:
    """A hosts file: ``localhost`` and each of ``names`` at 127.0.0.1."""
    lines = ["127.0.0.1 localhost\n", *(f"127.0.0.1 {name}\n" for name in names)]
    path.write_text("".join(lines), encoding="utf-8")
    return path


class CoreError(Exception):
    """An error the core answered a call with: its own message."""


@dataclass
class Core:
    rpc: Rpc
    workdir: Path
    stderr: TextIO
    events: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return int(self.rpc.process.pid)

    def call(self, method: str, *args: Any, timeout: float = CALL_TIMEOUT) -> Any:
        """The core's ``method``; its error as :class:`CoreError` with the core's
        message; a call that takes longer than ``timeout`` stops the core."""
        waiter: Callable[[], Any] = getattr(self.rpc, method).future(*args)
        outcome: list[tuple[bool, Any]] = []

        def wait() -> None:
            try:
                outcome.append((True, waiter()))
            except Exception as exc:  # the client's JsonRpcError, or the core gone
                outcome.append((False, exc))

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        thread.join(timeout)
        if not outcome:
            self.kill()
            raise AssertionError(f"the core did not answer {method} within {timeout} s")
        ok, value = outcome[0]
        if not ok:
            error = value.args[0] if value.args else value
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            raise CoreError(message)
        return value

    def add_account(self) -> int:
        return int(self.call("add_account"))

    def drain(self, account: int) -> list[dict[str, Any]]:
        """The account's events that arrived since the last drain, kept in ``events``."""
        waiting = self.rpc.get_queue(account)
        kept = self.events.setdefault(account, [])
        while True:
            try:
                kept.append(waiting.get_nowait())
            except queue.Empty:
                return kept

    def wait_event(
        self,
        account: int,
        kind: str,
        timeout: float,
        since: int = 0,
        where: Callable[[dict[str, Any]], bool] = lambda event: True,
    ) -> dict[str, Any]:
        """The account's first event of ``kind`` (``IncomingMsg``…) for which ``where``
        holds, from the ``since``-th one kept on, waiting at most ``timeout``."""
        kept = self.drain(account)
        for seen in kept[since:]:
            if seen.get("kind") == kind and where(seen):
                return seen
        waiting = self.rpc.get_queue(account)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event: dict[str, Any] = waiting.get(timeout=left)
            except queue.Empty:
                break
            kept.append(event)
            if event.get("kind") == kind and where(event):
                return event
        raise AssertionError(f"no {kind} event within {timeout} s:\n{self.log(account)}")

    def log(self, account: int) -> str:
        """The core's log of the account (its Info, Warning and Error events)."""
        lines = [
            f"{event['kind']}: {event.get('msg', '')}"
            for event in self.drain(account)
            if event.get("kind") in ("Info", "Warning", "Error")
        ]
        return "\n".join(lines)

    def configured_transport(self, account: int) -> dict[str, Any]:
        """What the core stored for the account's transport once configured: its
        ``transports`` table's ``configured_param`` (each IMAP and SMTP server with
        host, port, security and the login it will use), read from its database
        (no call of 2.65 returns the logins)."""
        accounts = tomllib.loads((self.workdir / "accounts" / "accounts.toml").read_text())
        folder = next(entry["dir"] for entry in accounts["accounts"] if entry["id"] == account)
        database = self.workdir / "accounts" / folder / "dc.db"
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
            rows = db.execute("SELECT configured_param FROM transports").fetchall()
        assert len(rows) == 1, f"{len(rows)} transports"
        stored: dict[str, Any] = json.loads(rows[0][0])
        return stored

    def kill(self) -> None:
        if self.rpc.process.poll() is None:
            self.rpc.process.kill()
            self.rpc.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """Close the client (the core exits at the end of its input), then make sure
        of it by the PID."""
        closer = threading.Thread(target=self.rpc.close, daemon=True)
        closer.start()
        closer.join(STOP_TIMEOUT)
        if self.rpc.process.poll() is None:
            self.rpc.process.terminate()
            try:
                self.rpc.process.wait(timeout=STOP_TIMEOUT)
            except Exception:
                self.kill()
        closer.join(STOP_TIMEOUT)
        self.stderr.close()


def start_core(workdir: Path, hosts: Path, resolv_conf: Path) -> Core:
    """The core with ``hosts`` as its /etc/hosts and ``resolv_conf`` as its
    /etc/resolv.conf, its accounts in ``workdir/accounts``, its own output in
    ``workdir/rpc-server.log``."""
    assert RPC_SERVER.exists(), f"{RPC_SERVER} is missing: pip install deltachat-rpc-server"
    workdir.mkdir(parents=True, exist_ok=True)
    command = with_files({"/etc/hosts": hosts, "/etc/resolv.conf": resolv_conf}, [str(RPC_SERVER)])
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)}
    stderr = (workdir / "rpc-server.log").open("w", encoding="utf-8")
    rpc = Rpc(
        accounts_dir=str(workdir / "accounts"),
        rpc_server_path=command,
        env=environment,
        stderr=stderr,
    )
    core = Core(rpc, workdir, stderr)
    starter = threading.Thread(target=rpc.start, daemon=True)
    starter.start()
    starter.join(CALL_TIMEOUT)
    if starter.is_alive() or rpc.process.poll() is not None:
        core.stop()
        raise AssertionError(
            f"deltachat-rpc-server did not start:\n{(workdir / 'rpc-server.log').read_text()}"
        )
    return core
