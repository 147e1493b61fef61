"""What this machine lets the service use."""

from __future__ import annotations

import math
import os
from pathlib import Path


def available_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU
    quota. A container's CPU limit is such a quota, and ``os.cpu_count()`` does not
    see it: a pod limited to one CPU on a 64-core node would start 64 workers."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota here
    return count
