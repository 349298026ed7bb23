"""A lake grown a day at a time equals one built at once; a new day builds only that day in the
day_partitioned models and scores only its folds in the walk-forward models, and the build's
tests check the dates it built (an audit, all)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from foundation.lake import Lake
from ingest.landing import ingest
from spymaster.cli import main
from spymaster.warehouse_diff import diff_warehouses, format_diff
from tests.markets import dbt, dbt_target, warehouse

pytestmark = pytest.mark.dbt


def day_partitioned_models() -> list[tuple[str, str]]:
    """(schema, name) of every day_partitioned model, from the manifest of the last dbt run."""
    manifest = json.loads((dbt_target() / "manifest.json").read_text())
    return sorted(
        (node["schema"], node["name"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] == "day_partitioned"
    )


def engine_models() -> list[str]:
    """The engine tables that record a day build state (their post-hook)."""
    manifest = json.loads((dbt_target() / "manifest.json").read_text())
    return sorted(
        node["name"]
        for node in manifest["nodes"].values()
        if any(
            "record_day_build_state" in hook["sql"] for hook in node["config"].get("post-hook", [])
        )
    )


def build_runs(lake: Lake, name: str) -> dict[dt.date, str]:
    """The dbt invocation that last built each date of a day_partitioned model (or changed an
    engine table's partitions of the date)."""
    return dict(warehouse(lake, f"select dt, invocation_id from build_state.{name}__dates"))


def plant(lake: Lake, *statements: tuple[str, list[object]]) -> None:
    """Change the warehouse behind dbt's back."""
    connection = duckdb.connect(str(lake.duckdb_path))
    try:
        for sql, params in statements:
            connection.execute(sql, params)
    finally:
        connection.close()


def test_a_day_landed_later_builds_that_day_only_and_equals_a_build_at_once(
    market_lake: Lake, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    last_day = max(
        day for (day,) in warehouse(market_lake, "select dt from silver.session_calendar")
    )
    stamp = f"{last_day:%Y%m%d}"
    grown = Lake(tmp_path / "lake")
    held = []
    for path in sorted(market_lake.raw.rglob("*")):
        if path.is_file():
            copy = grown.raw / path.relative_to(market_lake.raw)
            copy.parent.mkdir(parents=True, exist_ok=True)
            if f"-{stamp}." in path.name:
                held.append((path, copy))
            else:
                shutil.copy2(path, copy)
    assert len(held) == 5  # the day's futures and options files
    ingest(grown.raw, grown, workers=2)
    dbt(grown, "build", "--exclude", "resource_type:unit_test")
    models = day_partitioned_models()
    assert len(models) >= 15
    engines = engine_models()
    assert len(engines) == 6
    models += [("silver", name) for name in engines]
    before = {name: build_runs(grown, name) for _, name in models}
    assert all(last_day not in runs for runs in before.values())

    for path, copy in held:
        shutil.copy2(path, copy)
    ingest(grown.raw, grown, workers=2)
    log = dbt(grown, "build", "--exclude", "resource_type:unit_test")

    for schema, name in models:
        after = build_runs(grown, name)
        rebuilt = {day for day, run in after.items() if before[name].get(day) != run}
        assert rebuilt == {last_day}, f"{schema}.{name}"
        if name not in engines:
            assert f"{name}: 1 of {len(after)} dates built" in log
    diffs = diff_warehouses(grown, market_lake)
    assert all(diff.same for diff in diffs), format_diff(diffs)

    # a build tests the dates it computed; `spymaster audit` tests every date
    first_day = min(build_runs(grown, "vacuum_surface_1s"))
    plant(
        grown,
        (
            "insert into silver.vacuum_surface_1s select * from silver.vacuum_surface_1s "
            "where dt = ? limit 1",
            [first_day],
        ),
    )
    dbt(grown, "build", "--select", "vacuum_surface_1s", "--exclude", "resource_type:unit_test")
    assert main(["audit", "--lake", str(grown.root), "--select", "vacuum_surface_1s"]) == 1
    assert "FAIL 1 unique_combination_of_columns_vacuum_surface_1s" in capfd.readouterr().out


def test_the_walk_forward_keeps_the_folds_it_holds_and_a_full_refresh_scores_all(
    market_lake: Lake, tmp_path: Path
) -> None:
    """A fold whose fingerprint the table holds is taken from it, not scored again: a value
    planted in such a fold survives a build (the proof that nothing refits it) and goes away
    with --full-refresh."""
    lake = Lake(tmp_path / "lake")
    shutil.copytree(market_lake.root, lake.root)
    plant(
        lake,
        (
            "update gold.model_walk_forward_scores set p_break = 0.123 "
            "where model = 'logistic' and p_break is not null",
            [],
        ),
        (
            "update gold.retrieval_trigger_signals set similarity_mean = 0.123 "
            "where similarity_mean is not null",
            [],
        ),
    )
    counts = (
        "select (select count(*) from gold.model_walk_forward_scores where p_break = 0.123), "
        "(select count(*) from gold.retrieval_trigger_signals where similarity_mean = 0.123)"
    )
    (planted_rows,) = warehouse(lake, counts)
    assert min(planted_rows) > 0
    select = (
        "--select",
        "model_walk_forward_scores+",
        "retrieval_trigger_signals",
        "--exclude",
        "resource_type:unit_test",
    )
    dbt(lake, "build", *select)
    assert warehouse(lake, counts) == [planted_rows]
    dbt(lake, "build", "--full-refresh", *select)
    assert warehouse(lake, counts) == [(0, 0)]
