from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.ray_runtime import ray_session
from spymaster.lake import PROJECT_ROOT, Lake
from synthetic_market.simulate import MarketConfig, simulate_market
from tests.markets import build_market

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "databento"

# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadscope`), each
# scope a module but for one: every module that reads the end-to-end market is one scope, so
# one worker builds it once and runs them all (some rebuild models in its warehouse, and
# DuckDB lets no other process open the file meanwhile). The workers take the market's
# scope first and the 20-session retrieval markets second, then the other modules in order.
# (xdist's own `loadgroup` relies on a nodeid attribute pytest 9 no longer has.)
MARKET_FIXTURE = "market_lake"
MARKET_SCOPE = "modules of the end-to-end market"
SECOND_SCOPE = "tests/test_retrieval_markets.py"


def market_modules() -> set[str]:
    """The test modules that name the market's fixture (the controller sees only test ids,
    not fixtures: each worker checks this against what its tests use)."""
    return {
        f"tests/{path.name}"
        for path in Path(__file__).parent.glob("test_*.py")
        if MARKET_FIXTURE in path.read_text()
    }


def _scope(nodeid: str, market: set[str]) -> str:
    module = nodeid.split("::", 1)[0]
    return MARKET_SCOPE if module in market else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 (only under xdist)

    market = market_modules()

    class MarketScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid, market)

    return MarketScopeScheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker's dbt runs keep their parse and artifacts in a target folder of their
    own: two dbt processes writing one manifest.json race."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        os.environ["DBT_TARGET_PATH"] = str(PROJECT_ROOT / "target" / f"pytest-{worker}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The market's modules first, then the retrieval markets, then the rest in order."""
    market = market_modules()
    for item in items:
        if MARKET_FIXTURE in item.fixturenames and _scope(item.nodeid, market) != MARKET_SCOPE:
            raise pytest.UsageError(
                f"{item.nodeid} reads {MARKET_FIXTURE} through another fixture: name "
                f"{MARKET_FIXTURE} in its module so that xdist runs it beside the others"
            )
    first = {MARKET_SCOPE: 0, SECOND_SCOPE: 1}
    items.sort(key=lambda item: first.get(_scope(item.nodeid, market), 2))


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


@pytest.fixture(scope="module")
def local_ray() -> Iterator[str]:
    """A local Ray with this machine's cores, for one module's tests."""
    with ray_session("auto") as address:
        yield address


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
