# `make run` and `make test` do all set-up from a fresh clone; `make fast` is the
# quick loop (no Debian packages, no e2e tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BIND ?= 127.0.0.1:8080

# Real programs the end-to-end tests drive, from Debian, installed when one of
# DEBIAN_PROGRAMS is missing: nginx, Thunderbird 153, certutil (Thunderbird's
# certificate store), Dovecot with IMAP, POP3 and LMTP (probe; the mail stack
# of tests/e2e/mailstack.py), Postfix (the mail stack's SMTP), Chromium (the
# page), Caddy and Pebble (certificates on demand from an ACME test CA), dnsmasq
# (private name servers; dnsmasq-base is the program alone, without the system
# service of "dnsmasq"), promtool (deploy/prometheus/alerts.yml; Debian ships it
# in `prometheus`), PostgreSQL and OpenLDAP's slapd (the per-user lookups of
# tests/e2e/test_lookup_*.py, each a server of its own in a temporary folder;
# Debian's PostgreSQL 15 keeps initdb and postgres in /usr/lib/postgresql/15/bin).
DEBIAN_PACKAGES := nginx thunderbird libnss3-tools dovecot-imapd dovecot-pop3d dovecot-lmtpd \
	postfix chromium caddy pebble dnsmasq-base prometheus postgresql slapd
DEBIAN_PROGRAMS := /usr/sbin/nginx /usr/lib/thunderbird/thunderbird-bin /usr/bin/certutil \
	/usr/sbin/dovecot /usr/lib/dovecot/lmtp /usr/sbin/postfix /usr/bin/chromium /usr/bin/caddy \
	/usr/bin/pebble /usr/sbin/dnsmasq /usr/bin/promtool /usr/lib/postgresql/15/bin/initdb \
	/usr/sbin/slapd
# Services that installing their package starts, and the program that shows the
# package was there before: when this target installed it, the service is
# stopped and kept from starting at boot (one that was there before is left alone).
STOPPED_SERVICES := prometheus:/usr/bin/prometheus postfix:/usr/sbin/postfix \
	postgresql:/usr/lib/postgresql/15/bin/postgres slapd:/usr/sbin/slapd
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test fast lint typecheck unit check clean debian-packages messages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# BIND=HOST:PORT listens elsewhere; a busy address is said in one line.
run: $(STAMP)
	@$(BIN)/mail-autoconf serve --domains domains --bind $(BIND) --show-urls

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict autoconf

# Installing `prometheus` starts Debian's Prometheus service (on :9090, scraping
# itself); the tests use only promtool. Postfix is installed with its debconf
# answer "No configuration" (no question asked, no /etc/postfix/main.cf), and
# its system service is stopped too: no system Postfix holds port 25 (the tests
# run their own, each in a network namespace of its own). slapd is installed
# with "omit OpenLDAP server configuration" (no directory, nothing listening),
# and Debian's PostgreSQL cluster service is stopped: the tests start their own.
debian-packages:
	@missing=; for program in $(DEBIAN_PROGRAMS); do test -x $$program || missing=1; done; \
	if test -n "$$missing"; then \
	  new=; for entry in $(STOPPED_SERVICES); do \
	    test -x "$${entry#*:}" || new="$$new $${entry%%:*}"; \
	  done; \
	  echo "Installing $(DEBIAN_PACKAGES) from Debian"; \
	  echo "postfix postfix/main_mailer_type select No configuration" \
	    | $(SUDO) debconf-set-selections || exit 1; \
	  echo "slapd slapd/no_configuration boolean true" \
	    | $(SUDO) debconf-set-selections || exit 1; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    $(DEBIAN_PACKAGES) >/dev/null || exit 1; \
	  for service in $$new; do \
	    if [ -d /run/systemd/system ]; then \
	      $(SUDO) systemctl disable --now $$service.service >/dev/null 2>&1 || true; \
	    else \
	      $(SUDO) invoke-rc.d $$service stop >/dev/null 2>&1 || true; \
	    fi; \
	  done; \
	fi

# TEST_FULL_LENGTH=1: the long runs (tests/e2e/test_reload_under_load.py for 20 s).
unit: $(STAMP) debian-packages
	TEST_FULL_LENGTH=1 $(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/mail-autoconf check domains

test: lint typecheck check unit

# Lint, types and the tests that start no real program (pytest -m "not e2e").
fast: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -m "not e2e"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info

# The page's messages: extract them into autoconf/locale/page.pot and merge them
# into each language's catalog (then translate what is new; tests/test_translations.py
# fails on any message a catalog lacks).
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --omit-header \
	  -k N_ -o autoconf/locale/page.pot .
	$(BIN)/pybabel update -i autoconf/locale/page.pot -d autoconf/locale -D page \
	  --no-location --omit-header --no-fuzzy-matching
