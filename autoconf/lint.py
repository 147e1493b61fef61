"""Lint: settings that work but will hurt someone (docs/domain-files.md#warnings).
Never fatal unless --strict."""

from __future__ import annotations

from autoconf.errors import Problem, Severity
from autoconf.model import Auth, Provider, Security, Server, ServerType

# Thunderbird takes STARTTLS from these ports in an autodiscover answer, SSL from others.
STARTTLS_PORTS = frozenset({25, 110, 143, 587})
CLEARTEXT_WHY = "passwords and mail cross the network readably (RFC 8314 deprecates cleartext)"


def lint(provider: Provider) -> list[Problem]:
    """Every warning for one valid provider, with the line it is about."""
    warnings: list[Problem] = []

    def warn(server: Server | None, key: str, path: str, message: str) -> None:
        line = server.lines.get(key, server.lines.get("", 1)) if server else 1
        warnings.append(Problem(provider.file, line, path, message, Severity.WARNING))

    for server in provider.incoming + provider.outgoing:
        path = server.path
        if not server.tls:
            warn(
                server,
                "security",
                f"{path}.security",
                f"security: none: {CLEARTEXT_WHY}; Thunderbird for Android rejects "
                "a whole document with one plaintext server",
            )
            if Auth.PASSWORD_CLEARTEXT in server.auth:
                warn(
                    server,
                    "auth",
                    f"{path}.auth",
                    "password-cleartext without TLS sends the password readably",
                )
        if server.type is ServerType.SMTP and server.port == 25:
            warn(
                server,
                "port",
                f"{path}.port",
                "SMTP on port 25: most networks block it for clients; submission is 587 or 465",
            )
        if server.type is ServerType.SMTP and not server.needs_login:
            warn(
                server,
                "auth",
                f"{path}.auth",
                "no outgoing authentication: the server must accept mail by IP alone",
            )
        if server.auth == (Auth.OAUTH2,):
            warn(
                server,
                "auth",
                f"{path}.auth",
                "OAuth2 as the only method: Thunderbird accepts OAuth2 only for providers "
                "built into it and drops this server elsewhere",
            )
        if server.tls and (server.port in STARTTLS_PORTS) != (server.security is Security.STARTTLS):
            mode = "STARTTLS" if server.port in STARTTLS_PORTS else "SSL/TLS"
            warn(
                server,
                "port",
                f"{path}.port",
                f"security: {server.security.value} on port {server.port}: Thunderbird reads "
                f"the TLS mode of an Outlook autodiscover answer from the port and will "
                f"try {mode}",
            )
        pop3 = server.pop3
        if pop3 and pop3.days_to_leave_messages_on_server and not pop3.leave_messages_on_server:
            key = "pop3.days_to_leave_messages_on_server"
            warn(
                server,
                key,
                f"{path}.{key}",
                "days_to_leave_messages_on_server has no effect without "
                "leave_messages_on_server: true",
            )

    imap = [s for s in provider.incoming if s.type is ServerType.IMAP]
    first_in = provider.incoming[0] if provider.incoming else None
    if not imap:
        warn(
            first_in,
            "type",
            "incoming",
            "POP3 only: mail is not kept in sync between several devices; "
            "Thunderbird for Android cannot use this provider (it needs IMAP)",
        )
    elif not any(s.tls for s in imap):
        warn(
            first_in,
            "type",
            "incoming",
            "no IMAP server with TLS: Thunderbird for Android cannot use this provider",
        )
    return warnings
