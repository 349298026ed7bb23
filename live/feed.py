"""A day's raw DBN files as one record stream, in the order a live feed delivers them:
definitions first (the day's reference data), then market-by-order and statistics records
merged by ts_recv, paced at a chosen multiple of real time.

Files are read through the same checks as ingest (ingest.source_files): a truncated or
foreign file is an error naming it, before any record is replayed."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from databento.common.symbology import InstrumentMap

from ingest.bronze_tables import SourceSchema
from ingest.source_files import SourceReader, find_dbn_files, fingerprint

CHUNK_RECORDS = 1 << 16
# as fast as possible, sources interleave by slices of this much market time
SLICE_NS = 60_000_000_000
# at a finite speed, batches span at most this much market time: a record waits for its
# batch, so this bounds the replay's own contribution to latency
PACED_BATCH_NS = 5_000_000


@dataclass(frozen=True)
class FeedBatch:
    """Consecutive records of one schema from one source, in ts_recv order."""

    schema: SourceSchema
    records: np.ndarray  # a databento record array of that schema
    source: str
    offset: int  # position of the first record in its source


class Pace:
    """Waits until a record is due: market time since the first record / speed (None: as
    fast as possible)."""

    def __init__(
        self,
        speed: float | None,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"--speed must be positive or max, got {speed}")
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._origin: tuple[int, float] | None = None

    def wait(self, ts_recv: int) -> None:
        if self.speed is None:
            return
        if self._origin is None:
            self._origin = (ts_recv, self._clock())
            return
        due = self._origin[1] + (ts_recv - self._origin[0]) / 1e9 / self.speed
        delay = due - self._clock()
        if delay > 0:
            self._sleep(delay)


@dataclass
class _Source:
    path: Path
    reader: SourceReader
    chunks: Iterator[tuple[int, np.ndarray]]
    chunk: np.ndarray | None = None
    position: int = 0
    chunk_offset: int = 0

    def head(self) -> int | None:
        """ts_recv of the next record (None when exhausted)."""
        while self.chunk is None or self.position >= len(self.chunk):
            try:
                self.chunk_offset, self.chunk = next(self.chunks)
            except StopIteration:
                return None
            self.position = 0
        return int(self.chunk["ts_recv"][self.position])


class DbnReplay:
    """The records of `paths` (files, or folders searched for *.dbn / *.dbn.zst) as a feed."""

    def __init__(
        self, paths: Sequence[Path], speed: float | None, day: dt.date | None = None
    ) -> None:
        """With `day`, files whose period does not cover it are left out (folders of many
        days can be given)."""
        files = sorted({file for path in paths for file in _dbn_files(path)})
        self.pace = Pace(speed)
        self._sources = []
        self.symbology: dict[str, InstrumentMap] = {}  # per source, from its own metadata
        for file in files:
            reader = SourceReader(file)
            if day is not None and not _covers(reader, day):
                continue
            chunks = reader.chunks(CHUNK_RECORDS, fingerprint(file).decoded_bytes)
            self._sources.append(_Source(file, reader, chunks))
            self.symbology[str(file)] = reader.symbology()

    def day(self) -> dt.date:
        """The one UTC day the market-by-order files cover."""
        days = {
            s.reader.metadata.start_date
            for s in self._sources
            if s.reader.metadata.schema is SourceSchema.MBO
        }
        if len(days) != 1:
            found = ", ".join(str(d) for d in sorted(days)) or "none"
            raise ValueError(
                f"the replayed MBO files must cover one day (found: {found}); pass --dt"
            )
        return days.pop()

    def __iter__(self) -> Iterator[FeedBatch]:
        definition = SourceSchema.DEFINITION
        for source in [s for s in self._sources if s.reader.metadata.schema is definition]:
            while source.head() is not None:
                yield self._take(source, len(source.chunk))
        market = [s for s in self._sources if s.reader.metadata.schema is not definition]
        # time slices, each source's records of a slice in turn: every source stays in its
        # own order and no record is held back longer than a slice
        slice_ns = SLICE_NS if self.pace.speed is None else PACED_BATCH_NS
        while True:
            heads = [head for s in market if (head := s.head()) is not None]
            if not heads:
                return
            end = (min(heads) // slice_ns + 1) * slice_ns
            self.pace.wait(min(heads))
            for source in market:
                while (head := source.head()) is not None and head < end:
                    times = source.chunk["ts_recv"]
                    stop = int(np.searchsorted(times, np.uint64(end), side="left"))
                    yield self._take(source, max(stop, source.position + 1))

    @staticmethod
    def _take(source: _Source, stop: int) -> FeedBatch:
        records = source.chunk[source.position : stop]
        offset = source.chunk_offset + source.position
        source.position = stop
        return FeedBatch(source.reader.metadata.schema, records, str(source.path), offset)


def _covers(reader: SourceReader, day: dt.date) -> bool:
    start = (day - dt.date(1970, 1, 1)).days * 86_400_000_000_000
    end = reader.metadata.end_ns
    return reader.metadata.start_ns < start + 86_400_000_000_000 and (end is None or end > start)


def _dbn_files(path: Path) -> list[Path]:
    if path.is_dir():
        return find_dbn_files(path)
    return [path]
