"""`spymaster ingest`: land every DBN file of a raw folder as bronze Parquet.

Each file is a transaction: workers decode and stage its partitions, then the parent checks
them against the lake and swaps them in, one file at a time in path order. Definition files
land first, because option files are routed through the definitions. The run stops at the
first bad file; files committed before it stay, and nothing of the bad file is visible.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from cluster.ray_runtime import connect, ordered_map
from foundation.computed_ahead import computed_ahead
from foundation.lake import Lake
from foundation.lake_files import MANIFEST_FILE, write_json
from ingest import DEFAULT_CHUNK_RECORDS
from ingest.bronze_tables import (
    INGEST_VERSION,
    RecordError,
    Records,
    SourceSchema,
    arrow_schema,
    to_record_batch,
)
from ingest.errors import IngestError
from ingest.partitions import (
    BronzeStore,
    PartitionKey,
    PartitionStager,
    StagedPartition,
    data_file_name,
    ingest_lock,
)
from ingest.registry import FileStat, Registry, source_key, source_partitions
from ingest.routing import OptionDefinitions, Router, day_to_date, epoch_days
from ingest.source_files import (
    FileFingerprint,
    SourceMetadata,
    SourceReader,
    check_whole,
    file_sha256,
    find_dbn_files,
)

# a staging task holds a chunk decoded, as Arrow, and each open partition's writer buffers;
# declared to Ray per task, with ~1 KiB per record of a chunk on top
TASK_MEMORY_BASE = 512 << 20

_In = TypeVar("_In")
_Out = TypeVar("_Out")


@dataclass(frozen=True)
class InspectedFile:
    """A raw file checked whole and readable, as it was then (its SHA-256 is computed as it is
    staged)."""

    path: Path
    size_bytes: int
    mtime_ns: int
    compression: str  # "zstd" or "none"
    schema: SourceSchema


@dataclass(frozen=True)
class StageTask:
    file: InspectedFile
    lake: Lake
    staging_dir: str
    chunk_records: int


@dataclass
class StagedSource:
    """A raw file decoded into staged partitions, not yet visible in the lake."""

    path: Path
    fingerprint: FileFingerprint
    metadata: SourceMetadata | None = None
    already_landed: bool = False
    records: int = 0
    partitions: list[StagedPartition] = field(default_factory=list)
    filtered: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestReport:
    landed: list[StagedSource] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    removed_partitions: list[PartitionKey] = field(default_factory=list)

    @property
    def records_landed(self) -> int:
        return sum(part.stats.records for source in self.landed for part in source.partitions)


def inspect_file(path: Path) -> InspectedFile:
    """Check a raw file is whole and readable (runs in a worker process)."""
    try:
        stat = path.stat()
        compression = check_whole(path)
        schema = SourceReader(path).metadata.schema
    except OSError as error:
        raise _unreadable(path, error) from None
    return InspectedFile(path, stat.st_size, stat.st_mtime_ns, compression, schema)


def _unreadable(path: Path, error: OSError) -> IngestError:
    return IngestError(f"{path}: cannot read the raw file ({error.strerror or error})")


def stage_file(task: StageTask) -> StagedSource:
    """Decode one raw file into staged partitions (runs in a worker process). Its SHA-256 is
    computed on a thread of its own meanwhile, so the file is read from disk once (a month of
    raw files is not in the page cache); once known it names the partitions' data files, or
    finds the content already landed (from another path, say): then nothing staged is kept."""
    stop = threading.Event()
    with ThreadPoolExecutor(1, thread_name_prefix="raw-file-sha256") as hashing:
        sha256 = hashing.submit(file_sha256, task.file.path, stop)
        try:
            return _staged(task, sha256)
        finally:
            stop.set()  # a failed decode stops the hashing at its next read


def _staged(task: StageTask, sha256: Future[str | None]) -> StagedSource:
    path = task.file.path
    reader = SourceReader(path)
    schema = reader.metadata.schema
    router = Router(path, schema, reader.symbology(), OptionDefinitions(task.lake))
    stager = PartitionStager(str(task.lake.bronze), task.staging_dir, arrow_schema(schema))
    records_read = 0
    filtered: Counter[str] = Counter()

    def converted() -> Iterator[tuple[int, list[tuple[PartitionKey, pa.RecordBatch, Records]]]]:
        """Each chunk's bronze batches, by partition (with the records read so far): the
        chunks decompressed and decoded ahead on a thread of their own (zstd releases the
        GIL)."""
        for offset, chunk in computed_ahead(reader.chunks(task.chunk_records)):
            _check_period(path, reader.metadata, chunk, offset)
            days = epoch_days(chunk["ts_recv"])
            route_ids = router.route_rows(chunk, days, offset)
            batches = []
            errors = []
            for route_id, day, rows in route_groups(route_ids, days):
                if route_id < 0:
                    reason = router.filtered_reasons[-1 - route_id]
                    filtered[reason] += len(chunk) if rows is None else len(rows)
                    continue
                route = router.landed[route_id]
                key = PartitionKey(route.table, route.symbol, day_to_date(day))
                records = Records(chunk, offset, rows)
                try:
                    batches.append((key, to_record_batch(schema, records), records))
                except RecordError as error:
                    errors.append(error)
            if errors:  # the earliest of the partitions' first errors
                error = min(errors, key=lambda error: error.row)
                raise IngestError(f"{path}: record {offset + error.row}: {error}") from error
            yield offset + len(chunk), batches

    try:
        # converted on a thread while this one writes the chunk before (Arrow's Parquet
        # writer releases the GIL): one worker's stages overlap on two cores
        for read, batches in computed_ahead(converted()):
            for key, batch, records in batches:
                stager.write(key, batch, records)
            records_read = read
        try:
            digest = sha256.result()
        except OSError as error:
            raise _unreadable(path, error) from None
        assert digest is not None  # only a stopped hashing has none
        file = task.file
        staged = StagedSource(
            path=path,
            fingerprint=FileFingerprint(
                path, file.size_bytes, file.mtime_ns, digest, file.compression
            ),
            metadata=reader.metadata,
            records=records_read,
            filtered=dict(sorted(filtered.items())),
        )
        if Registry(task.lake).is_landed(digest):
            stager.abort()
            return StagedSource(path=path, fingerprint=staged.fingerprint, already_landed=True)
        staged.partitions = stager.finish(data_file_name(digest))
    except BaseException:
        stager.abort()
        raise
    return staged


def _check_period(path: Path, metadata: SourceMetadata, chunk: np.ndarray, offset: int) -> None:
    ts_recv = chunk["ts_recv"]
    outside = ts_recv < np.uint64(metadata.start_ns)
    if metadata.end_ns is not None:
        outside |= ts_recv >= np.uint64(metadata.end_ns)
    rows = np.flatnonzero(outside)
    if rows.size:
        raise IngestError(
            f"{path}: record {offset + int(rows[0])} has ts_recv {int(ts_recv[rows[0]])}, outside "
            f"the file's period [{metadata.start_ns}, {metadata.end_ns}) (corrupt file)"
        )


def route_groups(
    route_ids: np.ndarray, days: np.ndarray
) -> Iterator[tuple[int, int, np.ndarray | None]]:
    """(route id, day, row indices in file order) for every distinct route and day, in
    (route id, day) order; the indices are None when the whole chunk is one group (the usual
    case)."""
    route_min, route_max = int(route_ids.min()), int(route_ids.max())
    day_min, day_max = int(days.min()), int(days.max())
    if route_min == route_max and day_min == day_max:
        yield route_min, day_min, None
        return
    # a chunk has a few routes and days: their codes fit 16 bits, which numpy's stable sort
    # orders by radix, in one pass
    width = day_max - day_min + 1
    codes = (route_ids - route_min) * width + (days - day_min)
    if (route_max - route_min + 1) * width <= np.iinfo(np.uint16).max:
        codes = codes.astype(np.uint16)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_codes)) + 1))
    ends = np.concatenate((starts[1:], [len(codes)]))
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        rows = order[start:end]
        yield int(route_ids[rows[0]]), int(days[rows[0]]), rows


class _Ingest:
    def __init__(
        self,
        lake: Lake,
        workers: int,
        chunk_records: int,
        progress: Callable[[int], Any],
        ray_address: str | None,
    ):
        self.lake = lake
        self.workers = workers
        self.ray_address = ray_address
        self.chunk_records = chunk_records
        self.progress = progress
        self.store = BronzeStore(str(lake.bronze))
        self.registry = Registry(lake)
        self.report = IngestReport()
        self.file_stats: dict[str, FileStat] = {}
        self._pool: ProcessPoolExecutor | None = None

    def run(self, files: list[Path]) -> IngestReport:
        with ingest_lock(self.lake):
            self.store.recover()
            self.file_stats = self.registry.file_stats()
            try:
                pending = [path for path in files if not self._unchanged(path)]
                inspected = self._map(inspect_file, pending)
                definitions = [f for f in inspected if f.schema is SourceSchema.DEFINITION]
                others = [f for f in inspected if f.schema is not SourceSchema.DEFINITION]
                for phase in (definitions, others):
                    tasks = [
                        StageTask(
                            file,
                            self.lake,
                            self.store.new_staging_dir(file.path.name),
                            self.chunk_records,
                        )
                        for file in phase
                    ]
                    for staged in self._imap(stage_file, tasks):
                        self._commit(staged)
            finally:
                if self._pool is not None:
                    self._pool.shutdown(cancel_futures=True)
                self.registry.save_file_stats(self.file_stats)
                # what this run staged and did not commit (the next run drops it should this fail)
                with contextlib.suppress(OSError):
                    self.store.recover()
        return self.report

    def _unchanged(self, path: Path) -> bool:
        cached = self.file_stats.get(source_key(self.lake, path))
        stat = path.stat()
        if (
            cached is not None
            and cached.size_bytes == stat.st_size
            and cached.mtime_ns == stat.st_mtime_ns
            and self.registry.is_landed(cached.sha256)
        ):
            self.report.unchanged.append(path)
            return True
        return False

    def _map(self, function: Callable[[_In], _Out], items: list[_In]) -> list[_Out]:
        return list(self._imap(function, items))

    def _imap(self, function: Callable[[_In], _Out], items: list[_In]) -> Iterator[_Out]:
        """Results in input order, computed by Ray tasks (one per file), the worker processes,
        or inline for one."""
        if self.ray_address is not None:
            connect(self.ray_address)
            yield from ordered_map(
                function,
                items,
                memory_bytes=lambda _item: TASK_MEMORY_BASE + self.chunk_records * 1024,
                in_flight=len(items),
            )
            return
        if self.workers <= 1 or len(items) <= 1:
            yield from map(function, items)
            return
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        futures: list[Future[_Out]] = [self._pool.submit(function, item) for item in items]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def _commit(self, staged: StagedSource) -> None:
        source_path = source_key(self.lake, staged.path)
        sha256 = staged.fingerprint.sha256
        if staged.already_landed:
            self._remember_path(sha256, source_path)
        else:
            self._check_claims(staged, source_path)
            # every manifest is written before any partition is committed: a write that fails
            # (a full disk) leaves the lake as it was, never half of a file's partitions
            for part in staged.partitions:
                write_json(
                    self.store.fs,
                    f"{part.staged_dir}/{MANIFEST_FILE}",
                    _manifest(staged, part, source_path),
                )
            for part in staged.partitions:
                self.store.commit(part)
            self._remove_stale(staged, source_path)
            self.registry.save_source(_source_record(staged, source_path))
            self.report.landed.append(staged)
        self.file_stats[source_path] = FileStat(
            staged.fingerprint.size_bytes, staged.fingerprint.mtime_ns, sha256
        )
        if staged.already_landed:
            self.report.unchanged.append(staged.path)
        self.progress(staged.records)

    def _check_claims(self, staged: StagedSource, source_path: str) -> None:
        for part in staged.partitions:
            manifest = self.store.manifest(part.key)
            if manifest is None:
                continue
            owner = manifest["sources"][0]
            owned = source_key(self.lake, owner["path"]) == source_path
            if not owned and owner["sha256"] != staged.fingerprint.sha256:
                shared = sorted(part.stats.instrument_ids & set(manifest["instrument_ids"]))
                instruments = f"instruments {shared}" if shared else "records"
                raise IngestError(
                    f"{staged.path}: claims {part.key} ({instruments}), already landed from "
                    f"{owner['path']}: two different files for the same instrument and day; "
                    "keep one of them in the raw folder"
                )

    def _remember_path(self, sha256: str, source_path: str) -> None:
        record = self.registry.source(sha256)
        if record is None:
            return
        paths = {source_key(self.lake, path) for path in record["paths"]}
        if source_path not in paths:
            record["paths"] = sorted([*paths, source_path])
            self.registry.save_source(record)

    def _remove_stale(self, staged: StagedSource, source_path: str) -> None:
        """Partitions an earlier version of this same file produced that the new one does not."""
        previous = self.file_stats.get(source_path)
        if previous is None or previous.sha256 == staged.fingerprint.sha256:
            return
        record = self.registry.source(previous.sha256)
        if record is None:
            return
        current = {part.key for part in staged.partitions}
        for key in source_partitions(record):
            if key in current:
                continue
            manifest = self.store.manifest(key)
            owner = manifest["sources"][0] if manifest is not None else None
            # no manifest: what a killed removal left, which no reader takes
            if (
                owner is None
                or (source_key(self.lake, owner["path"]), owner["sha256"])
                == (source_path, previous.sha256)
            ) and self.store.remove(key):
                self.report.removed_partitions.append(key)
        record["paths"] = sorted(
            {source_key(self.lake, path) for path in record["paths"]} - {source_path}
        )
        if record["paths"]:
            self.registry.save_source(record)
        else:
            self.registry.drop_source(previous.sha256)


def _source_description(staged: StagedSource, source_path: str) -> dict[str, Any]:
    assert staged.metadata is not None
    return {
        "path": source_path,
        "sha256": staged.fingerprint.sha256,
        "size_bytes": staged.fingerprint.size_bytes,
        "compression": staged.fingerprint.compression,
        "dataset": staged.metadata.dataset,
        "schema": staged.metadata.schema.value,
        "stype_in": staged.metadata.stype_in,
        "symbols": list(staged.metadata.symbols),
        "start_ns": staged.metadata.start_ns,
        "end_ns": staged.metadata.end_ns,
        "dbn_version": staged.metadata.dbn_version,
        "records_in_file": staged.records,
    }


def _manifest(staged: StagedSource, part: StagedPartition, source_path: str) -> dict[str, Any]:
    stats = part.stats
    return {
        "table": part.key.table,
        "symbol": part.key.symbol,
        "dt": part.key.dt.isoformat(),
        "ingest_version": INGEST_VERSION,
        "data_file": part.data_file,
        "records": stats.records,
        "records_by_action": dict(sorted(stats.action_counts.items())),
        "instrument_ids": sorted(stats.instrument_ids),
        "record_index_range": [stats.record_index_min, stats.record_index_max],
        "ts_recv_range": [stats.ts_recv_min, stats.ts_recv_max],
        "sources": [_source_description(staged, source_path)],
    }


def _source_record(staged: StagedSource, source_path: str) -> dict[str, Any]:
    return {
        "sha256": staged.fingerprint.sha256,
        "paths": [source_path],
        "ingest_version": INGEST_VERSION,
        "source": _source_description(staged, source_path),
        "partitions": [
            {
                "table": part.key.table,
                "symbol": part.key.symbol,
                "dt": part.key.dt.isoformat(),
                "records": part.stats.records,
            }
            for part in staged.partitions
        ],
        "filtered_records": staged.filtered,
    }


def ingest(
    raw: Path,
    lake: Lake,
    *,
    workers: int = 1,
    chunk_records: int = DEFAULT_CHUNK_RECORDS,
    progress: Callable[[int], Any] | None = None,
    ray_address: str | None = None,
) -> IngestReport:
    """Land every DBN file under `raw` into `lake`'s bronze; see the module docstring. With
    `ray_address` each file is decoded and staged by a Ray task (the lake on a file system
    every node mounts at the same path); the commit stays here, in path order."""
    if workers < 1:
        raise IngestError(f"--workers must be at least 1, got {workers}")
    if chunk_records < 1:
        raise IngestError(f"chunk size must be at least 1 record, got {chunk_records}")
    files = find_dbn_files(raw)
    lake.create_layout()
    return _Ingest(
        lake, workers, chunk_records, progress or (lambda _records: None), ray_address
    ).run(files)
