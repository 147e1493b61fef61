# `make run` and `make test` do all set-up from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BIND ?= 127.0.0.1:8080

.PHONY: run test lint typecheck unit check clean

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

unit: $(STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/mail-autoconf check domains

test: lint typecheck check unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
