"""One connection to a mail server, and what the protocols read from it.

:class:`Session` sends and reads lines, every wait bounded by the server's
deadline, and brings TLS up; :class:`Offer` is what a server offers (SASL
mechanisms, a login command, STARTTLS); :class:`Mismatch` is a server not doing
what the domain file promises.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass

MAX_LINE = 16_384  # a capability line longer than this is no mail server's


class Mismatch(Exception):
    """The server does not do what the file promises; the message says what."""


@dataclass(frozen=True, slots=True)
class Offer:
    mechanisms: tuple[str, ...]  # SASL mechanisms, upper case, in the server's order
    login_command: bool  # IMAP LOGIN without LOGINDISABLED, POP3 USER
    starttls: bool


class Session:
    """One connection: lines in and out, every wait bounded by the server's deadline."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.buffer = bytearray()
        self.tags = 0
        self.sock = self._connect(host, port)

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def _connect(self, host: str, port: int) -> socket.socket:
        error: OSError = OSError(f"{host} has no address")
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.remaining())
                sock.connect(address)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error

    def send(self, line: str) -> None:
        self.sock.settimeout(self.remaining())
        self.sock.sendall(line.encode("ascii") + b"\r\n")

    def readline(self) -> str:
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise Mismatch("the server sent a line longer than 16 KiB")
            self.sock.settimeout(self.remaining())
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Mismatch("the server closed the connection")
            self.buffer += chunk
        line, _, rest = self.buffer.partition(b"\n")
        self.buffer = bytearray(rest)
        return line.decode("utf-8", "replace").rstrip("\r")

    def start_tls(self, context: ssl.SSLContext, host: str) -> None:
        self.sock.settimeout(self.remaining())
        self.buffer.clear()  # nothing sent before the handshake may count after it
        self.sock = context.wrap_socket(self.sock, server_hostname=host)

    def tag(self) -> str:
        self.tags += 1
        return f"p{self.tags}"

    def close(self, goodbye: str) -> None:
        try:
            self.sock.settimeout(0.5)
            self.sock.sendall(goodbye.encode("ascii") + b"\r\n")
        except OSError:
            pass
        self.sock.close()
