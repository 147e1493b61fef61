#!/usr/bin/env python3
"""Scale: 1,000, 10,000 and 100,000 domains, laid out three ways.

For each size, a temporary folder is generated in each layout:

  files         one file per domain (a hoster that writes a file per customer)
  list          one provider whose ``domains:`` lists them all
  domains_from  one provider whose ``domains_from:`` names a plain list

and the script prints, for each: load time (the registry's first reload,
which is what ``create_app`` does, in a fresh process), reload time after one
file is touched, the cost of a poll that finds nothing changed, memory of the
real ``mail-autoconf serve`` (2 workers, loaded before the fork) from
/proc/PID/smaps_rollup (RSS, PSS, private), and wrk throughput of autoconfig
GET going round 1,000 addresses of the set. Everything talks to 127.0.0.1.

    .venv/bin/python bench/scale.py                                  # everything
    .venv/bin/python bench/scale.py --sizes 1000,10000 --layouts list --rounds 1

The total time is bounded (each child and server has a timeout) and printed
before anything starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from enum import Enum
from pathlib import Path

from harness import (
    ROOT,
    WORK,
    Request,
    Result,
    Server,
    clean_env,
    free_port,
    machine,
    median,
    median_result,
    need_wrk,
    run_quiet,
    run_wrk,
    smaps_rollup,
    source_fingerprint,
    spread,
)

SIZES = (1_000, 10_000, 100_000)
LAYOUTS = ("files", "list", "domains_from")
SAMPLE = 1_000  # addresses wrk goes round
LOAD_TIMEOUT = 900.0  # per in-process load child
START_TIMEOUT = 600.0  # per server, until its first answer
CRASH_LOOP = 4  # workers killed for gunicorn's timeout before a start counts as failed
TARGETS = {
    "throughput_100k_vs_1k": 0.90,
    "files_100k_load_s": 20.0,
    "files_100k_mb_per_worker": 400.0,
    "list_100k_load_s": 2.0,
}

# What the servers are; the same for every layout, so that only the layout differs.
SERVERS = """incoming:
  - type: imap
    host: imap.hoster.example
    security: ssl
  - type: pop3
    host: pop.hoster.example
    security: ssl
outgoing:
  - type: smtp
    host: smtp.hoster.example
    security: starttls
webmail:
  url: https://webmail.hoster.example/
