"""The house reads bottom-up: each package imports only packages below it, the ground floor
(`foundation`) none, and nothing imports the command line (`spymaster`)."""

from __future__ import annotations

import ast

from foundation.project import PROJECT_ROOT
from spymaster.dbt_run import PYTHON_MODEL_PACKAGES

# bottom to top: a package may import only those before it
FLOORS = (
    "foundation",
    "cluster",
    "ingest",
    "book_engine",
    "gex",
    "synthetic_market",
    "retrieval",
    "model_comparison",
    "evidence",
    "hud",
    "live",
    "spymaster",
)


def imported_packages(package: str) -> dict[str, set[str]]:
    """The project packages each module of `package` imports (other than its own)."""
    found: dict[str, set[str]] = {}
    for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in FLOORS and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(PROJECT_ROOT)))
    return found


def test_every_package_imports_only_packages_below_it() -> None:
    upward = {
        f"{package} imports {other} ({', '.join(sorted(modules))})"
        for floor, package in enumerate(FLOORS)
        for other, modules in imported_packages(package).items()
        if FLOORS.index(other) > floor
    }
    assert upward == set()


def test_every_python_package_of_the_project_has_a_floor() -> None:
    packages = {path.parent.name for path in PROJECT_ROOT.glob("*/__init__.py")}
    assert packages - {"tests"} == set(FLOORS)


def test_the_dbt_python_models_import_only_what_dbt_run_imports_first() -> None:
    """The models call the domain packages' warehouse modules (never the command line), each
    imported before dbt runs them (spymaster.dbt_run: threads importing NumPy at once fail)."""
    imported = {
        node.module
        for path in (PROJECT_ROOT / "python_models").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in FLOORS
    }
    assert imported == set(PYTHON_MODEL_PACKAGES)
