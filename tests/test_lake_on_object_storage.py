"""The lake's partitions on object storage.

First, bronze landing on a store with object storage's rules, killed at every step: the
lake's local folder seen through pyarrow's file system layer as object storage behaves (a
folder cannot be renamed; moving a file is a copy, then a delete). An ingest that replaces
one partition, removes another and adds a third is killed before each of its file system
operations in turn (from then on every operation fails, as after a real kill, so no clean-up
runs). Readers (the same SQL the dbt sources run) must then see every partition whole, old or
new; a plain re-run must finish the job and leave nothing behind.

Then the bronze and engine partition stores on S3 itself: pyarrow's S3 client against a local
S3 server (moto's), in a bucket, through the same code paths.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import databento as db
import databento_dbn as dbn
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from moto.server import ThreadedMotoServer

import ingest.partitions
import ingest.registry
from book_engine.bronze_input import bronze_mbo
from cluster.engine_partitions import EnginePartitionStore
from foundation.lake import Lake
from foundation.lake_files import MANIFEST_FILE, file_system, write_json
from foundation.partitions import Partition
from ingest.bronze_tables import Records, SourceSchema, arrow_schema, to_record_batch
from ingest.landing import ingest as run_ingest
from ingest.partitions import (
    BronzeStore,
    PartitionKey,
    PartitionStager,
    data_file_name,
    read_manifest,
)
from tests.dbn_fixtures import day_start_ns, encode, mbo, metadata, px, write_dbn
from tests.lake_queries import bronze_sql

DAY1 = dt.date(2024, 5, 8)
DAY2 = dt.date(2024, 5, 9)
ESM4, ESU4 = 11, 12
SYMBOLS = {"ESM4": ESM4, "ESU4": ESU4}


class Killed(BaseException):
    """The ingest process died (a BaseException: no `except Exception` clean-up catches it)."""


class ObjectStorageLike(pafs.FileSystemHandler):
    """A local folder with object storage's rules, dying before its `kill_at`-th change."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.local = pafs.LocalFileSystem()
        self.kill_at = kill_at
        self.changes = 0
        self.dead = False

    def _change(self) -> None:
        if self.dead or self.changes == self.kill_at:
            self.dead = True
            raise Killed(f"killed before change {self.changes}")
        self.changes += 1

    def move(self, src: str, dest: str) -> None:
        if self.local.get_file_info(src).type == pafs.FileType.Directory:
            raise OSError(f"{src}: object storage cannot rename a folder")
        self._change()
        self.local.copy_file(src, dest)
        self._change()
        self.local.delete_file(src)

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        self._change()
        return self.local.open_output_stream(path)

    def create_dir(self, path: str, recursive: bool) -> None:
        self._change()
        self.local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._change()
        self.local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._change()
        self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("not used by the lake")

    def delete_file(self, path: str) -> None:
        self._change()
        self.local.delete_file(path)

    def copy_file(self, src: str, dest: str) -> None:
        self._change()
        self.local.copy_file(src, dest)

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        raise OSError("object storage cannot append")

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        self._read()
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        self._read()
        return self.local.get_file_info(selector)

    def open_input_stream(self, path: str) -> Any:
        self._read()
        return self.local.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        self._read()
        return self.local.open_input_file(path)

    def _read(self) -> None:
        if self.dead:
            raise Killed("dead")

    def normalize_path(self, path: str) -> str:
        return path

    def get_type_name(self) -> str:
        return "object-storage-like"

    def equals(self, other: Any) -> bool:
        return self is other


def object_storage(
    handler: ObjectStorageLike,
) -> Callable[[Any], tuple[pafs.FileSystem, str]]:
    def file_system(root: Any) -> tuple[pafs.FileSystem, str]:
        return pafs.PyFileSystem(handler), str(Path(root).resolve())

    return file_system


def day_records(day: dt.date, contracts: dict[int, float]) -> list[dbn.MBOMsg]:
    t0 = day_start_ns(day) + 3600 * 10**9
    records = []
    for step in range(3):
        for order, (instrument, price) in enumerate(contracts.items(), start=1):
            records.append(
                mbo(instrument, t0 + 10 * step + order, "A", "B", px(price + step), 1, 10 * order)
            )
    return records


