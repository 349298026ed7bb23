from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cluster.ray_runtime import ray_session
from foundation.lake import Lake
from foundation.project import PROJECT_ROOT
from synthetic_market.simulate import MarketConfig, simulate_market
from tests.markets import build_market

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "databento"

# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadscope`), each
# scope one module, handed to whichever worker is free in the order below: the modules that
# build markets first, then the slowest (their time in CI's durations), so that the two
# workers finish together; the rest in file order.
FIRST_MODULES = (
    "tests/test_end_to_end.py",  # builds the end-to-end market (any module may: one does)
    "tests/test_retrieval_markets.py",  # builds the two 20-session retrieval markets
    "tests/test_live.py",
    "tests/test_trigger_causality.py",
    "tests/test_dbt_bronze_and_selection.py",
    "tests/test_cluster.py",
    "tests/test_live_gateway.py",
    "tests/test_synthetic_market.py",
    "tests/test_live_hud.py",
    "tests/test_hud_browser.py",
)
MARKET_FOLDER = "market"


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker's dbt runs keep their parse and artifacts in a target folder of their
    own: two dbt processes writing one manifest.json race."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        os.environ["DBT_TARGET_PATH"] = str(PROJECT_ROOT / "target" / f"pytest-{worker}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order = {module: rank for rank, module in enumerate(FIRST_MODULES)}
    items.sort(key=lambda item: order.get(item.nodeid.split("::", 1)[0], len(order)))


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
    """The tiny end-to-end market, built once per run for both xdist workers: by the first
    to ask, while the other waits for it. Every module reads it and none writes it (DuckDB
    lets no other process open a file one writes): test_end_to_end, which rebuilds models
    and changes files, does so in a copy of its own."""
    run_folder = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_folder = run_folder.parent  # each worker's basetemp is a folder of the run's
    return Lake(built_once(run_folder / MARKET_FOLDER, build_market) / "lake")


def built_once(folder: Path, build: Callable[[Path], object]) -> Path:
    """`folder` built by `build` once among the processes of a test run: the first to take
    the lock builds; the others wait, then find it built (or the first's failure, raised
    again rather than built twice)."""
    done, failed = folder / ".built", folder / ".failed"
    with folder.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            raise RuntimeError(f"building {folder} failed in another worker: {failed.read_text()}")
        if not done.exists():
            folder.mkdir()
            try:
                build(folder)
            except BaseException as error:
                failed.write_text(repr(error)[:2000])
                raise
            done.touch()
    return folder
