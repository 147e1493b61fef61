"""registry: a folder of domain files becomes an immutable snapshot, domain -> provider."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from autoconf.address import normalize_domain
from autoconf.folder import domain_files
from autoconf.model import Provider
from autoconf.registry import load_folder
from autoconf.snapshot import Snapshot, build_snapshot
from tests.helpers import wait_for

SERVERS = """\
incoming:
  - type: imap
    host: imap.{host}
    security: ssl
outgoing:
  - type: smtp
    host: smtp.{host}
    security: ssl
"""


def domain_file(*domains: str, host: str = "example.com") -> str:
    listed = "".join(f'  - "{d}"\n' for d in domains)
    return f"domains:\n{listed}" + SERVERS.format(host=host)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def snapshot_of(folder: Path) -> Snapshot[str]:
    """A snapshot whose compiled value is the provider's id, to see who serves."""
    return build_snapshot(load_folder(folder), lambda provider: provider.id)


def served_by(snapshot: Snapshot[str], domain: str) -> str | None:
    entry = snapshot.lookup(normalize_domain(domain))
    return None if entry is None else entry.compiled


def relative(text: str, folder: Path) -> str:
    return text.replace(f"{folder}/", "")


# -- loading a folder -------------------------------------------------------------


def test_broken_file_is_listed_and_the_good_ones_serve(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", domain_file("a.example", host="a.example"))
    write(tmp_path, "b.yaml", domain_file("b.example", host="b.example"))
    write(tmp_path, "c.yaml", domain_file("c.example", host="c.example") + "colour: blue\n")
    result = load_folder(tmp_path)

    assert result.files == 3
    assert sorted(p.id for p in result.providers) == ["a.example", "b.example"]
    assert [b.file for b in result.broken] == [str(tmp_path / "c.yaml")]
    assert [relative(str(e), tmp_path) for e in result.broken[0].errors] == [
        "c.yaml:11: colour: unknown key"
    ]
    assert [relative(str(e), tmp_path) for e in result.errors] == ["c.yaml:11: colour: unknown key"]

    snapshot = build_snapshot(result, lambda provider: provider.id)
    assert served_by(snapshot, "a.example") == "a.example"
    assert served_by(snapshot, "b.example") == "b.example"
    assert served_by(snapshot, "c.example") is None
    assert snapshot.broken == result.broken
    assert snapshot.domain_count == 2


def test_every_broken_file_is_listed(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", domain_file("example.com"))
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "syntax.yaml", "domains: [example.net\n")
    write(tmp_path, "list.yaml", "- example.org\n")
    result = load_folder(tmp_path)
    assert sorted(Path(b.file).name for b in result.broken) == [
        "empty.yaml",
        "list.yaml",
        "syntax.yaml",
    ]
    assert all(b.errors for b in result.broken), "each broken file must say why"
    assert [p.id for p in result.providers] == ["example.com"]


def test_problems_are_in_file_and_line_order(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", domain_file("b.example") + "zzz: 1\naaa: 2\n")
    write(tmp_path, "a.yaml", domain_file("a.example") + "yyy: 1\n")
    result = load_folder(tmp_path)
    assert [relative(str(p), tmp_path) for p in result.problems] == [
        "a.yaml:11: yyy: unknown key",
        "b.yaml:11: zzz: unknown key",
        "b.yaml:12: aaa: unknown key",
    ]


def test_a_domain_two_new_files_claim_is_served_by_neither(tmp_path: Path) -> None:
    """At a first start (no history) a contested domain goes to no file: neither
    the first by name nor any other can take it; every other domain serves."""
    write(tmp_path, "first.yaml", domain_file("example.com", "first.example", host="first.example"))
    write(
        tmp_path,
        "second.yaml",
        domain_file("example.net", "Example.COM", host="second.example"),
    )
    result = load_folder(tmp_path)

    assert [Path(p.file).name for p in result.providers] == ["first.yaml", "second.yaml"]
    assert result.broken == ()
    (contest,) = result.contests
    assert (contest.domain, contest.owner) == ("example.com", None)
    assert contest.claimants == ("first.yaml", "second.yaml")
    assert [relative(str(e), tmp_path) for e in result.errors] == [
        "first.yaml:2: domains[0]: example.com is also claimed by second.yaml, and no file "
        "served it before: none of them serves it until only one lists it",
        "second.yaml:3: domains[1]: example.com is also claimed by first.yaml, and no file "
        "served it before: none of them serves it until only one lists it",
    ]

    snapshot = build_snapshot(result, lambda provider: Path(provider.file).name)
    assert snapshot.lookup("example.com") is None
    for domain, file in (("first.example", "first.yaml"), ("example.net", "second.yaml")):
        entry = snapshot.lookup(domain)
        assert entry is not None and entry.compiled == file


def test_a_served_domain_stays_with_its_file(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", domain_file("example.com", host="owner.example"))
    before = load_folder(tmp_path)
    write(tmp_path, "a.yaml", domain_file("example.com", "a.example", host="thief.example"))
    result = load_folder(tmp_path, before)
    (contest,) = result.contests
    assert (contest.domain, contest.owner, contest.claimants) == (
        "example.com",
        "b.yaml",
        ("a.yaml", "b.yaml"),
    )
    assert [relative(str(e), tmp_path) for e in result.errors] == [
        "a.yaml:2: domains[0]: example.com is served by b.yaml; this claim waits until that "
        "file no longer lists it"
    ]
    snapshot = build_snapshot(result, lambda provider: Path(provider.file).name)
    assert [snapshot.lookup(d).compiled for d in ("example.com", "a.example")] == [  # type: ignore[union-attr]
        "b.yaml",
        "a.yaml",
    ]
    # Moving a domain: once b.yaml no longer lists it, a.yaml takes it over.
    write(tmp_path, "b.yaml", domain_file("b.example", host="owner.example"))
    moved = build_snapshot(load_folder(tmp_path, result), lambda p: Path(p.file).name)
    assert moved.lookup("example.com").compiled == "a.yaml"  # type: ignore[union-attr]


@pytest.mark.parametrize("pattern", ["*.example.com", "*"])
def test_a_wildcard_or_catch_all_claimed_twice_is_an_error(tmp_path: Path, pattern: str) -> None:
    write(tmp_path, "a.yaml", domain_file(pattern))
    first = load_folder(tmp_path)
    write(tmp_path, "b.yaml", domain_file(pattern))
    result = load_folder(tmp_path, first)
    assert [Path(p.file).name for p in result.providers] == ["a.yaml"]
    assert [relative(str(e), tmp_path) for e in result.errors] == [
        f"b.yaml:2: domains[0]: {pattern} is served by a.yaml; this claim waits until that "
        "file no longer lists it"
    ]


def test_a_broken_file_claims_nothing(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", domain_file("example.com") + "typo: 1\n")
    write(tmp_path, "b.yaml", domain_file("example.com", host="b.example"))
    result = load_folder(tmp_path)
    assert [Path(p.file).name for p in result.providers] == ["b.yaml"]
    assert served_by(build_snapshot(result, lambda p: p.id), "example.com") == "example.com"


def test_hidden_and_other_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", domain_file("example.com"))
    broken = "this: [is not, a domain file\n"
    for name in (
        ".hidden.yaml",
        ".#good.yaml",
        "notes.txt",
        "good.yaml~",
        "good.yaml.bak",
        "README",
    ):
        write(tmp_path, name, broken)
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / ".git").mkdir()
    write(tmp_path / ".git", "config.yaml", broken)

    assert [p.name for p in domain_files(tmp_path)] == ["good.yaml"]
    result = load_folder(tmp_path)
    assert result.files == 1
    assert result.broken == ()
    assert result.problems == ()
    assert [p.id for p in result.providers] == ["example.com"]


def test_compile_runs_once_per_provider(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", domain_file("a.example", "b.example", "*.c.example"))
    write(tmp_path, "b.yaml", domain_file("d.example"))
    calls: list[str] = []

    def compile(provider: Provider) -> str:
        calls.append(provider.id)
        return provider.id

    snapshot = build_snapshot(load_folder(tmp_path), compile)
    assert sorted(calls) == ["a.example", "d.example"]
    assert len(snapshot.entries) == 2
    assert snapshot.domain_count == 4


# -- lookup --------------------------------------------------------------------------


@pytest.fixture
def lookups(tmp_path: Path) -> Snapshot[str]:
    write(tmp_path, "exact.yaml", domain_file("example.com", "müller.example", "shop.example.com"))
    write(tmp_path, "wild.yaml", domain_file("*.example.com", host="wild.example"))
    write(tmp_path, "deeper.yaml", domain_file("*.b.example.com", host="deeper.example"))
    write(tmp_path, "catchall.yaml", domain_file("*", host="hoster.example"))
    return build_snapshot(load_folder(tmp_path), lambda provider: Path(provider.file).stem)


def test_lookup_exact(lookups: Snapshot[str]) -> None:
    assert served_by(lookups, "example.com") == "exact"
    assert served_by(lookups, "shop.example.com") == "exact"  # exact beats a wildcard


@pytest.mark.parametrize(
    "written", ["EXAMPLE.COM", "Example.Com.", "MÜLLER.example", "xn--mller-kva.example"]
)
def test_lookup_is_case_and_idn_insensitive(lookups: Snapshot[str], written: str) -> None:
    assert served_by(lookups, written) == "exact"


def test_lookup_wildcard_matches_any_depth_below(lookups: Snapshot[str]) -> None:
    assert served_by(lookups, "a.example.com") == "wild"
    assert served_by(lookups, "x.a.example.com") == "wild"
    assert served_by(lookups, "A.Example.COM") == "wild"


def test_lookup_wildcard_does_not_match_the_domain_itself(tmp_path: Path) -> None:
    write(tmp_path, "wild.yaml", domain_file("*.example.com"))
    snapshot = snapshot_of(tmp_path)
    assert served_by(snapshot, "a.example.com") == "example.com"
    assert served_by(snapshot, "a.b.example.com") == "example.com"
    assert served_by(snapshot, "example.com") is None
    assert served_by(snapshot, "notexample.com") is None
    assert served_by(snapshot, "com") is None


def test_lookup_most_specific_wildcard_wins(lookups: Snapshot[str]) -> None:
    assert served_by(lookups, "a.b.example.com") == "deeper"
    assert served_by(lookups, "x.y.b.example.com") == "deeper"
    assert served_by(lookups, "b.example.com") == "wild"  # "*.b.example.com" needs a label more


def test_lookup_catch_all_only_when_nothing_else_matches(lookups: Snapshot[str]) -> None:
    assert served_by(lookups, "example.org") == "catchall"
    assert served_by(lookups, "anything.example") == "catchall"
    assert served_by(lookups, "example.com") == "exact"
    assert served_by(lookups, "a.example.com") == "wild"


def test_lookup_without_catch_all_finds_nothing(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", domain_file("example.com"))
    assert served_by(snapshot_of(tmp_path), "example.org") is None


def test_empty_folder_gives_an_empty_snapshot(tmp_path: Path) -> None:
    snapshot = snapshot_of(tmp_path)
    assert snapshot.domain_count == 0
    assert snapshot.entries == ()
    assert served_by(snapshot, "example.com") is None


# -- immutability -----------------------------------------------------------------------


def test_snapshot_is_frozen(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", domain_file("example.com", "*"))
    snapshot = snapshot_of(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.catch_all = None  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.exact = {}  # type: ignore[misc]
    entry = snapshot.lookup("example.com")
    assert entry is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.provider = entry.provider  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.provider.id = "other.example"  # type: ignore[misc]


def test_folder_result_is_frozen(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", domain_file("example.com"))
    result = load_folder(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.providers = ()  # type: ignore[misc]
    assert isinstance(result.providers, tuple)
    assert isinstance(result.problems, tuple)


def test_a_large_first_read_in_processes_equals_the_serial_one(tmp_path: Path) -> None:
    from autoconf.folder import PARALLEL_FILES, scan_folder

    for index in range(PARALLEL_FILES):
        write(tmp_path, f"d{index:05}.yaml", domain_file(f"d{index}.example"))
    write(tmp_path, "broken.yaml", "domains: [x.example]\nincoming: 5\n")
    serial = scan_folder(tmp_path, processes=1)
    shared = scan_folder(tmp_path, processes=2)
    assert list(shared.states) == list(serial.states)
    assert shared.changed == serial.changed
    for name, state in serial.states.items():
        other = shared.states[name]
        assert (other.current, other.problems, other.signature) == (
            state.current,
            state.problems,
            state.signature,
        )
    # Equal servers are one object again, across the processes' shares.
    servers = {id(s.current.incoming[0]) for s in shared.states.values() if s.current}
    assert len(servers) == 1


def test_a_reload_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    """The collector is paused while a reload builds, and on again after, also
    after a reload that failed; a process that had it off keeps it off."""
    import gc

    from autoconf import render
    from autoconf.registry import Registry

    (tmp_path / "a.yaml").write_text(
        "domains: [a.example]\nincoming: [{host: i.example, type: imap, security: ssl}]\n"
        "outgoing: [{host: s.example, security: ssl}]\n"
    )
    seen: list[bool] = []

    def compile(provider: Provider) -> None:
        seen.append(gc.isenabled())
        raise RuntimeError("compile failed")

    # Another test's watcher thread may be inside a reload of its own just now.
    wait_for(gc.isenabled, 5, "the collector on, between other threads' reloads")
    with pytest.raises(RuntimeError):
        Registry(tmp_path, compile).reload()
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        Registry(tmp_path, render.compile_provider).reload()
        assert not gc.isenabled()
    finally:
        gc.enable()
