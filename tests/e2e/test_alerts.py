"""deploy/prometheus/alerts.yml run by Debian's promtool (the `prometheus` package,
which `make debian-packages` installs): the rules load, and each alert fires on the
series of tests/data/prometheus/alerts_test.yml that should fire it, after its
`for:`, and on no healthy one. That the metrics they read are exported:
tests/test_alerts.py.
"""

from __future__ import annotations

import shutil
import subprocess

from tests.test_alerts import ALERTS, ALERTS_TEST, rules

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *arguments], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_checks_the_rules() -> None:
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


def test_promtool_runs_the_rules_unit_tests() -> None:
    tested = promtool("test", "rules", str(ALERTS_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
