"""The service's gunicorn settings, in one place.

`mail-autoconf serve` runs with them (adding ``--bind`` and ``--workers``), and
deploy/gunicorn.conf.py imports them (adding the address and a worker count from
the CPUs). The module is a gunicorn config file itself
(``gunicorn -c python:autoconf.gunicorn_conf``) and, like one, acts when it is
read: before the app is loaded and the workers fork, it sets up logging and
gives prometheus_client's multiprocess mode its folder (PROMETHEUS_MULTIPROC_DIR;
a private temporary one, removed at exit, unless the variable names one).
Import it only where gunicorn is about to start.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import shutil
import signal
from typing import Any

from autoconf.server import ACCESS_LOG_FORMAT, AccessLogger, prepare_metrics_folder

__all__ = [
    "wsgi_app",
    "preload_app",
    "accesslog",
    "access_log_format",
    "logger_class",
    "errorlog",
    "timeout",
    "graceful_timeout",
    "proc_name",
    "control_socket_disable",
    "worker_tmp_dir",
    "when_ready",
    "on_reload",
    "pre_fork",
    "child_exit",
    "on_exit",
]

# The factory (SPEC §2), for `gunicorn -c FILE` without an app argument.
wsgi_app = "autoconf.app:create_app()"
# Load and validate the folder once in the master, then fork: the workers share
# its memory, and a broken set-up (a signing key that does not match) stops the
# start instead of a crash loop of workers.
preload_app = True
# One stream for systemd's journal or the container runtime. The access log
# shows addresses as AUTOCONF_LOG_ADDRESSES says (redacted by default), never
# headers (Authorization among them) nor bodies.
accesslog = "-"
access_log_format = ACCESS_LOG_FORMAT
logger_class = AccessLogger
errorlog = "-"
# An answer takes milliseconds; a worker silent for 30 s is stuck, and replaced.
timeout = 30
# On SIGTERM (systemctl stop, a pod ending) and on SIGHUP's worker swap, requests
# under way get 10 s to finish. systemd's TimeoutStopSec and Kubernetes'
# terminationGracePeriodSeconds are longer than that.
graceful_timeout = 10
proc_name = "mail-autoconf"
# gunicorn 27 opens a control socket in $HOME by default; two services (or a
# test beside a running one) would fight over it, and a service user has no home.
control_socket_disable = True
# The workers' heartbeat files, in memory where there is /dev/shm: a container's
# /tmp may be a slow overlay, or read-only.
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None

logging.basicConfig(
    level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
)
_private_metrics = prepare_metrics_folder(os.environ)
_master = os.getpid()


def _watcher(server: Any) -> Any:
    return server.app.wsgi().extensions["autoconf.watcher"]


def when_ready(server: Any) -> None:
    """In the master, before the first workers fork: it loads for all of them.

    Its watcher thread reloads the folder; a reload that changes what is served
    sends the master SIGHUP, which forks new workers (they inherit the new
    snapshot) and lets the old ones finish their requests and go. So every
    worker, and any worker started later (after a crash or ``kill -9``),
    answers from the master's one snapshot."""
    master = os.getpid()
    _watcher(server).serve_from_master(lambda: os.kill(master, signal.SIGHUP))


def on_reload(server: Any) -> None:
    """SIGHUP, in the master, before the new workers fork: the operator's SIGHUP
    reloads the folder (``STATE/force-reload`` overrides the guard against an
    empty or halved folder); the watcher's own SIGHUP has reloaded already."""
    _watcher(server).hang_up()


def pre_fork(server: Any, worker: Any) -> None:
    """In the master, before each fork: the loaded domain data out of the cyclic
    garbage collector's sight. Its passes in the workers would otherwise write to
    every object's page and so copy the data the workers share (measured at
    100,000 one-domain files: 287 MB private per worker without, 183 MB with)."""
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """In the master, after a worker has gone (ended, replaced by SIGHUP, killed):
    its gauges stop counting; its counters keep counting, as the requests happened."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _remove_private_metrics() -> None:
    # Workers are forks of the master and run its atexit hooks too: only the
    # master, which made the folder, removes it.
    if _private_metrics is not None and os.getpid() == _master:
        shutil.rmtree(_private_metrics, ignore_errors=True)


def on_exit(server: Any) -> None:
    _remove_private_metrics()


atexit.register(_remove_private_metrics)  # also when the master ends without on_exit
