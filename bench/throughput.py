#!/usr/bin/env python3
"""Throughput: mail-autoconf against automx2 and against a fixed-body Flask ceiling.

Starts, one after another in alternating rounds (ours, automx2, ceiling, ours,
...), each under the same gunicorn settings (2 workers, --preload; sync, then
gthread), drives each with wrk for autoconfig GET, POX POST and mobileconfig,
and prints requests per second with p50/p99 latency (the median round), and
the ratios ours/automx2 and ours/ceiling. Everything talks to 127.0.0.1 only;
the total run time is bounded and printed before anything starts.

    .venv/bin/python bench/throughput.py                       # 3 rounds of 10 s
    .venv/bin/python bench/throughput.py --rounds 1 --duration 3 --contenders ours,ceiling

Needs Debian's wrk (apt-get install -y wrk). automx2 is installed from PyPI
into its own virtual environment under bench/.work/ (git-ignored) on first
use, with the same gunicorn version as ours, and seeded by bench/automx2_seed.py
with what domains/example.com.yaml says.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
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
    source_fingerprint,
    spread,
)

ADDRESS = "alice%40example.com"
POX = (ROOT / "tests" / "data" / "pox-request.xml").read_bytes()
XML = "text/xml; charset=utf-8"
ENDPOINTS = ("autoconfig", "pox", "mobileconfig")
CONTENDERS = ("ours", "automx2", "ceiling", "serve")
TARGET = 0.85  # ours/ceiling, on every endpoint

OURS = {
    "autoconfig": Request(f"/mail/config-v1.1.xml?emailaddress={ADDRESS}"),
    "pox": Request("/autodiscover/autodiscover.xml", "POST", POX, XML),
    "mobileconfig": Request(f"/mobileconfig?emailaddress={ADDRESS}"),
}
AUTOMX2 = {
    "autoconfig": Request(f"/mail/config-v1.1.xml?emailaddress={ADDRESS}"),
    "pox": Request("/autodiscover/autodiscover.xml", "POST", POX, XML),
    "mobileconfig": Request(f"/mobileconfig/?emailaddress={ADDRESS}"),  # its path ends in /
}
AUTOMX2_VENV = WORK / "automx2-venv"
AUTOMX2_CONF = """[automx2]
loglevel = WARNING
db_echo = no
db_uri = sqlite:///{db}
proxy_count = 0
"""
BIN = Path(sys.executable).parent

START_TIMEOUT = 60.0  # per server, until its first answer
STOP_TIMEOUT = 40.0  # gunicorn's graceful stop, then a kill


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=1, help="seconds before each run")
    parser.add_argument("--connections", type=int, default=8, help="wrk's open connections")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="per gthread worker")
    parser.add_argument("--worker-classes", default="sync,gthread")
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help="ours (gunicorn, the factory), automx2, ceiling, serve (`mail-autoconf serve` "
        "as shipped: sync, its serving settings, access log on)",
    )
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument(
        "--max-others",
        type=float,
        default=10,
        help="percent of the machine's CPU that others may use during a run before it is "
        "run again (other sessions on a shared machine)",
    )
    parser.add_argument(
        "--max-busiest-worker",
        type=float,
        default=70,
        help="percent of the workers' CPU that one of them may use before the run is run "
        "again (a gthread worker keeps the connections it accepted: a 6-to-2 split of 8 "
        "connections measures little more than one core)",
    )
    parser.add_argument("--retries", type=int, default=2, help="runs again, at most")
    parser.add_argument("--json", type=Path, default=WORK / "throughput.json")
    args = parser.parse_args()
    classes = args.worker_classes.split(",")
    contenders = [c for c in CONTENDERS if c in args.contenders.split(",")]
    endpoints = [e for e in ENDPOINTS if e in args.endpoints.split(",")]
    need_wrk()

    starts = sum(len(_order(contenders, wc)) for wc in classes)
    runs = starts * args.rounds * len(endpoints)
    typical = runs * (args.warmup + args.duration + 0.5) + starts * 4
    bound = starts * (START_TIMEOUT + STOP_TIMEOUT) + runs * (
        args.warmup + (1 + args.retries) * (args.duration + 30)
    )
    print(
        f"{runs} wrk runs of {args.duration:g} s ({args.rounds} rounds x {len(endpoints)} "
        f"endpoints x {starts} servers): about {typical / 60:.0f} min on a quiet machine, "
        f"{typical * (1 + args.retries) / 60:.0f} min if every run is disturbed, at most "
        f"{bound / 60:.0f} min",
        flush=True,
    )
    fingerprint = source_fingerprint()
    for line in machine():
        print(f"  {line}")

    WORK.mkdir(parents=True, exist_ok=True)
    bodies = capture_bodies()
    if "automx2" in contenders:
        prepare_automx2()
    logs = WORK / "logs"
    logs.mkdir(exist_ok=True)

    started = time.monotonic()
    results: dict[str, list[Result]] = {}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as home:
        for wc in classes:
            order = _order(contenders, wc)
            with contextlib.ExitStack() as stack:
                # Every server of this worker class is started (one after another)
                # and stays up, idle but for the one under load, so that the runs
                # compared with each other are seconds apart, not minutes.
                servers = {}
                for contender in order:
                    port = free_port()
                    command, env, cwd = _command(contender, wc, port, args, home)
                    requests = AUTOMX2 if contender == "automx2" else OURS
                    log = logs / f"{contender}-{wc}.log"
                    server = stack.enter_context(
                        Server(command, env, port, requests["autoconfig"], cwd, log)
                    )
                    server.wait_ready(START_TIMEOUT)
                    for endpoint in endpoints:
                        size = _check(requests[endpoint], port, contender, endpoint, bodies)
                        sizes[f"{contender}/{endpoint}"] = size
                    servers[contender] = server
                for round_ in range(args.rounds):
                    # Each round starts with the next contender, so none is always first.
                    turn = order[round_ % len(order) :] + order[: round_ % len(order)]
                    for endpoint in endpoints:
                        for contender in turn:
                            server = servers[contender]
                            requests = AUTOMX2 if contender == "automx2" else OURS
                            request = requests[endpoint]
                            if args.warmup > 0:
                                run_wrk(server.port, request, args.warmup, args.connections)
                            result = run_quiet(
                                server.port,
                                request,
                                args.duration,
                                args.connections,
                                [server.pid, *server.workers()],
                                args.max_others,
                                args.retries,
                                args.max_busiest_worker,
                            )
                            results.setdefault(_key(wc, endpoint, contender), []).append(result)
                            print(
                                f"  [{time.monotonic() - started:5.0f} s] {wc:<7} round "
                                f"{round_ + 1} {endpoint:<12} {contender:<8} "
                                f"{result.rps:7.0f}/s  p50 {result.p50_ms:5.2f} ms  "
                                f"p99 {result.p99_ms:6.2f} ms  "
                                f"{result.cpu_us_per_request:5.0f} us CPU/req  "
                                f"others {result.others_pct:3.0f}%  "
                                f"busiest worker {result.busiest_worker_pct:3.0f}%"
                                + (f"  (of {result.attempts} runs)" if result.attempts > 1 else "")
                                + (f"  {result.errors} errors" if result.errors else ""),
                                flush=True,
                            )
    report(results, sizes, classes, endpoints, contenders, args)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if source_fingerprint() != fingerprint:
        print("WARNING: autoconf/ changed during the run; the figures mix versions")
    return 0


def _order(contenders: list[str], worker_class: str) -> list[str]:
    """``serve`` runs sync workers only (it has no worker-class option)."""
    return [c for c in contenders if c != "serve" or worker_class == "sync"]


def _key(worker_class: str, endpoint: str, contender: str) -> str:
    return f"{worker_class}/{endpoint}/{contender}"


def _command(
    contender: str, worker_class: str, port: int, args: argparse.Namespace, home: str
) -> tuple[list[str], dict[str, str], Path | None]:
    bind = f"127.0.0.1:{port}"
    common = [
        "--bind",
        bind,
        "--workers",
        str(args.workers),
        "--worker-class",
        worker_class,
        "--preload",
        "--no-control-socket",
        "--log-level",
        "warning",
    ]
    if worker_class == "gthread":
        common += ["--threads", str(args.threads)]
    domains = str(ROOT / "domains")
    if contender == "ours":
        # Counters as deployed: prometheus_client's multiprocess files (see autoconf.metrics).
        metrics = Path(tempfile.mkdtemp(prefix="metrics-", dir=home))
        env = clean_env(home, AUTOCONF_DOMAINS=domains, PROMETHEUS_MULTIPROC_DIR=str(metrics))
        return [str(BIN / "gunicorn"), *common, "autoconf.app:create_app()"], env, ROOT
    if contender == "serve":
        command = [str(BIN / "mail-autoconf"), "serve", "--domains", domains, "--bind", bind]
        return [*command, "--workers", str(args.workers)], clean_env(home), ROOT
    if contender == "ceiling":
        env = clean_env(home, CEILING_BODIES=str(WORK / "ceiling"))
        command = [str(BIN / "gunicorn"), *common, "--chdir", str(ROOT / "bench")]
        return [*command, "ceiling:create_app()"], env, ROOT
    env = clean_env(home, AUTOMX2_CONF=str(WORK / "automx2.conf"))
    gunicorn = str(AUTOMX2_VENV / "bin" / "gunicorn")
    return [gunicorn, *common, "automx2.server:app"], env, WORK


def capture_bodies() -> dict[str, bytes]:
    """Our answers for the benchmark's requests, in-process; the ceiling serves them."""
    from autoconf.app import Application, create_app
    from autoconf.settings import Settings

    app: Application = create_app(Settings(domains=ROOT / "domains", reload_seconds=0))
    client = app.test_client()
    folder = WORK / "ceiling"
    folder.mkdir(parents=True, exist_ok=True)
    bodies = {}
    for name, request in OURS.items():
        response = client.open(
            request.path,
            method=request.method,
            data=request.body,
            content_type=request.content_type,
        )
        assert response.status_code == 200, (name, response.status_code, response.data)
        bodies[name] = response.data
        (folder / f"{name}.body").write_bytes(response.data)
        disposition = response.headers.get("Content-Disposition", "")
        (folder / f"{name}.type").write_text(f"{response.content_type}\n{disposition}\n")
    return bodies


