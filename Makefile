# `make run` and `make test` do all set-up from a fresh clone; `make fast` is the
# quick loop (no Debian packages, no e2e tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BIND ?= 127.0.0.1:8080

# Real programs the end-to-end tests drive, from Debian, installed when one of
# DEBIAN_PROGRAMS is missing: nginx, Thunderbird 153, certutil (Thunderbird's
# certificate store), Dovecot (probe), Chromium (the page), Caddy and Pebble
# (certificates on demand from an ACME test CA), dnsmasq (private name servers;
# dnsmasq-base is the program alone, without the system service of "dnsmasq"),
# promtool (deploy/prometheus/alerts.yml; Debian ships it in `prometheus`).
DEBIAN_PACKAGES := nginx thunderbird libnss3-tools dovecot-imapd dovecot-pop3d chromium \
	caddy pebble dnsmasq-base prometheus
DEBIAN_PROGRAMS := /usr/sbin/nginx /usr/lib/thunderbird/thunderbird-bin /usr/bin/certutil \
	/usr/sbin/dovecot /usr/bin/chromium /usr/bin/caddy /usr/bin/pebble /usr/sbin/dnsmasq \
	/usr/bin/promtool
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test fast lint typecheck unit check clean debian-packages

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
# itself); the tests use only promtool. When this target installed the package,
# it stops that service and keeps it from starting at boot; a Prometheus that was
# installed before is left alone.
debian-packages:
	@missing=; for program in $(DEBIAN_PROGRAMS); do test -x $$program || missing=1; done; \
	if test -n "$$missing"; then \
	  had_prometheus=$$(test -x /usr/bin/prometheus && echo yes); \
	  echo "Installing $(DEBIAN_PACKAGES) from Debian"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    $(DEBIAN_PACKAGES) >/dev/null || exit 1; \
	  if [ -z "$$had_prometheus" ] && [ -d /run/systemd/system ]; then \
	    $(SUDO) systemctl disable --now prometheus.service >/dev/null 2>&1 || true; \
	  elif [ -z "$$had_prometheus" ]; then \
	    $(SUDO) invoke-rc.d prometheus stop >/dev/null 2>&1 || true; \
	  fi; \
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
