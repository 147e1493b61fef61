#!/usr/bin/env python3
"""How much of the loaded data a forked worker keeps shared, step by step.

gunicorn loads the domain folder in its master and forks the workers, which
then share those pages until they write to them (copy-on-write). Python writes
to an object whenever it takes a reference to it, so "loaded before the fork"
is not yet "shared". This script does what the master and a sync worker do,
in one process and a fork of it, and prints the worker's memory after each
step (from /proc/PID/smaps_rollup: private pages are those it no longer shares):

1. the master: ``create_app`` on the folder, then ``gc.freeze()`` as
   ``autoconf/serving.py``'s ``pre_fork`` does;
2. the worker, just forked;
3. after its first request (the reload that brings a new process up to date,
   which finds nothing new);
4. after a second reload (what its watcher does every second);
5. after N autoconfig requests, called as gunicorn calls the WSGI app, to
   addresses spread over all the domains.

    .venv/bin/python bench/sharing.py                   # 100,000 one-domain files
    .venv/bin/python bench/sharing.py --size 10000 --layout list
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import ROOT, smaps_rollup
from scale import domain, generate

sys.path.insert(0, str(ROOT))


def _row(label: str, seconds: float | None = None) -> str:
    m = smaps_rollup(os.getpid())
    private = m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)
    took = f"{seconds:7.2f} s" if seconds is not None else " " * 9
    return (
        f"{label:<44}{took}  RSS {m['Rss'] / 1024:6.0f} MB  PSS {m['Pss'] / 1024:6.0f} MB"
        f"  private {private / 1024:6.0f} MB"
    )


def _requests(app: Any, size: int, count: int) -> None:
    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        if not status.startswith("200"):
            raise RuntimeError(status)

    step = max(1, size // count)
    for index in range(count):
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/mail/config-v1.1.xml",
            "QUERY_STRING": f"emailaddress=alice%40{domain((index * step) % size)}",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8080",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
        }
        for _ in app(environ, start_response):
            pass


def run(folder: Path, size: int, count: int) -> None:
    from autoconf.app import create_app
    from autoconf.settings import Settings

    started = time.monotonic()
    # Polling off: the steps below run the reloads themselves, one at a time.
    app = create_app(Settings(domains=folder, reload_seconds=0))
    loaded = time.monotonic() - started
    gc.freeze()
    print(_row("master: loaded, gc.freeze()", loaded), flush=True)
    read, write = os.pipe()
    pid = os.fork()
    if pid:  # the master waits, holding its pages, until the worker has measured
        os.close(write)
        with os.fdopen(read) as results:
            print(results.read(), end="", flush=True)
        os.waitpid(pid, 0)
        return
    os.close(read)
    lines = [_row("worker: just forked")]
    started = time.monotonic()
    _requests(app, size, 1)  # the first request: the watcher's catching-up reload
    lines.append(_row("worker: after its first request", time.monotonic() - started))
    watcher_registry = app.service.registry
    started = time.monotonic()
    watcher_registry.reload()
    lines.append(_row("worker: after a reload that finds nothing new", time.monotonic() - started))
    started = time.monotonic()
    _requests(app, size, count)
    lines.append(_row(f"worker: after {count:,} more requests", time.monotonic() - started))
    with os.fdopen(write, "w") as out:
        out.write("\n".join(lines) + "\n")
    os._exit(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--layout", default="files", choices=("files", "list", "domains_from"))
    parser.add_argument("--requests", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autoconf-sharing-") as tmp:
        folder = Path(tmp) / "domains"
        generate(folder, args.layout, args.size)
        print(f"{args.size:,} domains, layout {args.layout}, in {folder}")
        run(folder, args.size, args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
