"""dbt on real lakes: bronze views and the contract-day selection, end to end from DBN files."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import databento_dbn as dbn
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from foundation.exchange_time import utc_ns
from foundation.lake import Lake
from foundation.lake_files import MANIFEST_FILE
from foundation.project import PROJECT_ROOT, dbt_command
from ingest.bronze_tables import AssetClass, SourceSchema, arrow_schema, table_name
from ingest.landing import ingest
from live.command import latest_contract
from live.session import LiveError
from tests.conftest import SHARED_DATA
from tests.dbn_fixtures import day_start_ns, definition, mbo, px, write_dbn
from tests.markets import dbt, dbt_target

pytestmark = pytest.mark.dbt

NEW_YORK = ZoneInfo("America/New_York")
CONTRACTS = {"ESH4": 31, "ESM4": 32}
# each expires at the open of its third Friday (09:30 New York)
EXPIRATIONS = {
    "ESH4": utc_ns(dt.date(2024, 3, 15), dt.time(9, 30)),
    "ESM4": utc_ns(dt.date(2024, 6, 21), dt.time(9, 30)),
}


def warehouse(lake: Lake, sql: str) -> list[tuple[object, ...]]:
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def session_day_file(raw: Path, day: dt.date, volumes: dict[str, int]) -> None:
    """One daily ES.FUT file: a snapshot per contract, then one trade each at 10:00 New York."""
    at_open = int(dt.datetime.combine(day, dt.time(10, 0), NEW_YORK).timestamp()) * 10**9
    start = day_start_ns(day)
    records = []
    for instrument_id in CONTRACTS.values():
        records.append(mbo(instrument_id, start, "R", flags=32))
        records.append(mbo(instrument_id, start, "A", "B", px(5000), 5, instrument_id, flags=160))
    for offset, (symbol, volume) in enumerate(sorted(volumes.items())):
        records.append(
            mbo(CONTRACTS[symbol], at_open + offset, "T", "B", px(5000.25), volume, flags=128)
        )
    write_dbn(raw / f"glbx-mdp3-{day:%Y%m%d}.mbo.dbn.zst", dbn.Schema.MBO, records, CONTRACTS, day)


# ESH4 leads until 03-08, ESM4 from 03-11; 03-14 is a half-day; 03-10 (Sunday) has no session.
VOLUMES = {
    dt.date(2024, 3, 4): {"ESH4": 1000, "ESM4": 10},
    dt.date(2024, 3, 5): {"ESH4": 1000, "ESM4": 20},
    dt.date(2024, 3, 6): {"ESH4": 1000, "ESM4": 50},
    dt.date(2024, 3, 7): {"ESH4": 900, "ESM4": 300},
    dt.date(2024, 3, 8): {"ESH4": 600, "ESM4": 500},
    dt.date(2024, 3, 10): {},
    dt.date(2024, 3, 11): {"ESH4": 400, "ESM4": 700},
    dt.date(2024, 3, 12): {"ESH4": 100, "ESM4": 1000},
    dt.date(2024, 3, 13): {"ESM4": 1000},
    dt.date(2024, 3, 14): {"ESM4": 300},
    dt.date(2024, 3, 15): {"ESM4": 1000},
}


@pytest.fixture(scope="module")
def roll_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("roll")
    raw = root / "raw"
    for day, volumes in VOLUMES.items():
        session_day_file(raw, day, volumes)
    write_dbn(
        raw / "definitions.dbn.zst",
        dbn.Schema.DEFINITION,
        [
            definition(i, s, "F", day_start_ns(dt.date(2024, 3, 4)), expiration=EXPIRATIONS[s])
            for s, i in CONTRACTS.items()
        ],
        CONTRACTS,
        dt.date(2024, 3, 4),
    )
    lake = Lake(root / "lake")
    ingest(raw, lake)
    dbt(lake, "build", "--select", "tag:bronze", "tag:silver")
    return lake


def test_selection_from_dbn_files_trims_the_roll_and_drops_the_half_day(roll_lake: Lake) -> None:
    rows = warehouse(
        roll_lake,
        "select dt, selected_symbol, selected_volume, exclusion_reason "
        "from silver.contract_day_selection order by dt",
    )
    assert rows == [
        (dt.date(2024, 3, 4), "ESH4", 1000, None),
        (dt.date(2024, 3, 5), "ESH4", 1000, None),
        (dt.date(2024, 3, 6), "ESH4", 1000, None),
        (dt.date(2024, 3, 7), "ESH4", 900, "roll_boundary"),
        (dt.date(2024, 3, 8), "ESH4", 600, "roll_boundary"),
        (dt.date(2024, 3, 10), None, 0, "no_session_volume"),
        (dt.date(2024, 3, 11), "ESM4", 700, "roll_boundary"),
        (dt.date(2024, 3, 12), "ESM4", 1000, "roll_boundary"),
        (dt.date(2024, 3, 13), "ESM4", 1000, None),
        (dt.date(2024, 3, 14), "ESM4", 300, "below_liquidity_floor"),
        (dt.date(2024, 3, 15), "ESM4", 1000, None),
    ]


def test_selection_is_exported_to_the_lake_as_parquet(roll_lake: Lake) -> None:
    exported = duckdb.sql(
        f"select count(*), count(*) filter (where is_included) "
        f"from read_parquet('{roll_lake.selection / 'contract_day_selection.parquet'}')"
    ).fetchall()
    assert exported == [(11, 5)]


def test_bronze_views_are_queryable_in_the_warehouse(roll_lake: Lake) -> None:
    records = sum(2 * len(CONTRACTS) + len(volumes) for volumes in VOLUMES.values())
    assert warehouse(roll_lake, "select count(*) from bronze.futures_mbo") == [(records,)]
    assert warehouse(roll_lake, "select count(*) from bronze.options_mbo") == [(0,)]
    assert warehouse(
        roll_lake, "select count(distinct symbol) from bronze.futures_definitions"
    ) == [(2,)]


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real Databento sample files not found at {SHARED_DATA}")
    lake = Lake(tmp_path_factory.mktemp("samples") / "lake")
    ingest(SHARED_DATA, lake)
    dbt(lake, "build", "--select", "tag:bronze", "tag:silver")
    return lake


def test_real_sample_lake_builds_and_is_queryable(sample_lake: Lake) -> None:
    counts = warehouse(
        sample_lake,
        "select symbol, dt, count(*) from bronze.futures_mbo group by all order by all",
    )
    assert counts == [
        ("ESH4", dt.date(2023, 12, 24), 8_725),
        ("ESH4", dt.date(2023, 12, 25), 68_792),
        ("ESM4", dt.date(2024, 5, 8), 13_796),
    ]
    reasons = warehouse(
        sample_lake, "select distinct exclusion_reason from silver.contract_day_selection"
    )
    assert reasons == [("no_session_volume",)]


def test_docs_generate_shows_lineage_from_sources(sample_lake: Lake) -> None:
    dbt(sample_lake, "docs", "generate")
    manifest = (dbt_target() / "manifest.json").read_text()
    assert "source.spymaster.bronze.futures_mbo" in manifest
    assert "model.spymaster.contract_day_selection" in manifest


DUCKDB_TYPES = {
    "int64": "bigint",
    "int32": "integer",
    "uint8": "utinyint",
    "uint16": "usmallint",
    "uint32": "uinteger",
    "uint64": "ubigint",
    "string": "varchar",
    "bool": "boolean",
}


def test_dbt_contracts_match_the_parquet_ingest_writes() -> None:
    spec = yaml.safe_load((PROJECT_ROOT / "models" / "bronze" / "_bronze.yml").read_text())
    declared = {
        table["name"]: {column["name"]: column["data_type"] for column in table["columns"]}
        for table in spec["sources"][0]["tables"]
    }
    for schema in SourceSchema:
        written = {field.name: DUCKDB_TYPES[str(field.type)] for field in arrow_schema(schema)}
        for asset in AssetClass:
            name = table_name(asset, schema)
            assert declared[name] == {"symbol": "varchar", "dt": "date", **written}, name


def test_bronze_reads_only_manifested_files_and_its_test_fails_on_other_records(
    tmp_path: Path,
) -> None:
    """(symbol, dt, record_index) is unique by construction (checked on write). The views
    read only the data file a partition's manifest names, so a stray Parquet file beside it
    (what a killed commit leaves) is not read; the dbt test checks the named file still holds
    exactly the written records, naming the partition when it does not."""
    day = dt.date(2024, 3, 5)
    session_day_file(tmp_path / "raw", day, {"ESH4": 1000, "ESM4": 10})
    lake = Lake(tmp_path / "lake")
    ingest(tmp_path / "raw", lake)
    dbt(lake, "build", "--select", "futures_mbo")  # the view, and its tests pass

    partition = lake.partition_dir("futures_mbo", "ESH4", day.isoformat())
    data_file = json.loads((partition / MANIFEST_FILE).read_text())["data_file"]
    written = pq.read_table(partition / data_file)
    pq.write_table(written, partition / "part-0000000000000000-v1.parquet")
    dbt(lake, "test", "--select", "futures_mbo")
    assert warehouse(lake, "select count(*) from bronze.futures_mbo where symbol = 'ESH4'") == [
        (3,)
    ]

    pq.write_table(pa.concat_tables([written, written]), partition / data_file)
    failed = subprocess.run(
        dbt_command(["test", "--select", "futures_mbo", "--store-failures"]),
        env=lake.environment(),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode != 0
    assert "FAIL 1 partition_records_match_manifest_futures_mbo" in failed.stdout
    rows = warehouse(
        lake,
        "select symbol, dt, records_read, records_written "
        "from dbt_test__audit.partition_records_match_manifest_futures_mbo_",
    )
    assert rows == [("ESH4", day, 6, 3)]


def test_the_bronze_sources_read_the_lake_as_the_python_side_does() -> None:
    """One expression reads bronze: the dbt sources' external location is the same SQL as
    `Lake.read_bronze_sql`, with the lake and table filled in."""
    config = yaml.safe_load((PROJECT_ROOT / "models" / "bronze" / "_bronze.yml").read_text())
    (source,) = config["sources"]
    location = source["config"]["meta"]["external_location"]
    lake = Lake(Path("/lakes/it's here"))
    for table in source["tables"]:
        rendered = location.replace(
            '{{ env_var("SPYMASTER_LAKE", "lake") }}', str(lake.root).replace("'", "''")
        ).replace("$name", table["name"])
        assert " ".join(rendered.split()) == lake.read_bronze_sql(table["name"]), table["name"]


def test_live_trades_the_contract_of_the_latest_session_across_the_roll(roll_lake: Lake) -> None:
    """Before the day's own volume is known, live takes the previous session's volume
    leader: the new contract from the session after the volume moved (not the latest
    included day's, which the roll's trimming holds back by days)."""
    assert latest_contract(roll_lake, dt.date(2024, 3, 8)) == "ESH4"
    assert latest_contract(roll_lake, dt.date(2024, 3, 11)) == "ESH4"  # 03-10: no session
    assert latest_contract(roll_lake, dt.date(2024, 3, 12)) == "ESM4"  # 03-11 rolled
    assert latest_contract(roll_lake, dt.date(2024, 3, 13)) == "ESM4"
    with pytest.raises(LiveError, match="2024-03-04: no session before it"):
        latest_contract(roll_lake, dt.date(2024, 3, 4))


def test_live_refuses_a_contract_expired_before_the_days_session(roll_lake: Lake) -> None:
    """A warehouse last built before a roll would hand live an expired contract: that is a
    clear error before the session, not a day that ends with no records of it. ESM4 expires
    at 09:30 New York on 2024-06-21, when that day's session window opens."""
    assert latest_contract(roll_lake, dt.date(2024, 6, 20)) == "ESM4"
    with pytest.raises(LiveError) as raised:
        latest_contract(roll_lake, dt.date(2024, 6, 21))
    assert str(raised.value) == (
        "2024-06-21: the warehouse's latest session before it (2024-03-15) traded ESM4, which "
        "has expired by the day's session window (2024-06-21 09:30 America/New_York): land "
        "and build the sessions since (or pass --symbol)"
    )
