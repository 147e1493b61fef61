"""Live checks of the servers a domain file names. (To be written.)"""

from __future__ import annotations

from pathlib import Path

from autoconf.model import Provider


def probe_main(provider: Provider, domain: str, *, ca_file: Path | None, timeout: float) -> int:
    raise NotImplementedError
