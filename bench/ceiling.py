"""The ceiling for bench/throughput.py: Flask answering fixed bodies, nothing else.

Each endpoint answers the bytes that mail-autoconf answers for the benchmark's
address, with the same content type (and, for the profile, the same
Content-Disposition), read once at start-up from the folder that
``CEILING_BODIES`` names (``NAME.body`` and ``NAME.type`` for each endpoint;
throughput.py writes them). No lookup, no parsing, no rendering: what is left
is Flask, Werkzeug and gunicorn, which is as fast as any Flask service can be.

    CEILING_BODIES=bench/.work/ceiling gunicorn --chdir bench 'ceiling:create_app()'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response, request

ROUTES = {
    "autoconfig": ("/mail/config-v1.1.xml", "GET"),
    "pox": ("/autodiscover/autodiscover.xml", "POST"),
    "mobileconfig": ("/mobileconfig", "GET"),
}


def create_app() -> Flask:
    folder = Path(os.environ["CEILING_BODIES"])
    app = Flask(__name__)
    for name, (path, method) in ROUTES.items():
        body = (folder / f"{name}.body").read_bytes()
        content_type, _, disposition = (folder / f"{name}.type").read_text().partition("\n")
        app.add_url_rule(
            path, name, _fixed(body, content_type, disposition.strip(), method), methods=[method]
        )
    return app


def _fixed(body: bytes, content_type: str, disposition: str, method: str) -> Callable[[], Response]:
    headers = {"Content-Disposition": disposition} if disposition else {}

    def view() -> Response:
        if method == "POST":
            request.get_data()  # a POX server has to read what it is sent
        return Response(body, content_type=content_type, headers=headers)

    return view
