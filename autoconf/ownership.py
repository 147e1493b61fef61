"""Which file serves each domain: the rules that make answers a function of what
is on disk (and of what served before), never of the order things happened in.

:func:`resolve` takes the files as they are now (a :class:`~autoconf.folder.Scan`)
and the previous outcome, and decides:

1. **The version of each file.** Its current version when valid; else its last
   good version, which keeps serving while the file is broken.
2. **A missing file is held.** A file that served and is gone keeps serving its
   last version for ``grace`` seconds (a deploy that is not atomic, a file
   moved out and back): its domains go only when it has been missing that long.
3. **A claim never takes a served domain.** A domain listed by more than one
   file stays with the file that served it before, for as long as that file
   lists it; the others' claims wait, each reported with both file names, and
   every other domain of every file keeps serving. A domain that more than one
   file claims and none served before (a first start, or two new claims at
   once) is served by none of them until only one claims it: no file can take a
   domain by its name sorting first, or by arriving while the service was down.

Moving a domain from file A to file B is therefore two steps: add it to B (A
keeps serving it, B's claim is reported), then remove it from A (B takes it
over on that reload).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from autoconf.errors import Problem
from autoconf.folder import LoadedFile, Scan
from autoconf.model import DomainOrigins, Provider
from autoconf.pickling import tuple_state

GRACE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class BrokenFile:
    file: str  # its path
    errors: tuple[Problem, ...]
    serving_last_good: bool = False  # an earlier valid version still serves


@dataclass(frozen=True, slots=True)
class Contest:
    """A domain claimed by more than one file: who serves it (None: nobody)."""

    domain: str
    owner: str | None  # a file name, as in the folder
    claimants: tuple[str, ...]  # every file that lists it, the owner among them


@tuple_state
@dataclass(frozen=True, slots=True)
class Held:
    """A file that served and is missing now: it serves on until ``until``."""

    file: str
    since: float  # time.time() when it was first found missing
    until: float


@dataclass(frozen=True, slots=True)
class FolderResult:
    """What serves, and why the rest does not: the outcome of :func:`resolve`."""

    providers: tuple[Provider, ...]  # what serves, each with the domains it owns
    broken: tuple[BrokenFile, ...]
    problems: tuple[Problem, ...]  # errors and lint warnings, in file and line order
    files: int
    states: Mapping[str, LoadedFile] = field(default_factory=dict)
    changed: tuple[str, ...] = ()  # files read anew (new or changed since the last load)
    removed: tuple[str, ...] = ()
    contests: tuple[Contest, ...] = ()
    held: tuple[Held, ...] = ()
    # The served version of each serving file (held files included), for the next resolve.
    serving: Mapping[str, Provider] = field(default_factory=dict)
    claims: tuple[Problem, ...] = ()  # the claims that wait (among the problems)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    @property
    def domain_count(self) -> int:
        return sum(len(p.domains) for p in self.providers)


EMPTY = FolderResult((), (), (), 0)


def resolve(
    scan: Scan, previous: FolderResult = EMPTY, *, now: float, grace: float = GRACE_SECONDS
) -> FolderResult:
    """Which version of each file serves which domains, and which files are broken."""
    states = scan.states
    versions: dict[str, Provider] = {}
    broken: list[BrokenFile] = []
    problems: list[Problem] = []
    for file, state in states.items():
        chosen = state.current or state.last_good
        if chosen is not None:
            versions[file] = chosen
        errors = tuple(p for p in state.problems if p.is_error)
        if errors:
            broken.append(BrokenFile(state.path, errors, serving_last_good=chosen is not None))
        problems += state.problems

    held = []
    previously_held = {h.file: h for h in previous.held}
    for file, provider in previous.serving.items():
        if file in states:
            continue
        since = previously_held[file].since if file in previously_held else now
        if now - since < grace:
            versions[file] = provider
            held.append(Held(file, since, since + grace))

    contests = _contests(versions, previous.serving)
    lost: dict[str, set[str]] = {}
    for contest in contests:
        for claimant in contest.claimants:
            if claimant != contest.owner:
                lost.setdefault(claimant, set()).add(contest.domain)
    claims = _claim_problems(contests, versions, lost)
    problems += claims

    serving: dict[str, Provider] = {}
    for file, provider in versions.items():
        served = _without(provider, lost[file]) if file in lost else provider
        if served is not None:
            serving[file] = served
    problems.sort(key=lambda p: (p.file, p.line))
    broken.sort(key=lambda b: b.file)
    return FolderResult(
        providers=tuple(serving.values()),
        broken=tuple(broken),
        problems=tuple(problems),
        files=len(states),
        states=states,
        changed=scan.changed,
        removed=scan.removed,
        contests=contests,
        held=tuple(held),
        serving=serving,
        claims=tuple(claims),
    )


def _contests(
    versions: Mapping[str, Provider], before: Mapping[str, Provider]
) -> tuple[Contest, ...]:
    """Every domain listed by more than one file, with the file that keeps it."""
    if len(versions) < 2:
        return ()
    first: dict[str, str] = {}  # domain -> the first file (in name order) to list it
    more: dict[str, list[str]] = {}
    for file, provider in versions.items():
        domains = provider.domains
        if first.keys().isdisjoint(domains):  # the common case, done in C
            first.update(dict.fromkeys(domains, file))
            continue
        for domain in domains:
            owner = first.setdefault(domain, file)
            if owner != file:
                more.setdefault(domain, [owner]).append(file)
    if not more:
        return ()
    previous_owner = _owner_index(before, more.keys())
    contests = []
    for domain in sorted(more):
        claimants = tuple(more[domain])
        kept = previous_owner.get(domain)
        contests.append(Contest(domain, kept if kept in claimants else None, claimants))
    return tuple(contests)


def _owner_index(serving: Mapping[str, Provider], wanted: Iterable[str]) -> dict[str, str]:
    """Which file served each of the ``wanted`` domains."""
    wanted = set(wanted)
    found: dict[str, str] = {}
    for file, provider in serving.items():
        if not wanted.isdisjoint(provider.domains):
            found.update((d, file) for d in wanted.intersection(provider.domains))
    return found


def _claim_problems(
    contests: tuple[Contest, ...], versions: Mapping[str, Provider], lost: Mapping[str, set[str]]
) -> list[Problem]:
    """One error for each claim that waits, at the line of the claim."""
    positions: dict[str, dict[str, int]] = {}
    problems = []
    for contest in contests:
        for claimant in contest.claimants:
            if claimant == contest.owner:
                continue
            provider = versions[claimant]
            if claimant not in positions:  # only the domains it lost, even of a long list
                mine = lost[claimant]
                positions[claimant] = {d: i for i, d in enumerate(provider.domains) if d in mine}
            source = provider.source(positions[claimant][contest.domain])
            if contest.owner is not None:
                message = (
                    f"{contest.domain} is served by {contest.owner}; this claim waits until "
                    "that file no longer lists it"
                )
            else:
                others = ", ".join(c for c in contest.claimants if c != claimant)
                message = (
                    f"{contest.domain} is also claimed by {others}, and no file served it "
                    "before: none of them serves it until only one lists it"
                )
            problems.append(Problem(source.file, source.line, source.path, message))
    return problems


def _without(provider: Provider, lost: set[str]) -> Provider | None:
    """The provider without the domains it lost; None when it has none left."""
    keep = [i for i, d in enumerate(provider.domains) if d not in lost]
    if not keep:
        return None
    origins = provider.origins
    if origins is not None:
        origins = DomainOrigins(
            origins.file,
            origins.list_file,
            array("I", (origins.lines[i] for i in keep)),
            array("i", (origins.indexes[i] for i in keep)),
        )
    domains = tuple(provider.domains[i] for i in keep)
    patterns = tuple(p for p in provider.patterns if p not in lost)
    return replace(provider, domains=domains, origins=origins, patterns=patterns)
