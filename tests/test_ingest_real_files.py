"""Ingest of the real Databento sample files in ../shared/data/databento."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import databento as db
import duckdb
import numpy as np
import pytest

from foundation.dbn_facts import UNDEF_PRICE
from foundation.lake import Lake
from ingest.landing import ingest
from ingest.partitions import data_file_name
from tests.conftest import SHARED_DATA
from tests.lake_queries import bronze_sql

ESM4_MBO = "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst"
ESH4_MBO = "esh4-glbx-mdp3-20231225.mbo.dbn.zst"


@pytest.fixture(scope="module")
def landed_samples(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real Databento sample files not found at {SHARED_DATA}")
    lake = Lake(tmp_path_factory.mktemp("samples") / "lake")
    ingest(SHARED_DATA, lake)
    return lake


def test_esm4_and_esh4_mbo_land_every_record(landed_samples: Lake) -> None:
    counts = bronze_sql(
        landed_samples,
        "select symbol, count(*) from futures_mbo where dt in ('2024-05-08', '2023-12-25') "
        "group by symbol order by symbol",
    )
    assert counts == [("ESH4", 68_792), ("ESM4", 13_796)]


@pytest.mark.parametrize(
    ("file_name", "symbol", "day"),
    [(ESM4_MBO, "ESM4", "2024-05-08"), (ESH4_MBO, "ESH4", "2023-12-25")],
)
def test_mbo_fields_equal_the_databento_record_arrays(
    landed_samples: Lake, shared_data: Path, file_name: str, symbol: str, day: str
) -> None:
    expected = db.DBNStore.from_file(shared_data / file_name).to_ndarray()
    connection = duckdb.connect()
    landed = connection.execute(
        f"select * from {landed_samples.read_bronze_sql('futures_mbo')} "
        "where symbol = ? and dt = ? order by record_index",
        [symbol, day],
    ).fetchnumpy()
    assert np.array_equal(landed["record_index"], np.arange(len(expected)))
    for field in ("ts_recv", "ts_event", "price", "size", "order_id", "flags", "sequence"):
        assert np.array_equal(
            np.asarray(landed[field]).astype(np.int64), expected[field].astype(np.int64)
        ), field
    assert list(landed["action"]) == [action.decode() for action in expected["action"]]
    assert list(landed["side"]) == [side.decode() for side in expected["side"]]
    for column, bit in (
        ("is_last", 128),
        ("is_tob", 64),
        ("is_snapshot", 32),
        ("is_bad_ts_recv", 8),
    ):
        assert np.array_equal(np.asarray(landed[column]), (expected["flags"] & bit) != 0), column


def test_esm4_clear_record_keeps_undef_price(landed_samples: Lake) -> None:
    clears = bronze_sql(
        landed_samples,
        "select price, side, is_snapshot, record_index from futures_mbo where action = 'R'",
    )
    assert clears == [(UNDEF_PRICE, "N", True, 0)]


def test_esm4_action_mix_and_snapshot_adds(landed_samples: Lake) -> None:
    mix = bronze_sql(
        landed_samples,
        "select action, count(*) from futures_mbo where symbol = 'ESM4' group by 1 order by 1",
    )
    assert dict(mix) == {"A": 13_678, "C": 80, "F": 5, "M": 27, "R": 1, "T": 5}
    snapshot_adds = bronze_sql(
        landed_samples,
        "select count(*) from futures_mbo where symbol = 'ESM4' and action = 'A' and is_snapshot",
    )
    assert snapshot_adds == [(13_600,)]


def test_esh4_pre_2024_file_keeps_flags_130_and_has_no_clear(landed_samples: Lake) -> None:
    where = "symbol = 'ESH4' and dt = '2023-12-25'"
    flags = bronze_sql(
        landed_samples, f"select flags, count(*) from futures_mbo where {where} group by 1"
    )
    assert dict(flags) == {0: 13_045, 40: 8_725, 128: 1, 130: 47_021}
    mix = dict(
        bronze_sql(
            landed_samples, f"select action, count(*) from futures_mbo where {where} group by 1"
        )
    )
    assert "R" not in mix
    assert (mix["F"], mix["T"]) == (6_371, 2_973)


def test_spread_definitions_are_recognised_as_spreads(landed_samples: Lake) -> None:
    spreads = bronze_sql(
        landed_samples,
        "select symbol, raw_symbol, instrument_class, cfi, min_price_increment "
        "from futures_definitions where instrument_class = 'S' order by symbol",
    )
    assert spreads == [
        ("ESH5-ESM5", "ESH5-ESM5", "S", "FMIXSX", 50_000_000),
        ("ESM4-ESU4", "ESM4-ESU4", "S", "FMIXSX", 50_000_000),
    ]


def test_option_definitions_give_strike_right_expiration_and_underlying(
    landed_samples: Lake,
) -> None:
    options = bronze_sql(
        landed_samples,
        "select symbol, raw_symbol, instrument_class, strike_price, expiration, underlying, "
        "underlying_id, unit_of_measure_qty from options_definitions order by raw_symbol",
    )
    expiry = int(dt.datetime(2024, 6, 21, 13, 30, tzinfo=dt.UTC).timestamp()) * 10**9
    assert options == [
        ("ESM4", "ESM4 C3550", "C", 3_550 * 10**9, expiry, "ESM4", 5602, 50 * 10**9),
        ("ESM4", "ESM4 C4250", "C", 4_250 * 10**9, expiry, "ESM4", 5602, 50 * 10**9),
    ]


def test_outright_definition_gives_tick_and_multiplier(landed_samples: Lake) -> None:
    esm4 = bronze_sql(
        landed_samples,
        "select instrument_id, instrument_class, min_price_increment, unit_of_measure_qty "
        "from futures_definitions where symbol = 'ESM4'",
    )
    assert esm4 == [(5602, "F", 250_000_000, 50 * 10**9)]


def test_trades_and_mbp_1_files_land_by_utc_day(landed_samples: Lake) -> None:
    trades = bronze_sql(
        landed_samples, "select dt, count(*) from futures_trades group by 1 order by 1"
    )
    assert trades == [(dt.date(2024, 7, 1), 28), (dt.date(2024, 7, 2), 92)]
    assert bronze_sql(landed_samples, "select count(*) from futures_mbp_1") == [(2_288,)]


def test_partition_manifest_names_source_sha256_and_counts(
    landed_samples: Lake, shared_data: Path
) -> None:
    partition = landed_samples.partition_dir("futures_mbo", "ESM4", "2024-05-08")
    manifest = json.loads((partition / "_manifest.json").read_text())
    expected_sha = hashlib.sha256((shared_data / ESM4_MBO).read_bytes()).hexdigest()
    assert manifest["sources"][0]["sha256"] == expected_sha
    assert manifest["data_file"] == data_file_name(expected_sha)
    assert (partition / manifest["data_file"]).is_file()
    assert manifest["records"] == 13_796
    assert manifest["records_by_action"] == {"A": 13_678, "C": 80, "F": 5, "M": 27, "R": 1, "T": 5}
    assert manifest["ingest_version"] >= 1


def test_raw_files_are_never_modified(shared_data: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(shared_data, raw)
    before = {path.name: path.read_bytes() for path in raw.iterdir()}
    ingest(raw, Lake(tmp_path / "lake"))
    assert {path.name: path.read_bytes() for path in raw.iterdir()} == before
