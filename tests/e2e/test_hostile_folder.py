"""A domain folder written by others, against the real `mail-autoconf serve`.

Each hostile case has its own test: a FIFO, /dev/zero, a symlink out of the
folder, a 100 MB file, a YAML alias bomb, a restart with a standing claim, an
owner missing for 3 s, `kill -9` of a worker, an empty folder; then what ties
them together: every worker, a restart and a second instance answer the same.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree

from tests.e2e.processes import EXECUTABLE, Started, start_service
from tests.helpers import wait_for

SECRET = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"


def provider(domain: str, host: str, *more: str) -> str:
    listed = ", ".join(f'"{d}"' for d in (domain, *more))
    return (
        f"provider: {{id: {host}, name: {host}}}\n"
        f"domains: [{listed}]\n"
        f"incoming: [{{type: imap, host: imap.{host}, security: ssl}}]\n"
        f"outgoing: [{{type: smtp, host: smtp.{host}, security: ssl}}]\n"
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    domains = tmp_path / "domains"
    domains.mkdir()
    (domains / "alpha.yaml").write_text(provider("alpha.test", "alpha.example"), encoding="utf-8")
    (domains / "zeta.yaml").write_text(provider("zeta.test", "zeta.example"), encoding="utf-8")
    return domains


class Service:
    """One running `serve`, and what a client sees of it."""

    def __init__(self, folder: Path, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.folder, self.workdir, self.env = folder, workdir, env or {}
        self.started: Started | None = None
        self.port = 0
        self.start()

    def start(self) -> None:
        self.started, self.port = start_service(self.folder, self.workdir, env=self.env)

    def stop(self) -> None:
        if self.started is not None:
            self.started.stop()

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self.started is not None
        return self.started.process

    def log(self) -> str:
        return self.started.log_text() if self.started else ""

    def get(self, path: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=10)

    def provider_of(self, domain: str) -> str | None:
        """The emailProvider id that answers for ``domain`` (None: 404)."""
        answer = self.get(f"/mail/config-v1.1.xml?emailaddress=u@{domain}")
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        found = etree.fromstring(answer.content).find("emailProvider")
        assert found is not None
        return found.get("id")

    def health(self) -> dict[str, object]:
        answer = self.get("/healthz")
        assert answer.status_code == 200
        return dict(answer.json())

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    running: list[Service] = []

    def start(folder: Path, **env: str) -> Service:
        workdir = tmp_path / f"run{len(running)}"
        workdir.mkdir()
        service = Service(folder, workdir, env)
        running.append(service)
        return service

    yield start
    for service in running:
        service.stop()
    for service in running:
        log = service.log()
        assert "Traceback" not in log, log[-3000:]
        assert SECRET not in log


def broken_reasons(service: Service) -> dict[str, str]:
    broken = service.health()["broken"]
    assert isinstance(broken, list)
    return {Path(b["file"]).name: " ".join(b["errors"]) for b in broken}


def test_a_fifo_is_refused_and_blocks_nothing(folder: Path, serve: Callable[..., Service]) -> None:
    os.mkfifo(folder / "pipe.yaml")
    os.mkfifo(folder / "names")
    (folder / "listed.yaml").write_text(
        "domains_from: names\n" + provider("listed.test", "listed.example").split("\n", 2)[2],
        encoding="utf-8",
    )
    service = serve(folder)
    assert service.provider_of("alpha.test") == "alpha.example"
    reasons = broken_reasons(service)
    assert "not a regular file (a FIFO)" in reasons["pipe.yaml"]
    assert "not a regular file (a FIFO)" in reasons["listed.yaml"]
    # The reload thread is not stuck: a new file serves, and after SIGHUP so do new workers.
    (folder / "new.yaml").write_text(provider("new.test", "new.example"), encoding="utf-8")
    wait_for(lambda: service.provider_of("new.test") == "new.example", 3, "a new file serves")
    old = set(service.workers())
    service.process.send_signal(signal.SIGHUP)

    def replaced() -> bool:
        workers = service.workers()
        return len(workers) == 2 and old.isdisjoint(workers)

    wait_for(replaced, 10, "two new workers, and no old one, after SIGHUP")
    for _ in range(8):
        assert service.provider_of("alpha.test") == "alpha.example"


def test_dev_zero_is_never_read(folder: Path, serve: Callable[..., Service]) -> None:
    (folder / "zero.yaml").write_text(
        "domains_from: /dev/zero\n" + provider("z.test", "z.example").split("\n", 2)[2],
        encoding="utf-8",
    )
    (folder / "device.yaml").symlink_to("/dev/zero")
    (folder / "list.yaml").write_text(
        "domains_from: zero\n" + provider("z.test", "z.example").split("\n", 2)[2],
        encoding="utf-8",
    )
    (folder / "zero").symlink_to("/dev/zero")
    service = serve(folder)
    reasons = broken_reasons(service)
    assert "lies outside the domain folder" in reasons["zero.yaml"]
    assert "lies outside the domain folder" in reasons["device.yaml"]
    assert "lies outside the domain folder" in reasons["list.yaml"]
    service.stop()
    # Even where /dev is an allowed folder, a device is not a file.
    service = serve(folder, AUTOCONF_ALLOWED_FOLDERS="/dev")
    reasons = broken_reasons(service)
    assert "not a regular file (a character device)" in reasons["zero.yaml"]
    assert "not a regular file (a character device)" in reasons["device.yaml"]
    assert "not a regular file (a character device)" in reasons["list.yaml"]
    assert service.provider_of("alpha.test") == "alpha.example"
    for pid in [service.process.pid, *service.workers()]:
        rss_kib = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * 4
        assert rss_kib < 200_000, f"process {pid} holds {rss_kib} KiB"


def test_a_symlink_out_of_the_folder_leaks_nothing(
    tmp_path: Path, folder: Path, serve: Callable[..., Service]
) -> None:
    private = tmp_path / "private"
    private.mkdir()
    key = private / "key.pem"
    key.write_text(f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n")
    (folder / "key.yaml").symlink_to(key)
    (folder / "listed.yaml").write_text(
        "domains_from: ../private/key.pem\n"
        + provider("listed.test", "listed.example").split("\n", 2)[2],
        encoding="utf-8",
    )
    service = serve(folder)
    operator = service.get("/healthz").text
    assert SECRET not in operator and "PRIVATE" not in operator
    reasons = broken_reasons(service)
    assert "lies outside the domain folder" in reasons["key.yaml"]
    assert "lies outside the domain folder" in reasons["listed.yaml"]
    # From the internet (through a proxy), /healthz says nothing of files at all.
    answer = requests.get(
        f"http://127.0.0.1:{service.port}/healthz",
        headers={"X-Forwarded-For": "203.0.113.9"},
        timeout=5,
    )
    body = answer.json()
    assert set(body) == {"status", "providers", "domains", "broken_files", "contested_domains"}
    assert body["status"] == "degraded" and body["broken_files"] == 2
    assert "key" not in answer.text


def test_a_100_mb_file_is_refused_unread(folder: Path, serve: Callable[..., Service]) -> None:
    big = folder / "big.yaml"
    with big.open("wb") as stream:
        stream.truncate(100 * 1024 * 1024)
    started = time.monotonic()
    service = serve(folder)
    assert time.monotonic() - started < 15
    assert broken_reasons(service)["big.yaml"] == (
        f"{big}: too large (104857600 bytes, limit 4194304)"
    )
    for pid in [service.process.pid, *service.workers()]:
        rss_kib = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * 4
        assert rss_kib < 200_000, f"process {pid} holds {rss_kib} KiB"


def test_an_alias_bomb_is_refused_quickly(folder: Path, serve: Callable[..., Service]) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    (folder / "bomb.yaml").write_text("\n".join(levels) + "\ndomains: *a9\n", encoding="utf-8")
    started = time.monotonic()
    service = serve(folder)
    assert time.monotonic() - started < 15
    assert "bomb.yaml" in broken_reasons(service)
    assert service.provider_of("alpha.test") == "alpha.example"


def test_a_standing_claim_survives_a_restart(folder: Path, serve: Callable[..., Service]) -> None:
    service = serve(folder)
    assert service.provider_of("alpha.test") == "alpha.example"
    (folder / "00-evil.yaml").write_text(
        provider("alpha.test", "evil.example", "evil.test", "*"), encoding="utf-8"
    )
    wait_for(lambda: service.provider_of("evil.test") == "evil.example", 3, "evil.test serves")
    assert service.provider_of("alpha.test") == "alpha.example"
    service.stop()
    service.start()  # the same folder, the same state folder beside it
    assert service.provider_of("alpha.test") == "alpha.example"
    assert service.provider_of("evil.test") == "evil.example"
    health = service.health()
    assert health["contested"] == [
        {
            "domain": "alpha.test",
            "served_by": "alpha.yaml",
            "claimed_by": ["00-evil.yaml", "alpha.yaml"],
        }
    ]
    # check names the same contest, and the same owner, as the running service.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCONF_")}
    checked = subprocess.run(
        [str(EXECUTABLE), "check", str(folder)], capture_output=True, text=True, env=env
    )
    assert checked.returncode == 1
    assert "alpha.test: claimed by 00-evil.yaml, alpha.yaml; served by alpha.yaml" in checked.stdout
    assert "00-evil.yaml:2: domains[0]: alpha.test is served by alpha.yaml" in checked.stdout


def test_an_owner_missing_for_3_s_keeps_its_domains(
    folder: Path, serve: Callable[..., Service]
) -> None:
    service = serve(folder)
    (folder / "00-evil.yaml").write_text(
        provider("alpha.test", "evil.example", "evil.test"), encoding="utf-8"
    )
    wait_for(lambda: service.provider_of("evil.test") == "evil.example", 3, "evil.test serves")
    owner = folder / "alpha.yaml"
    saved = owner.read_text(encoding="utf-8")
    owner.unlink()  # a deploy that is not atomic
    seen = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        seen.add(service.provider_of("alpha.test"))
        time.sleep(0.05)
    owner.write_text(saved, encoding="utf-8")
    for _ in range(40):
        seen.add(service.provider_of("alpha.test"))
        time.sleep(0.05)
    assert seen == {"alpha.example"}


def test_kill_9_of_a_worker_changes_no_answer(folder: Path, serve: Callable[..., Service]) -> None:
    service = serve(folder)
    (folder / "00-evil.yaml").write_text(
        provider("alpha.test", "evil.example", "evil.test"), encoding="utf-8"
    )
    wait_for(lambda: service.provider_of("evil.test") == "evil.example", 3, "evil.test serves")
    victim = service.workers()[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in service.workers() and len(service.workers()) == 2, 10, "respawn")
    answers = {service.provider_of("alpha.test") for _ in range(24)}
    healths = {str(service.health()) for _ in range(12)}
    assert answers == {"alpha.example"}
    assert len(healths) == 1


def test_an_empty_folder_keeps_the_last_snapshot(
    tmp_path: Path, folder: Path, serve: Callable[..., Service]
) -> None:
    # A grace of 1 s: the files first count as missing (and serve on), then as gone.
    service = serve(folder, AUTOCONF_GRACE_SECONDS="1")
    aside = tmp_path / "aside"
    folder.rename(aside)  # a failed mount: `mv domains x; mkdir domains`
    folder.mkdir()
    wait_for(lambda: service.health()["held_back"] is not None, 5, "held back")
    assert "serve no domain" in str(service.health()["held_back"])
    assert service.health()["status"] == "degraded"
    assert service.provider_of("alpha.test") == "alpha.example"
    assert "reload held back: the folder would serve no domain" in service.log()
    # A restart on the empty folder serves what served before, too.
    service.stop()
    service.start()
    assert service.provider_of("alpha.test") == "alpha.example"
    # SIGHUP with the override applies it anyway.
    state = folder.parent / "domains.state"
    (state / "force-reload").touch()
    service.process.send_signal(signal.SIGHUP)
    wait_for(lambda: service.provider_of("alpha.test") is None, 5, "the override applies")
    assert not (state / "force-reload").exists()


def test_moving_a_domain_in_two_steps_has_no_outage(
    folder: Path, serve: Callable[..., Service]
) -> None:
    service = serve(folder)
    # Step 1: add it to zeta.yaml too. alpha.yaml keeps it, and zeta.test keeps serving.
    (folder / "zeta.yaml").write_text(
        provider("zeta.test", "zeta.example", "alpha.test"), encoding="utf-8"
    )
    wait_for(lambda: service.health()["contested_domains"] == 1, 3, "the claim is seen")
    assert service.provider_of("zeta.test") == "zeta.example"
    assert service.provider_of("alpha.test") == "alpha.example"
    # Step 2: remove it from alpha.yaml; zeta.yaml takes it over, with no 404 between.
    (folder / "alpha.yaml").write_text(provider("other.test", "alpha.example"), encoding="utf-8")
    seen = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        seen.append(service.provider_of("alpha.test"))
        time.sleep(0.05)
    assert None not in seen
    assert seen[-1] == "zeta.example"
    assert service.health()["status"] == "ok"


def test_every_worker_a_restart_and_a_second_instance_answer_the_same(
    folder: Path, serve: Callable[..., Service]
) -> None:
    (folder / "00-evil.yaml").write_text(
        provider("alpha.test", "evil.example", "evil.test"), encoding="utf-8"
    )
    first = serve(folder)
    paths = [
        "/mail/config-v1.1.xml?emailaddress=u@alpha.test",
        "/mail/config-v1.1.xml?emailaddress=u@evil.test",
        "/mail/config-v1.1.xml?emailaddress=u@zeta.test",
        "/mobileconfig?emailaddress=u@zeta.test",
    ]

    def answers(service: Service) -> list[tuple[int, bytes]]:
        return [(a.status_code, a.content) for a in (service.get(p) for p in paths)]

    # A first start: alpha.test is contested, and no file serves it.
    assert first.provider_of("alpha.test") is None
    expected = answers(first)
    assert all(answers(first) == expected for _ in range(6))  # both workers
    second = serve(folder)  # the same folder and state folder
    assert answers(second) == expected
    first.stop()
    first.start()
    assert answers(first) == expected
    # A change reaches every worker of both within 2 s.
    (folder / "zeta.yaml").write_text(provider("zeta.test", "zeta2.example"), encoding="utf-8")
    took = wait_for(
        lambda: all(
            s.provider_of("zeta.test") == "zeta2.example" for s in (first, second) for _ in range(4)
        ),
        2,
        "the change everywhere",
    )
    assert took < 2
