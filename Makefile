# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv and install what they need (torch pinned to the CPU wheel): the demo
# only raremix's core dependencies, the tests every extra they exercise.
VENV ?= .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.core-stamp
FULL := $(VENV)/.full-stamp
PYTHON ?= python3
PIP := $(BIN)/pip install -q --disable-pip-version-check

.PHONY: demo test install bench docs clean

$(CORE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e .
	touch $(CORE)

$(FULL): $(CORE)
	$(PIP) -e ".[hf,lmeval,ray,loggers,dev,docs]"
	touch $(FULL)

install: $(FULL)

demo: $(CORE)
	$(BIN)/raremix demo

test: $(FULL)
	@# the report test screenshots the HTML page in headless Chromium (Debian's package)
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --quiet --site-dir site
	$(BIN)/pytest -n 2 --durations=15

bench: $(FULL)
	$(BIN)/python benchmarks/run_all.py

docs: $(FULL)
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) runs studies out site
