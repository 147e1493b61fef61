"""A private network namespace for end-to-end tests, and a private resolv.conf.

``NetworkNamespace.create()`` makes a network namespace with nothing in it but
``lo`` (brought up); the test's own thread steps into it for a ``with
namespace.inside():`` block and back out at its end. Namespaces belong to the
thread (Linux), and what that thread starts or opens in the block belongs to
the namespace for good: a child process inherits it, and a socket keeps the
namespace it was made in, so a Marionette connection opened inside still works
once the thread is back outside. Nothing of the machine's network is touched;
the namespace ends when its last process exits and ``close()`` drops its file.

``with_resolv_conf(path, command)`` runs ``command`` in a mount namespace of its
own where ``path`` is bind-mounted over /etc/resolv.conf: the C library's
resolver (``res_search``, ``getaddrinfo``) of that process reads it, and the
machine's file stays as it is; ``with_files`` does the same for any files (a
hosts file over /etc/hosts, say). The command keeps its PID (``unshare`` and
``sh`` exec it), so it is stopped like any other.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000
_OWN = "/proc/thread-self/ns/net"
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@dataclass
class NetworkNamespace:
    fd: int  # /proc/…/ns/net of the namespace, open while we use it

    @classmethod
    def create(cls) -> NetworkNamespace:
        outside = os.open(_OWN, os.O_RDONLY)
        try:
            if _libc.unshare(CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"unshare(CLONE_NEWNET): {os.strerror(errno)}")
            try:
                namespace = cls(os.open(_OWN, os.O_RDONLY))
                subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            finally:
                _setns(outside)
        finally:
            os.close(outside)
        return namespace

    @contextmanager
    def inside(self) -> Iterator[None]:
        """This thread in the namespace for the block, then back where it was."""
        outside = os.open(_OWN, os.O_RDONLY)
        try:
            _setns(self.fd)
            try:
                yield
            finally:
                _setns(outside)
        finally:
            os.close(outside)

    def close(self) -> None:
        os.close(self.fd)


def write_resolv_conf(path: Path, nameserver: str) -> Path:
    """One name server, asked once with a 1 s timeout: a lookup never hangs."""
    path.write_text(f"nameserver {nameserver}\noptions timeout:1 attempts:1\n", encoding="utf-8")
    return path


def with_files(files: Mapping[str, Path], command: Sequence[str]) -> list[str]:
    """``command`` with each of ``files`` bind-mounted over the path it is given for
    (``{"/etc/hosts": hosts}``), in a mount namespace of its own with private
    propagation: the mounts are seen by no other process."""
    mounts = " && ".join(f'mount --bind "${index}" {target}' for index, target in enumerate(files))
    script = f'{mounts} && shift {len(files) - 1} && exec "$@"'
    unshare = ["unshare", "--mount", "--propagation", "private", "--"]
    return [*unshare, "sh", "-c", script, *(str(path) for path in files.values()), *command]


def with_resolv_conf(resolv_conf: Path, command: Sequence[str]) -> list[str]:
    """``command`` with ``resolv_conf`` as its /etc/resolv.conf."""
    return with_files({"/etc/resolv.conf": resolv_conf}, command)
