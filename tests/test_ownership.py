"""ownership and the registry's memory: a served domain stays with its file, a
missing file is held, an accident is held back, and a restart continues."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import pytest

from autoconf import render
from autoconf.model import is_public_suffix
from autoconf.registry import Registry, load_folder
from autoconf.render import Documents
from autoconf.state import SHARDS, StateFolder


def provider(*domains: str, host: str = "example.com") -> str:
    listed = ", ".join(f'"{d}"' for d in domains)
    return (
        f"provider: {{id: {host}}}\ndomains: [{listed}]\n"
        f"incoming: [{{type: imap, host: imap.{host}, security: ssl}}]\n"
        f"outgoing: [{{type: smtp, host: smtp.{host}, security: ssl}}]\n"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stamp = int(Clock().now * 1e9) + os.stat(path).st_ino + len(text)  # a distinct mtime
    os.utime(path, ns=(stamp, stamp))


def make(folder: Path, clock: Clock, **options: object) -> Registry[Documents]:
    state = StateFolder(folder.parent / "state")
    return Registry(folder, render.Compiler(), state=state, clock=clock, **options)  # type: ignore[arg-type]


def owner(registry: Registry[Documents], domain: str) -> str | None:
    entry = registry.snapshot.lookup(domain)
    return entry.provider.id if entry else None


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    domains = tmp_path / "domains"
    domains.mkdir()
    write(domains / "alpha.yaml", provider("alpha.test", host="alpha.example"))
    write(domains / "zeta.yaml", provider("zeta.test", host="zeta.example"))
    return domains


def test_the_first_start_rule_does_not_depend_on_names(tmp_path: Path) -> None:
    for first, second in (("a.yaml", "b.yaml"), ("b.yaml", "a.yaml")):
        folder = tmp_path / first
        folder.mkdir()
        write(folder / first, provider("x.test", "one.test", host="one.example"))
        write(folder / second, provider("x.test", "two.test", host="two.example"))
        result = load_folder(folder)
        (contest,) = result.contests
        assert contest.owner is None
        assert sorted(d for p in result.providers for d in p.domains) == ["one.test", "two.test"]


def test_a_claim_waits_across_a_restart(folder: Path) -> None:
    clock = Clock()
    registry = make(folder, clock)
    registry.reload()
    write(folder / "00-evil.yaml", provider("alpha.test", "*", host="evil.example"))
    registry.reload()
    assert owner(registry, "alpha.test") == "alpha.example"
    assert owner(registry, "nobody.test") == "evil.example"  # its uncontested catch-all serves
    restarted = make(folder, clock)
    restarted.reload()
    assert owner(restarted, "alpha.test") == "alpha.example"
    assert [c.owner for c in restarted.snapshot.contests] == ["alpha.yaml"]


def test_a_claim_that_arrives_while_the_service_is_down_waits(folder: Path) -> None:
    clock = Clock()
    make(folder, clock).reload()
    write(folder / "00-evil.yaml", provider("alpha.test", host="evil.example"))
    restarted = make(folder, clock)
    restarted.reload()
    assert owner(restarted, "alpha.test") == "alpha.example"


def test_a_missing_file_is_held_for_the_grace(folder: Path) -> None:
    clock = Clock()
    registry = make(folder, clock, grace=60)
    registry.reload()
    write(folder / "00-evil.yaml", provider("alpha.test", host="evil.example"))
    registry.reload()
    (folder / "alpha.yaml").unlink()
    registry.reload()
    assert owner(registry, "alpha.test") == "alpha.example"
    (held,) = registry.snapshot.held
    assert (held.file, held.until) == ("alpha.yaml", clock.now + 60)
    clock.now += 30
    restarted = make(folder, clock, grace=60)  # the grace goes on over a restart
    restarted.reload()
    assert owner(restarted, "alpha.test") == "alpha.example"
    assert restarted.next_deadline() == held.until
    clock.now += 31
    restarted.reload()
    assert owner(restarted, "alpha.test") == "evil.example"  # now the only claim
    assert restarted.snapshot.held == ()


def test_the_guard_holds_back_an_empty_folder_until_forced(folder: Path) -> None:
    clock = Clock()
    registry = make(folder, clock, grace=0)
    registry.reload()
    before = registry.snapshot
    for path in folder.iterdir():
        path.unlink()
    changes = registry.reload()
    assert "would serve no domain (it served 2)" in changes.held_back
    assert registry.snapshot is before and registry.held_back
    assert not registry.reload()  # nothing new: no second report
    registry.reload(force=True)
    assert registry.snapshot.domain_count == 0 and not registry.held_back


def test_the_guard_holds_back_a_halved_folder(tmp_path: Path) -> None:
    folder = tmp_path / "domains"
    folder.mkdir()
    for index in range(30):
        write(folder / f"d{index}.yaml", provider(f"d{index}.test"))
    clock = Clock()
    registry = make(folder, clock, grace=0, max_drop=0.5)
    registry.reload()
    for index in range(20):
        (folder / f"d{index}.yaml").unlink()
    assert "remove 20 of 30 domains" in registry.reload().held_back
    assert registry.snapshot.domain_count == 30
    write(folder / "d0.yaml", provider("d0.test"))  # still 19 removed: still held back
    assert registry.reload().held_back
    for index in range(12, 20):
        write(folder / f"d{index}.yaml", provider(f"d{index}.test"))
    assert not registry.reload().held_back  # 11 removed: applied
    assert registry.snapshot.domain_count == 19


def test_a_state_others_may_write_is_ignored(folder: Path) -> None:
    clock = Clock()
    make(folder, clock).reload()
    state = folder.parent / "state"
    assert len(list(state.glob("shard-*"))) == SHARDS
    os.chmod(state / "meta", 0o666)
    assert StateFolder(state).load() is None
    os.chmod(state / "meta", 0o600)
    assert StateFolder(state).load() is not None
    os.chmod(state, 0o777)  # ours: the service makes it its own again
    assert StateFolder(state).usable and state.stat().st_mode & 0o777 == 0o700
    if os.geteuid() != 0:
        return  # handing files to another user takes root (as `make test` runs in CI)
    os.chown(state, 65534, 65534)
    os.chmod(state, 0o777)  # somebody else's, writable by all: not used
    assert not StateFolder(state).usable
    os.chown(state, 0, 0)
    os.chmod(state, 0o700)
    os.chown(state / "meta", 65534, 65534)  # nobody's
    assert StateFolder(state).load() is None


def test_a_torn_state_is_a_first_start(folder: Path) -> None:
    clock = Clock()
    make(folder, clock).reload()
    (folder.parent / "state" / "meta").write_bytes(b"\x80\x05not a pickle")
    registry = make(folder, clock)
    registry.reload()
    assert owner(registry, "alpha.test") == "alpha.example"


def test_a_state_of_another_release_is_a_first_start(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What docs/deploy.md ("Upgrades") says: a new release whose kept classes
    differ ignores the state, says so, and applies the first-start rules."""
    clock = Clock()
    registry = make(folder, clock)
    registry.reload()
    write(folder / "claim.yaml", provider("alpha.test", host="claim.example"))
    registry.reload()
    assert owner(registry, "alpha.test") == "alpha.example"  # the file that had it first
    meta = folder.parent / "state" / "meta"
    kept = pickle.loads(meta.read_bytes())
    kept["format"] = "mail-autoconf-state-of-another-release"
    meta.write_bytes(pickle.dumps(kept))
    restarted = make(folder, clock)
    with caplog.at_level(logging.WARNING, logger="autoconf"):
        restarted.reload()
    assert "written by another release; starting afresh" in caplog.text
    assert owner(restarted, "alpha.test") is None  # contested with no history: served by none
    assert owner(restarted, "zeta.test") == "zeta.example"


