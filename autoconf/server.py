"""``mail-autoconf serve``: the app factory under gunicorn, configured in-process."""

from __future__ import annotations

import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from autoconf.address import redact_addresses
from autoconf.settings import Settings

# The access log shows the request target with every address in it shown as
# AUTOCONF_LOG_ADDRESSES says (redacted by default). Headers, Authorization
# among them, are never logged, and neither are bodies.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


class AccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with addresses in the logged path shown as AUTOCONF_LOG_ADDRESSES says."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.address_mode = Settings.from_env().log_addresses

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = loggable_target(
            atoms.get("U") or "", environ.get("QUERY_STRING", ""), self.address_mode
        )
        return atoms


def loggable_target(path: str, query: str, mode: str, limit: int = 300) -> str:
    """The request target as the access log shows it: decoded, so that an address
    written as ``alice%40example.com`` is seen and redacted; control characters
    escaped, so that no request can write a line of its own; and cut short."""
    target = unquote_plus(f"{path}?{query}" if query else path, errors="replace")
    target = redact_addresses(target, mode)
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in target)
    return shown if len(shown) <= limit else shown[:limit] + "…"


class _Application(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # older gunicorn releases lack some settings
                self.cfg.set(key, value)

    def load(self) -> Any:
        from autoconf.app import create_app

        return create_app()


def prepare_metrics_folder(environ: MutableMapping[str, str]) -> Path | None:
    """Give prometheus_client's multiprocess mode its folder, before it is imported.

    A folder named by PROMETHEUS_MULTIPROC_DIR is used (created if missing) and
    emptied of an earlier run's ``*.db`` files, which would otherwise add up with
    this run's. Without one, a private temporary folder is made and returned, for
    the caller to remove at exit.
    """
    given = environ.get(MULTIPROC_DIR, "").strip()
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        environ[MULTIPROC_DIR] = str(folder)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    private = Path(tempfile.mkdtemp(prefix="mail-autoconf-metrics-"))
    environ[MULTIPROC_DIR] = str(private)
    return private


def run(*, bind: str, workers: int) -> int:
    # First, before create_app imports prometheus_client (see autoconf.gunicorn_conf).
    from autoconf import gunicorn_conf

    options = {name: getattr(gunicorn_conf, name) for name in gunicorn_conf.__all__}
    options |= {"bind": bind, "workers": workers}
    _Application(options).run()
    return 0
