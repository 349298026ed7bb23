"""The `spymaster` command line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import databento_dbn as dbn
import duckdb
import pytest

from foundation.lake import Lake
from spymaster.cli import drop_interrupted_build_tables, main
from tests.dbn_fixtures import book_day, write_dbn

DAY = dt.date(2024, 5, 8)


def test_ingest_prints_partitions_and_rerun_reports_unchanged(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dbn(raw / "day.mbo.dbn.zst", dbn.Schema.MBO, book_day(11, DAY, 5000.0), {"ESM4": 11}, DAY)
    lake = str(tmp_path / "lake")
    assert main(["ingest", "--raw", str(raw), "--lake", lake, "--workers", "1"]) == 0
    first = capsys.readouterr().out
    assert "futures_mbo/symbol=ESM4/dt=2024-05-08" in first
    assert "8 records landed" in first
    assert main(["ingest", "--raw", str(raw), "--lake", lake]) == 0
    assert "0 file(s) landed, 1 unchanged" in capsys.readouterr().out


def test_ingest_error_names_the_file_and_exits_1(
    raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (raw / "broken.mbo.dbn.zst").write_bytes(b"")
    code = main(["ingest", "--raw", str(raw), "--lake", str(tmp_path / "lake")])
    assert code == 1
    assert f"ingest failed: {raw / 'broken.mbo.dbn.zst'}: empty file" in capsys.readouterr().err


def test_lake_defaults_to_the_environment_variable(
    raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dbn(raw / "day.mbo.dbn.zst", dbn.Schema.MBO, book_day(11, DAY, 5000.0), {"ESM4": 11}, DAY)
    monkeypatch.setenv("SPYMASTER_LAKE", str(tmp_path / "env-lake"))
    assert main(["ingest", "--raw", str(raw)]) == 0
    assert (tmp_path / "env-lake" / "bronze" / "futures_mbo" / "symbol=ESM4").is_dir()


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (
            ["book", "--symbol", "ESM4", "--dt", "2024-02-30"],
            "argument --dt: '2024-02-30' is not a date",
        ),
        (
            ["book", "--symbol", "ESM4", "--dt", "2024-03-12", "--at", "2024-03-12T25:00:00"],
            "argument --at: '2024-03-12T25:00:00' is not an ISO-8601 time",
        ),
        (
            ["book", "--symbol", "ESM4", "--dt", "2024-03-12", "--depth", "-1"],
            "argument --depth: -1 is not a whole number of at least 1",
        ),
        (
            ["neighbors", "--level", "PM_HIGH", "--at", "2024-03-26T15:10:00Z", "--k", "0"],
            "argument --k: 0 is not a whole number of at least 1",
        ),
        (
            ["simulate", "--out", "unused", "--intraday-listings", "-5"],
            "argument --intraday-listings: expected points >= 0 or none, got '-5'",
        ),
    ],
)
def test_impossible_arguments_are_named_not_tracebacks(
    arguments: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    assert exit_.value.code == 2
    assert words in capsys.readouterr().err


def test_build_first_drops_what_an_interrupted_build_left(tmp_path: Path) -> None:
    """A killed build leaves dbt's `__dbt_tmp` relations visible to analysts (and builds
    before the delete+insert macro dropped it left an incremental Python model's staging
    table, `<model>__dbt_tmp<timestamp>` in the default schema); the next build drops them
    (and only them) before dbt starts."""
    lake = Lake(tmp_path / "lake")
    lake.root.mkdir()
    connection = duckdb.connect(str(lake.duckdb_path))
    connection.execute("create schema silver")
    connection.execute("create table silver.engine_book_snapshot_1s as select 1 as x")
    connection.execute("create table silver.engine_book_snapshot_1s__dbt_tmp as select 1 as x")
    connection.execute("create view silver.gex_surface_1s__dbt_tmp as select 1 as x")
    connection.execute(
        "create table main.engine_book_snapshot_1s__dbt_tmp20261127195831243628 as select 1 as x"
    )
    connection.close()
    assert drop_interrupted_build_tables(lake) == [
        "main.engine_book_snapshot_1s__dbt_tmp20261127195831243628",
        "silver.engine_book_snapshot_1s__dbt_tmp",
        "silver.gex_surface_1s__dbt_tmp",
    ]
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    tables = connection.execute("select table_name from information_schema.tables").fetchall()
    connection.close()
    assert tables == [("engine_book_snapshot_1s",)]
    assert drop_interrupted_build_tables(lake) == []


def test_build_runs_the_data_tests_and_the_unit_tests_when_asked(raw: Path, tmp_path: Path) -> None:
    """dbt's unit tests check the models' SQL on fixed inputs (`make test` runs them through
    the tests' builds): a build runs the lake's data tests, and the unit tests with
    --unit-tests."""
    write_dbn(raw / "day.mbo.dbn.zst", dbn.Schema.MBO, book_day(11, DAY, 5000.0), {"ESM4": 11}, DAY)
    lake = str(tmp_path / "lake")
    assert main(["ingest", "--raw", str(raw), "--lake", lake, "--workers", "1"]) == 0

    target = tmp_path / "target"  # one for both: the second build's parse is partial

    def kinds_built(*flags: str) -> set[str]:
        selection = ["--select", "+contract_day_volume", "--target-path", str(target)]
        assert main(["build", "--lake", lake, *flags, *selection]) == 0
        results = json.loads((target / "run_results.json").read_text())["results"]
        return {result["unique_id"].split(".")[0] for result in results}

    assert kinds_built() == {"model", "test"}
    assert kinds_built("--unit-tests") == {"model", "test", "unit_test"}


@pytest.mark.parametrize("command", ["ingest", "build"])
def test_a_lake_path_that_is_a_file_is_named(
    command: str, raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dbn(raw / "day.mbo.dbn.zst", dbn.Schema.MBO, book_day(11, DAY, 5000.0), {"ESM4": 11}, DAY)
    not_a_folder = tmp_path / "lake"
    not_a_folder.write_text("a file where the lake should be")
    arguments = ["--lake", str(not_a_folder)] + (["--raw", str(raw)] if command == "ingest" else [])
    assert main([command, *arguments]) == 1
    error = capsys.readouterr().err
    assert f"{command} failed: {not_a_folder}: cannot make the lake's folder" in error
    assert not_a_folder.read_text() == "a file where the lake should be"
