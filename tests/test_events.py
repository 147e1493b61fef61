"""inotify as the watcher's wake-up call, and polling where it cannot be had."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from autoconf import events as events_module
from autoconf import render
from autoconf import watch as watch_module
from autoconf.events import FolderEvents, open_events
from autoconf.reading import Limits
from autoconf.registry import Registry
from autoconf.render import Documents
from autoconf.watch import Watcher
from tests.test_reload import host_for, provider_yaml, write


@pytest.fixture
def events(tmp_path: Path) -> Iterator[FolderEvents]:
    opened = open_events([tmp_path])
    assert opened is not None, "inotify is part of every Linux this runs on"
    yield opened
    opened.close()


def _append(path: Path) -> None:
    with path.open("a") as file:  # in place: the folder's own entries do not change
        file.write("# more\n")


def _touch(path: Path) -> None:
    stamp = time.time_ns() + 10**9
    os.utime(path, ns=(stamp, stamp))


CHANGES: dict[str, Callable[[Path], None]] = {
    "create": lambda folder: (folder / "new.yaml").write_text("x"),
    "append": lambda folder: _append(folder / "old.yaml"),
    "touch": lambda folder: _touch(folder / "old.yaml"),
    "rename": lambda folder: (folder / "old.yaml").rename(folder / "renamed.yaml"),
    "delete": lambda folder: (folder / "old.yaml").unlink(),
}


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_wakes_the_waiter(tmp_path: Path, change: str) -> None:
    (tmp_path / "old.yaml").write_text("old")
    opened = open_events([tmp_path])
    assert opened is not None
    try:
        assert not opened.wait(0.05)  # nothing yet
        CHANGES[change](tmp_path)
        assert opened.wait(2.0)
        assert not opened.wait(0.05)  # the events were read
    finally:
        opened.close()


def test_only_the_watched_folders_wake_it(tmp_path: Path, events: FolderEvents) -> None:
    other = tmp_path / "other"
    other.mkdir()
    events.drain()
    (other / "x.txt").write_text("x")
    assert not events.wait(0.1)
    events.watch([tmp_path, other])
    (other / "y.txt").write_text("y")
    assert events.wait(2.0)
    events.watch([other])  # the first folder no longer
    events.drain()
    (tmp_path / "z.yaml").write_text("z")
    assert not events.wait(0.1)
    events.watch([other, tmp_path / "missing"])  # a folder that is not there is skipped
    (other / "w.txt").write_text("w")
    assert events.wait(2.0)


@pytest.fixture
def registry(tmp_path: Path) -> Registry[Documents]:
    registry = Registry(tmp_path, render.compile_provider)
    write(tmp_path / "a.yaml", provider_yaml("a.example"))
    registry.reload()
    return registry


def _wait_for(registry: Registry[Documents], domain: str, host: str, seconds: float) -> float:
    started = time.monotonic()
    while host_for(registry, domain) != host:
        assert time.monotonic() - started < seconds, f"{domain} not reloaded in {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def until_watching(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Wait until a watcher's thread has its inotify watches: every change after that wakes it."""
    ready = threading.Event()
    opened: list[FolderEvents | None] = []
    real = watch_module.open_events

    def open_and_tell(folders: Iterable[Path]) -> FolderEvents | None:
        opened.append(real(folders))
        ready.set()
        return opened[-1]

    monkeypatch.setattr(watch_module, "open_events", open_and_tell)

    def wait() -> None:
        assert ready.wait(5), "the watcher's thread never opened its inotify watches"
        assert opened[0] is not None, "no inotify instance to be had (the per-user limit?)"

    return wait


def test_the_watcher_reloads_on_a_change_long_before_its_poll(
    registry: Registry[Documents], tmp_path: Path, until_watching: Callable[[], None]
) -> None:
    Watcher(registry, interval=60).ensure_running()
    until_watching()
    write(tmp_path / "a.yaml", provider_yaml("a.example", host="imap2.example.com"))
    assert _wait_for(registry, "a.example", "imap2.example.com", 3.0) < 3.0


def test_a_domains_from_folder_elsewhere_is_watched(
    tmp_path: Path, until_watching: Callable[[], None]
) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    folder = tmp_path / "domains"
    folder.mkdir()
    write(lists / "vdomains", "x.example\n")
    write(folder / "h.yaml", provider_yaml("h.example", extra="domains_from: ../lists/vdomains\n"))
    limits = Limits.for_folder(folder, [lists])  # AUTOCONF_ALLOWED_FOLDERS names it
    registry = Registry(folder, render.compile_provider, limits=limits)
    registry.reload()
    assert {p.resolve() for p in registry.watched_folders()} == {folder, lists}
    Watcher(registry, interval=60).ensure_running()
    until_watching()
    write(lists / "vdomains", "x.example\ny.example\n")
    _wait_for(registry, "y.example", "imap.example.com", 3.0)


def test_without_inotify_the_watcher_polls(
    registry: Registry[Documents], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(libc: object) -> FolderEvents:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(events_module, "FolderEvents", unavailable)
    assert open_events([tmp_path]) is None
    monkeypatch.setattr(watch_module, "SETTLE_SECONDS", 10.0)  # events would be slow now
    Watcher(registry, interval=0.1).ensure_running()
    write(tmp_path / "a.yaml", provider_yaml("a.example", host="imap3.example.com"))
    _wait_for(registry, "a.example", "imap3.example.com", 3.0)
