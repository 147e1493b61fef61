"""Live reload: new, changed, broken, fixed and deleted files, and the watcher thread."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest

from autoconf import registry as registry_module
from autoconf import render
from autoconf.folder import folder_mark
from autoconf.registry import Registry
from autoconf.render import Documents
from autoconf.watch import Watcher


def provider_yaml(domain: str, host: str = "imap.example.com", extra: str = "") -> str:
    return (
        f"domains: [{domain}]\n{extra}"
        f"incoming: [{{type: imap, host: {host}, security: ssl}}]\n"
        "outgoing: [{type: smtp, host: smtp.example.com, security: ssl}]\n"
    )


_edits = itertools.count(1)


def write(path: Path, text: str) -> None:
    """Write with a modification time later than any before, as a later edit would have
    (two writes in one clock tick of the file system would otherwise look the same)."""
    path.write_text(text, encoding="utf-8")
    stamp = time.time_ns() + next(_edits) * 10**9
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def registry(tmp_path: Path) -> Registry[Documents]:
    # No grace: a deleted file's domains go at the next reload (the grace has tests of its own).
    registry = Registry(tmp_path, render.compile_provider, grace=0)
    write(tmp_path / "a.yaml", provider_yaml("a.example"))
    write(tmp_path / "b.yaml", provider_yaml("b.example"))
    registry.reload()
    return registry


def host_for(registry: Registry[Documents], domain: str) -> str | None:
    entry = registry.snapshot.lookup(domain)
    return entry.provider.incoming[0].host if entry else None


def test_nothing_changed_reads_nothing(registry: Registry[Documents]) -> None:
    before = registry.snapshot
    changes = registry.reload()
    assert not changes
    assert registry.snapshot is before


def test_added_changed_removed(registry: Registry[Documents], tmp_path: Path) -> None:
    untouched = registry.snapshot.lookup("b.example")
    write(tmp_path / "c.yaml", provider_yaml("c.example"))
    write(tmp_path / "a.yaml", provider_yaml("a.example", host="imap2.example.com"))
    (tmp_path / "b.yaml").unlink()
    changes = registry.reload()
    assert changes.added == ("c.example",)
    assert changes.changed == ("a.example",)
    assert changes.removed == ("b.example",)
    assert set(changes.read) == {"a.yaml", "c.yaml"}
    assert host_for(registry, "a.example") == "imap2.example.com"
    assert host_for(registry, "b.example") is None
    assert untouched is not None  # the old snapshot's entries stay usable for readers


def test_a_broken_edit_keeps_the_last_good_version(
    registry: Registry[Documents], tmp_path: Path
) -> None:
    write(
        tmp_path / "a.yaml", provider_yaml("a.example").replace("security: ssl", "security: tls", 1)
    )
    changes = registry.reload()
    assert host_for(registry, "a.example") == "imap.example.com"
    (broken,) = registry.snapshot.broken
    assert broken.file == str(tmp_path / "a.yaml") and broken.serving_last_good
    assert [str(e) for e in changes.problems] == [
        f"{tmp_path / 'a.yaml'}:2: incoming[0].security: 'tls' is not one of ssl, starttls, "
        "none: did you mean ssl (TLS from the first byte, ports 993, 995, 465) or starttls "
        "(TLS after connecting, ports 143, 110, 587)?"
    ]
    # Fixed: served anew, no longer broken.
    write(tmp_path / "a.yaml", provider_yaml("a.example", host="imap3.example.com"))
    registry.reload()
    assert host_for(registry, "a.example") == "imap3.example.com"
    assert registry.snapshot.broken == ()


def test_a_new_broken_file_serves_nothing(registry: Registry[Documents], tmp_path: Path) -> None:
    write(tmp_path / "n.yaml", "domains: [n.example]\n")
    registry.reload()
    assert host_for(registry, "n.example") is None
    assert [b.serving_last_good for b in registry.snapshot.broken] == [False]


def test_a_newcomer_cannot_take_a_served_domain(
    registry: Registry[Documents], tmp_path: Path
) -> None:
    # "0.yaml" comes first by name, but b.yaml served b.example before.
    write(tmp_path / "0.yaml", provider_yaml("b.example", host="thief.example.com"))
    registry.reload()
    assert host_for(registry, "b.example") == "imap.example.com"
    assert registry.snapshot.broken == ()
    (contest,) = registry.snapshot.contests
    assert (contest.domain, contest.owner, contest.claimants) == (
        "b.example",
        "b.yaml",
        ("0.yaml", "b.yaml"),
    )


def test_domains_from_changes_are_seen(tmp_path: Path) -> None:
    (tmp_path / "list.txt").write_text("x.example\n", encoding="utf-8")
    write(tmp_path / "h.yaml", provider_yaml("h.example", extra="domains_from: list.txt\n"))
    registry = Registry(tmp_path, render.compile_provider)
    registry.reload()
    assert host_for(registry, "y.example") is None
    write(tmp_path / "list.txt", "x.example\ny.example\n")
    changes = registry.reload()
    assert changes.added == ("y.example",)
    assert host_for(registry, "y.example") == "imap.example.com"


def test_a_long_list_edited_by_a_few_lines_reports_exactly_those(tmp_path: Path) -> None:
    """A list longer than the bulk threshold: appended, removed and replaced lines
    are reported as added and removed, nothing else."""
    names = [f"d{i}.example" for i in range(registry_module.BIG + 5)]
    write(tmp_path / "list.txt", "".join(f"{n}\n" for n in names))
    write(tmp_path / "h.yaml", provider_yaml("h.example", extra="domains_from: list.txt\n"))
    registry = Registry(tmp_path, render.compile_provider)
    registry.reload()
    write(tmp_path / "list.txt", "".join(f"{n}\n" for n in [*names, "new.example"]))
    changes = registry.reload()
    assert changes.added == ("new.example",) and changes.removed == ()
    edited = [n for n in names if n != "d7.example"] + ["other.example"]
    write(tmp_path / "list.txt", "".join(f"{n}\n" for n in edited))
    changes = registry.reload()
    assert changes.added == ("other.example",)
    assert changes.removed == ("d7.example", "new.example")
    assert host_for(registry, "other.example") == "imap.example.com"
    assert host_for(registry, "d7.example") is None


def test_unchanged_providers_are_not_compiled_again(
    registry: Registry[Documents], tmp_path: Path
) -> None:
    before = registry.snapshot.lookup("b.example")
    write(tmp_path / "a.yaml", provider_yaml("a.example", host="imap4.example.com"))
    registry.reload()
    after = registry.snapshot.lookup("b.example")
    assert before is not None and after is not None
    assert after.provider is before.provider
    assert after.compiled is before.compiled


def test_the_watcher_swaps_within_seconds(registry: Registry[Documents], tmp_path: Path) -> None:
    watcher = Watcher(registry, interval=0.1)
    watcher.ensure_running()
    watcher.ensure_running()  # idempotent in one process
    write(tmp_path / "w.yaml", provider_yaml("w.example"))
    deadline = time.monotonic() + 5
    while host_for(registry, "w.example") is None:
        assert time.monotonic() < deadline, "the watcher did not pick up the new file"
        time.sleep(0.05)


def test_a_poll_that_finds_nothing_new_walks_no_file_state(
    registry: Registry[Documents], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under gunicorn, walking every file's state would unshare the master's pages.
    def scan(*args: object) -> None:
        raise AssertionError("the folder was scanned file by file")

    monkeypatch.setattr(registry_module, "scan_folder", scan)
    assert not registry.reload()


def test_the_folder_mark_moves_with_every_change(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", provider_yaml("a.example"))
    write(tmp_path / "list.txt", "x.example\n")
    dependencies = (tmp_path / "list.txt",)
    marks = [folder_mark(tmp_path, dependencies)]

    def moved() -> bool:
        marks.append(folder_mark(tmp_path, dependencies))
        return marks[-1] != marks[-2]

    assert not moved()  # nothing changed: the same mark
    (tmp_path / "notes.txt").write_text("not a domain file")
    (tmp_path / ".hidden.yaml").write_text("not a domain file either")
    assert not moved()
    write(tmp_path / "a.yaml", provider_yaml("a.example", host="imap2.example.com"))
    assert moved()  # content and time
    stamp = (tmp_path / "a.yaml").stat().st_mtime_ns + 10**9
    os.utime(tmp_path / "a.yaml", ns=(stamp, stamp))
    assert moved()  # touched only
    write(tmp_path / "b.yaml", provider_yaml("b.example"))
    assert moved()  # added
    (tmp_path / "b.yaml").rename(tmp_path / "c.yaml")
    assert moved()  # renamed
    (tmp_path / "c.yaml").unlink()
    assert moved()  # removed: the folder is as it was after the touch
    assert marks[-1] == marks[-4]
    write(tmp_path / "list.txt", "x.example\ny.example\n")
    assert moved()  # a domains_from file


def test_a_domains_from_file_named_anew_is_watched(tmp_path: Path) -> None:
    write(tmp_path / "h.yaml", provider_yaml("h.example"))
    registry = Registry(tmp_path, render.compile_provider)
    registry.reload()
    write(tmp_path / "list.txt", "x.example\n")
    write(tmp_path / "h.yaml", provider_yaml("h.example", extra="domains_from: list.txt\n"))
    assert registry.reload().added == ("x.example",)
    assert not registry.reload()
    write(tmp_path / "list.txt", "x.example\ny.example\n")
    assert registry.reload().added == ("y.example",)
