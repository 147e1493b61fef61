#!/usr/bin/env python3
"""Soak: drive the real `mail-autoconf serve` with many requests across every endpoint.

Prints the errors (there must be none) and each worker's memory at the start
and at the end (growth must stay under 5%). Talks only to 127.0.0.1; bounded
by the request count and by --max-seconds.

    .venv/bin/python bench/soak.py                  # 200,000 requests
    .venv/bin/python bench/soak.py --requests 5000  # what `make test` runs
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from harness import children_of, free_port  # bench/harness.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
POX = (ROOT / "tests" / "data" / "pox-request.xml").read_bytes()
# (method, target, body, acceptable statuses): good and bad requests alike.
REQUESTS: list[tuple[str, str, bytes | None, tuple[int, ...]]] = [
    ("GET", "/mail/config-v1.1.xml?emailaddress=alice%40example.com", None, (200,)),
    (
        "GET",
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=b%40shop.example",
        None,
        (200,),
    ),
    ("GET", "/mail/config-v1.1.xml?emailaddress=x%40m%C3%BCller.example", None, (200,)),
    ("GET", "/mail/config-v1.1.xml?emailaddress=not-an-address", None, (400,)),
    ("GET", "/mail/config-v1.1.xml?emailaddress=a%40unknown.example", None, (404,)),
    ("POST", "/autodiscover/autodiscover.xml", POX, (200,)),
    ("POST", "/Autodiscover/Autodiscover.xml", b"<broken", (200,)),
    (
        "GET",
        "/autodiscover/autodiscover.json?Email=alice%40example.com&Protocol=AutodiscoverV1",
        None,
        (200,),
    ),
    (
        "GET",
        "/autodiscover/autodiscover.json/v1.0/alice%40example.com?Protocol=ActiveSync",
        None,
        (200,),
    ),
    ("GET", "/autodiscover/autodiscover.json?Email=alice%40example.com&Protocol=Ews", None, (400,)),
    ("GET", "/mobileconfig?emailaddress=alice%40example.com", None, (200,)),
    ("GET", "/healthz", None, (200,)),
]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def ask(port: int, index: int) -> tuple[str, bool]:
    method, target, body, statuses = REQUESTS[index % len(REQUESTS)]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, target, body=body, headers={"Host": "autoconfig.example.com"})
        response = connection.getresponse()
        response.read()
        return f"{method} {target.split('?')[0]} {response.status}", response.status in statuses
    except OSError as exc:
        return f"{method} {target.split('?')[0]} {type(exc).__name__}", False
    finally:
        connection.close()


def run_load(port: int, count: int, threads: int, deadline: float) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    next_index = iter(range(count))

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            label, ok = ask(port, index)
            with lock:
                outcomes[("ok " if ok else "ERROR ") + label] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--domains", type=Path, default=ROOT / "domains")
    parser.add_argument("--max-seconds", type=float, default=1800)
    parser.add_argument("--max-growth", type=float, default=5.0, help="percent")
    args = parser.parse_args()

    port = free_port()
    executable = Path(sys.executable).parent / "mail-autoconf"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCONF_")}
    with tempfile.TemporaryDirectory() as home:
        env["HOME"] = home
        command = [
            str(executable),
            "serve",
            "--domains",
            str(args.domains),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
        ]
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            return soak(args, port, server)
        finally:
            server.send_signal(signal.SIGTERM)  # by its PID
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=15)


def soak(args: argparse.Namespace, port: int, server: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 30
    while ask(port, 11)[1] is False:  # /healthz
        if time.monotonic() > deadline or server.poll() is not None:
            print("the service did not start", file=sys.stderr)
            return 1
        time.sleep(0.1)
    run_load(port, args.warmup, args.threads, time.monotonic() + args.max_seconds)
    workers = children_of(server.pid)
    before = {pid: rss_kib(pid) for pid in workers}

    started = time.monotonic()
    outcomes = run_load(port, args.requests, args.threads, started + args.max_seconds)
    elapsed = time.monotonic() - started
    after = {pid: rss_kib(pid) for pid in children_of(server.pid)}

    done = sum(outcomes.values())
    errors = sum(n for label, n in outcomes.items() if label.startswith("ERROR"))
    print(
        f"{done} requests in {elapsed:.1f} s ({done / elapsed:.0f}/s), "
        f"{args.workers} workers, {args.threads} client threads"
    )
    for label, n in sorted(outcomes.items()):
        print(f"  {n:>8}  {label}")
    worst = 0.0
    print("worker      RSS start    RSS end   growth")
    for pid in sorted(before):
        if pid not in after:
            print(f"{pid:<8}  worker gone: restarted during the soak")
            errors += 1
            continue
        growth = 100.0 * (after[pid] - before[pid]) / before[pid]
        worst = max(worst, growth)
        print(
            f"{pid:<8} {before[pid] / 1024:>8.1f} MB {after[pid] / 1024:>7.1f} MB {growth:>7.2f}%"
        )
    if done < args.requests:
        print(f"stopped by --max-seconds after {done} of {args.requests} requests")
    ok = errors == 0 and worst < args.max_growth and done == args.requests
    print(
        f"soak: {done - errors} passed, {errors} failed; worst memory growth {worst:.2f}% "
        f"(limit {args.max_growth}%)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
