"""deploy/prometheus/alerts.yml against the service: every metric and label its rules
and its unit tests read is one that /metrics exports, and every alert says how bad it
is, how long it waits and what to do. promtool itself runs the rules in
tests/e2e/test_alerts.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

from tests.conftest import DATA, ROOT

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = DATA / "prometheus" / "alerts_test.yml"
# Series that Prometheus makes itself, not the service.
PROMETHEUS_OWN = {"up"}
# Labels a scrape adds to every series (and the unit tests give their series).
TARGET_LABELS = {"instance", "job"}
SEVERITIES = {"critical", "warning"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}


def selectors(expr: str) -> dict[str, set[str]]:
    """The metric names a PromQL expression reads, each with the label names its
    matchers name. Enough PromQL for rules: strings, matchers, ranges, grouping."""
    found: dict[str, set[str]] = {}
    blanked = _STRING.sub('""', expr)
    for name, matchers in _SELECTOR.findall(blanked):
        found.setdefault(name, set()).update(_MATCHER_LABEL.findall(matchers))
    rest = _GROUPING.sub(" ", _SELECTOR.sub(r"\1", blanked))
    rest = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", rest)
    for name in _NAME.findall(rest):
        if name not in _KEYWORDS:
            found.setdefault(name, set())
    return found


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [rule for group in load(ALERTS)["groups"] for rule in group["rules"]]


def exported(client: Client) -> dict[str, set[str]]:
    """Each sample name /metrics answers (suffixes such as _total included), with its
    label names, after a few requests have made the labelled series."""
    client.get("/mail/config-v1.1.xml?emailaddress=a@example.com")
    client.get("/mail/config-v1.1.xml?emailaddress=a@nowhere.example")
    client.get("/healthz")
    answer = client.get("/metrics")
    assert answer.status_code == 200
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_the_expression_reader() -> None:
    expr = (
        'sum without (endpoint, status) (rate(a_total{status=~"5..", x="}"}[5m]))'
        " / on (instance) sum(rate(a_total[5m])) > 1e3 and b:recorded == 1 unless up"
    )
    assert selectors(expr) == {"a_total": {"status", "x"}, "b:recorded": set(), "up": set()}


def test_every_metric_the_rules_read_is_exported(client: Client) -> None:
    metrics = exported(client)
    for rule in rules():
        read = selectors(rule["expr"])
        assert read, f"{rule['alert']}: no metric found in {rule['expr']!r}"
        for name, labels in read.items():
            if name in PROMETHEUS_OWN:
                continue
            assert name in metrics, f"{rule['alert']} reads {name}, not exported: {sorted(metrics)}"
            assert labels <= metrics[name] | TARGET_LABELS, (rule["alert"], name, labels)


def test_the_unit_tests_feed_exported_series(client: Client) -> None:
    """The series of alerts_test.yml are what a scrape of the service gives, so that
    the rules are tested on the names and labels they will meet."""
    metrics = exported(client)
    for test in load(ALERTS_TEST)["tests"]:
        for series in test["input_series"]:
            [(name, labels)] = selectors(series["series"]).items()
            if name not in PROMETHEUS_OWN:
                assert name in metrics, (test["name"], name)
                assert labels <= metrics[name] | TARGET_LABELS, (test["name"], name, labels)


def test_every_alert_waits_says_how_bad_and_what_to_do() -> None:
    found = rules()
    assert len(found) >= 7
    for rule in found:
        name = rule["alert"]
        assert name.startswith("MailAutoconf"), name
        assert re.fullmatch(r"\d+m", rule.get("for", "")), f"{name}: no for: in minutes"
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"] and "\n" not in annotations["summary"], name
        assert "docs/deploy.md" in annotations["description"], name


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    """For each alert, alerts_test.yml asks once expecting it, and once expecting
    nothing; each firing case also has a healthy instance beside the bad one."""
    firing: set[str] = set()
    silent: set[str] = set()
    for test in load(ALERTS_TEST)["tests"]:
        series = [given["series"] for given in test["input_series"]]
        for case in test["alert_rule_test"]:
            expected = case.get("exp_alerts") or []
            (firing if expected else silent).add(case["alertname"])
            for alert in expected:
                bad = alert["exp_labels"]["instance"]
                assert any(f'instance="{bad}"' not in one for one in series), test["name"]
    names = {rule["alert"] for rule in rules()}
    assert firing == names
    assert silent == names
