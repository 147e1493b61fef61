"""Reload under load: 4 client threads ask every endpoint while a file is added,
edited, broken, fixed and deleted under the real gunicorn with 2 workers: for
20 s in `make test` (TEST_FULL_LENGTH=1), one round of the five changes
(about 4 s) otherwise; AUTOCONF_RELOAD_TEST_SECONDS sets any length.

No request may fail, and every answer must be wholly one version of the file:
each version writes its number into every field that a client reads.
"""

from __future__ import annotations

import os
import plistlib
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from lxml import etree

from tests.e2e.processes import Started, start_service
from tests.helpers import FULL_RUN, wait_for

# At least this long, in whole rounds of the five changes (0.7 s each).
DURATION = float(os.environ.get("AUTOCONF_RELOAD_TEST_SECONDS") or (20 if FULL_RUN else 3))
STEPS = 5
STEP_SECONDS = 0.7
CLIENTS = 4
STABLE = """domains: [stable.test.example]
incoming: [{type: imap, host: imap.stable.test.example, security: ssl}]
outgoing: [{type: smtp, host: smtp.stable.test.example, security: ssl}]
"""
POX = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
<Request><EMailAddress>{email}</EMailAddress>
<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
</Request></Autodiscover>"""


def version_yaml(n: int) -> str:
    return f"""provider: {{id: moving.test.example, name: "Version {n}"}}
