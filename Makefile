# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv and install what raremix needs (torch pinned to the CPU wheel).
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: demo test install bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e ".[hf,ray,loggers,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/raremix demo

test: $(STAMP)
	@# the report test screenshots the HTML page in headless Chromium (Debian's package)
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --durations=15

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

docs: $(STAMP)
	@# the docs extra (mkdocs, mkdocstrings) only when missing; the build reads src/ statically
	$(BIN)/python -c "import mkdocs, mkdocstrings_handlers.python" 2>/dev/null || $(BIN)/pip install -q --disable-pip-version-check -e ".[docs]"
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) runs studies out site
