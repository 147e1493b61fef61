"""The logs: gunicorn's access and error logs with every address shown as
AUTOCONF_LOG_ADDRESSES says (redacted by default); no header (Authorization
among them) and no body is ever logged."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger

from autoconf.address import redact_addresses
from autoconf.logkey import log_key
from autoconf.settings import Settings

# The access log shows the request target with every address in it shown as
# AUTOCONF_LOG_ADDRESSES says (redacted by default). Headers, Authorization
# among them, are never logged, and neither are bodies.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


def access_logger(settings: Settings) -> type[Logger]:
    """gunicorn's logger class (``logger_class``) for these settings: gunicorn makes
    its logger itself, from the class."""
    return type("AccessLogger", (AccessLogger,), {"settings": settings})


class AccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with every address shown as AUTOCONF_LOG_ADDRESSES says:
    in the access log's target, and in every line of the error log (gunicorn's
    warnings quote request lines, its errors the request's URI)."""

    settings = Settings()  # a subclass of access_logger() carries the service's

    def __init__(self, cfg: Any) -> None:
        settings = self.settings
        self.address_mode = settings.log_addresses
        self.address_key = log_key(settings) if settings.log_addresses == "hash" else b""
        self.redacting = RedactingFilter(self.address_mode, self.address_key)
        self._direct: list[logging.Handler] | None = None
        self._streams: list[logging.StreamHandler[Any]] = []
        super().__init__(cfg)

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # The access lines are built redacted (``access``); everything else is filtered,
        # gunicorn's own lines and the service's (they share the root's stream).
        if self.redacting not in self.error_log.filters:
            self.error_log.addFilter(self.redacting)
        for handler in logging.getLogger().handlers:
            if self.redacting not in handler.filters:
                handler.addFilter(self.redacting)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """One access line, built from the few values ACCESS_LOG_FORMAT shows (gunicorn's
        own ``atoms`` builds dozens, every header among them, for each request)."""
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        target = loggable_target(
            environ.get("PATH_INFO") or "",
            environ.get("QUERY_STRING", ""),
            self.address_mode,
            key=self.address_key,
        )
        sent = getattr(resp, "sent", None)
        millis = request_time.seconds * 1000 + request_time.microseconds // 1000
        line = (
            f'{environ.get("REMOTE_ADDR", "-")} "{environ.get("REQUEST_METHOD", "-")} {target} '
            f'{environ.get("SERVER_PROTOCOL", "-")}" {status} {sent if sent is not None else "-"} '
            f"{millis}ms"
        )
        handlers = self.access_log.handlers
        if self._direct is not handlers:  # gunicorn (re)built its handlers: look again
            self._direct = handlers
            self._streams = [h for h in handlers if _plain_stream(h)]
        if self._streams and len(self._streams) == len(handlers):
            # What logging would do for "%(message)s" to a stream, without a LogRecord.
            for handler in self._streams:
                handler.acquire()
                try:
                    handler.stream.write(line + "\n")
                    handler.flush()
                finally:
                    handler.release()
        else:
            self.access_log.info(line)


def _plain_stream(handler: logging.Handler) -> bool:
    """A stream or file handler that writes the bare message, filtering nothing."""
    formatter = handler.formatter
    return (
        isinstance(handler, logging.StreamHandler)
        and not handler.filters
        and formatter is not None
        and formatter._fmt == "%(message)s"  # noqa: SLF001 (what gunicorn's access log uses)
    )


class RedactingFilter(logging.Filter):
    """Addresses in a log record shown as the setting says; a traceback (gunicorn's
    on a failed request names the request) becomes its last line, redacted."""

    def __init__(self, mode: str, key: bytes) -> None:
        super().__init__()
        self.mode, self.key = mode, key

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message = f"{message} ({type(error).__name__}: {error})"
            record.exc_info, record.exc_text = None, None
        if "@" in message or "%" in message:
            message = _shown(_decoded(message), self.mode, self.key)
        record.msg, record.args = message, None
        return True


def loggable_target(path: str, query: str, mode: str, limit: int = 300, key: bytes = b"") -> str:
    """The request target as the access log shows it: decoded, so that an address
    written as ``alice%40example.com`` (or ``%2540``) is seen and redacted; control
    characters escaped, so that no request can write a line of its own; cut short."""
    target = f"{path}?{query}" if query else path
    if "%" in target or "+" in target:
        target = _decoded(target)
    return _shown(target, mode, key, limit)


def _decoded(text: str) -> str:
    """Percent-decoded until nothing changes (at most three times: ``%252540``)."""
    for _ in range(3):
        decoded = unquote_plus(text, errors="replace")
        if decoded == text:
            break
        text = decoded
    return text


def _shown(text: str, mode: str, key: bytes, limit: int = 2000) -> str:
    text = redact_addresses(text, mode, key)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return text if len(text) <= limit else text[:limit] + "…"
