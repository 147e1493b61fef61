"""The real front for client tests: mail-autoconf serve, nginx with TLS, and one
headless Thunderbird for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.nginx import Nginx, start_nginx
from tests.e2e.processes import Started, start_service
from tests.e2e.thunderbird import Thunderbird, start_thunderbird

CLIENT_DOMAINS_DIR = Path(__file__).resolve().parents[1] / "data" / "thunderbird"
# The mail domains the client tests use: the certificate names each of them
# and its autoconfig. and autodiscover. names.
CLIENT_DOMAINS = (
    "ssl.test.example",
    "starttls.test.example",
    "pop3.test.example",
    "both.test.example",
    "plain.test.example",
    "xn--bcher-kva.test.example",
    "customer.test.example",  # served by the catch-all
    "v12.test.example",  # autoconfig 1.2's every part
)
# The names no certificate of `mail-autoconf certificates` can hold: the
# catch-all's. The test's public-host certificate names them as well.
UNLISTED_NAMES = ("autoconfig.customer.test.example", "autodiscover.customer.test.example")


@dataclass
class Front:
    service: Started
    service_port: int
    nginx: Nginx


@contextmanager
def behind_nginx(
    base: Path,
    folder: Path,
    bare_domains: Sequence[str],
    service_args: Sequence[str] = (),
    **nginx_options: Any,
) -> Iterator[Front]:
    """`mail-autoconf serve --proxy-hops 1` for ``folder`` behind nginx, as
    deploy/nginx/ describes it; both stopped by their PIDs afterwards."""
    service, port = start_service(folder, base, "--proxy-hops", "1", *service_args)
    try:
        nginx = start_nginx(base / "nginx", port, folder, bare_domains, **nginx_options)
    except BaseException:
        service.stop()
        raise
    try:
        yield Front(service, port, nginx)
    finally:
        nginx.stop()
        service.stop()


@pytest.fixture(scope="session")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """The service behind nginx, for the client tests' domains."""
    base = tmp_path_factory.mktemp("front")
    with behind_nginx(
        base, CLIENT_DOMAINS_DIR, CLIENT_DOMAINS, default_names=UNLISTED_NAMES
    ) as serving:
        yield serving


@pytest.fixture(scope="session")
def thunderbird(front: Front, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Thunderbird]:
    client = start_thunderbird(
        tmp_path_factory.mktemp("thunderbird"),
        front.nginx.ca_file,
        front.nginx.http_port,
        front.nginx.https_port,
    )
    try:
        yield client
    finally:
        client.stop()
