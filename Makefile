# orch: `make demo` runs the product on a fresh machine, `make test` runs the whole suite.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
ORCH := $(VENV)/bin/orch
STAMP := $(VENV)/.installed-test
# the e2e harness modules under lint (the capture scripts and the model server are not)
E2E_LINTED := e2e/run.py e2e/scenarios.py e2e/orchctl.py e2e/server.py e2e/clis.py e2e/usage_check.py

.PHONY: help install tmux test unit integration real-clis lint demo demo-down bench chaos e2e docs clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	# compat: a plain path in a .pth, not setuptools' import-hook finder, which costs every
	# `orch` call ~10 ms of start-up; compileall: bytecode even under PYTHONDONTWRITEBYTECODE.
	$(PY) -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	$(PY) -m compileall -q reconciler >/dev/null
	touch $(STAMP)

install: $(STAMP) ## create .venv and install orch with its test tools

tmux: ## install tmux with apt-get when it is missing (CI runs as root)
	@command -v tmux >/dev/null || { echo "tmux missing: installing it with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null; }

test: install tmux lint ## run the whole pytest suite (unit + integration with real tmux)
	$(PY) -m pytest -q -n 2 tests

unit: install ## only the fast unit tests (no tmux)
	$(PY) -m pytest -q tests/unit

integration: install tmux ## only the integration tests (real tmux, private sockets)
	$(PY) -m pytest -q -n 2 tests/integration

real-clis: install tmux ## signals of the real Claude Code, Codex, Gemini CLIs (e2e/install.sh first)
	ORCH_TEST_REAL_CLIS=all $(PY) -m pytest -q -m real_cli tests/integration

lint: install ## ruff, mypy --strict and the import-linter layer contracts
	$(VENV)/bin/ruff check reconciler tests bench docs $(E2E_LINTED)
	$(VENV)/bin/ruff format --check reconciler tests bench docs $(E2E_LINTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

demo: install tmux ## apply manifests/demo.yaml (no AI subscription needed) and show the agents
	$(ORCH) apply -f manifests/demo.yaml --wait
	$(ORCH) get agents

demo-down: install ## delete the demo agents, stop the controller and the empty tmux server
	$(ORCH) delete -f manifests/demo.yaml
	$(ORCH) controller stop

bench: install tmux ## run the benchmarks and print their table
	$(PY) -m bench

chaos: install tmux ## the reliability suite at full size (more kills, more controller SIGKILLs)
	ORCH_CHAOS_SCALE=5 $(PY) -m pytest -q -s tests/integration/test_chaos.py tests/integration/test_bad_input.py

e2e: install tmux ## the four real agent CLIs under orch against a local model server (not in `make test`)
	$(PY) -m e2e.run $(E2E_ARGS)

docs: install ## regenerate docs/lifecycle.md from the machine's tables
	$(PY) docs/render_lifecycle.py

clean: ## remove caches and the local state dir's contents
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info
	find state -mindepth 1 ! -name .gitkeep -delete 2>/dev/null || true