def test_a_state_of_other_checks_reads_every_file_and_keeps_who_serves(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A version whose checks differ (the same kept classes) reads every file again,
    so its checks reach unchanged files too, and keeps which file serves what."""
    clock = Clock()
    registry = make(folder, clock)
    registry.reload()
    write(folder / "claim.yaml", provider("alpha.test", host="claim.example"))
    registry.reload()
    state = StateFolder(folder.parent / "state")
    assert all(s.signature for s in state.load().states.values())  # type: ignore[union-attr]
    meta = folder.parent / "state" / "meta"
    kept = pickle.loads(meta.read_bytes())
    kept["checks"] = "of-another-version"
    meta.write_bytes(pickle.dumps(kept))
    with caplog.at_level(logging.INFO, logger="autoconf"):
        stored = state.load()
    assert "kept by other checks" in caplog.text
    assert stored is not None
    assert all(s.signature == () for s in stored.states.values())  # each read again
    restarted = make(folder, clock)
    restarted.reload()
    assert owner(restarted, "alpha.test") == "alpha.example"  # its history kept


@pytest.mark.parametrize("suffix", ["com", "co.uk", "example", "test", "github.io", "xn--p1ai"])
def test_wildcards_on_public_suffixes_are_errors(tmp_path: Path, suffix: str) -> None:
    assert is_public_suffix(suffix)
    write(tmp_path / "w.yaml", provider(f"*.{suffix}", "fine.example.com"))
    result = load_folder(tmp_path)
    assert [e.message.split(":")[0] for e in result.errors] == [f"*.{suffix}"]
    assert "a wildcard on a public suffix" in result.errors[0].message


def test_wildcards_under_a_registered_domain_are_fine(tmp_path: Path) -> None:
    write(tmp_path / "w.yaml", provider("*.example.com", "*.hoster.co.uk", "*"))
    assert load_folder(tmp_path).errors == []


def test_errors_in_a_domains_from_list_are_logged(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from autoconf.watch import Watcher

    registry = make(folder, Clock())
    watcher = Watcher(registry, interval=0)
    watcher.reload_now()
    (folder / "list").write_text("good.test\nbad_domain\n", encoding="utf-8")
    write(folder / "h.yaml", "domains_from: list\n" + provider("h.test").split("\n", 2)[2])
    with caplog.at_level("ERROR", logger="autoconf"):
        watcher.reload_now()
    assert f"{folder / 'list'}:2: domains_from: 'bad_domain' is not a valid domain name" in (
        caplog.text
    )
