"""Reading what a domain folder names, bounded: regular files only, inside the
folders allowed, up to a size, and never blocking.

A domain folder is written by control panels, scripts and sometimes customers,
so nothing in it is trusted to be what its name says. A FIFO would block the
reading thread forever, ``/dev/zero`` would fill the memory, a symlink or a
``domains_from`` path could point at a private key that an error message then
quotes. So every read here:

- refuses anything but a regular file (FIFOs, devices, sockets, folders), and
  opens with ``O_NONBLOCK`` so that a file swapped for a FIFO after the check
  still cannot block;
- refuses a file whose real path (symlinks resolved, as the open file descriptor
  says) lies outside the domain folder and the folders of
  ``AUTOCONF_ALLOWED_FOLDERS``;
- refuses a file over its size limit before reading any of it, and reads at
  most limit + 1 bytes (a file that grows meanwhile is refused too).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1024 * 1024
# A hand-written domain file is a few hundred bytes; a hoster's generated one
# with a long `domains:` list a few MB.
MAX_FILE_BYTES = 4 * MiB
# A domains_from list of 1,000,000 domains is about 25 MB.
MAX_LIST_BYTES = 64 * MiB
MAX_DOMAINS = 2_000_000


class ReadRefused(Exception):
    """A file that is not read; the message says why (no part of its content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Limits:
    """What the service reads: where from, and how much."""

    roots: tuple[Path, ...]  # real paths of the folders files may lie in
    max_file_bytes: int = MAX_FILE_BYTES
    max_list_bytes: int = MAX_LIST_BYTES
    max_domains: int = MAX_DOMAINS
    # Those folders as configured: a plain file right in one needs no resolving.
    # (How they are spelt changes nothing that is read: left out of comparisons.)
    given: frozenset[str] = field(default=frozenset(), compare=False)

    @classmethod
    def for_folder(
        cls,
        folder: Path,
        allowed: Iterable[Path] = (),
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        max_list_bytes: int = MAX_LIST_BYTES,
        max_domains: int = MAX_DOMAINS,
    ) -> Limits:
        folders = (folder, *allowed)
        roots = tuple(dict.fromkeys(Path(os.path.realpath(p)) for p in folders))
        given = frozenset(str(p) for p in folders)
        return cls(roots, max_file_bytes, max_list_bytes, max_domains, given)

    def inside(self, real: Path) -> bool:
        return any(real == root or real.is_relative_to(root) for root in self.roots)


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


_OUTSIDE = "lies outside the domain folder and AUTOCONF_ALLOWED_FOLDERS; not read"


def read_bounded(path: Path, limit: int, limits: Limits) -> bytes:
    """The bytes of a regular file inside the allowed folders, at most ``limit`` of
    them; ReadRefused (or OSError, for a file that cannot be opened) otherwise."""
    info = os.lstat(path)
    if stat.S_ISREG(info.st_mode) and str(path.parent) in limits.given:
        # The common case, a plain file right in an allowed folder: confined as it
        # is; O_NOFOLLOW refuses it if it is swapped for a symlink meanwhile.
        return _read_regular(os.O_NOFOLLOW, path, limit, limits, check=False)
    if not limits.inside(Path(os.path.realpath(path))):  # symlinks resolved, nothing opened
        raise ReadRefused(_OUTSIDE)
    info = os.stat(path)  # follows symlinks: what would be read
    if not stat.S_ISREG(info.st_mode):
        raise ReadRefused(f"not a regular file ({_kind(info.st_mode)}); only files are read")
    return _read_regular(0, path, limit, limits, check=True)


def _read_regular(flags: int, path: Path, limit: int, limits: Limits, *, check: bool) -> bytes:
    flags |= os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped between the stat and the open
            raise ReadRefused(f"not a regular file ({_kind(info.st_mode)}); only files are read")
        if check and not limits.inside(_real_path(fd, path)):  # swapped for a symlink out
            raise ReadRefused(_OUTSIDE)
        if info.st_size > limit:
            raise ReadRefused(f"too large ({info.st_size} bytes, limit {limit})")
        # One read gives a file of the size fstat told (a short read means its end);
        # one more byte asked for shows a file that grew meanwhile.
        chunks = [os.read(fd, info.st_size + 1)]
        total = len(chunks[0])
        while total > info.st_size and total <= limit:
            chunk = os.read(fd, min(limit + 1 - total, MiB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise ReadRefused(f"too large (over {limit} bytes, limit {limit})")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _real_path(fd: int, path: Path) -> Path:
    """Where the open file really is: /proc's link for the descriptor (no race with
    a symlink swapped after the open), else the resolved path."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return Path(os.path.realpath(path))
