"""Every broken domain file in tests/data/broken gives exactly the problems an admin must see.

Each ``NAME.yaml`` has a sibling ``NAME.expected`` with one line per problem, as
``mail-autoconf check`` prints it: ``NAME.yaml:LINE: key.path: message`` (warnings
carry ``warning: `` before the message). Lines are compared as sorted lists: the
contract is *which* problems are reported (all of them, in one run), not the order
in which the validator happens to find them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autoconf.folder import load_file

BROKEN = Path(__file__).resolve().parent / "data" / "broken"
CASES = sorted(BROKEN.glob("*.yaml"))


def _shown(path: Path) -> tuple[object, list[str]]:
    provider, problems = load_file(path)
    # The service names files by their full path; the expected files use the bare name.
    prefix = str(path.parent) + "/"
    return provider, [str(problem).replace(prefix, "") for problem in problems]


def test_there_are_enough_cases_and_each_has_its_expected_file() -> None:
    assert len(CASES) >= 18
    expected = {p.stem for p in BROKEN.glob("*.expected")}
    assert {p.stem for p in CASES} == expected


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_broken_file_gives_exactly_the_expected_problems(path: Path) -> None:
    wanted = path.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    wanted = [line for line in wanted if line.strip()]
    provider, shown = _shown(path)
    assert sorted(shown) == sorted(wanted)
    assert provider is None


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_broken_file_reports_at_least_one_error(path: Path) -> None:
    """A file that does not serve must say why: never silently skipped."""
    _, problems = load_file(path)
    assert any(p.is_error for p in problems)


def test_many_errors_are_all_reported_in_one_run() -> None:
    _, shown = _shown(BROKEN / "many_errors.yaml")
    errors = [line for line in shown if ": warning: " not in line]
    assert len(errors) >= 15
    # Problems from the YAML layer (duplicate key) and from validation come together.
    assert any("duplicate key" in line for line in errors)
    assert any("unknown key" in line for line in errors)
