# Every target creates .venv in the repo (if missing) and installs the project into it.
PY := .venv/bin/python
PIP_FLAGS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test ui ui-check bench setup

.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q $(PIP_FLAGS) -e '.[dev]'
	touch $@

setup: .venv/.installed

demo: setup  ## run the demo pipeline end to end (offline) and print its leaderboard
	.venv/bin/rlhf run demo
	.venv/bin/rlhf leaderboard demo

test: setup  ## the whole test suite (CPU, offline)
	$(PY) -m pytest -q

ui: setup  ## the Dagster UI on 127.0.0.1:3000, with the daemon (backfills, schedules, sensors)
	$(PY) -m pipelines.instance
	.venv/bin/dg dev -w workspace.yaml -h 127.0.0.1 -p 3000

ui-check: setup  ## drive the UI in Chromium: one "Materialize all" over the demo (installs Chromium if missing)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) -m pip install -q $(PIP_FLAGS) -e '.[dev,ui]'
	$(PY) -m pytest -q -s tests/ui

bench: setup  ## performance comparisons against the stock stack
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
