"""Importing Thunderbird ISPDB files (clientConfig XML) as domain YAML. (To be written.)"""

from __future__ import annotations

from pathlib import Path


def import_main(source: Path, out: Path, *, force: bool) -> int:
    raise NotImplementedError
