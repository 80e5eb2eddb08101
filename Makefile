# Every target creates .venv in the repo (if missing) and installs the project into it.
PY := .venv/bin/python
PIP_FLAGS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test keys-check seeds-check ui ui-check bench setup gpu-check scale-check annotate feedback-check

.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q $(PIP_FLAGS) -e '.[dev]'
	@# WordNet 3.0 for METEOR (nltk cannot download it offline); without root or apt only that test skips
	test -f /usr/share/wordnet/index.sense || (apt-get update -qq && apt-get install -y -qq wordnet-base \
		wordnet-sense-index) || echo "WordNet not installed: the METEOR metric will not run"
	touch $@

setup: .venv/.installed

demo: setup  ## run the demo pipeline end to end (offline) and print its leaderboard
	.venv/bin/rlhf run demo
	.venv/bin/rlhf leaderboard demo

test: setup  ## ruff (lint and format), then the test suite (CPU, offline) but the scale tests and the whole-seed-workflow runs, the UI backfill and the every-leaf key check of most tasks
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -m "not scale and not seeds and not ui and not keys"

scale-check: setup  ## processes racing on one store (local and a local S3 server), the demo on S3, two UI runs at once on PostgreSQL against one at a time (about 10 min on 2 cores; docs/scale.md)
	$(PY) -m pip install -q $(PIP_FLAGS) -e '.[dev,s3]'  # dagster-aws: the step logs on S3
	$(PY) -m pytest -q -s -m scale tests

keys-check: setup  ## every config leaf of every task re-keys exactly the assets that read it and their descendants
	$(PY) -m pytest -q -m keys tests/dagster/test_invalidation.py

seeds-check: setup  ## every seed workflow whole on the tiny profile (rlhf run TASK --profile tiny), as tests
	$(PY) -m pytest -q -s -m seeds tests/dagster/test_seed_rl.py

ui: setup  ## the Dagster UI on 127.0.0.1:3000, with the daemon (backfills, schedules, sensors)
	$(PY) -m pipelines.ui --port 3000

ui-check: setup  ## drive the UI in Chromium: one "Materialize all" over the demo (installs Chromium if missing)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) -m pip install -q $(PIP_FLAGS) -e '.[dev,ui]'
	$(PY) -m pytest -q -s tests/ui

bench: setup  ## performance comparisons against the stock stack
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

gpu-check: setup  ## on a CUDA box: the gpu tests, then ours vs TRL/HF at GPT-2-124M (docs/gpu.md)
	@$(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu-check needs CUDA')"
	-$(PY) -m pip install -q $(PIP_FLAGS) --no-build-isolation -e '.[gpu]'  # DeepSpeed, bitsandbytes: their tests skip without them
	$(PY) -m pytest -q -m gpu tests/gpu
	$(PY) benchmarks/bench_train.py --size gpt2 --batch 16 --sft-len 1024 --dpo-len 512 --precision bf16 \
		--steps 25 --warmup 5 --rounds 2

# Label Studio in a venv of its own: its pins (Django, pydantic, ...) never meet ours; we talk HTTP to it.
# sentry-sdk 3 rejects an option Label Studio 1.23 passes at start-up.
.venv-annotate/.installed:
	test -x .venv-annotate/bin/python || python3 -m venv .venv-annotate
	.venv-annotate/bin/python -m pip install -q 'label-studio==1.23.2' 'sentry-sdk<3'
	touch $@

annotate: setup .venv-annotate/.installed  ## Label Studio on 127.0.0.1:8080 (needs LABEL_STUDIO_API_KEY and LABEL_STUDIO_PASSWORD)
	$(PY) -m pipelines.annotate

feedback-check: setup .venv-annotate/.installed  ## the annotation tool end to end with the micro demo, and marking a span in Chromium (installed if missing)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) -m pip install -q $(PIP_FLAGS) -e '.[dev,ui]'
	RLHF_FEEDBACK_CHECK=1 $(PY) -m pytest -q -s tests/feedback
