#!/usr/bin/env python3
"""Start-up and change latency of the real `mail-autoconf serve` at hoster scale
(issue #13, point 9), printed beside the figures the issue names.

Two folders, generated in bench/.work/ (as bench/scale.py makes them):

  files   100,000 one-domain files
  list    one provider with `domains_from:` a list of 1,000,000 domains

For each: a fresh start with no state folder (a first start), then a restart
with the state folder the first run left (what a restart, a deploy or a new
pod with the state volume sees). Each start is timed from the process's start
until the last domain of the folder (by file name, or the list's last line)
has been answered 200 by both workers, with a sample of 1,000 others; then the
memory of each worker (RSS, PSS, private, from /proc/PID/smaps_rollup). For
the list, a one-line change (a domain appended) is then timed until every
answer for it is 200. Everything talks to 127.0.0.1; every wait is bounded.

    .venv/bin/python bench/startup.py                 # both, about 3 minutes
    .venv/bin/python bench/startup.py --layouts list
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    ROOT,
    WORK,
    Request,
    Server,
    clean_env,
    free_port,
    machine,
    smaps_rollup,
)
from scale import domain, generate  # noqa: E402

SIZES = {"files": 100_000, "list": 1_000_000}
LAYOUT_OF = {"files": "files", "list": "domains_from"}
WAIT = 300.0  # seconds, at most, for any one start or change
# What the issue reports (the second machine) and issue #8's note (this kind).
BASELINE = {
    "files": "100,000 files: loaded in 16.2 s (#8's note); on the second machine loaded in "
    "54.8 / 55.9 s, a fresh serve first answered for the last of them after 109 s; "
    "target: every file answered within 20 s of starting",
    "list": "1,000,000 in one domains_from list: 12.5 s from start to the last domain's "
    "first answer; target: within 10 s, <= 400 MB RSS per worker, a one-line change "
    "served within 2 s",
}


def path_for(name: str) -> str:
    return f"/mail/config-v1.1.xml?emailaddress=u%40{name}"


def answered(port: int, names: list[str], rounds: int = 2) -> bool:
    """Every name answered 200, ``rounds`` times (sync workers take turns)."""
    for _ in range(rounds):
        for name in names:
            try:
                status, _, _ = Request(path_for(name)).fetch(port, timeout=5)
            except OSError:
                return False
            if status != 200:
                return False
    return True


def start(folder: Path, state: Path, log: Path, names: list[str]) -> tuple[Server, float, int]:
    port = free_port()
    env = clean_env(str(WORK), AUTOCONF_STATE=str(state))
    command = [str(Path(sys.executable).parent / "mail-autoconf"), "serve"]
    command += ["--domains", str(folder), "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    server = Server(command, env, port, Request(path_for(names[-1])), ROOT, log)
    started = time.monotonic()
    server.__enter__()
    server.wait_ready(WAIT)
    deadline = started + WAIT
    while not answered(port, names):
        if time.monotonic() > deadline:
            raise RuntimeError(f"not every domain answered within {WAIT:.0f} s")
        time.sleep(0.05)
    return server, time.monotonic() - started, port


def memory(server: Server) -> str:
    rows = []
    for pid in server.workers():
        m = smaps_rollup(pid)
        private = (m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)) / 1024
        rows.append(
            f"RSS {m.get('Rss', 0) / 1024:.0f} MB, PSS {m.get('Pss', 0) / 1024:.0f} MB, "
            f"private {private:.0f} MB"
        )
    return "; ".join(rows)


def run(layout: str) -> None:
    size = SIZES[layout]
    folder = WORK / f"startup-{layout}"
    state = WORK / f"startup-{layout}.state"
    log = WORK / "logs" / f"startup-{layout}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if not folder.exists():
        print(f"{layout}: generating {size:,} domains in {folder} …", flush=True)
        generate(folder, LAYOUT_OF[layout], size)
    shutil.rmtree(state, ignore_errors=True)
    step = max(1, size // 1000)
    names = [domain(i) for i in range(0, size, step)]
    if layout == "files":  # the last file by name, the one a name-order load reaches last
        last = max(folder.iterdir(), key=lambda p: p.name).stem
    else:
        last = domain(size - 1)
    names.append(last)
    print(f"\n{layout}: {size:,} domains")
    print(f"  baseline: {BASELINE[layout]}")
    for label in ("fresh (no state)", "restart (state)"):
        server, took, port = start(folder, state, log, names)
        try:
            print(f"  {label:18} every sampled domain and the last answered after {took:6.1f} s")
            print(f"  {'':18} workers: {memory(server)}")
            # The master writes the state folder after the workers fork: a restart
            # long after the start finds it whole. Wait for it (bounded) so this one does.
            deadline = time.monotonic() + WAIT
            while not (state / "meta").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            if layout == "list" and label.startswith("restart"):
                added = f"added-{int(time.time())}.example"
                with (folder / "vdomains").open("a", encoding="ascii") as stream:
                    stream.write(added + "\n")
                changed = time.monotonic()
                while not answered(port, [added], rounds=4):
                    if time.monotonic() - changed > WAIT:
                        raise RuntimeError("the one-line change was never served")
                    time.sleep(0.02)
                print(
                    f"  {'one-line change':18} served by both workers after "
                    f"{time.monotonic() - changed:6.2f} s"
                )
        finally:
            server.__exit__()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layouts", default="files,list")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    print("\n".join(machine()))
    print(f"bound: at most {WAIT:.0f} s per start or change, two starts per layout")
    for layout in args.layouts.split(","):
        run(layout)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
