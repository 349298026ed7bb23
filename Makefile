# spymaster: every target installs what it needs (uv included) into .venv first.
PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
# The environment here sets PYTHONDONTWRITEBYTECODE; compiling at install keeps start-up fast.
export UV_COMPILE_BYTECODE := 1
export UV_PYTHON_DOWNLOADS := never
LAKE ?= $(CURDIR)/lake
export SPYMASTER_LAKE := $(abspath $(LAKE))

.PHONY: install test lint pytest bench clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --locked

test: install lint pytest

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run sqlfluff lint models tests/dbt

pytest: install
	$(UV) run pytest

bench: install
	$(UV) run spymaster bench

clean:
	rm -rf target logs .pytest_cache .ruff_cache
