"""dbt's own command line (`dbt.cli.main:cli`, what the `dbt` command runs). For the commands
that run models, the packages the dbt Python models import are imported first, on the main
thread: dbt-duckdb runs models on several threads, and two of them importing NumPy's compiled
core for the first time at once fail ("cannot import name ... from partially initialized
module"); imported here, they are only looked up by the models (about 3 s, spent by the first
Python model otherwise)."""

import importlib
import sys

from dbt.cli.main import cli

RUNS_MODELS = ("build", "run")
PYTHON_MODEL_PACKAGES = (
    "book_engine.warehouse",
    "evidence.warehouse",
    "gex.warehouse",
    "model_comparison.warehouse",
    "retrieval.warehouse",
)

if __name__ == "__main__":
    if sys.argv[1:2] and sys.argv[1] in RUNS_MODELS:
        for package in PYTHON_MODEL_PACKAGES:
            importlib.import_module(package)
    cli()