def prepare_automx2() -> None:
    """automx2 from PyPI in its own venv (same gunicorn as ours), seeded like example.com."""
    python = AUTOMX2_VENV / "bin" / "python"
    if not (AUTOMX2_VENV / "bin" / "gunicorn").exists():
        print(f"installing automx2 into {AUTOMX2_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(AUTOMX2_VENV)], check=True)
        pins = ["automx2", f"gunicorn=={version('gunicorn')}"]
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *pins], check=True)
    conf = WORK / "automx2.conf"
    conf.write_text(AUTOMX2_CONF.format(db=WORK / "automx2.sqlite"))
    env = clean_env(str(WORK), AUTOMX2_CONF=str(conf))
    seed = ROOT / "bench" / "automx2_seed.py"
    subprocess.run([str(python), str(seed)], env=env, check=True, capture_output=True)
    done = subprocess.run(
        [str(python), "-m", "pip", "show", "automx2"], capture_output=True, text=True, check=True
    )
    shown = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    print(f"  automx2: {shown.get('Version', '?')} (PyPI), SQLite database seeded", flush=True)


def _check(
    request: Request, port: int, contender: str, endpoint: str, bodies: dict[str, bytes]
) -> int:
    """One request before the load: it must be a 200, and ours must be the captured body."""
    status, body, _ = request.fetch(port)
    if status != 200 or not body:
        raise RuntimeError(f"{contender} {endpoint}: HTTP {status} {body[:200]!r}")
    if contender != "automx2" and body != bodies[endpoint]:
        raise RuntimeError(f"{contender} {endpoint}: not the captured body")
    return len(body)


