"""GET /metrics in one process: requests by endpoint and status, reloads, the gauges.

Adding up across gunicorn workers is tested with real processes in
tests/e2e/test_deploy.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

from autoconf.app import Application
from autoconf.pipeline import Service
from tests.test_reload import provider_yaml, write

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Client) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def requests(samples: Samples, endpoint: str, status: int) -> float:
    key = ("autoconf_requests_total", frozenset({("endpoint", endpoint), ("status", str(status))}))
    return samples.get(key, 0.0)


def reloads(samples: Samples, outcome: str) -> float:
    return samples[("autoconf_reloads_total", frozenset({("outcome", outcome)}))]


def gauge(samples: Samples, name: str) -> float:
    return samples[(name, frozenset())]


@pytest.fixture
def served(tmp_path: Path, make_app: Callable[..., Application]) -> tuple[Application, Path]:
    # No polling thread: these reloads are the test's own.
    app = make_app({"a.yaml": provider_yaml("a.example")}, reload_seconds=0)
    return app, tmp_path / "served"


def test_the_answer_is_prometheus_text(client: Client) -> None:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    assert {"autoconf_requests", "autoconf_reloads"} <= families.keys()
    assert {"autoconf_domains_live", "autoconf_broken_files"} <= families.keys()
    assert {"autoconf_contested_domains", "autoconf_degraded"} <= families.keys()
    assert all(f.documentation for f in families.values())


def test_requests_are_counted_by_endpoint_and_status(client: Client) -> None:
    for _ in range(3):
        client.get("/mail/config-v1.1.xml?emailaddress=a@example.com")
    client.get("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a@example.com")
    client.get("/mail/config-v1.1.xml?emailaddress=a@nowhere.example")
    client.get("/mail/config-v1.1.xml?emailaddress=not-an-address")
    client.get("/autodiscover/autodiscover.xml")
    client.get("/autodiscover/autodiscover.json?Email=a@example.com&Protocol=AutodiscoverV1")
    client.get("/healthz")
    samples = scrape(client)
    assert requests(samples, "autoconfig", 200) == 4  # both paths are one endpoint
    assert requests(samples, "autoconfig", 404) == 1
    assert requests(samples, "autoconfig", 400) == 1
    assert requests(samples, "pox", 405) == 1  # a GET: POST only
    assert requests(samples, "json", 200) == 1
    assert requests(samples, "healthz", 200) == 1
    assert requests(samples, "metrics", 200) == 0  # a scrape is counted after it answers
    assert requests(scrape(client), "metrics", 200) == 1


def test_no_path_becomes_a_label(client: Client) -> None:
    paths = ["/nothing-here", "/admin", "/wp-login.php", "/" + "x" * 500, "/%00"]
    for path in paths:
        assert client.get(path).status_code == 404
    assert client.put("/healthz").status_code == 405
    samples = scrape(client)
    endpoints = {
        dict(labels)["endpoint"] for name, labels in samples if name == "autoconf_requests_total"
    }
    assert endpoints == {"unknown", "healthz"}  # a refused method counts for its endpoint
    assert requests(samples, "unknown", 404) == len(paths)
    assert requests(samples, "healthz", 405) == 1


def test_reloads_by_outcome_and_the_gauges(served: tuple[Application, Path]) -> None:
    app, folder = served
    client = app.test_client()
    registry = app.service.registry
    assert isinstance(app.service, Service)

    samples = scrape(client)  # the load in create_app, and the first request's reload
    assert reloads(samples, "changed") == 1
    assert reloads(samples, "failed") == 0
    assert gauge(samples, "autoconf_domains_live") == 1
    assert gauge(samples, "autoconf_broken_files") == 0
    unchanged = reloads(samples, "unchanged")

    write(folder / "b.yaml", provider_yaml("b.example"))
    write(folder / "c.yaml", "domains: [c.example]\nincoming: oops\n")  # broken
    write(folder / "d.yaml", provider_yaml('"*.d.example"'))
    registry.reload()
    registry.reload()
    samples = scrape(client)
    assert reloads(samples, "changed") == 2
    assert reloads(samples, "unchanged") == unchanged + 1
    assert gauge(samples, "autoconf_broken_files") == 1
    assert gauge(samples, "autoconf_domains_live") == 3  # a.example, b.example, *.d.example

    shutil.rmtree(folder)  # the folder can no longer be read: the last snapshot serves on
    with pytest.raises(OSError):
        registry.reload()
    samples = scrape(client)
    assert reloads(samples, "failed") == 1
    assert gauge(samples, "autoconf_domains_live") == 3
    assert client.get("/mail/config-v1.1.xml?emailaddress=x@b.example").status_code == 200


def test_the_degraded_gauge_says_what_healthz_says(
    make_app: Callable[..., Application], tmp_path: Path
) -> None:
    """Contested, held back, then fixed: autoconf_degraded and /healthz's status agree
    after every reload (they read one function), and the contest is counted."""
    app = make_app({"a.yaml": provider_yaml("a.example")}, reload_seconds=0, grace_seconds=0)
    folder, client, registry = tmp_path / "served", app.test_client(), app.service.registry

    def seen() -> tuple[str, float, float]:
        samples = scrape(client)
        status = client.get("/healthz").json["status"]
        return (
            status,
            gauge(samples, "autoconf_degraded"),
            gauge(samples, "autoconf_contested_domains"),
        )

    assert seen() == ("ok", 0, 0)
    write(folder / "b.yaml", provider_yaml("a.example"))  # a second claim on a.example
    registry.reload()
    assert seen() == ("degraded", 1, 1)
    (folder / "b.yaml").unlink()
    registry.reload()
    assert seen() == ("ok", 0, 0)
    (folder / "a.yaml").unlink()  # nothing would be served: held back, a.example serves on
    registry.reload()
    assert registry.held_back and registry.snapshot.domain_count == 1
    assert seen() == ("degraded", 1, 0)
    write(folder / "a.yaml", provider_yaml("a.example"))
    registry.reload()
    assert seen() == ("ok", 0, 0)


def test_each_app_counts_for_itself(make_app: Callable[..., Application]) -> None:
    first = make_app({"a.yaml": provider_yaml("a.example")}).test_client()
    second = make_app({"a.yaml": provider_yaml("a.example")}).test_client()
    first.get("/healthz")
    assert requests(scrape(first), "healthz", 200) == 1
    assert requests(scrape(second), "healthz", 200) == 0


@pytest.mark.parametrize("proxy_hops", [0, 1])
def test_not_through_a_proxy(make_app: Callable[..., Application], proxy_hops: int) -> None:
    """A request that a reverse proxy forwarded is from the internet: /metrics is not."""
    client = make_app({}, proxy_hops=proxy_hops).test_client()
    answer = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert answer.status_code == 404
    assert b"autoconf_" not in answer.data
    assert client.get("/metrics").status_code == 200
