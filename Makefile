# Two commands on a fresh machine: `make book` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
JB := $(VENV)/bin/jupyter-book
STAMP := $(VENV)/.installed
BUILD := _build

.PHONY: book site notebooks slides slides-pdf pdf lab test test-fast install gpu-report clean

install: $(STAMP)

# Everything from requirements.lock: every transitive package pinned and hashed (pip
# itself too), compiled by uv from requirements.txt (README: "Updating the pinned
# versions"); then d2l without its own pins, and optbook built by the locked setuptools.
# pip installs only the locked uv (its entry cut from the lock, hashes and all); uv
# installs the rest, bytecode compiled (as pip does): about 60 s against pip's 260 s
# for torch's 6 GB of CUDA wheels.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@awk '/^uv==/{p=1} p{print} p&&!/\\$$/{exit}' requirements.lock > $(VENV)/uv.lock.txt
	$(PY) -m pip install -q --require-hashes --no-deps -r $(VENV)/uv.lock.txt
	$(VENV)/bin/uv pip sync -q --require-hashes --compile-bytecode --python $(PY) requirements.lock
	$(PY) -m pip install -q --no-deps d2l==1.0.3
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# The site, the downloadable notebooks and the slide decks.
book: site notebooks slides
	@echo "Open $(CURDIR)/$(BUILD)/html/index.html  (slides: $(BUILD)/html/slides/index.html)"

# Build the HTML site, executing every chapter; a warning or a failing cell fails it.
# The bake-off's raw results go on the site as data/*.csv, for readers to re-analyse.
SITE_DATA := code/optbook/book/records/bakeoff.csv code/optbook/book/records/bakeoff_curves.csv
site: $(STAMP)
	@start=$$(date +%s); \
	$(JB) build . -W -n --keep-going || exit 1; \
	mkdir -p $(BUILD)/html/data && cp $(SITE_DATA) $(BUILD)/html/data/; \
	$(PY) code/scripts/exec_report.py $(BUILD) $$start; \
	echo "Build wall time (install excluded): $$(( $$(date +%s) - start )) s"

# One plain .ipynb per chapter (MyST constructs converted), into the built site.
notebooks: site
	$(PY) code/scripts/bookexport.py notebooks $(BUILD)

# One reveal.js deck per chapter plus an index, with pinned local reveal.js/MathJax.
SLIDES_VENDOR := code/scripts/slides/node_modules/.installed
$(SLIDES_VENDOR): code/scripts/slides/package.json
	cd code/scripts/slides && npm install --no-audit --no-fund --no-package-lock --loglevel=error
	@touch $@

slides: notebooks $(SLIDES_VENDOR)
	$(PY) code/scripts/bookexport.py slides $(BUILD)

# Handouts: one PDF per deck, printed by headless Chromium in reveal.js's print mode
# (one page per slide, no blank last page), into _build/html/slides/pdf/.
slides-pdf: slides
	$(PY) code/scripts/slides_pdf.py $(BUILD)

# The whole book as one PDF, _build/latex/book.pdf: Sphinx's LaTeX builder and xelatex
# (Debian's texlive-xetex, texlive-latex-extra, ...: see .ci/run). It reuses the site's
# execution cache, so after `make site` no chapter is executed again.
pdf: $(STAMP)
	$(PY) code/scripts/book_pdf.py $(BUILD)

# JupyterLab on the repository; chapters (MyST .md) open as notebooks through jupytext.
lab: $(STAMP)
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	@echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}' \
		> $(VENV)/share/jupyter/lab/settings/overrides.json
	$(VENV)/bin/jupyter lab --notebook-dir=$(CURDIR) chapters/preface.md

# The whole suite: the build is part of it (the book tests read the built pages).
# (Running the build beside the other tests was tried: their threads and inductor's
# compile workers starved the build's kernel, 5x slower, past the 120 s cell timeout.)
test: book
	$(PY) -m pytest -n 2 -p no:cacheprovider --durations=25

# The inner loop: no build, no slow tests.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" -n 2

# CUDA measurements of the book and optbook (README: GPU report): no install step, so
# it runs under a lent device's own python3 as well as under the venv.
GPU_REPORT_PY ?= $(if $(wildcard $(PY)),$(PY),python3)
gpu-report:
	$(GPU_REPORT_PY) code/scripts/gpu_report.py $(GPU_REPORT_ARGS)

clean:
	rm -rf $(BUILD)