def report(
    results: dict[str, list[Result]],
    sizes: dict[str, int],
    classes: list[str],
    endpoints: list[str],
    contenders: list[str],
    args: argparse.Namespace,
) -> None:
    print(
        f"\nMedian of {args.rounds} rounds of {args.duration:g} s; wrk -t1 -c{args.connections}; "
        f"gunicorn --workers {args.workers} --preload (gthread: --threads {args.threads}). "
        "CPU/req: the server's processes' CPU time per answer. others: the most CPU that "
        "anything else on the machine took during a run. busiest: the largest share of the "
        "workers' CPU that one worker took in a run (50% is even). Ratios: the median of the "
        "per-round ratios (runs seconds apart)."
    )
    summary: dict[str, object] = {"machine": machine(), "args": vars(args) | {"json": None}}
    verdicts = []
    for wc in classes:
        print(f"\n{wc}")
        print(
            f"{'endpoint':<13}{'contender':<10}{'req/s':>7}{'range':>12}{'p50 ms':>8}"
            f"{'p99 ms':>8}{'CPU/req':>9}{'bytes':>7}{'errors':>7}{'others':>8}{'busiest':>8}"
        )
        for endpoint in endpoints:
            runs_of = {}
            for contender in _order(contenders, wc):
                runs = results.get(_key(wc, endpoint, contender))
                if not runs:
                    continue
                runs_of[contender] = runs
                mid = median_result(runs)
                errors = sum(r.errors for r in runs)
                cpu = median([r.cpu_us_per_request for r in runs])
                others = max(r.others_pct for r in runs)
                busiest = max(r.busiest_worker_pct for r in runs)
                size = sizes[f"{contender}/{endpoint}"]
                print(
                    f"{endpoint:<13}{contender:<10}{mid.rps:>7.0f}{spread(runs):>12}"
                    f"{mid.p50_ms:>8.2f}{mid.p99_ms:>8.2f}{cpu:>6.0f} us{size:>7}{errors:>7}"
                    f"{others:>7.0f}%{busiest:>7.0f}%"
                )
                summary[_key(wc, endpoint, contender)] = {
                    "rps": [r.rps for r in runs],
                    "median_rps": mid.rps,
                    "p50_ms": mid.p50_ms,
                    "p99_ms": mid.p99_ms,
                    "cpu_us_per_request": [r.cpu_us_per_request for r in runs],
                    "others_pct": [r.others_pct for r in runs],
                    "steal_pct": [r.steal_pct for r in runs],
                    "busiest_worker_pct": [r.busiest_worker_pct for r in runs],
                    "errors": errors,
                    "bytes": size,
                }
            ratios = []
            pairs = (("ours", "automx2"), ("ours", "ceiling"), ("automx2", "ceiling"))
            for a, b in (*pairs, ("serve", "ceiling"), ("serve", "ours")):
                if a in runs_of and b in runs_of:
                    ratio = median(
                        [x.rps / y.rps for x, y in zip(runs_of[a], runs_of[b], strict=True)]
                    )
                    ratios.append(f"{a}/{b} {ratio:.2f}")
                    summary[f"{wc}/{endpoint}/{a}/{b}"] = ratio
                    if (a, b) == ("ours", "ceiling"):
                        verdict = "met" if ratio >= TARGET else "MISSED"
                        verdicts.append(f"{wc:<8}{endpoint:<13}ours/ceiling {ratio:.2f}: {verdict}")
            if ratios:
                print(f"{'':<13}" + ", ".join(ratios))
    if verdicts:
        print(f"\ntarget ours/ceiling >= {TARGET}")
        for line in verdicts:
            print(f"  {line}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nresults: {args.json}")


if __name__ == "__main__":
    sys.exit(main())
