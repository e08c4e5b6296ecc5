# Developer entry points. Every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(VENV)/.bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

demo: $(VENV)/.dev   ## crawl the bundled demo site and print the summary
	$(BIN)/python -m scraper demo

test: $(VENV)/.dev   ## run the whole test suite
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev   ## ruff (errors, complexity <= 10), mypy --strict, import contracts
	$(BIN)/ruff check scraper tests bench
	$(BIN)/mypy --strict scraper
	$(BIN)/lint-imports

bench: $(VENV)/.bench   ## compare against Scrapy and hand-written crawlers
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
