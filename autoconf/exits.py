"""The exit codes of every ``mail-autoconf`` command, and how their summary lines count."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    INVALID = 1  # errors in domain files, a mismatch, an unknown domain, a failed check
    USAGE = 2  # a wrong argument or setting
    NO_ANSWER = 3  # dns --check: DNS gave no answer, so whether records are published is unknown


def counted(number: int, thing: str) -> str:
    """``1 file``, ``2 files``, ``0 errors``: a summary line's count."""
    return f"{number} {thing}" if number == 1 else f"{number} {thing}s"
