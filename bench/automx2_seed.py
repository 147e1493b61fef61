"""Seed automx2's database with what domains/example.com.yaml says (for bench/throughput.py).

Runs with automx2's own Python (its virtual environment), with ``AUTOMX2_CONF``
naming the automx2.conf whose ``db_uri`` is the SQLite file to fill:

    AUTOMX2_CONF=bench/.work/automx2.conf bench/.work/automx2-venv/bin/python bench/automx2_seed.py

automx2's model has providers, domains, mail servers (with a priority and a
socket type) and DAV servers; webmail, documentation, ActiveSync and POP3
options have no place in it, so its answers are somewhat shorter than ours.
"""

from __future__ import annotations

from automx2.model import Base, Davserver, Domain, Provider, Server, db
from automx2.server import app

ADDRESS = "%EMAILADDRESS%"


def seed() -> None:
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        provider = Provider(name="Example Mail", short_name="Example")
        domains = [Domain(name=name, provider=provider) for name in ("example.com", "example.net")]
        servers = [
            # (type, host, port, socket type, priority): the order of the YAML file
            ("imap", "imap.example.com", 993, "SSL", 10),
            ("pop", "pop.example.com", 995, "SSL", 20),
            ("smtp", "smtp.example.com", 587, "STARTTLS", 10),
            ("smtp", "smtp.example.com", 465, "SSL", 20),
        ]
        db.session.add(provider)
        db.session.add_all(domains)
        for kind, host, port, socket_type, prio in servers:
            db.session.add(
                Server(
                    type=kind,
                    name=host,
                    port=port,
                    socket_type=socket_type,
                    prio=prio,
                    user_name=ADDRESS,
                    authentication="plain",
                    domains=domains,
                )
            )
        for kind, url in (
            ("caldav", "https://dav.example.com/cal/%EMAILADDRESS%/"),
            ("carddav", "https://dav.example.com/card/%EMAILADDRESS%/"),
        ):
            db.session.add(
                Davserver(
                    type=kind,
                    url=url,
                    port=443,
                    use_ssl=True,
                    domain_required=False,
                    user_name=ADDRESS,
                    domains=domains,
                )
            )
        db.session.commit()


if __name__ == "__main__":
    seed()
