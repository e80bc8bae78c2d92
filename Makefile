# Two commands from a fresh clone: `make run` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check bench install lock clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: serve config/gateway.toml on the embedded Valkey (http://127.0.0.1:8080, its server.port;
##      `make run PORT=9000` listens there instead, and the example profile webhook follows)
run: $(STAMP)
	$(BIN)/idgateway serve --config config/gateway.toml $(if $(PORT),--port $(PORT))

## test: the whole suite (unit, integration, e2e) on an embedded Valkey, or REDIS_URL
test: $(STAMP)
	$(BIN)/python -m pytest

## bench: every SPEC §11 figure beside a baseline (BENCH_SECONDS per scenario, default 20)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

## check: lint (ruff), format, types (mypy --strict on src/ and vendors/), layering (import-linter), the example configuration
check: $(STAMP)
	$(BIN)/ruff check src vendors tests benchmarks
	$(BIN)/ruff format --check src vendors tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/idgateway config check --config config/gateway.toml > /dev/null

## lock: re-pin constraints.txt from the current environment
lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | sort > constraints.txt

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
