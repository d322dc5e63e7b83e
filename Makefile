# Two commands on a fresh machine: `make book` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
JB := $(VENV)/bin/jupyter-book
STAMP := $(VENV)/.installed
BUILD := _build

.PHONY: book test test-fast install clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps d2l==1.0.3
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

# Build the HTML site, executing every chapter; a warning or a failing cell fails it.
book: $(STAMP)
	@start=$$(date +%s); \
	$(JB) build . -W -n --keep-going || exit 1; \
	$(PY) code/scripts/exec_report.py $(BUILD) $$start; \
	echo "Build wall time (install excluded): $$(( $$(date +%s) - start )) s"
	@echo "Open $(CURDIR)/$(BUILD)/html/index.html"

# The whole suite: the build is part of it (the book tests read the built pages).
test: book
	$(PY) -m pytest -n 2 -p no:cacheprovider

# The inner loop: no build, no slow tests.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" -n 2

clean:
	rm -rf $(BUILD)
