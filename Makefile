# SparseViT for QGIS — developer entry points. Every target sets up what it needs first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export QT_QPA_PLATFORM ?= offscreen

.PHONY: setup demo test test-engine test-qgis lint bench model package screenshot screenshot-install clean

setup:            ## apt packages, venv, pinned wheels, sanity check (idempotent)
	@bash scripts/setup.sh

demo: setup       ## run the whole pipeline on the bundled sample scene with the default model
	@bash scripts/demo.sh

test: setup       ## the whole test suite (engine + plugin in a headless QGIS)
	@$(PY) -m pytest

lint: setup       ## ruff: pyflakes, pycodestyle and import order (pyproject.toml)
	@$(VENV)/bin/ruff check engine sparsevit_qgis tests benchmarks scripts

test-engine: setup
	@$(PY) -m pytest tests/engine

test-qgis: setup
	@$(PY) -m pytest tests/qgis

bench: setup      ## every benchmark; figures go to benchmarks/results/*.json and *.md
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

model: setup      ## retrain the bundled default model (resources/models/default), ~65 min on 2 cores
	@$(PY) -m sparsevit.recipes.default_model

package: setup    ## the installable QGIS plugin zip in dist/
	@bash scripts/package.sh

screenshot: setup ## the real QGIS window (Xvfb): a panel run (qgis_sparsevit.png), tagging and training (qgis_tagging.png, qgis_fit_map.png) in out/screenshots/
	@bash scripts/qgis_screenshot.sh
	@bash scripts/qgis_screenshot_tagging.sh

screenshot-install: setup ## a new user's first open and Install engine from WHEELS=<folder of scripts/make_wheelhouse.sh> (qgis_first_open.png, qgis_install_progress.png, qgis_installed.png)
	@bash scripts/qgis_screenshot_install.sh "$(WHEELS)"

clean:
	rm -rf dist build .pytest_cache
