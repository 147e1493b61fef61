"""The service's settings (README, "Settings"), read once into one :class:`Settings`.

One table (:data:`OPTIONS`) says each setting's environment variable, how its
text is read and checked (with its bounds), its default and, for some, its
command-line option: the environment and the command line go through the same
parser, so a value means the same on both. ``mail-autoconf serve`` and plain
gunicorn read them once, before gunicorn starts, and hand the value to the app
factory and the logger. An unknown ``AUTOCONF_*`` variable (a misspelt one) is
warned about, with the closest known name.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from autoconf.reading import MAX_DOMAINS, MAX_FILE_BYTES, MAX_LIST_BYTES, Limits
from autoconf.resolver import Nameserver

LOG_ADDRESS_MODES = ("redact", "hash", "full")
PREFIX = "AUTOCONF_"
log = logging.getLogger("autoconf")


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
    # The DNS server lookups ask (/tls/allowed, dns --check); None: /etc/resolv.conf.
    resolver: Nameserver | None = None

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
        """The settings the environment gives (the defaults for what it leaves out);
        SettingsError for a value that cannot work. Warns of unknown AUTOCONF_* names."""
        env = os.environ if env is None else env
        for warning in unknown_variables(env):
            log.warning("%s", warning)
        values: dict[str, Any] = {}
        for option in OPTIONS:
            for variable in option.variables:
                text = env.get(variable, "").strip()
                if text:
                    values[option.field] = option.read(text, variable)
                    break
        return cls(**values)

    def with_options(self, **given: object) -> Settings:
        """These settings with the command line's options (None: not given)."""
        values: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        return replace(self, **values)

    def for_folder(self, folder: Path) -> Settings:
        """These settings for another domain folder, with its own state beside it."""
        return replace(self, domains=folder, state=None)

    def check(self) -> None:
        """Raise SettingsError for what would stop the service from working at all."""
        if not self.domains.is_dir():
            raise SettingsError(f"AUTOCONF_DOMAINS: {self.domains} is not a folder")


# ---------------------------------------------------------------------------
# How each kind of value is read: text -> value, or ValueError saying what it must be


Parser = Callable[[str], Any]


def _path(text: str) -> Path:
    return Path(text)


def _text(text: str) -> str:
    return text


def _paths(text: str) -> tuple[Path, ...]:
    return tuple(Path(part) for part in text.split(":") if part.strip())


def _number(low: float, high: float, what: str, *, whole: bool = False) -> Parser:
    def read(text: str) -> float | int:
        try:
            value: float | int = int(text) if whole else float(text)
        except ValueError:
            raise ValueError(what) from None
        if not low <= value <= high:
            raise ValueError(what)
        return value

    return read


def _choice(choices: tuple[str, ...]) -> Parser:
    def read(text: str) -> str:
        if text not in choices:
            raise ValueError(f"one of {', '.join(choices)}")
        return text

    return read


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its field of Settings, its variable, its parser and, when it has
    one, its command-line option."""

    field: str
    parse: Parser
    help: str
    flag: str | None = None  # e.g. "--public-host"
    also: tuple[str, ...] = ()  # variables read when the first is not set

    @property
    def variable(self) -> str:
        return PREFIX + self.field.upper()

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.variable, *self.also)

    def read(self, text: str, source: str) -> Any:
        """The value of ``text``, given as ``source`` (a variable or an option)."""
        try:
            return self.parse(text)
        except ValueError as exc:
            raise SettingsError(f"{source} must be {exc}, not {text!r}") from None


OPTIONS = (
    Option("domains", _path, "Folder of domain files.", "--domains"),
    Option("public_host", _text, "Host name for URLs handed out.", "--public-host"),
    Option(
        "proxy_hops",
        _number(0, 10, "a whole number from 0 to 10", whole=True),
        "Reverse proxies to trust for X-Forwarded-*.",
        "--proxy-hops",
    ),
    Option("sign_cert", _path, "PEM certificate to sign Apple profiles with."),
    Option("sign_key", _path, "Its unencrypted PEM key."),
    Option("sign_chain", _path, "PEM intermediates."),
    Option("log_addresses", _choice(LOG_ADDRESS_MODES), "What the logs show of an address."),
    Option("log_key", _text, "The key of log_addresses=hash."),
    Option(
        "reload_seconds",
        _number(0, 86400, "seconds from 0 (off) to 86400"),
        "How often the domain folder is polled.",
    ),
    Option("state", _path, "The state folder.", also=("STATE_DIRECTORY",)),
    Option(
        "grace_seconds",
        _number(0, 86400, "seconds from 0 to 86400"),
        "How long a missing file keeps serving.",
    ),
    Option(
        "max_drop",
        _number(0, 1, "a share from 0 to 1 (1: off)"),
        "The share of domains a reload may remove at once.",
    ),
    Option("allowed_folders", _paths, "Folders symlinks and domains_from may lead into."),
    Option(
        "max_file_bytes",
        _number(1, 2**40, "a number of bytes", whole=True),
        "The size limit of a domain file.",
    ),
    Option(
        "max_list_bytes",
        _number(1, 2**40, "a number of bytes", whole=True),
        "The size limit of a domains_from list.",
    ),
    Option(
        "max_domains",
        _number(1, 10**9, "a number of domains", whole=True),
        "The domains one file may list.",
    ),
    Option(
        "resolver",
        Nameserver.parse,
        "The DNS server to ask (IP or IP:PORT); default /etc/resolv.conf.",
        "--resolver",
    ),
)
OPTION = {option.field: option for option in OPTIONS}
assert set(OPTION) == {f for f in Settings.__dataclass_fields__}, "one option a setting"


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """A warning for each AUTOCONF_* variable that is no setting, naming the closest one."""
    known = [option.variable for option in OPTIONS]
    warnings = []
    for name in sorted(env):
        if name.startswith(PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"{name} is not a setting of mail-autoconf{hint}")
    return warnings
