"""Landing hand-built DBN files: routing, partitions, idempotency and atomic replacement."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import databento as db
import databento_dbn as dbn
import pyarrow.parquet as pq
import pytest
import zstandard

from foundation.lake import Lake
from foundation.lake_files import MANIFEST_FILE
from ingest.bronze_tables import Records, SourceSchema, arrow_schema, to_record_batch
from ingest.errors import IngestError
from ingest.landing import ingest
from ingest.partitions import PartitionKey, PartitionStager, data_file_name
from tests.dbn_fixtures import (
    book_day,
    day_start_ns,
    definition,
    encode,
    mbo,
    metadata,
    open_interest,
    px,
    write_dbn,
)
from tests.lake_queries import bronze_sql

DAY1 = dt.date(2024, 5, 8)
DAY2 = dt.date(2024, 5, 9)
ESM4, ESU4, SPREAD = 11, 12, 13


def lake_files(lake: Lake) -> dict[str, tuple[int, str]]:
    """Every data and manifest file of bronze: path -> (inode, sha256)."""
    files = {}
    for path in sorted(lake.bronze.rglob("*")):
        if path.is_file() and "_ingest" not in path.parts:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files[str(path.relative_to(lake.bronze))] = (path.stat().st_ino, digest)
    return files


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def two_contract_day(day: dt.date) -> list[dbn.MBOMsg]:
    """ESM4, ESU4 and their calendar spread interleaved in one file."""
    t0 = day_start_ns(day) + 3600 * 10**9
    return [
        mbo(ESM4, t0, "A", "B", px(5000.00), 1, 1),
        mbo(SPREAD, t0 + 1, "A", "B", px(-60.00), 4, 2),
        mbo(ESU4, t0 + 2, "A", "A", px(5060.25), 2, 3),
        mbo(ESM4, t0 + 3, "C", "B", px(5000.00), 1, 1),
        mbo(SPREAD, t0 + 4, "T", "A", px(-60.00), 4, flags=0),
        mbo(ESU4, t0 + 5, "M", "A", px(5060.50), 2, 3),
    ]


SYMBOLS = {"ESM4": ESM4, "ESU4": ESU4, "ESM4-ESU4": SPREAD}


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ((5,), 5),  # ESU4's modify: the second partition's rows, numbered in the file
        ((3, 2), 2),  # one in each contract: the first in the file, not the first partition's
    ],
)
def test_a_record_that_cannot_land_is_named_by_its_place_in_the_file(
    raw: Path, lake: Lake, bad: tuple[int, ...], named: int
) -> None:
    records = two_contract_day(DAY1)
    for row in bad:
        record = records[row]
        records[row] = mbo(
            record.instrument_id, record.ts_recv, chr(record.action), chr(record.side),
            record.price, record.size, record.order_id, record.flags, ts_event=2**64 - 1,
        )  # fmt: skip
    write_dbn(raw / "day.mbo.dbn.zst", dbn.Schema.MBO, records, SYMBOLS, DAY1)
    with pytest.raises(
        IngestError, match=rf"day\.mbo\.dbn\.zst: record {named}: ts_event is undefined"
    ):
        ingest(raw, lake)
    assert not list(lake.bronze.rglob("*.parquet"))


def test_two_contracts_in_one_file_land_in_two_partitions(raw: Path, lake: Lake) -> None:
    write_dbn(raw / "day.mbo.dbn.zst", dbn.Schema.MBO, two_contract_day(DAY1), SYMBOLS, DAY1)
    ingest(raw, lake)
    rows = bronze_sql(
        lake,
        "select symbol, dt, record_index, action from futures_mbo order by symbol, record_index",
    )
    assert rows == [
        ("ESM4", DAY1, 0, "A"),
        ("ESM4", DAY1, 3, "C"),
        ("ESU4", DAY1, 2, "A"),
        ("ESU4", DAY1, 5, "M"),
    ]


def test_bronze_mbo_keeps_prices_in_dictionary_pages_and_times_delta_packed(
    raw: Path, lake: Lake
) -> None:
    write_dbn(raw / "day.mbo.dbn.zst", dbn.Schema.MBO, two_contract_day(DAY1), SYMBOLS, DAY1)
    ingest(raw, lake)
    (path,) = (lake.bronze / "futures_mbo" / "symbol=ESM4").rglob("*.parquet")
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {
        row_group.column(i).path_in_schema: row_group.column(i).encodings
        for i in range(row_group.num_columns)
    }
    assert "RLE_DICTIONARY" in encodings["price"]
    assert "RLE_DICTIONARY" in encodings["action"]
    assert "DELTA_BINARY_PACKED" in encodings["ts_recv"]
    assert "DELTA_BINARY_PACKED" in encodings["order_id"]


def test_symlinked_download_folders_are_followed(raw: Path, tmp_path: Path, lake: Lake) -> None:
    downloads = tmp_path / "downloads" / "GLBX-2024"
    write_dbn(downloads / "day.mbo.dbn.zst", dbn.Schema.MBO, two_contract_day(DAY1), SYMBOLS, DAY1)
    (raw / "glbx").symlink_to(downloads.parent)
    (raw / "glbx-again").symlink_to(downloads.parent)  # the same folder twice: read once
    (raw / "loop").symlink_to(raw)  # a cycle ends
    report = ingest(raw, lake)
    assert report.records_landed == 4
    assert bronze_sql(lake, "select count(*) from futures_mbo") == [(4,)]


def test_calendar_spread_records_are_filtered_and_counted(raw: Path, lake: Lake) -> None:
    write_dbn(raw / "day.mbo.dbn.zst", dbn.Schema.MBO, two_contract_day(DAY1), SYMBOLS, DAY1)
    report = ingest(raw, lake)
    assert bronze_sql(lake, "select count(*) from futures_mbo where instrument_id = 13") == [(0,)]
    assert report.landed[0].filtered == {"futures spread ESM4-ESU4": 2}
    assert sorted(p.name for p in lake.table_dir("futures_mbo").iterdir()) == [
        "symbol=ESM4",
        "symbol=ESU4",
    ]


def test_a_chunk_of_only_filtered_records_is_counted(raw: Path, lake: Lake) -> None:
    """A file (or chunk) whose records are all one filtered instrument lands nothing."""
    spread = [record for record in two_contract_day(DAY1) if record.instrument_id == SPREAD]
    write_dbn(raw / "spread.mbo.dbn.zst", dbn.Schema.MBO, spread, SYMBOLS, DAY1)
    report = ingest(raw, lake)
    assert report.landed[0].filtered == {"futures spread ESM4-ESU4": 2}
    assert report.landed[0].partitions == []
    assert not lake.is_landed("futures_mbo")


def test_user_defined_instruments_are_filtered(raw: Path, lake: Lake) -> None:
    records = [
        mbo(ESM4, day_start_ns(DAY1) + 10, "A", "B", px(5000), 1, 1),
        mbo(77, day_start_ns(DAY1) + 20, "A", "B", px(1), 1, 2),
    ]
    write_dbn(
        raw / "d.mbo.dbn.zst", dbn.Schema.MBO, records, {"ESM4": ESM4, "UD:1V: GN 123": 77}, DAY1
    )
    report = ingest(raw, lake)
    assert report.landed[0].filtered == {"user-defined instrument UD:1V: GN 123": 1}


def test_multi_day_file_lands_one_partition_per_utc_day(raw: Path, lake: Lake) -> None:
    records = book_day(ESM4, DAY1, 5000.0) + book_day(ESM4, DAY2, 5010.0, seed=1)
    write_dbn(
        raw / "two-days.mbo.dbn.zst",
        dbn.Schema.MBO,
        records,
        {"ESM4": ESM4},
        DAY1,
        DAY2 + dt.timedelta(days=1),
    )
    ingest(raw, lake)
    rows = bronze_sql(
        lake, "select dt, count(*), min(record_index) from futures_mbo group by dt order by dt"
    )
    assert rows == [(DAY1, 8, 0), (DAY2, 8, 8)]


def test_second_run_rewrites_nothing(raw: Path, lake: Lake) -> None:
    write_dbn(
        raw / "a.mbo.dbn.zst", dbn.Schema.MBO, book_day(ESM4, DAY1, 5000.0), {"ESM4": ESM4}, DAY1
    )
    write_dbn(
        raw / "b.mbo.dbn",
        dbn.Schema.MBO,
        book_day(ESM4, DAY2, 5010.0),
        {"ESM4": ESM4},
        DAY2,
        compress=False,
    )
    first = ingest(raw, lake)
    before = lake_files(lake)
    second = ingest(raw, lake)
    assert len(first.landed) == 2
    assert second.landed == []
    assert len(second.unchanged) == 2
    assert lake_files(lake) == before


def test_same_raw_folder_gives_identical_bytes_in_two_lakes(raw: Path, tmp_path: Path) -> None:
    write_dbn(raw / "day.mbo.dbn.zst", dbn.Schema.MBO, two_contract_day(DAY1), SYMBOLS, DAY1)
    first, second = Lake(tmp_path / "one"), Lake(tmp_path / "two")
    ingest(raw, first)
    ingest(raw, second, workers=2)

    def digests(lake: Lake) -> dict[str, str]:
        return {path: digest for path, (_inode, digest) in lake_files(lake).items()}

    assert digests(first) == digests(second)


def test_changed_source_rebuilds_exactly_its_partitions(raw: Path, lake: Lake) -> None:
    changed = write_dbn(
        raw / "a.mbo.dbn.zst", dbn.Schema.MBO, book_day(ESM4, DAY1, 5000.0), {"ESM4": ESM4}, DAY1
    )
    write_dbn(
        raw / "b.mbo.dbn.zst", dbn.Schema.MBO, book_day(ESM4, DAY2, 5010.0), {"ESM4": ESM4}, DAY2
    )
    ingest(raw, lake)
    before = lake_files(lake)
    write_dbn(changed, dbn.Schema.MBO, book_day(ESM4, DAY1, 4990.0)[:5], {"ESM4": ESM4}, DAY1)
    report = ingest(raw, lake)
    after = lake_files(lake)
    assert [source.path.name for source in report.landed] == ["a.mbo.dbn.zst"]
    day1 = "futures_mbo/symbol=ESM4/dt=2024-05-08"
    day2 = "futures_mbo/symbol=ESM4/dt=2024-05-09"
    assert {path: after[path] for path in after if path.startswith(day2)} == {
        path: before[path] for path in before if path.startswith(day2)
    }
    # the new content's data file replaced the old one, which is gone
    assert [path for path in after if path.startswith(day1)] == [
        f"{day1}/{MANIFEST_FILE}",
        f"{day1}/{data_file_name(sha256(changed))}",
    ]
    assert f"{day1}/{data_file_name(sha256(changed))}" not in before
    assert bronze_sql(lake, f"select count(*) from futures_mbo where dt = '{DAY1}'") == [(5,)]


def test_partition_a_changed_source_no_longer_holds_is_removed(raw: Path, lake: Lake) -> None:
    source = write_dbn(raw / "a.mbo.dbn.zst", dbn.Schema.MBO, two_contract_day(DAY1), SYMBOLS, DAY1)
    ingest(raw, lake)
    only_esm4 = [record for record in two_contract_day(DAY1) if record.instrument_id == ESM4]
    write_dbn(source, dbn.Schema.MBO, only_esm4, SYMBOLS, DAY1)
    report = ingest(raw, lake)
    assert [str(key) for key in report.removed_partitions] == [
        "futures_mbo/symbol=ESU4/dt=2024-05-08"
    ]
    assert not lake.table_dir("futures_mbo").joinpath("symbol=ESU4").exists()
    assert bronze_sql(lake, "select distinct symbol from futures_mbo") == [("ESM4",)]


def test_identical_copy_in_another_folder_is_recognised_not_duplicated(
    raw: Path, lake: Lake
) -> None:
    original = write_dbn(
        raw / "a.mbo.dbn.zst", dbn.Schema.MBO, book_day(ESM4, DAY1, 5000.0), {"ESM4": ESM4}, DAY1
    )
    ingest(raw, lake)
    (raw / "backup").mkdir()
    shutil.copy2(original, raw / "backup" / original.name)
    report = ingest(raw, lake)
    assert report.landed == []
    assert bronze_sql(lake, "select count(*) from futures_mbo") == [(8,)]


def _land_two_days_inside(lake: Lake) -> Path:
    """Two days of ESM4 in the lake's own raw folder, landed; the first day's file returned."""
    lake.raw.mkdir(parents=True)
    first = write_dbn(
        lake.raw / "a.mbo.dbn.zst",
        dbn.Schema.MBO,
        book_day(ESM4, DAY1, 5000.0),
        {"ESM4": ESM4},
        DAY1,
    )
    write_dbn(
        lake.raw / "b.mbo.dbn.zst",
        dbn.Schema.MBO,
        book_day(ESM4, DAY2, 5010.0),
        {"ESM4": ESM4},
        DAY2,
    )
    ingest(lake.raw, lake)
    return first


def _correct_first_day(lake: Lake) -> None:
    """The first day's file corrected in place, landed again: only it lands, and the day holds
    the corrected records."""
    write_dbn(
        lake.raw / "a.mbo.dbn.zst",
        dbn.Schema.MBO,
        book_day(ESM4, DAY1, 4990.0)[:5],
        {"ESM4": ESM4},
        DAY1,
    )
    report = ingest(lake.raw, lake)
    assert [source.path.name for source in report.landed] == ["a.mbo.dbn.zst"]
    assert bronze_sql(lake, f"select count(*) from futures_mbo where dt = '{DAY1}'") == [(5,)]
    assert bronze_sql(lake, f"select count(*) from futures_mbo where dt = '{DAY2}'") == [(8,)]


def test_a_lake_moved_whole_still_knows_its_own_raw_files(tmp_path: Path) -> None:
    """Raw files inside the lake are named relative to it: after the lake's folder moves, an
    unchanged file is recognised without reading it and a corrected one replaces its own day
    (named by its old absolute path, it was a second file claiming the same day)."""
    _land_two_days_inside(Lake(tmp_path / "lake"))
    moved = Lake(tmp_path / "elsewhere" / "lake")
    moved.root.parent.mkdir()
    (tmp_path / "lake").rename(moved.root)
    report = ingest(moved.raw, moved)
    assert report.landed == []
    assert sorted(path.name for path in report.unchanged) == ["a.mbo.dbn.zst", "b.mbo.dbn.zst"]
    manifest = moved.table_dir("futures_mbo") / "symbol=ESM4" / f"dt={DAY1}" / MANIFEST_FILE
    assert json.loads(manifest.read_text())["sources"][0]["path"] == "raw/a.mbo.dbn.zst"
    _correct_first_day(moved)


def test_a_lake_that_named_its_raw_files_by_absolute_path_still_knows_them(
    tmp_path: Path,
) -> None:
    """Lakes landed before raw files were named relative to the lake hold absolute names in
    their manifests, registry and file stats: those name the same files."""
    lake = Lake(tmp_path / "lake")
    first = _land_two_days_inside(lake)
    for stored in (lake.bronze).rglob("*.json"):
        text = stored.read_text()
        for name in ("a", "b"):
            relative = f"raw/{name}.mbo.dbn.zst"
            text = text.replace(
                f'"{relative}"', json.dumps(str(first.with_name(f"{name}.mbo.dbn.zst")))
            )
        stored.write_text(text)
    assert str(first) in (lake.bronze / "_ingest" / "file_stats.json").read_text()
    assert ingest(lake.raw, lake).landed == []
    _correct_first_day(lake)


def test_failure_in_the_middle_of_a_write_keeps_the_old_partition(raw: Path, lake: Lake) -> None:
    source = write_dbn(
        raw / "a.mbo.dbn.zst", dbn.Schema.MBO, book_day(ESM4, DAY1, 5000.0), {"ESM4": ESM4}, DAY1
    )
    ingest(raw, lake)
    before = lake_files(lake)
    # The new version is valid for its first chunks, then a record has a foreign rtype.
    records = [bytearray(bytes(record)) for record in book_day(ESM4, DAY1, 4000.0)]
    records[6][1] = 0x13  # rtype of an instrument definition, in an MBO file
    header = metadata(dbn.Schema.MBO, DAY1, DAY2, {"ESM4": ESM4})
    source.write_bytes(zstandard.ZstdCompressor().compress(encode(header, records)))
    with pytest.raises(IngestError, match=r"a\.mbo\.dbn\.zst: record 6 has rtype 19"):
        ingest(raw, lake, chunk_records=2)
    assert lake_files(lake) == before
    assert not (lake.bronze / "_ingest" / "staging").exists()
    prices = bronze_sql(lake, "select max(price) from futures_mbo where action = 'A'")
    assert prices == [(px(5000.25),)]


def test_a_file_no_manifest_names_is_never_read_and_the_next_commit_deletes_it(
    raw: Path, lake: Lake
) -> None:
    """What a killed commit leaves (a data file moved in, its manifest not yet) is invisible,
    and the next commit of that partition deletes it."""
    source = write_dbn(
        raw / "a.mbo.dbn.zst", dbn.Schema.MBO, book_day(ESM4, DAY1, 5000.0), {"ESM4": ESM4}, DAY1
    )
    ingest(raw, lake)
    partition = lake.partition_dir("futures_mbo", "ESM4", DAY1.isoformat())
    landed = partition / data_file_name(sha256(source))
    shutil.copy(landed, partition / "part-0000000000000000-v1.parquet")
    assert bronze_sql(lake, "select count(*) from futures_mbo") == [(8,)]
    write_dbn(source, dbn.Schema.MBO, book_day(ESM4, DAY1, 4990.0)[:5], {"ESM4": ESM4}, DAY1)
    ingest(raw, lake)
    assert sorted(path.name for path in partition.iterdir()) == [
        MANIFEST_FILE,
        data_file_name(sha256(source)),
    ]
    assert bronze_sql(lake, "select count(*) from futures_mbo") == [(5,)]


def test_options_land_by_underlying_through_their_definitions(raw: Path, lake: Lake) -> None:
    t0 = day_start_ns(DAY1)
    expiry = day_start_ns(DAY1) + 20 * 3600 * 10**9
    definitions = [
        definition(ESM4, "ESM4", "F", t0),
        definition(
            501, "E2CK4 C5000", "C", t0, underlying="ESM4", strike_points=5000, expiration=expiry
        ),
        definition(
            502, "E2CK4 P4990", "P", t0, underlying="ESM4", strike_points=4990, expiration=expiry
        ),
        definition(
            601, "ESU4 C5100", "C", t0, underlying="ESU4", strike_points=5100, expiration=expiry
        ),
    ]
    symbols = {"ESM4": ESM4, "E2CK4 C5000": 501, "E2CK4 P4990": 502, "ESU4 C5100": 601}
    write_dbn(raw / "defs.definition.dbn.zst", dbn.Schema.DEFINITION, definitions, symbols, DAY1)
    quotes = [
        mbo(501, t0 + 10, "A", "B", px(12.25), 3, 1),
        mbo(502, t0 + 20, "A", "A", px(8.50), 2, 2),
        mbo(601, t0 + 30, "A", "B", px(30.00), 1, 3),
    ]
    option_symbols = {k: v for k, v in symbols.items() if k != "ESM4"}
    write_dbn(raw / "opt.mbo.dbn.zst", dbn.Schema.MBO, quotes, option_symbols, DAY1)
    stats = [open_interest(501, t0 + 5, 1200), open_interest(601, t0 + 6, 300)]
    write_dbn(raw / "opt.statistics.dbn.zst", dbn.Schema.STATISTICS, stats, option_symbols, DAY1)
    ingest(raw, lake)
    assert bronze_sql(lake, "select symbol, instrument_id from options_mbo order by 2") == [
        ("ESM4", 501),
        ("ESM4", 502),
        ("ESU4", 601),
    ]
    assert bronze_sql(
        lake, "select symbol, instrument_id, stat_type, quantity from options_statistics order by 2"
    ) == [("ESM4", 501, 9, 1200), ("ESU4", 601, 9, 300)]
    assert bronze_sql(lake, "select distinct symbol from futures_definitions") == [("ESM4",)]
    assert bronze_sql(
        lake, "select symbol, count(*) from options_definitions group by 1 order by 1"
    ) == [("ESM4", 2), ("ESU4", 1)]


def test_option_definition_from_an_earlier_day_still_routes(raw: Path, lake: Lake) -> None:
    write_dbn(
        raw / "defs.dbn.zst",
        dbn.Schema.DEFINITION,
        [
            definition(
                501, "ESM4 C5000", "C", day_start_ns(DAY1), underlying="ESM4", strike_points=5000
            )
        ],
        {"ESM4 C5000": 501},
        DAY1,
    )
    write_dbn(
        raw / "opt.mbo.dbn.zst",
        dbn.Schema.MBO,
        [mbo(501, day_start_ns(DAY2) + 10, "A", "B", px(12.25), 3, 1)],
        {"ESM4 C5000": 501},
        DAY2,
    )
    ingest(raw, lake)
    assert bronze_sql(lake, "select symbol, dt from options_mbo") == [("ESM4", DAY2)]


def test_a_partition_refuses_records_out_of_file_order(tmp_path: Path) -> None:
    """record_index strictly increases in a partition: the bronze key is unique by
    construction, checked as it is written (a batch written twice is an error)."""
    header = metadata(dbn.Schema.MBO, DAY1, DAY2, SYMBOLS, "GLBX.MDP3")
    records = db.DBNStore.from_bytes(encode(header, two_contract_day(DAY1))).to_ndarray()
    batch = to_record_batch(SourceSchema.MBO, records, 0)
    stager = PartitionStager(str(tmp_path), f"{tmp_path}/staging", arrow_schema(SourceSchema.MBO))
    key = PartitionKey("futures_mbo", "ESM4", DAY1)
    stager.write(key, batch, Records(records, 0))
    with pytest.raises(
        IngestError,
        match=r"futures_mbo/symbol=ESM4/dt=2024-05-08: record_index 0 "
        r"written after 5",
    ):
        stager.write(key, batch, Records(records, 0))
    stager.abort()
