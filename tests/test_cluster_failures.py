"""Ray's failure paths and the engine's partition store: a partition is visible only through
its manifest, a worker killed mid-partition leaves nothing visible and a re-run completes it,
an error comes back as itself (tests start a local Ray). `test_cluster.py` compares whole
lakes built with and without Ray; these need no built market, so xdist runs them beside it."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import databento_dbn as dbn
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from book_engine.errors import EngineError
from cluster.engine_partitions import (
    MANIFEST_FILE,
    EngineJob,
    EnginePartitionStore,
    job_batches,
)
from cluster.ray_runtime import ClusterError
from foundation.arrow_columns import STRING_CODES, categorical
from foundation.lake import Lake
from foundation.partitions import Partition
from ingest.errors import IngestError
from ingest.landing import ingest
from tests.dbn_fixtures import book_day, write_dbn
from tests.lake_queries import bronze_files

SCHEMA = pa.schema([("second", pa.int64()), ("value", pa.float64())])
PARTITION = Partition("ESH4", dt.date(2024, 3, 4), "inputs-and-settings")


def numbered_rows(partition: Partition, *, batches: int, die_after: int, marker: str) -> Iterator:
    """`batches` batches of known rows; the worker process dies after `die_after` of them
    (the first time only when `marker` names a file to create)."""
    for number in range(batches):
        if number == die_after and (not marker or not Path(marker).exists()):
            if marker:
                Path(marker).touch()
            os._exit(1)
        yield pa.record_batch(
            [pa.array([number, number]), pa.array([0.5 * number, -0.5 * number])], schema=SCHEMA
        )


def _job(*, die_after: int = -1, marker: str = "") -> EngineJob:
    return EngineJob(
        model="numbered_1s",
        partition=PARTITION,
        compute=numbered_rows,
        arguments={"batches": 3, "die_after": die_after, "marker": marker},
        memory_bytes=64 << 20,
    )


def _expected() -> pa.Table:
    return pa.Table.from_batches(list(numbered_rows(PARTITION, batches=3, die_after=-1, marker="")))


def test_a_partition_is_visible_only_through_its_manifest_and_rewrites_the_same_bytes(
    tmp_path: Path,
) -> None:
    store = EnginePartitionStore(str(tmp_path))
    assert store.manifest("numbered_1s", PARTITION) is None
    manifest = store.write("numbered_1s", PARTITION, SCHEMA, _expected().to_batches())
    assert manifest["rows"] == 6
    assert manifest["build_fingerprint"] == PARTITION.fingerprint
    folder = Path(store.folder("numbered_1s", PARTITION))
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST_FILE, manifest["data_file"]]
    data = (folder / manifest["data_file"]).read_bytes()
    (folder / ".orphan-of-a-killed-write.tmp").write_bytes(b"partial")
    again = store.write("numbered_1s", PARTITION, SCHEMA, _expected().to_batches())
    assert again == manifest
    assert (folder / manifest["data_file"]).read_bytes() == data
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST_FILE, manifest["data_file"]]
    assert pa.Table.from_batches(list(store.read(manifest, SCHEMA))).equals(_expected())


def test_partition_files_keep_string_codes_and_the_time_statistics_queries_select_by(
    tmp_path: Path,
) -> None:
    """The engine's string columns are written from their codes as Parquet dictionaries, read
    back as the same codes and by SQL as VARCHAR; min/max statistics are kept for window_start
    only (what a query selects rows by; the folders give symbol and dt)."""
    schema = pa.schema(
        [("window_start", pa.timestamp("us")), ("side", STRING_CODES), ("qty", pa.int64())]
    )
    batch = pa.record_batch(
        [
            pa.array([1_000_000, 2_000_000, 3_000_000], pa.timestamp("us")),
            categorical(np.array([1, 0, 1]), ["bid", "ask"]),
            pa.array([5, 6, 7]),
        ],
        schema=schema,
    )
    store = EnginePartitionStore(str(tmp_path))
    manifest = store.write("sided_1s", PARTITION, schema, [batch])
    path = Path(store.folder("sided_1s", PARTITION)) / manifest["data_file"]
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    statistics = {
        row_group.column(i).path_in_schema: row_group.column(i).is_stats_set
        for i in range(row_group.num_columns)
    }
    assert statistics == {"window_start": True, "side": False, "qty": False}
    assert "RLE_DICTIONARY" in row_group.column(1).encodings
    assert pa.Table.from_batches(list(store.read(manifest, schema))).equals(
        pa.Table.from_batches([batch])
    )
    assert duckdb.sql(f"select side, qty from '{path}' order by qty").fetchall() == [
        ("ask", 5),
        ("bid", 6),
        ("ask", 7),
    ]


def test_a_worker_killed_mid_partition_leaves_nothing_visible_and_a_rerun_completes_it(
    tmp_path: Path, local_ray: str
) -> None:
    lake = str(tmp_path)
    store = EnginePartitionStore(lake)
    # every attempt dies after writing a batch: Ray's retries give up
    with pytest.raises(ClusterError, match="lost"):
        list(job_batches([_job(die_after=1)], SCHEMA, lake_root=lake, ray_address=local_ray))
    folder = Path(store.folder("numbered_1s", PARTITION))
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")], "nothing was written"
    assert store.manifest("numbered_1s", PARTITION) is None
    # the re-run completes it and clears what the killed writes left
    rows = list(job_batches([_job()], SCHEMA, lake_root=lake, ray_address=local_ray))
    assert pa.Table.from_batches(rows).equals(_expected())
    manifest = store.manifest("numbered_1s", PARTITION)
    assert manifest is not None
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST_FILE, manifest["data_file"]]


def test_a_worker_that_dies_once_is_retried_by_ray(tmp_path: Path, local_ray: str) -> None:
    marker = tmp_path / "died-once"
    job = _job(die_after=2, marker=str(marker))
    rows = list(job_batches([job], SCHEMA, lake_root=str(tmp_path), ray_address=local_ray))
    assert marker.exists()
    assert pa.Table.from_batches(rows).equals(_expected())


def test_an_engine_error_in_a_task_comes_back_as_itself(tmp_path: Path, local_ray: str) -> None:
    """A bad partition names itself as it does without Ray, not as Ray's wrapper."""
    job = EngineJob("book_snapshot_1s", PARTITION, _bad_partition, {}, 64 << 20)
    with pytest.raises(EngineError) as raised:
        list(job_batches([job], SCHEMA, lake_root=str(tmp_path), ray_address=local_ray))
    assert str(raised.value) == "futures_mbo symbol=ESH4 dt=2024-03-04: no snapshot"


