"""The service under gunicorn: its settings and hooks, in one place.

``mail-autoconf serve`` runs gunicorn in-process with :func:`gunicorn_settings`
(adding ``--bind`` and ``--workers``); ``deploy/gunicorn.conf.py``, the file
plain ``gunicorn -c`` reads, takes the same from :func:`configure`. Either way,
the settings are read once, before gunicorn starts, and handed to the app
factory and the logger; this process is prepared (logging, the metrics folder)
then, never when a module is imported.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import shutil
import signal
import socket
from typing import Any

from gunicorn.app.base import BaseApplication

from autoconf.access_log import ACCESS_LOG_FORMAT, access_logger
from autoconf.metrics import mark_process_dead, prepare_folder
from autoconf.settings import Settings

# The settings this process was configured with (by configure()), for the app
# plain gunicorn loads by name: gunicorn's wsgi_app setting is a "module:call" text.
_configured: Settings | None = None


def gunicorn_settings(settings: Settings) -> dict[str, Any]:
    """gunicorn's settings for the service (``bind`` and ``workers`` aside)."""
    return {
        # Load and validate the folder once in the master, then fork: the workers
        # share its memory, and a broken set-up (a signing key that does not match)
        # stops the start instead of a crash loop of workers.
        "preload_app": True,
        # One stream for systemd's journal or the container runtime. The access log
        # shows addresses as AUTOCONF_LOG_ADDRESSES says (redacted by default), never
        # headers (Authorization among them) nor bodies.
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "logger_class": access_logger(settings),
        "errorlog": "-",
        # An answer takes milliseconds; a worker silent for 30 s is stuck, and replaced.
        "timeout": 30,
        # On SIGTERM (systemctl stop, a pod ending) and on SIGHUP's worker swap,
        # requests under way get 10 s to finish. systemd's TimeoutStopSec and
        # Kubernetes' terminationGracePeriodSeconds are longer than that.
        "graceful_timeout": 10,
        "proc_name": "mail-autoconf",
        # gunicorn 27 opens a control socket in $HOME by default; two services (or a
        # test beside a running one) would fight over it, and a service user has no home.
        "control_socket_disable": True,
        # The workers' heartbeat files, in memory where there is /dev/shm: a
        # container's /tmp may be a slow overlay, or read-only.
        "worker_tmp_dir": "/dev/shm" if os.access("/dev/shm", os.W_OK) else None,
        "when_ready": when_ready,
        "on_reload": on_reload,
        "pre_fork": pre_fork,
        "child_exit": child_exit,
    }


def prepare(settings: Settings) -> None:
    """This process, before gunicorn starts: logging, and prometheus_client's
    multiprocess folder (a private one, removed at exit, unless
    PROMETHEUS_MULTIPROC_DIR names one), which must be there before it is imported."""
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
    )
    private = prepare_folder(os.environ)
    if private is not None:
        master = os.getpid()

        def remove() -> None:
            # Workers are forks of the master and run its atexit hooks too: only
            # the master, which made the folder, removes it.
            if os.getpid() == master:
                shutil.rmtree(private, ignore_errors=True)

        atexit.register(remove)


def configure(settings: Settings | None = None) -> dict[str, Any]:
    """For ``deploy/gunicorn.conf.py``: prepare this process (once) and return
    gunicorn's settings, the app included (the environment's settings by default)."""
    global _configured
    settings = settings or Settings.from_env()
    settings.check()
    # gunicorn reads its config file again on every SIGHUP: the process is prepared
    # once (a second preparation would empty the metrics folder the master writes to).
    if _configured is None:
        prepare(settings)
    _configured = settings
    return gunicorn_settings(settings) | {"wsgi_app": "autoconf.serving:configured_app()"}


def configured_app() -> Any:
    """The app for the settings :func:`configure` was given."""
    from autoconf.app import create_app  # after prepare(): it imports prometheus_client

    return create_app(_configured)


def _watcher(server: Any) -> Any:
    return server.app.wsgi().watcher


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
    """In the master, after a worker has gone (ended, replaced by SIGHUP, killed)."""
    mark_process_dead(worker.pid)


class _Application(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # older gunicorn releases lack some settings
                self.cfg.set(key, value)

    def load(self) -> Any:
        from autoconf.app import create_app  # after prepare(): it imports prometheus_client

        return create_app(self.settings)


def address_in_use(bind: str) -> str:
    """Why ``bind`` (``HOST:PORT``) cannot be listened on ("" when it can): said
    in one line before gunicorn starts, which would retry five times and stop."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit() or bind.startswith("unix:"):
        return ""  # gunicorn's own forms (a socket path, fd://): gunicorn says
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host.strip("[]"), int(port)))
        except OSError as exc:
            why = exc.strerror.lower() if exc.strerror else str(exc)
            return f"cannot listen on {bind}: {why}; stop what uses it, or choose another --bind"
    return ""


def run(settings: Settings, *, bind: str, workers: int) -> int:
    """``mail-autoconf serve``: gunicorn in this process, with the service's settings."""
    prepare(settings)
    options = gunicorn_settings(settings) | {"bind": bind, "workers": workers}
    _Application(settings, options).run()
    return 0
