"""The state folder: what the loader remembers across restarts.

A restart must serve what the service served before: which file owns a
contested domain, the last good version of a file that is broken now, a file
that has been missing for a few seconds. So the outcome of each reload (every
file's :class:`~autoconf.folder.LoadedFile`, the version each serving file
serves, the files held while missing) is kept in ``AUTOCONF_STATE``; at start
the loader continues from it as if it had never stopped. It is also a cache of
parsed files: a file whose identity (times, size, inode) is unchanged is not
read again, which makes a restart at 100,000 files take seconds.

The outcome is split into shards by file name, so that a reload that changed
one file rewrites one shard. Every write goes to a temporary file that is then
renamed, so a crash leaves the previous shard whole.

The shards are pickles, our own objects in our own folder. A pickle from
anyone else could run code as the service, so the folder and its files are
used only when they belong to the service's user and nobody else may write
them; otherwise the state is ignored (the start is a first start) and the log
says why. A state written by another release is ignored the same way.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
import tempfile
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from autoconf.folder import LoadedFile
from autoconf.model import Provider
from autoconf.ownership import EMPTY, FolderResult, Held
from autoconf.reading import Limits

log = logging.getLogger("autoconf")


@lru_cache(maxsize=1)
def state_format() -> str:
    """Names the shape of what is pickled: the fields of every class in it. A state
    kept by a release whose classes differ is ignored (the start is a first start)."""
    from autoconf import model, reading

    kinds = (
        LoadedFile,
        Held,
        reading.Limits,
        model.Provider,
        model.Server,
        model.DomainOrigins,
        model.Pop3Options,
        model.DavService,
        model.Documentation,
        model.OAuth2,
        model.MobileConfig,
    )
    shape = "tuple-state;" + ";".join(
        f"{k.__name__}:{','.join(f.name for f in fields(k))}" for k in kinds
    )
    return "mail-autoconf-state-" + hashlib.blake2b(shape.encode(), digest_size=8).hexdigest()


@lru_cache(maxsize=1)
def checks_version() -> str:
    """Names the code that turns a domain file into what the state keeps: the
    release and the source of the modules that read and check a file. A state
    kept by other checks has every file read again (who serves what is kept), so
    that a new check or default reaches every file at once, not only those that
    change later: the answers depend on the files and the code, never on which
    release read a file first."""
    import autoconf
    from autoconf import (
        address,
        domain_file,
        domain_list,
        folder,
        lint,
        model,
        placeholders,
        reading,
        typed_read,
        values,
        yamlio,
    )

    digest = hashlib.blake2b(autoconf.__version__.encode(), digest_size=8)
    readers = (address, domain_file, domain_list, folder, lint, model, placeholders)
    for module in (*readers, reading, typed_read, values, yamlio):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()


SHARDS = 64
FORCE_FILE = "force-reload"  # present: the next SIGHUP applies a reload the guard held back


@dataclass(frozen=True, slots=True)
class Stored:
    """What a reload left: the files, the served versions, the held files."""

    states: dict[str, LoadedFile]
    serving: dict[str, Provider]
    held: tuple[Held, ...]

    def as_previous(self) -> FolderResult:
        return FolderResult(
            providers=tuple(self.serving.values()),
            broken=(),
            problems=(),
            files=len(self.states),
            states=self.states,
            held=self.held,
            serving=self.serving,
        )


def shard_of(file: str) -> int:
    digest = hashlib.blake2b(file.encode("utf-8", "surrogateescape"), digest_size=2).digest()
    return int.from_bytes(digest, "big") % SHARDS


class StateFolder:
    """The state folder of one domain folder; ``None`` as path: keep nothing."""

    def __init__(self, path: Path | None, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self.usable = False
        self.reason = "no state folder set"
        if path is not None and read_only:  # check: read what the service keeps, if any
            self.usable, self.reason = path.is_dir(), "does not exist"
        elif path is not None:
            self.usable, self.reason = _prepare(path)
            if not self.usable:
                log.warning("state folder %s: %s; keeping no state", path, self.reason)
            for torn in path.glob(".*.*") if self.usable else ():  # a write a stop cut short
                torn.unlink(missing_ok=True)

    def load(self, limits: Limits | None = None) -> Stored | None:
        try:
            return self._load(limits)
        except Exception as exc:  # objects of another release, a torn shard: start afresh
            log.warning(
                "state %s: unusable (%s); ignoring the state", self.path, type(exc).__name__
            )
            return None

    def _load(self, limits: Limits | None) -> Stored | None:
        """What the last reload left, or None (nothing kept, or not trustworthy).

        Kept under other ``limits`` (other size limits, other allowed folders), a
        file's parse may no longer hold: every file is then read again, while what
        served (who owns which domain) is kept."""
        if not self.usable or self.path is None:
            return None
        meta = self._read("meta")
        if not isinstance(meta, dict) or meta.get("format") != state_format():
            if isinstance(meta, dict):  # an upgrade (or a downgrade) says so in the log
                log.warning(
                    "state %s: written by another release; starting afresh (a first start)",
                    self.path,
                )
            return None
        states: dict[str, LoadedFile] = {}
        serving: dict[str, Provider] = {}
        stale = limits is not None and meta.get("limits") != limits
        if meta.get("checks") != checks_version():
            log.info(
                "state %s: kept by other checks (another version); every file is read "
                "again, who serves which domain is kept",
                self.path,
            )
            stale = True
        for index in range(SHARDS):
            shard = self._read(f"shard-{index:02d}")
            if shard is None:
                continue
            if not isinstance(shard, dict):
                return None
            for file, (state, served) in shard.items():
                states[file] = replace(state, signature=()) if stale else state
                if served is not None:
                    serving[file] = served
        for held in meta.get("held", ()):
            serving[held.file] = meta["held_versions"][held.file]
        return Stored(dict(sorted(states.items())), serving, tuple(meta.get("held", ())))

    def save(
        self, result: FolderResult, previous: FolderResult = EMPTY, limits: Limits | None = None
    ) -> None:
        """Write the shards that differ from ``previous``, then the metadata."""
        if not self.usable or self.path is None or self.read_only:
            return
        dirty = {shard_of(f) for f in (*result.changed, *result.removed)}
        if previous is EMPTY:
            dirty = set(range(SHARDS))
        else:
            for file in result.serving.keys() | previous.serving.keys():
                if result.serving.get(file) is not previous.serving.get(file):
                    dirty.add(shard_of(file))
        shards: dict[int, dict[str, tuple[LoadedFile, Provider | None]]] = {i: {} for i in dirty}
        for file, state in result.states.items():
            index = shard_of(file)
            if index in shards:
                shards[index][file] = (state, result.serving.get(file))
        try:
            for index, content in shards.items():
                self._write(f"shard-{index:02d}", content)
            held_versions = {h.file: result.serving[h.file] for h in result.held}
            meta = {
                "format": state_format(),
                "held": result.held,
                "held_versions": held_versions,
                "limits": limits,
                "checks": checks_version(),
            }
            self._write("meta", meta)
        except OSError as exc:
            log.warning(
                "state folder %s: cannot write (%s); a restart starts afresh", self.path, exc
            )

    def force_requested(self) -> bool:
        """Whether the operator asked the next reload to apply whatever it finds
        (``touch STATE/force-reload``); the request is used up."""
        if self.path is None or self.read_only:
            return False
        try:
            (self.path / FORCE_FILE).unlink()
        except OSError:
            return False
        return True

    def _read(self, name: str) -> Any:
        assert self.path is not None
        path = self.path / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("state %s: cannot read (%s); ignoring the state", path, exc)
            return None
        with os.fdopen(fd, "rb") as stream:
            trusted, why = _trusted(os.fstat(stream.fileno()))
            if not trusted:
                log.warning("state %s: %s; ignoring the state", path, why)
                return None
            try:
                return pickle.load(stream)
            except Exception as exc:  # a torn or foreign file: start afresh
                log.warning(
                    "state %s: unreadable (%s); ignoring the state", path, type(exc).__name__
                )
                return None

    def _write(self, name: str, content: object) -> None:
        assert self.path is not None
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as stream:
                pickle.dump(content, stream, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, self.path / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _prepare(path: Path) -> tuple[bool, str]:
    """Create the folder (0700) if missing; whether it can be trusted and written."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(path, follow_symlinks=False)
    except OSError as exc:
        return False, f"cannot be created ({(exc.strerror or str(exc)).lower()})"
    if not stat.S_ISDIR(info.st_mode):
        return False, "is not a folder"
    if info.st_uid == os.geteuid() and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        try:  # ours, but others may write it (a volume's default): make it ours alone
            os.chmod(path, 0o700)
            info = os.stat(path, follow_symlinks=False)
        except OSError:
            pass
    trusted, why = _trusted(info)
    if not trusted:
        return False, why
    if not os.access(path, os.W_OK | os.X_OK):
        return False, "is not writable"
    return True, ""


def _trusted(info: os.stat_result) -> tuple[bool, str]:
    if info.st_uid != os.geteuid():
        return False, f"belongs to uid {info.st_uid}, not to this service's uid {os.geteuid()}"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False, "others may write it"
    return True, ""
