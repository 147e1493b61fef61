#!/usr/bin/env python3
"""Per-user lookups (issue 19): throughput of autoconfig GET for a provider
without a lookup, and with one, its cache warm and cold.

One gunicorn (2 sync workers, --preload, as throughput.py runs ours) serves
four providers of the same servers; wrk goes round 1,000 addresses of one of
them at a time, in alternating rounds:

- ``plain``: no lookup (issue #8's case);
- ``map warm``: a map file of the 1,000 addresses (read at load: no cache at all);
- ``postgresql warm``: Debian's PostgreSQL (a cluster of this run's own, in a
  temporary folder, on a free loopback port), ``cache: 300``, warmed by one pass;
- ``postgresql cold``: the same table, ``cache: 0``: every request queries.

Prints requests per second (median round), p50/p99, server CPU per request,
and each case against ``plain`` (the target: a warm cache within 10%).

    .venv/bin/python bench/lookup.py                    # 3 rounds of 10 s, about 3 min
    .venv/bin/python bench/lookup.py --rounds 1 --duration 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness import (
    ROOT,
    Request,
    Result,
    Server,
    clean_env,
    free_port,
    machine,
    median_result,
    run_quiet,
    spread,
)

sys.path.insert(0, str(ROOT))
from tests.e2e.directories import start_postgres  # noqa: E402

BIN = Path(sys.executable).parent
USERS = 1000
SERVERS = """\
incoming:
  - {type: imap, host: imap.hoster.example, security: ssl}
outgoing:
  - {host: smtp.hoster.example, security: starttls}
"""
CASES = ("plain", "map warm", "postgresql warm", "postgresql cold")
DOMAINS = {
    "plain": "plain.example",
    "map warm": "map.example",
    "postgresql warm": "warm.example",
    "postgresql cold": "cold.example",
}


def write_folder(folder: Path, port: int) -> None:
    folder.mkdir()
    (folder / "pg.password").write_text("bench-secret\n", encoding="utf-8")
    (folder / "plain.yaml").write_text("domains: [plain.example]\n" + SERVERS, encoding="utf-8")
    lines = "".join(f"user{n}@map.example login=u{n}\n" for n in range(USERS))
    (folder / "logins.map").write_text(lines, encoding="utf-8")
    (folder / "map.yaml").write_text(
        "domains: [map.example]\n" + SERVERS + "lookup:\n  map: logins.map\n", encoding="utf-8"
    )
    for name, cache in (("warm", 300), ("cold", 0)):
        (folder / f"{name}.yaml").write_text(
            f"domains: [{name}.example]\n{SERVERS}lookup:\n"
            "  postgresql:\n"
            f'    connection: "host=127.0.0.1 port={port} dbname=mail user=autoconf"\n'
            "    password_file: pg.password\n"
            '    query: "SELECT userid AS login FROM users WHERE email = %(key)s"\n'
            f"  cache: {cache}\n",
            encoding="utf-8",
        )


def request(case: str) -> Request:
    domain = DOMAINS[case]
    paths = [f"/mail/config-v1.1.xml?emailaddress=user{n}%40{domain}" for n in range(USERS)]
    return Request(paths[0], paths=paths)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--max-others", type=float, default=10.0)
    parser.add_argument("--retries", type=int, default=2)
    args = parser.parse_args()
    bound = args.rounds * len(CASES) * (args.duration + 2) * (args.retries + 1) + 60
    print(f"at most {bound:.0f} s", flush=True)
    for line in machine():
        print(line)

    database = start_postgres()
    home = tempfile.mkdtemp(prefix="bench-lookup-")
    try:
        database.execute(
            "CREATE TABLE users (email text PRIMARY KEY, userid text NOT NULL)",
            "CREATE ROLE autoconf LOGIN PASSWORD 'bench-secret'",
            "GRANT SELECT ON users TO autoconf",
            *(
                f"INSERT INTO users SELECT 'user' || n || '@{d}', 'u' || n"
                f" FROM generate_series(0, {USERS - 1}) AS n"
                for d in ("warm.example", "cold.example")
            ),
        )
        folder = Path(home) / "domains"
        write_folder(folder, database.port)
        port = free_port()
        command = [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--worker-class",
            "sync",
            "--preload",
            "--no-control-socket",
            "--log-level",
            "warning",
            "autoconf.app:create_app()",
        ]
        env = clean_env(home, AUTOCONF_DOMAINS=str(folder))
        results: dict[str, list[Result]] = {case: [] for case in CASES}
        with Server(command, env, port, request("plain"), cwd=ROOT) as server:
            server.wait_ready(60)
            pids = [server.pid, *server.workers()]
            # One pass over every address warms the warm cases (each worker its own).
            for case in CASES:
                for path in request(case).paths:
                    status, _, _ = Request(path).fetch(port)
                    assert status == 200, (case, path, status)
            for _ in range(args.rounds):
                for case in CASES:
                    results[case].append(
                        run_quiet(
                            port,
                            request(case),
                            args.duration,
                            args.connections,
                            pids,
                            args.max_others,
                            args.retries,
                        )
                    )
        plain = median_result(results["plain"]).rps
        print(
            f"\n{'case':<18} {'req/s':>8} {'spread':>12} {'p50 ms':>7} {'p99 ms':>7}"
            f" {'cpu us':>7} {'vs plain':>9}"
        )
        for case in CASES:
            best = median_result(results[case])
            errors = sum(r.errors for r in results[case])
            print(
                f"{case:<18} {best.rps:8.0f} {spread(results[case]):>12} {best.p50_ms:7.2f}"
                f" {best.p99_ms:7.2f} {best.cpu_us_per_request:7.0f}"
                f" {100 * best.rps / plain:8.1f}%" + (f"  ({errors} errors)" if errors else "")
            )
    finally:
        database.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