def partitions(lake: Lake) -> dict[tuple[str, dt.date], list[tuple[Any, ...]]]:
    """Each futures partition's rows as readers see them."""
    seen: dict[tuple[str, dt.date], list[tuple[Any, ...]]] = {}
    if not lake.is_landed("futures_mbo"):
        return seen
    for symbol, day, *row in bronze_sql(
        lake,
        "select symbol, dt, record_index, instrument_id, price from futures_mbo "
        "order by symbol, dt, record_index",
    ):
        seen.setdefault((symbol, day), []).append(tuple(row))
    return seen


def leftovers(lake: Lake) -> list[str]:
    """Files of partition folders that no manifest names, and staging."""
    found = []
    for folder in sorted(lake.bronze.glob("*/symbol=*/dt=*")):
        manifest = folder / MANIFEST_FILE
        named = {MANIFEST_FILE}
        if manifest.exists():
            named.add(json.loads(manifest.read_text())["data_file"])
        found += [str(path) for path in folder.iterdir() if path.name not in named]
    staging = lake.bronze / "_ingest" / "staging"
    return found + ([str(staging)] if staging.exists() else [])


def test_an_ingest_killed_at_any_step_leaves_each_partition_whole_old_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "raw"
    source = write_dbn(
        raw / "a.mbo.dbn.zst",
        dbn.Schema.MBO,
        day_records(DAY1, {ESM4: 5000.0, ESU4: 5060.0}),
        SYMBOLS,
        DAY1,
    )
    old_lake = Lake(tmp_path / "old")
    run_ingest(raw, old_lake)
    old = partitions(old_lake)
    assert sorted(old) == [("ESM4", DAY1), ("ESU4", DAY1)]

    # the new raw folder: ESM4 repriced, ESU4 gone from the file, a new day for ESM4
    write_dbn(source, dbn.Schema.MBO, day_records(DAY1, {ESM4: 4990.0}), SYMBOLS, DAY1)
    write_dbn(
        raw / "b.mbo.dbn.zst", dbn.Schema.MBO, day_records(DAY2, {ESM4: 4995.0}), SYMBOLS, DAY2
    )
    clean = Lake(tmp_path / "clean")
    shutil.copytree(old_lake.root, clean.root)
    counting = ObjectStorageLike()
    with monkeypatch.context() as patch:
        for module in (ingest.partitions, ingest.registry):
            patch.setattr(module, "file_system", object_storage(counting))
        run_ingest(raw, clean)
    new = partitions(clean)
    assert sorted(new) == [("ESM4", DAY1), ("ESM4", DAY2)]
    assert leftovers(clean) == []
    changes = counting.changes
    assert changes > 20

    for kill_at in range(changes):
        lake = Lake(tmp_path / f"killed-{kill_at}")
        shutil.copytree(old_lake.root, lake.root)
        dying = ObjectStorageLike(kill_at)
        with monkeypatch.context() as patch:
            for module in (ingest.partitions, ingest.registry):
                patch.setattr(module, "file_system", object_storage(dying))
            with pytest.raises(Killed):
                run_ingest(raw, lake)
        seen = partitions(lake)
        for key in sorted(old.keys() | new.keys()):
            assert seen.get(key) in (old.get(key), new.get(key)), (kill_at, key)

        run_ingest(raw, lake)  # the next run, on the plain local file system
        assert partitions(lake) == new, kill_at
        assert leftovers(lake) == [], kill_at
        shutil.rmtree(lake.root)


