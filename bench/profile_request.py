#!/usr/bin/env python3
"""Where one request's time goes: N in-process WSGI calls per endpoint, under cProfile.

No server and no sockets: the app from ``create_app`` (and the fixed-body
ceiling of bench/ceiling.py, for comparison) is called as gunicorn calls it,
with a prepared WSGI environ, and its body is read to the end. Prints, for
autoconfig GET, POX POST and mobileconfig:

- microseconds per request, ours and the ceiling's, without the profiler;
- the profiled time by package (autoconf, flask, werkzeug, lxml, the rest);
- every autoconf function with its calls and own time per request, which is
  where anything built per request that could have been built at load would
  show;
- the top functions by own time.

Every answer goes through the service's one plain-WSGI pipeline
(autoconf/pipeline.py); the ceiling goes through Flask.

    .venv/bin/python bench/profile_request.py               # 20,000 requests each
    .venv/bin/python bench/profile_request.py -n 2000 --endpoints pox
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness import ROOT, WORK
from werkzeug.test import EnvironBuilder

POX = (ROOT / "tests" / "data" / "pox-request.xml").read_bytes()
ENDPOINTS: dict[str, dict[str, Any]] = {
    "autoconfig": {
        "path": "/mail/config-v1.1.xml",
        "query_string": "emailaddress=alice%40example.com",
    },
    "pox": {
        "path": "/autodiscover/autodiscover.xml",
        "method": "POST",
        "data": POX,
        "content_type": "text/xml; charset=utf-8",
    },
    "mobileconfig": {"path": "/mobileconfig", "query_string": "emailaddress=alice%40example.com"},
}
WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
    if not status.startswith("200"):
        raise RuntimeError(status)


def environs(spec: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """``count`` ready environs (each with its own input stream), made before timing."""
    base = EnvironBuilder(base_url="http://autoconfig.example.com", **spec).get_environ()
    body = spec.get("data", b"")
    made = []
    for _ in range(count):
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(body)
        made.append(environ)
    return made


def call_all(app: WSGI, prepared: list[dict[str, Any]]) -> int:
    size = 0
    for environ in prepared:
        result = app(environ, _start_response)
        for chunk in result:
            size += len(chunk)
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return size


def per_request_us(app: WSGI, spec: dict[str, Any], count: int) -> float:
    prepared = environs(spec, count)
    started = time.perf_counter()
    call_all(app, prepared)
    return (time.perf_counter() - started) / count * 1e6


def _package(filename: str) -> str:
    path = filename.replace(os.sep, "/")
    for name in ("autoconf", "flask", "werkzeug", "lxml", "jinja2", "gunicorn"):
        if f"/{name}/" in path:
            return name
    if filename.startswith("<") or filename == "~":
        return "builtins"
    return "stdlib/other"


def report(stats: pstats.Stats, count: int, out: io.StringIO) -> None:
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in raw.values())
    by_package: dict[str, float] = {}
    for (filename, _, _), (_, _, tt, _, _) in raw.items():
        by_package[_package(filename)] = by_package.get(_package(filename), 0.0) + tt
    print(f"  profiled: {total / count * 1e6:.1f} us per request (cProfile adds its own)", file=out)
    for name, tt in sorted(by_package.items(), key=lambda x: -x[1]):
        print(f"    {name:<14}{tt / count * 1e6:8.1f} us  {100 * tt / total:5.1f}%", file=out)

    print("  autoconf functions: calls and own time per request (cumulative in brackets)", file=out)
    ours = [
        (key, value)
        for key, value in raw.items()
        if _package(key[0]) == "autoconf" and value[1] >= count // 2
    ]
    for (filename, line, func), (_, calls, tt, ct, _) in sorted(ours, key=lambda x: -x[1][3]):
        where = f"{Path(filename).parent.name}/{Path(filename).name}:{line} {func}"
        print(
            f"    {where:<52}{calls / count:6.2f}x {tt / count * 1e6:7.2f} us"
            f"  ({ct / count * 1e6:7.2f} us)",
            file=out,
        )
    print("  top 15 functions by own time per request", file=out)
    top = sorted(raw.items(), key=lambda x: -x[1][2])[:15]
    for (filename, line, func), (_, calls, tt, _, _) in top:
        where = f"{Path(filename).name}:{line} {func}"
        print(f"    {where:<52}{calls / count:6.2f}x {tt / count * 1e6:7.2f} us", file=out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=20_000)
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--out", type=Path, default=WORK / "profile-request.txt")
    args = parser.parse_args()

    from autoconf.app import create_app
    from autoconf.settings import Settings

    ours = create_app(Settings(domains=ROOT / "domains", reload_seconds=0))
    folder = WORK / "ceiling"
    if not (folder / "autoconfig.body").exists():
        sys.exit("run bench/throughput.py once first: it writes the ceiling's bodies")
    os.environ["CEILING_BODIES"] = str(folder)
    import ceiling

    top = ceiling.create_app()
    out = io.StringIO()
    for name in args.endpoints.split(","):
        spec = ENDPOINTS[name]
        call_all(ours, environs(spec, 500))  # warm: the first request starts nothing per process
        call_all(top, environs(spec, 500))
        us_ours = min(per_request_us(ours, spec, args.requests) for _ in range(3))
        us_top = min(per_request_us(top, spec, args.requests) for _ in range(3))
        print(
            f"\n{name}: {us_ours:.1f} us per request; fixed-body ceiling {us_top:.1f} us "
            f"(in-process ratio ours/ceiling in requests per second: {us_top / us_ours:.2f})",
            file=out,
        )
        prepared = environs(spec, args.requests)
        profiler = cProfile.Profile()
        profiler.enable()
        call_all(ours, prepared)
        profiler.disable()
        report(pstats.Stats(profiler), args.requests, out)
    text = out.getvalue()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
