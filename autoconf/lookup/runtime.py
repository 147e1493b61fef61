"""Asking a provider's lookup for one address, bounded in time, cached, the same
way whether the address is known or not.

Every key of the lookup's ``keys`` is asked for every address, found or not,
and the first that found wins: a miss costs the source the same work as a hit.
What was found and what was not are cached alike for ``cache`` seconds (a
failure for at most :data:`FAILURE_HOLD`). A lookup that fails, or does not
answer within its ``timeout``, gives the provider's default answer, a log
line (naming the domain file, never the address), a count in
``autoconf_lookups`` and ``degraded`` in ``/healthz`` until a lookup of that
source succeeds again.

Everything here is per process, made on first use: under gunicorn each worker
has its own connections and cache (a fork shares none of them).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from autoconf.address import Address
from autoconf.lookup.sources import POOL_SIZE, LookupFailed, Source, open_source
from autoconf.model import Lookup, MapSource, UserSettings

log = logging.getLogger("autoconf")

# Addresses a lookup keeps answers for, at most (the oldest go first).
MAX_CACHED = 100_000
# Seconds a failed lookup's default answer is kept for its address.
FAILURE_HOLD = 5.0
# Seconds between two log lines of one failing source.
LOG_EVERY = 60.0

# (source kind, outcome): found, not_found, failed, cached.
Count = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class Failing:
    """A source whose last lookup failed: for the operator's /healthz."""

    file: str
    source: str
    reason: str
    since: float


class _Runner:
    """One lookup's source, cache and threads, in this process."""

    def __init__(self, lookup: Lookup, file: str, count: Count) -> None:
        self.lookup = lookup
        self.file = file
        self.count = count
        self.cache: OrderedDict[str, tuple[float, UserSettings | None]] = OrderedDict()
        self.lock = threading.Lock()
        # Threads start on first use: a map lookup never uses one.
        self.executor = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="lookup")
        self.source: Source | None = None
        self.failing: Failing | None = None
        self.logged = 0.0

    def find(self, address: Address) -> UserSettings | None:
        if isinstance(self.lookup.source, MapSource):
            # Read with the domain file: a dictionary lookup a key, nothing to wait
            # for, cache or fail (no thread, no cache).
            found = self._ask(address)
            self.count("map", "found" if found else "not_found")
            return found
        key = address.full.lower()
        now = time.monotonic()
        with self.lock:
            cached = self.cache.get(key)
        if cached is not None and cached[0] > now:
            self.count(self.lookup.kind, "cached")
            return cached[1]
        future = self.executor.submit(self._ask, address)
        try:
            found = future.result(timeout=self.lookup.timeout)
        except FutureTimeout:
            future.cancel()
            self._failed(key, f"no answer within {self.lookup.timeout:g} s")
            return None
        except LookupFailed as exc:
            self._failed(key, str(exc))
            return None
        except Exception as exc:  # a source's own bug must not become a 5xx
            self._failed(key, f"unexpected {type(exc).__name__}")
            return None
        self.count(self.lookup.kind, "found" if found else "not_found")
        if self.failing is not None:
            log.info("lookup of %s (%s) answers again", self.file, self.lookup.kind)
            self.failing = None
        self._keep(key, found, self.lookup.cache)
        return found

    def _ask(self, address: Address) -> UserSettings | None:
        with self.lock:
            if self.source is None:
                self.source = open_source(self.lookup)
            source = self.source
        found = None
        for step in self.lookup.keys:
            key = address.local.lower() if step == "localpart" else address.full.lower()
            answer = source.ask(step, key)  # every key, found or not: the same work
            found = found or answer
        return found

    def _failed(self, key: str, reason: str) -> None:
        self.count(self.lookup.kind, "failed")
        now = time.time()
        if self.failing is None or now - self.logged >= LOG_EVERY:
            log.warning(
                "lookup of %s (%s) failed: %s; answering the provider's default",
                self.file,
                self.lookup.kind,
                reason,
            )
            self.logged = now
        since = self.failing.since if self.failing is not None else now
        self.failing = Failing(self.file, self.lookup.kind, reason, since)
        self._keep(key, None, min(self.lookup.cache, FAILURE_HOLD))

    def _keep(self, key: str, found: UserSettings | None, seconds: float) -> None:
        if seconds <= 0:
            return
        with self.lock:
            self.cache[key] = (time.monotonic() + seconds, found)
            self.cache.move_to_end(key)
            while len(self.cache) > MAX_CACHED:
                self.cache.popitem(last=False)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.source is not None:
            self.source.close()


def _no_count(kind: str, outcome: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class Trial:
    """One lookup asked once, without the cache (``check --online``, ``render``)."""

    found: UserSettings | None
    seconds: float
    failure: str  # why it failed; "" when it answered


def try_lookup(lookup: Lookup, file: str, address: Address) -> Trial:
    """Ask the source for ``address`` once, bounded by the lookup's timeout."""
    runner = _Runner(lookup, file, _no_count)
    started = time.monotonic()
    future = runner.executor.submit(runner._ask, address)
    try:
        found = future.result(timeout=lookup.timeout)
        return Trial(found, time.monotonic() - started, "")
    except FutureTimeout:
        return Trial(None, time.monotonic() - started, f"no answer within {lookup.timeout:g} s")
    except LookupFailed as exc:
        return Trial(None, time.monotonic() - started, str(exc))
    except Exception as exc:
        return Trial(None, time.monotonic() - started, f"unexpected {type(exc).__name__}")
    finally:
        runner.close()


class Lookups:
    """Every provider's lookup in this process, made on first use. A process
    forked from the one that made them (a gunicorn worker) starts afresh."""

    def __init__(self, count: Count = _no_count) -> None:
        self.count = count
        self._runners: dict[Lookup, _Runner] = {}
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def find(self, lookup: Lookup, file: str, address: Address) -> UserSettings | None:
        """What the lookup has for ``address``; None when it has nothing, or failed."""
        runner = self._runner(lookup, file)
        return runner.find(address)

    def _runner(self, lookup: Lookup, file: str) -> _Runner:
        with self._lock:
            if os.getpid() != self._pid:  # forked: the parent's threads are not ours
                self._runners = {}
                self._pid = os.getpid()
            runner = self._runners.get(lookup)
            if runner is None:
                runner = self._runners[lookup] = _Runner(lookup, file, self.count)
            return runner

    def failing(self) -> list[Failing]:
        """The sources whose last lookup in this process failed."""
        with self._lock:
            runners = list(self._runners.values())
        return [r.failing for r in runners if r.failing is not None]

    def close(self) -> None:
        """Close every source's connections (tests, the command line)."""
        with self._lock:
            runners, self._runners = list(self._runners.values()), {}
        for runner in runners:
            runner.close()
