"""What the access log shows of a request target; the gunicorn set-up's helpers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from autoconf.access_log import loggable_target
from autoconf.machine import available_cpus
from autoconf.metrics import prepare_folder


@pytest.mark.parametrize(
    ("path", "query", "mode", "shown"),
    [
        (
            "/mail/config-v1.1.xml",
            "emailaddress=Alice%40example.com",
            "redact",
            "/mail/config-v1.1.xml?emailaddress=***@example.com",
        ),
        (
            "/mail/config-v1.1.xml",
            "emailaddress=Alice@example.com",
            "full",
            "/mail/config-v1.1.xml?emailaddress=Alice@example.com",
        ),
        (
            "/autodiscover/autodiscover.json/v1.0/bob@example.org",
            "Protocol=x",
            "redact",
            "/autodiscover/autodiscover.json/v1.0/***@example.org?Protocol=x",
        ),
        ("/healthz", "", "redact", "/healthz"),
    ],
)
def test_addresses_as_the_setting_says(path: str, query: str, mode: str, shown: str) -> None:
    assert loggable_target(path, query, mode) == shown


def test_hash_is_stable_and_hides_the_local_part() -> None:
    first = loggable_target("/mobileconfig", "emailaddress=Carol%40example.com", "hash")
    again = loggable_target("/mobileconfig", "emailaddress=carol@example.com", "hash")
    assert first == again and "arol" not in first and first.endswith("@example.com")


def test_no_request_writes_a_line_of_its_own() -> None:
    shown = loggable_target("/x", "a=1%0d%0a127.0.0.1 GET /forged 200%00", "redact")
    assert "\n" not in shown and "\r" not in shown and "\x00" not in shown
    assert len(loggable_target("/x", "a=" + "b" * 10_000, "redact")) <= 301


def test_workers_follow_a_cgroup_cpu_quota(tmp_path: Path) -> None:
    """A container limited to 1.5 CPUs on a bigger machine has 2 CPUs to use, not all."""
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    assert available_cpus(tmp_path / "missing") == affinity
    cpu_max.write_text("max 100000\n")
    assert available_cpus(cpu_max) == affinity
    cpu_max.write_text("150000 100000\n")
    assert available_cpus(cpu_max) == min(affinity, 2)
    cpu_max.write_text("1000 100000\n")
    assert available_cpus(cpu_max) == 1


def test_metrics_folder_private_unless_given(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    private = prepare_folder(environ)
    try:
        assert private is not None and private.is_dir()
        assert environ["PROMETHEUS_MULTIPROC_DIR"] == str(private)
    finally:
        shutil.rmtree(private or tmp_path / "none", ignore_errors=True)

    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"an earlier run")
    (given / "keep.txt").write_text("not ours")
    assert prepare_folder({"PROMETHEUS_MULTIPROC_DIR": str(given)}) is None
    assert sorted(p.name for p in given.iterdir()) == ["keep.txt"]
    assert prepare_folder({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "new")}) is None
    assert (tmp_path / "new").is_dir()
