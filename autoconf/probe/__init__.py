"""Live checks of the servers a domain file names (docs/cli.md#probe).

Every server in the file is probed, in parallel, each within its own time
budget: connect, TLS (implicit, or STARTTLS/STLS), the certificate verified for
the host name, then the capabilities read *after* TLS is up (servers hide AUTH
before) and compared with the ``auth`` values the file promises. The first
failure of a server is its result. Servers that the plaintext rule keeps from
clients are probed too, and marked "not served".

The modules:

- :mod:`~autoconf.probe.session`: one connection (:class:`Session`), what a
  server offers (:class:`Offer`), and :class:`Mismatch`;
- :mod:`~autoconf.probe.dialects`: the IMAP, POP3 and SMTP conversations;
- :mod:`~autoconf.probe.checks`: one server checked (:func:`probe_server`),
  and what each ``auth`` value requires of it;
- :mod:`~autoconf.probe.command`: all servers in parallel, the table, and
  :func:`probe_main`.

This package re-exports the public names of all of them.
"""

from autoconf.probe.checks import MECHANISMS, Contexts, Opened, Result, probe_server
from autoconf.probe.command import format_table, make_contexts, probe_main, probe_provider
from autoconf.probe.dialects import DIALECTS, MAX_LINES, Dialect
from autoconf.probe.session import MAX_LINE, Mismatch, Offer, Session

__all__ = [
    "DIALECTS",
    "MAX_LINE",
    "MAX_LINES",
    "MECHANISMS",
    "Contexts",
    "Dialect",
    "Mismatch",
    "Offer",
    "Opened",
    "Result",
    "Session",
    "format_table",
    "make_contexts",
    "probe_main",
    "probe_provider",
    "probe_server",
]
