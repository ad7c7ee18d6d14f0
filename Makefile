# make train: set up .venv and run the main job on the embedded default dataset.
# make test:  run the test suite (set ADASPLIT_DATA to run the dataset tests).
VENV ?= .venv
PY := $(VENV)/bin/python
# pip extras: dev (tests, lint); CI adds rl, the outside RL libraries of docs/rl-libraries.md
EXTRAS ?= dev

.PHONY: install train test quick lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed

train: install
	$(PY) train_agent.py --algo reinforce

test: install
	$(PY) -m pytest -q

quick: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
