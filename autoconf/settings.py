"""Service settings (SPEC §2): environment variables, each also a `serve` option."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from autoconf.reading import MAX_DOMAINS, MAX_FILE_BYTES, MAX_LIST_BYTES, Limits

LOG_ADDRESS_MODES = ("redact", "hash", "full")


class SettingsError(ValueError):
    """A setting that cannot work; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    domains: Path = field(default_factory=lambda: Path("domains"))
    public_host: str | None = None
    proxy_hops: int = 0
    sign_cert: Path | None = None
    sign_key: Path | None = None
    sign_chain: Path | None = None
    log_addresses: str = "redact"
    # The key of log_addresses=hash (None: one kept in the state folder).
    log_key: str | None = None
    reload_seconds: float = 1.0
    # Where the service keeps what it must remember across restarts (which file
    # serves each domain, last good versions, the log key). None: beside the
    # domain folder (see state_folder).
    state: Path | None = None
    # A file that served and is missing keeps serving this long (a deploy that
    # is not atomic); a domain another file claims stays with it meanwhile.
    grace_seconds: float = 60.0
    # A reload that would remove more than this share of the domains is held back.
    max_drop: float = 0.5
    # Folders besides the domain folder that symlinks and domains_from may point into.
    allowed_folders: tuple[Path, ...] = ()
    max_file_bytes: int = MAX_FILE_BYTES
    max_list_bytes: int = MAX_LIST_BYTES
    max_domains: int = MAX_DOMAINS

    def limits(self) -> Limits:
        return Limits.for_folder(
            self.domains,
            self.allowed_folders,
            max_file_bytes=self.max_file_bytes,
            max_list_bytes=self.max_list_bytes,
            max_domains=self.max_domains,
        )

    @property
    def state_folder(self) -> Path:
        """AUTOCONF_STATE, else systemd's $STATE_DIRECTORY, else ``<domains>.state``
        beside the domain folder."""
        if self.state is not None:
            return self.state
        return self.domains.parent / f"{self.domains.name}.state"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def path(name: str) -> Path | None:
            value = env.get(name, "").strip()
            return Path(value) if value else None

        hops_text = env.get("AUTOCONF_PROXY_HOPS", "0").strip() or "0"
        if not hops_text.isdigit():
            raise SettingsError(f"AUTOCONF_PROXY_HOPS must be a whole number, not {hops_text!r}")
        log_addresses = env.get("AUTOCONF_LOG_ADDRESSES", "redact").strip() or "redact"
        if log_addresses not in LOG_ADDRESS_MODES:
            raise SettingsError(
                f"AUTOCONF_LOG_ADDRESSES must be one of {', '.join(LOG_ADDRESS_MODES)}, "
                f"not {log_addresses!r}"
            )
        reload_text = env.get("AUTOCONF_RELOAD_SECONDS", "1").strip() or "1"
        try:
            reload_seconds = float(reload_text)
        except ValueError:
            reload_seconds = -1.0
        if not 0 <= reload_seconds <= 86400:
            raise SettingsError(
                f"AUTOCONF_RELOAD_SECONDS must be seconds from 0 (off) to 86400, "
                f"not {reload_text!r}"
            )

        def number(name: str, default: float, low: float, high: float, what: str) -> float:
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                value = low - 1
            if not low <= value <= high:
                raise SettingsError(f"{name} must be {what}, not {text!r}")
            return value

        allowed = env.get("AUTOCONF_ALLOWED_FOLDERS", "")
        return cls(
            grace_seconds=number("AUTOCONF_GRACE_SECONDS", 60, 0, 86400, "seconds from 0 to 86400"),
            max_drop=number("AUTOCONF_MAX_DROP", 0.5, 0, 1, "a share from 0 to 1 (1: off)"),
            allowed_folders=tuple(Path(p) for p in allowed.split(":") if p.strip()),
            max_file_bytes=int(
                number("AUTOCONF_MAX_FILE_BYTES", MAX_FILE_BYTES, 1, 2**40, "a number of bytes")
            ),
            max_list_bytes=int(
                number("AUTOCONF_MAX_LIST_BYTES", MAX_LIST_BYTES, 1, 2**40, "a number of bytes")
            ),
            max_domains=int(
                number("AUTOCONF_MAX_DOMAINS", MAX_DOMAINS, 1, 10**9, "a number of domains")
            ),
            domains=path("AUTOCONF_DOMAINS") or Path("domains"),
            public_host=env.get("AUTOCONF_PUBLIC_HOST", "").strip() or None,
            proxy_hops=int(hops_text),
            sign_cert=path("AUTOCONF_SIGN_CERT"),
            sign_key=path("AUTOCONF_SIGN_KEY"),
            sign_chain=path("AUTOCONF_SIGN_CHAIN"),
            log_addresses=log_addresses,
            log_key=env.get("AUTOCONF_LOG_KEY", "").strip() or None,
            reload_seconds=reload_seconds,
            state=path("AUTOCONF_STATE") or path("STATE_DIRECTORY"),
        )

    def check(self) -> None:
        """Raise SettingsError for what would stop the service from working at all."""
        if not self.domains.is_dir():
            raise SettingsError(f"AUTOCONF_DOMAINS: {self.domains} is not a folder")
