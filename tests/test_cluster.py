"""Ray: ingest and the engine models as Ray tasks give the same lake and warehouse as without
it (the end-to-end market landed and built again through a local Ray; the failure paths are in
test_cluster_failures.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from cluster.engine_partitions import MANIFEST_FILE
from foundation.lake import Lake
from foundation.project import PROJECT_ROOT
from spymaster.warehouse_diff import diff_warehouses, format_diff
from tests.lake_queries import bronze_files
from tests.markets import warehouse


def _spymaster(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("spymaster")), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_tiny_market_through_ray_lands_and_builds_the_same_lake(
    market_lake: Lake, tmp_path: Path, local_ray: str
) -> None:
    """Ingest with --ray auto (a local Ray of the command's own), build joining a running
    cluster by its address: byte-identical bronze; the engine models, what they read and the
    views over them the same row for row (the SQL layers further down run the same code on the
    same rows either way: the Ray benchmark compares every table); every engine
    model's contract-days written as partitions with manifests."""
    ray_lake = Lake(tmp_path / "lake")
    # the market's raw files in this lake's own raw folder (hard links), as they are in the
    # market's: the manifests name them alike, relative to each lake
    shutil.copytree(market_lake.raw, ray_lake.raw, copy_function=os.link)
    landed = _spymaster(
        "ingest", "--lake", str(ray_lake.root), "--raw", str(ray_lake.raw), "--ray", "auto"
    )
    assert landed.returncode == 0, landed.stderr[-3000:]
    assert bronze_files(ray_lake) == bronze_files(market_lake)
    # the data tests ran on the same tables in the lake without Ray
    built = _spymaster(
        *("build", "--lake", str(ray_lake.root), "--ray", local_ray),
        *("--select", "+tag:engine+1", "--exclude-resource-type", "test"),
    )
    assert built.returncode == 0, built.stdout[-6000:] + built.stderr[-3000:]
    diffs = [d for d in diff_warehouses(market_lake, ray_lake) if d.note != "only in this lake"]
    assert all(diff.same for diff in diffs), format_diff(diffs)
    compared = {diff.table for diff in diffs}
    assert {f"silver.engine_{model}" for model in ENGINE_MODELS} <= compared
    assert {"silver.book_snapshot_1s", "silver.options_quotes_1s", "silver.gex_surface_1s"} <= (
        compared
    )
    engine = ray_lake.root / "engine"
    # and the options' book by second, which only the options engine reads
    assert sorted(path.name for path in engine.iterdir()) == sorted(
        [*ENGINE_MODELS, "options_book_1s"]
    )
    manifests = sorted(engine.glob(f"book_snapshot_1s/symbol=*/dt=*/{MANIFEST_FILE}"))
    [(included_days,)] = warehouse(
        market_lake, "select count(distinct (symbol, dt)) from silver.engine_book_snapshot_1s"
    )
    assert len(manifests) == included_days


ENGINE_MODELS = (
    "book_snapshot_1s",
    "depth_and_flow_1s",
    "gex_by_strike_1s",
    "options_quotes_1s",
    "zero_gamma_1s",
)


def test_an_address_where_no_cluster_answers_is_a_clear_error(tmp_path: Path) -> None:
    result = _spymaster("build", "--lake", str(tmp_path / "lake"), "--ray", "127.0.0.1:1")
    assert result.returncode == 1
    assert "--ray 127.0.0.1:1: no Ray cluster answers there" in result.stderr
    assert "Traceback" not in result.stderr
