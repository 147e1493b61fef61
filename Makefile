# `make run` and `make test` do all set-up from a fresh clone; `make fast` is the
# quick loop (no Debian packages, no e2e tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BIND ?= 127.0.0.1:8080

# Real programs the end-to-end tests drive: Debian's nginx, Thunderbird 153,
# certutil (for Thunderbird's certificate store), Dovecot (for probe), Chromium
# (for the page) and dnsmasq (the DNS server of the dns --check tests), installed
# when missing. dnsmasq-base is the program alone: the package "dnsmasq" adds a
# system service that takes port 53 where systemd runs it; the tests start their
# own dnsmasq on a free port of 127.0.0.1.
DEBIAN_PACKAGES := nginx thunderbird libnss3-tools dovecot-imapd dovecot-pop3d chromium \
    dnsmasq-base
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test fast lint typecheck unit check clean debian-packages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(STAMP)
	@echo "Serving ./domains on http://$(BIND)/ -- try:"
	@echo "  curl 'http://$(BIND)/mail/config-v1.1.xml?emailaddress=alice@example.com'"
	@echo "  curl -X POST --data-binary @tests/data/pox-request.xml http://$(BIND)/autodiscover/autodiscover.xml"
	@echo "  curl 'http://$(BIND)/autodiscover/autodiscover.json?Email=bob@example.org&Protocol=AutodiscoverV1'"
	$(BIN)/mail-autoconf serve --domains domains --bind $(BIND)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict autoconf

debian-packages:
	@if ! test -x /usr/sbin/nginx || ! test -x /usr/bin/certutil \
	    || ! test -x /usr/lib/thunderbird/thunderbird-bin || ! test -x /usr/sbin/dovecot \
	    || ! test -x /usr/bin/chromium || ! test -x /usr/sbin/dnsmasq; then \
	  echo "Installing $(DEBIAN_PACKAGES) from Debian"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    $(DEBIAN_PACKAGES) >/dev/null; \
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
