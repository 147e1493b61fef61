"""SIGHUP to the service reloads the domain folder, even with polling turned off."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import requests
from lxml import etree

from tests.e2e.processes import start_service


def provider(host: str) -> str:
    return (
        "domains: [hup.test.example]\n"
        f"incoming: [{{type: imap, host: {host}, security: ssl}}]\n"
        "outgoing: [{type: smtp, host: smtp.hup.test.example, security: ssl}]\n"
    )


def test_sighup_reloads(tmp_path: Path) -> None:
    folder = tmp_path / "domains"
    folder.mkdir()
    (folder / "hup.yaml").write_text(provider("imap-before.test.example"), encoding="utf-8")
    started, port = start_service(
        folder, tmp_path, "--workers", "1", env={"AUTOCONF_RELOAD_SECONDS": "0"}
    )
    url = f"http://127.0.0.1:{port}/mail/config-v1.1.xml?emailaddress=a@hup.test.example"

    def host() -> str:
        answer = requests.get(url, timeout=5)
        assert answer.status_code == 200, answer.text
        return str(
            etree.fromstring(answer.content).findtext("emailProvider/incomingServer/hostname")
        )

    try:
        assert host() == "imap-before.test.example"
        (folder / "hup.yaml").write_text(provider("imap-after.test.example"), encoding="utf-8")
        time.sleep(1.5)
        assert host() == "imap-before.test.example"  # no polling: nothing changed yet
        started.process.send_signal(signal.SIGHUP)  # to the gunicorn master, by its PID
        deadline = time.monotonic() + 15
        while host() != "imap-after.test.example":
            assert time.monotonic() < deadline, "SIGHUP did not reload the folder"
            time.sleep(0.2)
        assert started.process.poll() is None
    finally:
        started.stop()
    assert "Traceback" not in started.log_text()
