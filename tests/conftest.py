from __future__ import annotations

from pathlib import Path

import pytest

from spymaster.lake import PROJECT_ROOT, Lake
from synthetic_market.simulate import MarketConfig, simulate_market
from tests.markets import build_market

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


@pytest.fixture(scope="session")
def demo_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated session at demo scale (2024-03-04), shared by the test modules."""
    out = tmp_path_factory.mktemp("demo-day")
    simulate_market(out, MarketConfig(sessions=1, seed=11))
    return out


@pytest.fixture(scope="session")
def market_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The tiny end-to-end market, built once for every test module that reads it."""
    return build_market(tmp_path_factory.mktemp("market"))
