# PanicSAFE bunker. `make run` starts the platform on real servers; `make test` passes every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := uv
PY_SRC := libs/core/src libs/contracts/src $(wildcard services/*/src) gateway/src
PYTEST_ARGS ?=

.PHONY: help setup run status servers reset test lint format bench bench-% clean

help:
	@echo "make run     start the whole platform locally on real servers, print where to log in"
	@echo "make test    install what is missing, lint, run every test"
	@echo "make status  health of every running service"
	@echo "make reset   delete the local platform's data (.run/), after confirmation"
	@echo "make lint    ruff check, ruff format --check, mypy --strict"
	@echo "make bench   run the benchmarks (results in bench/results/)"

setup:
	@scripts/setup.sh

run: setup
	@$(UV) run --frozen python -m panicsafe.core.devstack run

status:
	@$(UV) run --frozen python -m panicsafe.core.devstack status

servers: setup
	@$(UV) run --frozen python -m panicsafe.core.devstack servers

# The local platform keeps its data across runs and reboots: deleting it is this, and it asks first.
reset:
	@$(UV) run --frozen python -m panicsafe.core.devstack reset

lint: setup
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy $(PY_SRC)

format:
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

test: setup lint
	npm run --prefix web --silent test
	$(UV) run --frozen pytest $(PYTEST_ARGS)

# The bench targets (and the setup they run first) see PANICSAFE_BENCH=1: setup then installs wrk.
bench bench-%: export PANICSAFE_BENCH := 1

bench: setup
	$(UV) run --frozen python -m bench

bench-%: setup
	$(UV) run --frozen python -m bench $*

# Caches only: the platform's data (.run/) goes with `make reset`.
clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache bench/results/*.json
