# Each target does one thing and bootstraps the virtual environment when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test pytest lint typecheck bench browser browser-if-possible venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

venv: $(STAMP)

## make run: start Cairn on the embedded SQLite ledger with the demo sandbox loaded.
run: $(STAMP)
	$(BIN)/cairn serve --demo

## make test: lint, type-check, then the test suite (SQLite, and PostgreSQL when reachable).
test: lint typecheck browser-if-possible pytest

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src tests bench

## make bench: the benchmarks, side by side with their peers (needs the bench extra).
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

## make browser: Debian's Chromium for the dashboard's browser tests, if it is missing.
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# make test tries too, but goes on without it (the browser tests then say they were skipped).
browser-if-possible:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && $(MAKE) --no-print-directory browser; } \
	  || echo "notice: no Chromium (/usr/bin/chromium): the dashboard's browser tests will be skipped"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
