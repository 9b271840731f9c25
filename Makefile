# Each target does one thing and bootstraps the virtual environment when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
# The lock files: exact versions with hashes, installed with plain pip (see CONTRIBUTING).
LOCK_DEV   := requirements/dev.txt
LOCK_BENCH := requirements/bench.txt
# uv compiles the locks on `make lock` only; it is never needed to install or test.
UV_VERSION := 0.13.9
UV_TOOL    := .tools/uv
LATEST     := .venv-latest

.PHONY: run test pytest lint typecheck bench browser browser-if-possible venv clean lock upgrade \
	test-latest acceptance

$(STAMP): pyproject.toml $(LOCK_DEV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK_DEV)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP) $(LOCK_BENCH)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK_BENCH)
	touch $(BENCH_STAMP)

venv: $(STAMP)

PORT   ?= 8765

## make run [PORT=8766]: start Cairn on the embedded SQLite ledger with the demo sandbox
## loaded; a browser on this machine opens the dashboard on it without a key.
run: $(STAMP)
	$(BIN)/cairn serve --demo --local-login --port $(PORT)

## make test: lint, type-check, then the test suite (SQLite, and PostgreSQL when reachable).
test: lint typecheck browser-if-possible pytest

## make lock: pin what pyproject.toml asks for, keeping the versions already locked.
## make upgrade: re-resolve every pin to the newest release pyproject.toml allows.
lock upgrade:
	test -x $(UV_TOOL)/bin/uv || { $(PYTHON) -m venv $(UV_TOOL) && \
	  $(UV_TOOL)/bin/pip install --quiet uv==$(UV_VERSION); }
	$(UV_TOOL)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	  --generate-hashes --quiet $(if $(filter upgrade,$@),--upgrade) -o $(LOCK_DEV)
	$(UV_TOOL)/bin/uv pip compile pyproject.toml --extra dev --extra bench --universal \
	  --python-version 3.11 --generate-hashes --quiet -c $(LOCK_DEV) -o $(LOCK_BENCH)

## make test-latest: the model-backend tests against the newest releases pyproject.toml allows.
test-latest:
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	$(LATEST)/bin/python -m pip list 2>/dev/null | grep -iE '^(anthropic|openai|google-genai|httpx) '
	$(LATEST)/bin/python -m pytest tests/models -p no:cacheprovider $(PYTEST_ARGS)

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
	rm -rf $(VENV) $(LATEST) .tools .pytest_cache .mypy_cache .ruff_cache

## make acceptance: the durability scenarios at the sizes the issue names (a 5,000-event
## burst, a five-minute backlog of 200 runs of 10 s); about 15 minutes, not part of `make test`.
acceptance: $(STAMP)
	CAIRN_ACCEPTANCE=full $(BIN)/python -m pytest tests/execution -p no:cacheprovider $(PYTEST_ARGS)
