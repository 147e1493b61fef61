"""The service's gunicorn settings plus ``gc.freeze()`` before each fork (for bench/scale.py).

An experiment, not the service's configuration: it shows how much of a
worker's memory stays shared when the objects loaded in the master are moved
out of the cyclic garbage collector's sight before the fork, so that its
passes in the workers do not write to (and so copy) their pages.

    gunicorn -c python:gc_freeze_conf --chdir bench ...   (scale.py --gc-freeze)
"""

from __future__ import annotations

import gc
from typing import Any

from autoconf.gunicorn_conf import *  # noqa: F403  (every setting of the service)
from autoconf.gunicorn_conf import __all__ as _service_settings  # noqa: F401


def pre_fork(server: Any, worker: Any) -> None:
    gc.freeze()
