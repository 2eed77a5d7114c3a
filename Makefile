# One command each, also runnable without make as `python3 scripts/dev.py <command>`:
# `make demo` syncs a sandbox site into DuckDB; `make sites` syncs 20 sandbox sites through
# Dagster, 4 at a time; `make test` sets the project up from nothing and runs every check.
PYTHON ?= python3

# `make mutate` (mutation testing, docs/mutation.md) is for whoever changes the core
# modules; `make test` does not run it.
.PHONY: install demo sites test lint mutate clean

install demo sites test lint mutate:
	$(PYTHON) scripts/dev.py $@

clean:
	rm -rf .venv .meltano .pytest_cache .mypy_cache .ruff_cache mutants
	find output -mindepth 1 ! -name .gitignore -delete
