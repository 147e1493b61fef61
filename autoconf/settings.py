"""Service settings (SPEC §2): environment variables, each also a `serve` option."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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
    reload_seconds: float = 1.0
    # Where the service keeps what it must remember across restarts (which file
    # serves each domain, last good versions, the log key). None: beside the
    # domain folder (see state_folder).
    state: Path | None = None

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
        return cls(
            domains=path("AUTOCONF_DOMAINS") or Path("domains"),
            public_host=env.get("AUTOCONF_PUBLIC_HOST", "").strip() or None,
            proxy_hops=int(hops_text),
            sign_cert=path("AUTOCONF_SIGN_CERT"),
            sign_key=path("AUTOCONF_SIGN_KEY"),
            sign_chain=path("AUTOCONF_SIGN_CHAIN"),
            log_addresses=log_addresses,
            reload_seconds=reload_seconds,
            state=path("AUTOCONF_STATE") or path("STATE_DIRECTORY"),
        )

    def check(self) -> None:
        """Raise SettingsError for what would stop the service from working at all."""
        if not self.domains.is_dir():
            raise SettingsError(f"AUTOCONF_DOMAINS: {self.domains} is not a folder")