def _bad_partition(partition: Partition) -> Iterator[pa.RecordBatch]:
    raise EngineError(f"futures_mbo symbol={partition.symbol} dt={partition.day}: no snapshot")
    yield


def test_a_bad_raw_file_under_ray_is_the_same_clear_error_and_nothing_of_it_lands(
    tmp_path: Path, local_ray: str
) -> None:
    """The file's error comes back from its task as itself; the lake keeps what it had."""
    raw, lake = tmp_path / "raw", Lake(tmp_path / "lake")
    day = dt.date(2024, 5, 8)
    good = book_day(11, day, 5000.0)
    write_dbn(raw / "good.mbo.dbn.zst", dbn.Schema.MBO, good, {"ESM4": 11}, day)
    ingest(raw, lake, ray_address=local_ray)
    before = bronze_files(lake)
    compressed = (raw / "good.mbo.dbn.zst").read_bytes()
    bad = raw / "cut.mbo.dbn.zst"
    bad.write_bytes(compressed[: len(compressed) - 40])
    with pytest.raises(IngestError, match="truncated zstd stream") as error:
        ingest(raw, lake, ray_address=local_ray)
    assert str(bad) in str(error.value)
    assert bronze_files(lake) == before


def test_a_relative_lake_folder_is_the_same_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    manifest = EnginePartitionStore("lake").write(
        "numbered_1s", PARTITION, SCHEMA, _expected().to_batches()
    )
    absolute = EnginePartitionStore(str(tmp_path / "lake"))
    assert absolute.manifest("numbered_1s", PARTITION) == manifest
