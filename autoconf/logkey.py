"""The key of ``AUTOCONF_LOG_ADDRESSES=hash``: one per installation.

An unkeyed hash of an address is no secret: anyone with a list of names hashes
them and reads the log. So the hash is an HMAC under a key of this
installation's own: ``AUTOCONF_LOG_KEY`` when set, else a random key made
once into the state folder (``log-key``, mode 0600), so that the same address
gets the same hash across restarts and workers, and a different one elsewhere.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from autoconf.settings import Settings

log = logging.getLogger("autoconf")
KEY_FILE = "log-key"


def log_key(settings: Settings) -> bytes:
    if settings.log_key:
        return settings.log_key.encode("utf-8")
    path = settings.state_folder / KEY_FILE
    try:
        return _read_or_make(path)
    except OSError as exc:
        log.warning(
            "log key: cannot keep one in %s (%s); hashes change with every start",
            path,
            (exc.strerror or str(exc)).lower(),
        )
        return secrets.token_bytes(32)


def _read_or_make(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        if len(key) < 32:
            raise OSError(0, "the key file is shorter than 32 characters") from None
        return key
    with os.fdopen(fd, "wb") as stream:
        key = secrets.token_hex(32).encode("ascii")
        stream.write(key + b"\n")
    return key
