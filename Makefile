# spymaster: every target installs what it needs (uv included) into .venv first.
PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
export UV_PYTHON_DOWNLOADS := never
LAKE ?= $(CURDIR)/lake
export SPYMASTER_LAKE := $(abspath $(LAKE))

DEMO_SESSIONS ?= 20
DEMO_SEED ?= 7
# 0 gives the control market: same prices and outcomes, no planted order-book signatures
DEMO_SIGNAL_STRENGTH ?= 1

.PHONY: install chromium demo test lint ruff sqlfluff pytest bench clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@# the environment here sets PYTHONDONTWRITEBYTECODE: compiled once at install, start-up
	@# stays fast (set for every `uv run`, it would compile 15,000 files again: 1 s each)
	$(UV) sync --locked --compile-bytecode

# The HUD's browser tests and benchmark drive Debian's Chromium (never a downloaded browser).
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests"; \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The synthetic market into the lake's raw folder, landed, built and summarised.
demo: install
	$(UV) run spymaster simulate --out $(SPYMASTER_LAKE)/raw --sessions $(DEMO_SESSIONS) --seed $(DEMO_SEED) --scale demo --signal-strength $(DEMO_SIGNAL_STRENGTH)
	$(UV) run spymaster ingest --lake $(SPYMASTER_LAKE) --workers 2
	$(UV) run spymaster build --lake $(SPYMASTER_LAKE)
	$(UV) run spymaster summary --lake $(SPYMASTER_LAKE)

# sqlfluff lints beside pytest, on the core the unit tests leave idle (about a minute of CI)
test: install ruff
	$(MAKE) --no-print-directory -j2 sqlfluff pytest

lint: ruff sqlfluff

ruff: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .

# The dbt templater compiles the project: a target folder and an (empty) lake of its own keep
# it apart from the dbt runs of the tests; its report is printed whole when it ends.
SQLFLUFF_DIR := $(CURDIR)/target/sqlfluff
sqlfluff: install
	@mkdir -p $(SQLFLUFF_DIR)/lake
	@echo "sqlfluff lint models tests/dbt (report at the end)"
	@DBT_TARGET_PATH=$(SQLFLUFF_DIR) DBT_LOG_PATH=$(SQLFLUFF_DIR) SPYMASTER_LAKE=$(SQLFLUFF_DIR)/lake \
		$(UV) run sqlfluff lint models tests/dbt > $(SQLFLUFF_DIR)/report.txt 2>&1; \
		status=$$?; echo "sqlfluff lint models tests/dbt:"; cat $(SQLFLUFF_DIR)/report.txt; exit $$status

# Two xdist workers, a test module at a time, the slowest first (tests/conftest.py): both read
# the end-to-end market, which the first to ask builds. The Numba kernels are compiled once
# first (beside sqlfluff), not by each of the first builds at once.
pytest: install chromium
	$(UV) run python -m tests.compiled_kernels
	$(UV) run pytest -n 2 --dist loadscope --no-loadscope-reorder

bench: install chromium
	$(UV) run spymaster bench

clean:
	rm -rf target logs .pytest_cache .ruff_cache
