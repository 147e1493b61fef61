"""Linux inotify, through ctypes: wake the watcher when a watched folder changes.

A poll of 100,000 domain files costs a third of a second of stat calls, and a
worker that polls every few seconds spends a tenth of its CPU on it. inotify
tells at once, and for nothing, that something in the folder changed; the
watcher then runs the same reload as a poll, which finds out what. Events are
only a wake-up call, never trusted for what changed, so a missed or merged
event costs nothing but time: the watcher still polls, rarely, as a safety net
(network file systems do not report changes made by other machines).

Where inotify cannot be had (not Linux, or the per-user limit of instances is
reached), :func:`open_events` returns None and the watcher polls as before.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("autoconf")

# From <sys/inotify.h>: every change to a directory's entries or to a file in it.
IN_MODIFY = 0x002
IN_ATTRIB = 0x004  # a touch: the modification time is part of a file's signature
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_ONLYDIR = 0x01000000
MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)


class FolderEvents:
    """One inotify instance watching some folders; :meth:`wait` blocks until a change."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._libc = libc
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"inotify_init1: {os.strerror(errno)}")
        self._fd: int = fd
        self._watches: dict[Path, int] = {}

    def watch(self, folders: Iterable[Path]) -> None:
        """Watch exactly these folders (those that exist); stop watching the others."""
        wanted = set(folders)
        for folder in self._watches.keys() - wanted:
            self._libc.inotify_rm_watch(self._fd, self._watches.pop(folder))
        for folder in wanted - self._watches.keys():
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(folder), MASK)
            if wd >= 0:
                self._watches[folder] = wd
            else:  # gone, or not a folder: the reload reports that; the poll still runs
                log.debug("not watching %s: %s", folder, os.strerror(ctypes.get_errno()))

    def wait(self, timeout: float) -> bool:
        """Whether a change was reported within ``timeout`` seconds (the events are read)."""
        ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        self.drain()
        return True

    def drain(self) -> None:
        """Read and forget every event reported so far."""
        while True:
            try:
                if not os.read(self._fd, 65536):
                    return
            except BlockingIOError:
                return

    def close(self) -> None:
        os.close(self._fd)


def open_events(folders: Iterable[Path]) -> FolderEvents | None:
    """inotify watching ``folders``, or None where it cannot be had (the caller polls)."""
    try:
        # The C library the process already has: no ctypes.util.find_library, which
        # runs ldconfig in a child process, and in gunicorn's master (which reaps
        # every child) that child's end is stolen and the thread waits on.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1  # noqa: B018 -- AttributeError where there is no inotify
        events = FolderEvents(libc)
    except (OSError, AttributeError) as exc:
        log.info("watching the domain folder by polling only (no inotify: %s)", exc)
        return None
    events.watch(folders)
    return events
