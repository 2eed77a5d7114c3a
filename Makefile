# One command each: `make demo` syncs a sandbox site into DuckDB; `make test` sets the
# project up from nothing and runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint clean

$(BIN)/tap-maxio: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

.meltano/installed: meltano.yml $(BIN)/tap-maxio
	$(BIN)/meltano install
	mkdir -p .meltano && touch $@

install: $(BIN)/tap-maxio .meltano/installed

lint: $(BIN)/tap-maxio
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tap_maxio scripts benchmarks

demo: install
	$(BIN)/python scripts/demo.py

test: install lint
	$(BIN)/python -m pytest -W error

clean:
	rm -rf $(VENV) .meltano output .pytest_cache .mypy_cache .ruff_cache
