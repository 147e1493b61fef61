"""Every error the service knows: problems in domain files, and bad requests.

Domain-file problems are collected, never raised one by one, so that an admin
sees all of them at once. Request errors are raised by the web layer and turned
into an answer by the application's single error handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a domain file, an error or a warning, printed as
    ``FILE:LINE: key.path: message``."""

    file: str
    line: int
    path: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        if self.line <= 0 and not self.path:  # about the whole file: FILE: message
            return f"{self.file}: {prefix}{self.message}"
        return f"{self.file}:{self.line}: {self.path}: {prefix}{self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


class RequestError(Exception):
    """A request the service cannot answer as asked.

    ``status`` is the HTTP status; ``pox_code`` and ``json_code`` are what the
    autodiscover formats call the same failure in their own error documents.
    """

    status = 400
    pox_code = 600  # "Invalid Request"
    json_code = "InvalidRequest"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(RequestError):
    pass


class NotFound(RequestError):
    status = 404
    pox_code = 500
    json_code = "NotFound"


class ClientCannotUse(NotFound):
    """The provider offers nothing this client can use (an Apple profile without a
    login Apple Mail knows); answered like an unknown domain, with the reason."""


class PayloadTooLarge(RequestError):
    status = 413


class RequestTimeout(RequestError):
    """The client stopped sending its request body (a slow or stalled client)."""

    status = 408
    json_code = "RequestTimeout"


class MethodNotAllowed(RequestError):
    status = 405


class InvalidProtocol(BadRequest):
    """Autodiscover v2: a ``Protocol`` we do not offer."""

    json_code = "InvalidProtocol"


class SchemaNotOffered(BadRequest):
    """Autodiscover POX: an ``AcceptableResponseSchema`` we do not offer."""

    pox_code = 601
