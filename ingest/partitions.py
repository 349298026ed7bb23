"""Bronze partitions: staged writes, manifests and the atomic swap into the lake.

A partition is a folder `<table>/symbol=<s>/dt=<d>/` holding `data.parquet` and
`_manifest.json`. It is written whole under `bronze/_ingest/staging/`, then renamed into
place; an existing partition is first renamed aside into `bronze/_ingest/trash/` (outside every
table's glob) and deleted after the swap. Readers therefore see the old partition or the new
one, never part of one; `recover()` finishes or undoes a swap that a crash interrupted.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ingest.errors import IngestError
from spymaster.lake import Lake

DATA_FILE = "data.parquet"
MANIFEST_FILE = "_manifest.json"
ROW_GROUP_RECORDS = 1 << 20


@dataclass(frozen=True, order=True)
class PartitionKey:
    table: str
    symbol: str
    dt: dt.date

    def path(self, lake: Lake) -> Path:
        return lake.partition_dir(self.table, self.symbol, self.dt.isoformat())

    def __str__(self) -> str:
        return f"{self.table}/symbol={self.symbol}/dt={self.dt.isoformat()}"


@dataclass
class PartitionStats:
    records: int = 0
    instrument_ids: set[int] = field(default_factory=set)
    action_counts: dict[str, int] = field(default_factory=dict)
    record_index_min: int | None = None
    record_index_max: int | None = None
    ts_recv_min: int | None = None
    ts_recv_max: int | None = None

    def add(self, records: np.ndarray, first_index: int, last_index: int) -> None:
        """Count DBN records (a structured array) at file positions first..last."""
        self.records += len(records)
        instrument_ids = records["instrument_id"]
        if instrument_ids.min() == instrument_ids.max():
            self.instrument_ids.add(int(instrument_ids[0]))
        else:
            self.instrument_ids.update(np.unique(instrument_ids).tolist())
        if "action" in records.dtype.names:
            counts = np.bincount(records["action"].view(np.uint8), minlength=256)
            for code in np.flatnonzero(counts).tolist():
                action = chr(code)
                self.action_counts[action] = self.action_counts.get(action, 0) + int(counts[code])
        ts_recv = records["ts_recv"]
        self.record_index_min = _min(self.record_index_min, first_index)
        self.record_index_max = _max(self.record_index_max, last_index)
        self.ts_recv_min = _min(self.ts_recv_min, int(ts_recv.min()))
        self.ts_recv_max = _max(self.ts_recv_max, int(ts_recv.max()))


def _require_increasing(key: PartitionKey, record_index: np.ndarray, last: int | None) -> None:
    """A partition's record_index strictly increases in the file: (symbol, dt, record_index)
    is unique by construction, checked here on write (the dbt test on each bronze table then
    checks that the lake holds exactly the records each manifest says were written)."""
    previous = np.concatenate(([-1 if last is None else last], record_index[:-1]))
    wrong = np.flatnonzero(record_index <= previous)
    if wrong.size:
        row = int(wrong[0])
        raise IngestError(
            f"{key}: record_index {int(record_index[row])} written after "
            f"{int(previous[row])}; a partition's records must be in file order, once each"
        )


def _min(current: int | None, value: int) -> int:
    return value if current is None else min(current, value)


def _max(current: int | None, value: int) -> int:
    return value if current is None else max(current, value)


@dataclass(frozen=True)
class StagedPartition:
    key: PartitionKey
    staged_dir: Path
    stats: PartitionStats


def column_encodings(schema: pa.Schema) -> dict[str, Any]:
    """Dictionary pages for strings only, delta-packed 32- and 64-bit integers (timestamps,
    order ids, indexes, prices): measured on demo MBO, twice as fast to write as Parquet's
    default dictionary on every column, 45% smaller and faster to read."""
    return {
        "use_dictionary": [column.name for column in schema if pa.types.is_string(column.type)],
        "column_encoding": {
            column.name: "DELTA_BINARY_PACKED"
            for column in schema
            if pa.types.is_integer(column.type) and column.type.bit_width >= 32
        },
    }


class PartitionStager:
    """Writes the partitions of one source file under a private staging folder."""

    def __init__(self, staging_dir: Path, schema: pa.Schema) -> None:
        self.staging_dir = staging_dir
        self._schema = schema
        self._writers: dict[PartitionKey, pq.ParquetWriter] = {}
        self._stats: dict[PartitionKey, PartitionStats] = {}

    def write(self, key: PartitionKey, batch: pa.RecordBatch, records: np.ndarray) -> None:
        """Append a batch; `records` are the same rows as DBN records, for the manifest."""
        writer = self._writers.get(key)
        if writer is None:
            folder = self._folder(key)
            folder.mkdir(parents=True)
            writer = pq.ParquetWriter(
                folder / DATA_FILE,
                self._schema,
                compression="zstd",
                write_statistics=["ts_recv", "record_index", "instrument_id"],
                **column_encodings(self._schema),
            )
            self._writers[key] = writer
            self._stats[key] = PartitionStats()
        record_index = batch["record_index"].to_numpy()
        stats = self._stats[key]
        _require_increasing(key, record_index, stats.record_index_max)
        writer.write_batch(batch, row_group_size=ROW_GROUP_RECORDS)
        stats.add(records, int(record_index[0]), int(record_index[-1]))

    def finish(self) -> list[StagedPartition]:
        for writer in self._writers.values():
            writer.close()
        return [
            StagedPartition(key, self._folder(key), self._stats[key])
            for key in sorted(self._writers)
        ]

    def abort(self) -> None:
        for writer in self._writers.values():
            writer.close()
        shutil.rmtree(self.staging_dir, ignore_errors=True)

    def _folder(self, key: PartitionKey) -> Path:
        return self.staging_dir / key.table / f"symbol={key.symbol}" / f"dt={key.dt.isoformat()}"


def read_manifest(partition_dir: Path) -> dict[str, Any] | None:
    path = partition_dir / MANIFEST_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())


def write_json_atomic(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


class BronzeStore:
    """Owns the lake's bronze folder during one ingest run (one run at a time per lake)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.work_dir = lake.bronze / "_ingest"
        self.staging_root = self.work_dir / "staging"
        self.trash_root = self.work_dir / "trash"

    @contextmanager
    def locked(self) -> Iterator[BronzeStore]:
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            lock = (self.work_dir / "lock").open("w")
        except OSError as error:
            raise IngestError(
                f"{self.lake.bronze}: cannot write the lake ({error.strerror or error})"
            ) from None
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise IngestError(
                    f"{self.lake.bronze}: another ingest is running on this lake"
                ) from error
            try:
                yield self
            finally:
                shutil.rmtree(self.staging_root, ignore_errors=True)
                fcntl.flock(lock, fcntl.LOCK_UN)

    def new_staging_dir(self, label: str) -> Path:
        return self.staging_root / f"{label}-{uuid.uuid4().hex[:12]}"

    def recover(self) -> list[PartitionKey]:
        """Undo what an interrupted run left: partial staging and half-done swaps.

        A partition in the trash whose place in the lake is empty was moved aside by a swap
        that never completed: it goes back. Anything else in the trash is an old version
        whose replacement did land.
        """
        shutil.rmtree(self.staging_root, ignore_errors=True)
        restored: list[PartitionKey] = []
        if not self.trash_root.exists():
            return restored
        for aside in sorted(self.trash_root.iterdir()):
            manifest = read_manifest(aside)
            if manifest is not None:
                key = PartitionKey(
                    manifest["table"], manifest["symbol"], dt.date.fromisoformat(manifest["dt"])
                )
                target = key.path(self.lake)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(aside, target)
                    restored.append(key)
                    continue
            shutil.rmtree(aside)
        return restored

    def swap_in(self, staged_dir: Path, key: PartitionKey) -> None:
        target = key.path(self.lake)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            self.trash_root.mkdir(parents=True, exist_ok=True)
            aside = self.trash_root / uuid.uuid4().hex
            os.rename(target, aside)
            os.rename(staged_dir, target)
            shutil.rmtree(aside)
        else:
            os.rename(staged_dir, target)

    def remove(self, key: PartitionKey) -> None:
        target = key.path(self.lake)
        self.trash_root.mkdir(parents=True, exist_ok=True)
        aside = self.trash_root / uuid.uuid4().hex
        # Drop the manifest first so recovery never brings a removed partition back.
        os.rename(target, aside)
        (aside / MANIFEST_FILE).unlink()
        shutil.rmtree(aside)
        for folder in (target.parent, target.parent.parent):
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