domains: [moving.test.example]
incoming: [{{type: imap, host: imap-v{n}.test.example, port: {1000 + n}, security: ssl}}]
outgoing: [{{type: smtp, host: smtp-v{n}.test.example, port: {2000 + n}, security: ssl}}]
"""


def versions_in(text: str) -> set[str]:
    return set(re.findall(r"-v(\d+)\.test\.example", text))


def one_version(found: set[str]) -> None:
    assert len(found) == 1, f"an answer mixes versions {sorted(found)}"


@pytest.fixture(scope="module")
def moving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Started, int, Path]]:
    base = tmp_path_factory.mktemp("reload")
    folder = base / "domains"
    folder.mkdir()
    (folder / "stable.yaml").write_text(STABLE, encoding="utf-8")
    (folder / "moving.yaml").write_text(version_yaml(0), encoding="utf-8")
    # No grace: the test follows the file through its deletion (the grace has tests of its own).
    started, port = start_service(folder, base, env={"AUTOCONF_GRACE_SECONDS": "0"})
    try:
        yield started, port, folder
    finally:
        started.stop()


def check_answer(kind: str, response: requests.Response) -> str:
    """The version an answer shows (or 'absent'); fails on a mixed or broken answer."""
    assert response.status_code < 500, (kind, response.status_code, response.text[:300])
    if response.status_code == 404:
        return "absent"
    assert response.status_code == 200, (kind, response.status_code, response.text[:300])
    if kind == "autoconfig":
        root = etree.fromstring(response.content)
        found = versions_in(" ".join(root.xpath("//hostname/text()")))
        name = root.findtext("emailProvider/displayName") or ""
        found |= set(re.findall(r"Version (\d+)", name))
        ports = {int(p) % 1000 for p in root.xpath("//port/text()")}
        found |= {str(p) for p in ports}
    elif kind == "pox":
        found = versions_in(response.text)
        ns = {
            "o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
        }
        ports = etree.fromstring(response.content).xpath("//o:Port/text()", namespaces=ns)
        found |= {str(int(p) % 1000) for p in ports}
    elif kind == "mobileconfig":
        profile = plistlib.loads(response.content)
        mail = profile["PayloadContent"][0]
        found = versions_in(
            mail["IncomingMailServerHostName"] + " " + mail["OutgoingMailServerHostName"]
        )
        found |= set(re.findall(r"Version (\d+)", mail["EmailAccountDescription"]))
    else:
        return "n/a"
    one_version(found)
    return found.pop()


def test_reload_under_load(moving: tuple[Started, int, Path]) -> None:
    started, port, folder = moving
    base = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    failures: list[str] = []
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        requests_made = [
            (
                "autoconfig",
                lambda e: session.get(
                    f"{base}/mail/config-v1.1.xml", params={"emailaddress": e}, timeout=10
                ),
            ),
            (
                "pox",
                lambda e: session.post(
                    f"{base}/autodiscover/autodiscover.xml", data=POX.format(email=e), timeout=10
                ),
            ),
            (
                "mobileconfig",
                lambda e: session.get(
                    f"{base}/mobileconfig", params={"emailaddress": e}, timeout=10
                ),
            ),
            (
                "json",
                lambda e: session.get(
                    f"{base}/autodiscover/autodiscover.json",
                    params={"Email": e, "Protocol": "AutodiscoverV1"},
                    timeout=10,
                ),
            ),
            ("healthz", lambda e: session.get(f"{base}/healthz", timeout=10)),
        ]
        while not stop.is_set():
            for kind, ask in requests_made:
                for email in ("user@moving.test.example", "user@stable.test.example"):
                    try:
                        response = ask(email)
                        if "stable" in email:  # untouched by the edits: always answered
                            assert response.status_code == 200, (kind, response.status_code)
                            outcome = "stable"
                        else:
                            outcome = check_answer(kind, response)
                    except (AssertionError, requests.RequestException, ValueError) as exc:
                        with lock:
                            failures.append(f"{kind} {email}: {exc!r}"[:500])
                        continue
                    with lock:
                        seen[f"{kind}:{outcome}"] += 1

    def served(outcome: str) -> int:
        """How many autoconfig answers for the moving domain showed ``outcome``."""
        with lock:
            return seen[f"autoconfig:{outcome}"]

    def until_served(outcome: str, before: int, what: str) -> None:
        wait_for(lambda: served(outcome) > before, 10, what)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    until_served("0", 0, "the first version, before any change")

    # Edit, break, fix, delete and add, over and over, until the time is up and
    # the round is complete. Each step lasts STEP_SECONDS, and until the clients
    # have had an answer that shows it (a change the service missed fails here).
    path = folder / "moving.yaml"
    steps = 0
    began = time.monotonic()
    deadline = began + DURATION
    version = 0
    while steps % STEPS or time.monotonic() < deadline:
        changed = time.monotonic()
        step = steps % STEPS
        if step in (0, 2, 4):  # a new good version
            version += 1
        expected = {1: None, 3: "absent"}.get(step, str(version))
        before = served(expected or "absent")
        if step == 0:  # edit
            path.write_text(version_yaml(version), encoding="utf-8")
        elif step == 1:  # break it: the last good version must go on serving
            path.write_text(version_yaml(version).replace("security: ssl", "security: tls"))
        elif step == 2:  # fix it
            path.write_text(version_yaml(version), encoding="utf-8")
        elif step == 3:  # delete it
            path.unlink()
        else:  # add it again
            path.write_text(version_yaml(version), encoding="utf-8")
        steps += 1
        if expected:
            until_served(expected, before, f"change {steps}: {expected}")
        time.sleep(max(0.0, changed + STEP_SECONDS - time.monotonic()))
        if not expected:  # while it was broken, version went on serving
            assert served("absent") == before, f"change {steps}: broken, the domain went"
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - began

    total = sum(seen.values())
    versions_seen = sorted({k.split(":")[1] for k in seen if k.startswith("autoconfig:")})
    print(
        f"\nreload under load: {total} answers in {elapsed:.1f} s, {len(failures)} failed, "
        f"{steps} file changes, autoconfig versions seen: {', '.join(versions_seen)}"
    )
    assert not failures, f"{len(failures)} of {total + len(failures)} failed: {failures[:5]}"
    assert total > 10 * elapsed, f"only {total} answers in {elapsed:.1f} s"
    # The service followed the file: every good version, and its absence, was served.
    assert set(versions_seen) == {*map(str, range(version + 1)), "absent", "stable"}, seen
    assert started.process.poll() is None
    log = started.log_text()
    assert "Traceback" not in log
    assert "reload: domains removed: moving.test.example" in log
