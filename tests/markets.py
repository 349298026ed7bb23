"""Built test markets and the helpers that query them (shared by the end-to-end, HUD and
browser tests, so each market is generated and built once per run)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import duckdb

from foundation.lake import Lake
from foundation.project import PROJECT_ROOT, dbt_command
from ingest.landing import ingest
from synthetic_market.scales import SCALES
from synthetic_market.simulate import MarketConfig, simulate_market

# The end-to-end market: a roll in the first days, then included sessions with triggers,
# calibrated vacuum scores and neighbours from earlier sessions.
MARKET_SESSIONS = 8
MARKET_SEED = 21


def dbt_target() -> Path:
    """Where the tests' dbt runs write manifest.json and catalog.json (see conftest)."""
    return Path(os.environ.get("DBT_TARGET_PATH", PROJECT_ROOT / "target"))


def dbt(lake: Lake, *args: str) -> str:
    result = subprocess.run(
        dbt_command(args),
        env=lake.environment(),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result.stdout


def warehouse(lake: Lake, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        return connection.execute(sql, params or []).fetchall()
    finally:
        connection.close()


def build_market(root: Path) -> Lake:
    """The tiny end-to-end market, simulated, landed and built (every model and test)."""
    lake = Lake(root / "lake")
    simulate_market(
        lake.raw, MarketConfig(sessions=MARKET_SESSIONS, seed=MARKET_SEED, scale=SCALES["tiny"])
    )
    ingest(lake.raw, lake, workers=2)
    dbt(lake, "build")
    return lake


def copied_market(market: Lake, root: Path) -> Lake:
    """A copy of a built market for tests that rebuild models and change its files: the
    lake's files copied (modification times kept), then the views that read the lake's files
    by their path (bronze, the engine's partitions) made again over the copy's."""
    lake = Lake(root / "lake")
    shutil.copytree(market.root, lake.root)
    dbt(lake, "run", "--select", "config.materialized:view")
    return lake
