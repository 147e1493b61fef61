# /etc/mail-autoconf/gunicorn.conf.py: `gunicorn -c /etc/mail-autoconf/gunicorn.conf.py`
#
# The service under plain gunicorn, as the systemd unit and the container run it.
# Everything but the address and the worker count comes from the package
# (autoconf/serving.py), the same settings `mail-autoconf serve` runs with:
# the app, preloading, graceful timeouts, the access log with addresses
# redacted, and metrics added up across workers.
#
# The service's own settings are AUTOCONF_* environment variables (README,
# "Settings"); the unit and the container set them. gunicorn's command line and
# GUNICORN_CMD_ARGS override what is set here (the container says --bind
# 127.0.0.1:8080 too).

import os

from autoconf.machine import available_cpus
from autoconf.serving import configure

# The AUTOCONF_* settings, read and checked once, for the app and the logger.
globals().update(configure())

# Loopback only: nginx on the same host (or in the same pod) is the one client,
# and holds the slow ones, which would each hold a sync worker (docs/deploy.md,
# "The loopback rule"). The service runs with AUTOCONF_PROXY_HOPS=1 to trust
# exactly its X-Forwarded-*.
bind = "127.0.0.1:8080"

# Sync workers and answers that cost CPU, not waiting (nginx buffers slow
# clients): one worker per CPU this process may use (a container's CPU limit
# counts), and at least two, so that one busy or restarting worker never stops
# the service. WEB_CONCURRENCY, gunicorn's usual variable, overrides it.
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, available_cpus()))

# Trusted proxies, for gunicorn itself: from these addresses it believes
# X-Forwarded-Proto. The app decides for itself which X-Forwarded-* to trust
# (AUTOCONF_PROXY_HOPS); this keeps gunicorn from trusting anyone else.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