@pytest.fixture(scope="module")
def s3_lake() -> Iterator[str]:
    """A lake in a bucket of a local S3 server, which pyarrow's S3 client reaches over HTTP as
    it reaches a cloud bucket (the endpoint from $AWS_ENDPOINT_URL_S3)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "spymaster")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "spymaster")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_ENDPOINT_URL_S3", f"http://{host}:{port}")
        buckets, _ = pafs.FileSystem.from_uri("s3://spymaster-lake?allow_bucket_creation=true")
        buckets.create_dir("spymaster-lake")
        try:
            yield "s3://spymaster-lake/market"
        finally:
            server.stop()


def s3_files(lake: str, folder: str) -> list[str]:
    fs, root = file_system(lake)
    selector = pafs.FileSelector(f"{root}/{folder}", recursive=True, allow_not_found=True)
    return sorted(
        info.path.removeprefix(f"{root}/{folder}/")
        for info in fs.get_file_info(selector)
        if info.type == pafs.FileType.File
    )


def land_on(store: BronzeStore, key: PartitionKey, prices: list[float], source: str) -> None:
    """Stage one futures partition of a hand-built DBN file and commit it, as ingest does."""
    header = metadata(dbn.Schema.MBO, DAY1, DAY2, {"ESM4": ESM4})
    t0 = day_start_ns(DAY1)
    encoded = [mbo(ESM4, t0 + i, "A", "B", px(p), 1, i + 1) for i, p in enumerate(prices)]
    records = db.DBNStore.from_bytes(encode(header, encoded)).to_ndarray()
    stager = PartitionStager(
        store.bronze_root, store.new_staging_dir("a.mbo.dbn.zst"), arrow_schema(SourceSchema.MBO)
    )
    stager.write(key, to_record_batch(SourceSchema.MBO, records, 0), Records(records, 0))
    (part,) = stager.finish(data_file_name(source))
    manifest = {"table": key.table, "symbol": key.symbol, "dt": key.dt.isoformat()}
    write_json(
        store.fs, f"{part.staged_dir}/{MANIFEST_FILE}", {**manifest, "data_file": part.data_file}
    )
    store.commit(part)
    store.recover()


def test_bronze_partitions_land_replace_and_go_on_s3(s3_lake: str) -> None:
    store = BronzeStore(f"{s3_lake}/bronze")
    key = PartitionKey("futures_mbo", "ESM4", DAY1)
    first, second = "a" * 64, "b" * 64
    land_on(store, key, [5000.0, 5000.25], first)
    assert s3_files(s3_lake, "bronze") == [
        f"{key}/{MANIFEST_FILE}",
        f"{key}/{data_file_name(first)}",
    ]
    assert read_manifest(s3_lake, key)["data_file"] == data_file_name(first)
    assert bronze_mbo(s3_lake, "futures_mbo", "ESM4", DAY1)["price"].to_pylist() == [
        px(5000.0),
        px(5000.25),
    ]

    land_on(store, key, [4990.0], second)  # a changed raw file replaces the partition
    assert s3_files(s3_lake, "bronze") == [
        f"{key}/{MANIFEST_FILE}",
        f"{key}/{data_file_name(second)}",
    ]
    assert bronze_mbo(s3_lake, "futures_mbo", "ESM4", DAY1)["price"].to_pylist() == [px(4990.0)]

    assert store.remove(key)
    assert read_manifest(s3_lake, key) is None
    assert s3_files(s3_lake, "bronze") == []


def test_engine_partitions_write_read_and_rewrite_on_s3(s3_lake: str) -> None:
    store = EnginePartitionStore(s3_lake)
    schema = pa.schema([("window_start", pa.int64()), ("depth", pa.float64())])
    rows = pa.record_batch({"window_start": [1, 2], "depth": [3.0, 4.0]}, schema=schema)
    old = Partition("ESM4", DAY1, "fingerprint-1")
    manifest = store.write("book_snapshot_1s", old, schema, [rows])
    assert store.stored("book_snapshot_1s", old) == manifest
    assert pa.Table.from_batches(list(store.read(manifest, schema))).to_pylist() == [
        {"window_start": 1, "depth": 3.0},
        {"window_start": 2, "depth": 4.0},
    ]
    new = Partition("ESM4", DAY1, "fingerprint-2")  # other inputs: rewritten, old file gone
    assert store.stored("book_snapshot_1s", new) is None
    manifest = store.write("book_snapshot_1s", new, schema, [rows.slice(1)])
    folder = "engine/book_snapshot_1s/symbol=ESM4/dt=2024-05-08"
    assert s3_files(s3_lake, folder) == sorted([MANIFEST_FILE, manifest["data_file"]])
    assert pa.Table.from_batches(list(store.read(manifest, schema))).num_rows == 1
