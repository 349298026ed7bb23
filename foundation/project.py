"""The project itself: its folder, its dbt vars (the one place market conventions are kept),
the dbt command line that builds it, and a digest of everything dbt reads."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from functools import cache
from importlib import metadata
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@cache
def project_vars() -> dict[str, object]:
    """The dbt vars of dbt_project.yml."""
    return yaml.safe_load((PROJECT_ROOT / "dbt_project.yml").read_text())["vars"]


# dbt's own command line, from the interpreter running spymaster (its virtual environment),
# with the packages of the Python models imported first (spymaster.dbt_run says why)
DBT = (sys.executable, "-m", "spymaster.dbt_run")


def dbt_command(dbt_args: Sequence[str]) -> list[str]:
    """The dbt command line for this project (the repo's profiles.yml)."""
    return [
        *DBT,
        *dbt_args,
        "--project-dir",
        str(PROJECT_ROOT),
        "--profiles-dir",
        str(PROJECT_ROOT),
    ]


# what dbt renders and builds the warehouse from: its tables change only with these (and dbt)
PROJECT_INPUTS = (
    "dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "python_models", "tests/dbt",
)  # fmt: skip


def project_digest() -> str:
    """SHA-256 (16 hex digits) of dbt's and dbt-duckdb's versions and every file of
    PROJECT_INPUTS: the version of the project a build or a compile came from."""
    digest = hashlib.sha256()
    for package in ("dbt-core", "dbt-duckdb"):
        digest.update(f"{package}=={metadata.version(package)}\n".encode())
    for name in PROJECT_INPUTS:
        root = PROJECT_ROOT / name
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts:
                continue
            digest.update(f"{path.relative_to(PROJECT_ROOT)}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
