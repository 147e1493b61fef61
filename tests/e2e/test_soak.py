"""The soak of bench/soak.py, with a small count: no error, memory flat."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def test_soak_small() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--requests",
            "5000",
            "--warmup",
            "2000",
            "--max-seconds",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "soak: 5000 passed, 0 failed" in result.stdout
