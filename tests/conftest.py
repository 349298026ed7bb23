from __future__ import annotations

from pathlib import Path

import pytest

from spymaster.lake import PROJECT_ROOT, Lake

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "databento"


@pytest.fixture
def shared_data() -> Path:
    """The real Databento sample files (../shared/data/databento), or a skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real Databento sample files not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    folder = tmp_path / "raw"
    folder.mkdir()
    return folder