"""


def domain(index: int) -> str:
    return f"customer{index}.example"


def generate(folder: Path, layout: str, size: int) -> Path:
    """Write the folder; return the file a reload test touches."""
    folder.mkdir(parents=True)
    if layout == "files":
        for index in range(size):
            name = domain(index)
            (folder / f"{name}.yaml").write_text(
                f"provider:\n  name: {name} mail\ndomains:\n  - {name}\n{SERVERS}"
            )
        return folder / f"{domain(size // 2)}.yaml"
    head = "provider:\n  id: hoster.example\n  name: Hoster Mail\n"
    if layout == "list":
        listed = "".join(f"  - {domain(i)}\n" for i in range(size))
        (folder / "hoster.yaml").write_text(f"{head}domains:\n{listed}{SERVERS}")
        return folder / "hoster.yaml"
    (folder / "vdomains").write_text("".join(f"{domain(i)}\n" for i in range(size)))
    (folder / "hoster.yaml").write_text(f"{head}domains_from: vdomains\n{SERVERS}")
    return folder / "vdomains"


# ---------------------------------------------------------------------------
# In a fresh process: load, reload, poll, and what the memory holds


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _deep_size(obj: object, seen: set[int]) -> int:
    """Bytes an object graph holds (shared objects counted once per ``seen``)."""
    if id(obj) in seen or obj is None or isinstance(obj, Enum | bool):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        return size + sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    if isinstance(obj, list | tuple | set | frozenset):
        return size + sum(_deep_size(x, seen) for x in obj)
    if isinstance(obj, str | bytes):
        return size
    slots = [s for cls in type(obj).__mro__ for s in getattr(cls, "__slots__", ())]
    for name in slots:
        size += _deep_size(getattr(obj, name, None), seen)
    if hasattr(obj, "__dict__"):
        size += _deep_size(vars(obj), seen)
    return size


def measure_load(folder: Path, touch: Path, profile: Path | None) -> dict[str, object]:
    """create_app on the folder, as gunicorn's master runs it before the fork; then a
    poll that finds nothing changed, and a reload after ``touch`` changed."""
    import gc
    import logging

    from autoconf.app import create_app
    from autoconf.settings import Settings

    logging.disable(logging.WARNING)  # a log line per domain file would be timed too
    gc.collect()
    base = _rss_kib()
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    app = create_app(Settings(domains=folder, reload_seconds=0))
    load_s = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        _write_profile(profiler, profile, "load (create_app)")
    gc.collect()
    loaded = _rss_kib()
    registry = app.service.registry
    snapshot = registry.snapshot

    if profiler is not None:
        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    registry.reload()  # what each worker's poll costs when nothing changed
    poll_s = time.perf_counter() - started
    if profiler is not None and profile is not None:
        profiler.disable()
        poll_profile = profile.with_name(profile.stem + "-poll.txt")
        _write_profile(profiler, poll_profile, "poll (Registry.reload, nothing changed)")

    stat = touch.stat()
    os.utime(touch, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    started = time.perf_counter()
    changes = registry.reload()
    reload_s = time.perf_counter() - started
    assert changes.read, "the touched file was not read again"

    # Where the memory goes. Per provider: what the 2n-th sampled entries add over
    # the first n (objects shared between providers counted once). Per domain:
    # the index and the provider's lists, divided by the domains.
    entries = snapshot.entries
    sample = entries[:: max(1, len(entries) // 400)]
    half = len(sample) // 2
    parts: dict[str, float] = {}
    if half:
        names = [f.name for f in dataclasses.fields(sample[0].compiled)]
        for part in ("provider", *names):
            seen: set[int] = set()
            sizes = []
            for entry in sample:
                obj = entry.provider if part == "provider" else getattr(entry.compiled, part)
                sizes.append(_deep_size(obj, seen))
            parts[part] = sum(sizes[half:]) / (len(sample) - half)
    per_domain: dict[str, float] = {}
    count = max(1, snapshot.domain_count)
    if len(entries) == 1:
        provider = entries[0].provider
        per_domain["domains"] = _deep_size(provider.domains, set()) / count
        per_domain["origins"] = _deep_size(provider.origins, set()) / count
    seen = {id(e) for e in entries}  # the entries themselves are counted above
    per_domain["index"] = _deep_size(dict(snapshot.exact), seen) / count
    states = registry._states  # noqa: SLF001 (the benchmark looks inside on purpose)
    state_sample = list(states.values())[:: max(1, len(states) // 200)]
    per_state = sum(  # what a file's state keeps beside its provider
        _deep_size(s, {id(s.current), id(s.last_good)}) for s in state_sample
    ) / max(1, len(state_sample))
    return {
        "load_s": load_s,
        "poll_s": poll_s,
        "reload_s": reload_s,
        "rss_mb": loaded / 1024,
        "snapshot_mb": (loaded - base) / 1024,
        "providers": len(entries),
        "domains": snapshot.domain_count,
        "bytes_per_provider": parts,
        "bytes_per_domain": per_domain,
        "bytes_per_file_state": per_state,
    }


def _write_profile(profiler: object, path: Path, label: str) -> None:
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)  # type: ignore[arg-type]
    stats.strip_dirs().sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)
    path.write_text(f"# cProfile of the {label}\n" + out.getvalue())


# ---------------------------------------------------------------------------
# The real service


def measure_serve(
    folder: Path, args: argparse.Namespace, home: str, size: int
) -> dict[str, object]:
    port = free_port()
    bind = f"127.0.0.1:{port}"
    env = clean_env(home)
    if args.worker_timeout:
        # The service's own gunicorn settings, with a longer worker timeout.
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        conf = str(ROOT / "deploy" / "gunicorn.conf.py")
        command = [gunicorn, "-c", conf, "--bind", bind, "--workers", "2"]
        command += ["--timeout", str(args.worker_timeout)]
        env["AUTOCONF_DOMAINS"] = str(folder)
    else:
        command = [str(Path(sys.executable).parent / "mail-autoconf"), "serve"]
        command += ["--domains", str(folder), "--bind", bind, "--workers", "2"]
    step = max(1, size // SAMPLE)
    paths = [f"/mail/config-v1.1.xml?emailaddress=u%40{domain(i)}" for i in range(0, size, step)]
    request = Request(paths[0], paths=paths)
    log = WORK / "logs" / f"scale-{folder.name}.log"
    log.unlink(missing_ok=True)

    def crash_loop() -> str | None:
        """gunicorn killing workers again and again: they never answer."""
        text = log.read_text(errors="replace") if log.exists() else ""
        killed = text.count("WORKER TIMEOUT")
        if killed >= CRASH_LOOP:
            return (
                f"no answer: gunicorn killed {killed} workers for its 30 s timeout "
                f"(see {log.relative_to(ROOT)})"
            )
        return None

    with Server(command, env, port, request, ROOT, log) as server:
        master = server.pid
        try:
            ready_s = server.wait_ready(START_TIMEOUT, crash_loop)
        except RuntimeError as exc:
            memory = (
                smaps_rollup(master) if server.process and server.process.poll() is None else {}
            )
            return {"serve_error": str(exc), "master_rss_mb": memory.get("Rss", 0) / 1024}
        # Both workers answer before memory is read: each has run its first
        # reload (the watcher's) by then.
        run_wrk(port, request, args.warmup, args.connections)
        before = {pid: smaps_rollup(pid) for pid in server.workers()}
        results: list[Result] = []
        pids = [master, *server.workers()]
        for _ in range(args.rounds):
            results.append(
                run_quiet(
                    port,
                    request,
                    args.duration,
                    args.connections,
                    pids,
                    args.max_others,
                    args.retries,
                )
            )
        after = {pid: smaps_rollup(pid) for pid in server.workers()}
        master_mem = smaps_rollup(master)
        restarted = log.read_text(errors="replace").count("WORKER TIMEOUT")

    def mb(values: dict[int, dict[str, int]], key: str) -> float:
        return max(v.get(key, 0) for v in values.values()) / 1024 if values else 0.0

    def private(values: dict[int, dict[str, int]]) -> float:
        return (
            max(
                (v.get("Private_Clean", 0) + v.get("Private_Dirty", 0) for v in values.values()),
                default=0,
            )
            / 1024
        )

    mid = median_result(results)
    return {
        "ready_s": ready_s,
        "rps": mid.rps,
        "rps_all": [r.rps for r in results],
        "range": spread(results),
        "p50_ms": mid.p50_ms,
        "p99_ms": mid.p99_ms,
        "errors": sum(r.errors for r in results),
        "worker_timeouts": restarted,
        "cpu_us_per_request": median([r.cpu_us_per_request for r in results]),
        "others_pct": max(r.others_pct for r in results),
        "master_rss_mb": master_mem.get("Rss", 0) / 1024,
        "worker_rss_mb": mb(before, "Rss"),
        "worker_pss_mb": mb(before, "Pss"),
        "worker_private_mb": private(before),
        "worker_rss_mb_after": mb(after, "Rss"),
        "worker_pss_mb_after": mb(after, "Pss"),
        "worker_private_mb_after": private(after),
    }


# ---------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--max-others",
        type=float,
        default=10,
        help="percent of the machine's CPU that others may use during a run before it is "
        "run again (other sessions on a shared machine)",
    )
    parser.add_argument("--retries", type=int, default=1, help="runs again, at most")
    parser.add_argument(
        "--worker-timeout",
        type=int,
        default=0,
        help="run gunicorn -c deploy/gunicorn.conf.py with this --timeout instead of "
        "`mail-autoconf serve` (its 30 s)",
    )
    parser.add_argument(
        "--profile-size", type=int, default=10_000, help="cProfile this many files' load (0: none)"
    )
    parser.add_argument("--json", type=Path, default=WORK / "scale.json")
    parser.add_argument("--measure-load", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_load:
        folder, touch = args.measure_load
        print(json.dumps(measure_load(folder, touch, args.profile_to)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    layouts = [x for x in LAYOUTS if x in args.layouts.split(",")]
    need_wrk()
    cells = len(sizes) * len(layouts)
    wrk_s = args.warmup + args.rounds * (args.duration + 1)
    bound = cells * (
        2 * LOAD_TIMEOUT
        + START_TIMEOUT
        + args.warmup
        + args.rounds * (1 + args.retries) * (args.duration + 30)
    )
    print(
        f"{cells} folders ({', '.join(layouts)} x {', '.join(f'{s:,}' for s in sizes)}); "
        f"each: a load in a fresh process, then `mail-autoconf serve` and {wrk_s:.0f} s of wrk. "
        f"At most {bound / 3600:.1f} h (every timeout hit); about 7 min with the defaults "
        f"on 2 cores, most of it loading 100,000 files",
        flush=True,
    )
    fingerprint = source_fingerprint()
    for line in machine():
        print(f"  {line}")
    (WORK / "logs").mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="autoconf-scale-") as tmp:
        for size in sizes:
            for layout in layouts:
                folder = Path(tmp) / f"{layout}-{size}"
                t0 = time.perf_counter()
                touch = generate(folder, layout, size)
                generated = time.perf_counter() - t0
                profile = None
                if layout == "files" and size == args.profile_size:
                    profile = WORK / f"scale-profile-load-{layout}-{size}.txt"
                row = _load_child(folder, touch, profile)
                row["generate_s"] = generated
                print(
                    f"  [{time.monotonic() - started:5.0f} s] {layout:<13}{size:>8,}  "
                    f"generated in {generated:.1f} s; in-process: load {row['load_s']:.2f} s, "
                    f"poll {row['poll_s']:.2f} s, reload {row['reload_s']:.2f} s, "
                    f"RSS {row['rss_mb']:.0f} MB",
                    flush=True,
                )
                row |= measure_serve(folder, args, tmp, size)
                rows[f"{layout}/{size}"] = row
                if "serve_error" in row:
                    shown = f"serve: {row['serve_error']}; master RSS {row['master_rss_mb']:.0f} MB"
                else:
                    shown = (
                        f"serve: ready in {row['ready_s']:.1f} s, worker RSS "
                        f"{row['worker_rss_mb']:.0f} MB PSS {row['worker_pss_mb']:.0f} MB, "
                        f"{row['rps']:.0f} req/s, {row['cpu_us_per_request']:.0f} us CPU/req"
                    )
                print(f"  [{time.monotonic() - started:5.0f} s] {layout:<13}{size:>8,}  {shown}")
                _save(args.json, rows)
                _remove(folder)
    report(rows, sizes, layouts, args)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if source_fingerprint() != fingerprint:
        print("WARNING: autoconf/ changed during the run; the figures mix versions")
    return 0


def _load_child(folder: Path, touch: Path, profile: Path | None) -> dict[str, object]:
    command = [sys.executable, __file__, "--measure-load", str(folder), str(touch)]
    if profile is not None:
        # A profiled load is slower: the figures come from a second, plain run.
        subprocess.run(
            [*command, "--profile-to", str(profile)],
            check=True,
            timeout=LOAD_TIMEOUT,
            capture_output=True,
        )
    done = subprocess.run(command, check=True, timeout=LOAD_TIMEOUT, capture_output=True, text=True)
    return dict(json.loads(done.stdout.splitlines()[-1]))


def _save(path: Path, rows: dict[str, dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")


def _remove(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def report(
    rows: dict[str, dict[str, object]],
    sizes: list[int],
    layouts: list[str],
    args: argparse.Namespace,
) -> None:
    print(
        "\nload: create_app in a fresh process; poll and reload: its Registry.reload(); "
        "memory: the workers of "
        f"`mail-autoconf serve --workers 2` after {args.warmup:.0f} s of load (max of the two); "
        f"req/s: autoconfig GET round {SAMPLE:,} addresses, median of {args.rounds} x "
        f"{args.duration:.0f} s, wrk -t1 -c{args.connections}"
    )
    header = (
        f"{'layout':<13}{'domains':>9}{'load s':>8}{'reload s':>9}{'poll s':>8}{'start s':>8}"
        f"{'RSS MB':>8}{'PSS MB':>8}{'priv MB':>8}{'master':>8}{'req/s':>7}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'CPU/req':>9}{'others':>7}{'vs 1k':>7}"
    )
    print(header)
    for layout in layouts:
        base = rows.get(f"{layout}/{min(sizes)}")
        for size in sizes:
            row = rows.get(f"{layout}/{size}")
            if row is None:
                continue
            if "serve_error" in row:
                print(
                    f"{layout:<13}{size:>9,}{row['load_s']:>8.2f}{row['reload_s']:>9.2f}"
                    f"{row['poll_s']:>8.2f}  {row['serve_error']}; master RSS "
                    f"{row['master_rss_mb']:.0f} MB"
                )
                continue
            ok = base and "rps" in base
            ratio = float(row["rps"]) / float(base["rps"]) if ok else 0  # type: ignore[arg-type, index]
            print(
                f"{layout:<13}{size:>9,}{row['load_s']:>8.2f}{row['reload_s']:>9.2f}"
                f"{row['poll_s']:>8.2f}{row['ready_s']:>8.1f}{row['worker_rss_mb']:>8.0f}"
                f"{row['worker_pss_mb']:>8.0f}{row['worker_private_mb']:>8.0f}"
                f"{row['master_rss_mb']:>8.0f}{row['rps']:>7.0f}{row['p50_ms']:>8.2f}"
                f"{row['p99_ms']:>8.2f}{row['cpu_us_per_request']:>6.0f} us"
                f"{row['others_pct']:>6.0f}%{ratio:>7.2f}"
            )
    print("\nafter the wrk rounds (the watcher polled meanwhile): worker RSS / PSS / private MB")
    for key, row in rows.items():
        if "serve_error" in row:
            continue
        print(
            f"  {key:<22}{row['worker_rss_mb_after']:>8.0f}{row['worker_pss_mb_after']:>8.0f}"
            f"{row['worker_private_mb_after']:>8.0f}"
        )
    print(
        "\nwhere the memory goes (in the loading process): bytes per provider by part, "
        "per domain, per file state kept for reloads; RSS growth per domain"
    )
    for key, row in rows.items():
        providers = row["bytes_per_provider"]
        domains = row["bytes_per_domain"]
        assert isinstance(providers, dict) and isinstance(domains, dict)
        shown = ", ".join(f"{k} {v:,.0f}" for k, v in providers.items())
        shown_domains = ", ".join(f"{k} {v:,.0f}" for k, v in domains.items())
        growth = float(row["snapshot_mb"]) * 1024 * 1024 / float(row["domains"])  # type: ignore[arg-type]
        print(
            f"  {key:<20} per provider: {shown or '-'}; per domain: {shown_domains}; "
            f"per file state {row['bytes_per_file_state']:,.0f}; RSS per domain {growth:,.0f}"
        )

    print("\ntargets")
    for layout in layouts:
        small, big = rows.get(f"{layout}/1000"), rows.get(f"{layout}/100000")
        if small and big and "serve_error" in big:
            print(f"  {layout:<13} req/s at 100,000: none, MISSED ({big['serve_error']})")
        elif small and big:
            ratio = float(big["rps"]) / float(small["rps"])  # type: ignore[arg-type]
            verdict = "met" if ratio >= TARGETS["throughput_100k_vs_1k"] else "MISSED"
            cpu = float(small["cpu_us_per_request"]) / float(big["cpu_us_per_request"])  # type: ignore[arg-type]
            print(
                f"  {layout:<13} req/s at 100,000 / at 1,000 = {ratio:.2f} (>= 0.90): {verdict}; "
                f"by CPU per request (1,000 / 100,000): {cpu:.2f}"
            )
    big = rows.get("files/100000")
    if big:
        load = float(big["load_s"])  # type: ignore[arg-type]
        print(f"  files 100,000 load {load:.1f} s (<= 20 s): {'met' if load <= 20 else 'MISSED'}")
        if "serve_error" in big:
            rss = float(big["master_rss_mb"])  # type: ignore[arg-type]
            print(
                f"  files 100,000 per worker: not measured, no worker answered; the master "
                f"that loaded the data (what each worker starts from) has RSS {rss:.0f} MB "
                f"(try --worker-timeout)"
            )
        else:
            rss, pss = float(big["worker_rss_mb"]), float(big["worker_pss_mb"])  # type: ignore[arg-type]
            verdict = "met" if pss <= 400 else "MISSED"
            print(
                f"  files 100,000 per worker RSS {rss:.0f} MB, PSS {pss:.0f} MB (<= 400): {verdict}"
            )
    for layout in ("list", "domains_from"):
        big = rows.get(f"{layout}/100000")
        if big:
            load = float(big["load_s"])  # type: ignore[arg-type]
            verdict = "met" if load <= 2 else "MISSED"
            print(f"  {layout} 100,000 load {load:.2f} s (<= 2 s): {verdict}")
    _save(args.json, rows)
    print(f"\nresults: {args.json}")


if __name__ == "__main__":
    sys.exit(main())
