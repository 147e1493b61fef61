"""What the benchmarks share: a gunicorn under test, wrk, and memory from /proc.

Everything talks to 127.0.0.1 only. Every server is stopped by its own PID,
every wrk run is bounded by its duration and a timeout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"  # git-ignored: automx2's venv, bodies, results

# wrk reports what it measured through this hook, as one JSON line.
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n@@{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,'
    .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def need_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        sys.exit("wrk is missing: apt-get install -y wrk (Debian's package)")
    return found


@dataclass(frozen=True)
class Request:
    """One kind of request wrk repeats: a path, or paths, and maybe a POST body."""

    path: str
    method: str = "GET"
    body: bytes | None = None
    content_type: str | None = None
    paths: Sequence[str] = ()  # when given, wrk goes round these instead of ``path``

    def lua(self) -> str:
        lines = [f'wrk.method = "{self.method}"']
        if self.body is not None:
            lines.append(f"wrk.body = {_lua_string(self.body.decode('utf-8'))}")
        if self.content_type:
            lines.append(f'wrk.headers["Content-Type"] = "{self.content_type}"')
        if self.paths:
            listed = ",\n  ".join(_lua_string(p) for p in self.paths)
            lines.append(f"local paths = {{\n  {listed}\n}}")
            lines.append("local i = 0")
            lines.append(
                "request = function()\n  i = i % #paths + 1\n"
                "  return wrk.format(nil, paths[i])\nend"
            )
        return "\n".join(lines) + "\n" + _DONE

    def fetch(self, port: int, timeout: float = 10) -> tuple[int, bytes, dict[str, str]]:
        """One request with the standard library: status, body, headers."""
        url = f"http://127.0.0.1:{port}{self.paths[0] if self.paths else self.path}"
        headers = {"Content-Type": self.content_type} if self.content_type else {}
        req = urllib.request.Request(url, self.body, headers, method=self.method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]" if "]==]" not in text else json.dumps(text)


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # connect, read, write, timeout, and non-2xx answers
    server_cpu_s: float = 0.0  # master and workers, user and system
    wrk_cpu_s: float = 0.0
    others_pct: float = 0.0  # of the machine's CPU, used by anything else meanwhile
    steal_pct: float = 0.0  # taken by the hypervisor
    # The busiest worker's share of the workers' CPU: 50% is an even split of 2.
    # A gthread worker keeps the connections it accepted, so 8 wrk connections can
    # land 6 to 2 or worse, and such a run measures little more than one core.
    busiest_worker_pct: float = 0.0
    attempts: int = 1  # the runs made to get this one (see run_quiet)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else 0.0


CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def each_process_cpu_s(pids: Sequence[int]) -> list[float]:
    """User and system CPU seconds of each process (0 for one that is gone)."""
    seconds = []
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            seconds.append(0.0)
            continue
        seconds.append((int(fields[11]) + int(fields[12])) / CLOCK_TICK)  # utime, stime
    return seconds


def machine_cpu() -> tuple[float, float, float]:
    """Busy, steal and total CPU seconds of the whole machine since boot."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    steal = values[7] if len(values) > 7 else 0
    total = sum(values[:8])
    return (total - idle - steal) / CLOCK_TICK, steal / CLOCK_TICK, total / CLOCK_TICK


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    port: int,
    request: Request,
    seconds: float,
    connections: int = 8,
    threads: int = 1,
    server_pids: Sequence[int] = (),
) -> Result:
    """wrk against 127.0.0.1:PORT for ``seconds``; killed if it overruns by 30 s.

    With ``server_pids`` (the master first, then its workers), also the CPU those
    processes used, how it was split among the workers, wrk's own, and what the
    rest of the machine used meanwhile (other sessions, say).
    """
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(request.lua())
    try:
        command = [
            need_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            script.name,
            f"http://127.0.0.1:{port}{request.path}",
        ]
        each_before = each_process_cpu_s(server_pids)
        cpu_before = (sum(each_before), _children_cpu_s(), _self_cpu_s())
        machine_before = machine_cpu()
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
        machine_after = machine_cpu()
        each_after = each_process_cpu_s(server_pids)
        cpu_after = (sum(each_after), _children_cpu_s(), _self_cpu_s())
    finally:
        os.unlink(script.name)
    line = next((x for x in done.stdout.splitlines() if x.startswith("@@")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    data = json.loads(line[2:])
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    server_s, wrk_s, self_s = (
        after - before for after, before in zip(cpu_after, cpu_before, strict=True)
    )
    busy, steal, total = (
        after - before for after, before in zip(machine_after, machine_before, strict=True)
    )
    others = busy - server_s - wrk_s - self_s
    workers = [a - b for a, b in zip(each_after[1:], each_before[1:], strict=True)]
    busiest = 100 * max(workers) / sum(workers) if len(workers) > 1 and sum(workers) else 0.0
    return Result(
        data["requests"],
        data["duration_us"] / 1e6,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        errors,
        server_s,
        wrk_s,
        max(0.0, 100 * others / total) if total else 0.0,
        100 * steal / total if total else 0.0,
        busiest,
    )


def run_quiet(
    port: int,
    request: Request,
    seconds: float,
    connections: int,
    server_pids: Sequence[int],
    max_others: float,
    retries: int,
    max_busiest: float = 100.0,
) -> Result:
    """run_wrk, again (``retries`` times at most) while something else took more than
    ``max_others`` percent of the machine, or one worker more than ``max_busiest``
    percent of the workers' CPU; the run least off those marks is kept."""

    def off(result: Result) -> tuple[bool, float, float]:
        lopsided = result.busiest_worker_pct > max_busiest
        return lopsided, max(0.0, result.others_pct - max_others), result.busiest_worker_pct

    def acceptable(result: Result) -> bool:
        return result.others_pct <= max_others and result.busiest_worker_pct <= max_busiest

    runs = [run_wrk(port, request, seconds, connections, server_pids=server_pids)]
    while not acceptable(runs[-1]) and len(runs) <= retries:
        runs.append(run_wrk(port, request, seconds, connections, server_pids=server_pids))
    return dataclasses.replace(min(runs, key=off), attempts=len(runs))


def median_result(results: Sequence[Result]) -> Result:
    """The round with the median rate, so that rate and latencies come from one run."""
    ordered = sorted(results, key=lambda r: r.rps)
    return ordered[(len(ordered) - 1) // 2]


def spread(results: Sequence[Result]) -> str:
    rates = [r.rps for r in results]
    if len(rates) < 2:
        return ""
    return f"{min(rates):.0f}-{max(rates):.0f}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Server:
    """A gunicorn (or ``mail-autoconf serve``) under test, started and stopped by its PID."""

    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str],
        port: int,
        ready: Request,
        cwd: Path | None = None,
        log: Path | None = None,
    ) -> None:
        self.command = list(command)
        self.env = env
        self.port = port
        self.ready = ready
        self.cwd = cwd
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT
        )
        if out is not subprocess.DEVNULL:
            out.close()
        return self

    def wait_ready(self, timeout: float, give_up: Callable[[], str | None] | None = None) -> float:
        """Seconds until the first good answer; RuntimeError after ``timeout``, or
        as soon as ``give_up`` returns a reason."""
        assert self.process is not None
        started = time.monotonic()
        while True:
            reason = give_up() if give_up else None
            if reason:
                raise RuntimeError(reason)
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command[0]} exited with {self.process.returncode}")
            try:
                status, _, _ = self.ready.fetch(self.port, timeout=5)
                if status == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"no answer on port {self.port} after {timeout:.0f} s")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def workers(self) -> list[int]:
        assert self.process is not None
        return children_of(self.process.pid)

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop, by PID
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


def children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return sorted(children)


def smaps_rollup(pid: int) -> dict[str, int]:
    """/proc/PID/smaps_rollup in KiB: Rss, Pss, Shared_Clean, Private_Dirty…"""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0])
    return values


def clean_env(home: str, **extra: str) -> dict[str, str]:
    """The environment without AUTOCONF_ settings, with a HOME of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOCONF_", "AUTOMX2_"))}
    env["HOME"] = home
    env.update(extra)
    return env


def source_fingerprint() -> str:
    """A hash of autoconf/'s source: figures from a run during which it changed mix versions."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "autoconf").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def machine() -> list[str]:
    """What the figures came from: CPUs, Python, gunicorn, date."""
    lines = [f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}", f"nproc: {os.cpu_count()}"]
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.split(":")[0] in ("Model name", "CPU(s)", "Hypervisor vendor"):
                lines.append(" ".join(line.split()))
    except OSError:
        pass
    lines.append(f"python: {sys.version.split()[0]}")
    from importlib.metadata import version

    for package in ("gunicorn", "flask", "werkzeug"):
        lines.append(f"{package}: {version(package)}")
    lines.append(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    lines.append(f"autoconf/ source: {source_fingerprint()}")
    return lines
