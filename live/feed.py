"""A day's raw DBN files as one record stream, in the order a live feed delivers them:
definitions, market-by-order and statistics records merged by ts_recv (a definition before
the market's records of the same time slice: an option listed during the session is defined
before its first order), paced at a chosen multiple of real time.

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
from ingest.source_files import SourceReader, check_whole, find_dbn_files

CHUNK_RECORDS = 1 << 16
# as fast as possible, sources interleave by slices of this much market time
SLICE_NS = 60_000_000_000
SECOND_NS = 1_000_000_000
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


@dataclass(frozen=True)
class ClockTick:
    """Every record received before `market_ns` has been delivered: seconds ending by then
    can close."""

    market_ns: int


@dataclass(frozen=True)
class FeedGap:
    """The stream lost records after `after_ns` (the last ts_recv it delivered): a dropped
    connection or records the gateway skipped. Every book is unknown from there until the
    next snapshot restates it (the source resubscribes with one)."""

    after_ns: int
    reason: str


FeedEvent = FeedBatch | ClockTick | FeedGap


class Pace:
    """Waits until a record is due: market time since the first record / speed (None: as
    fast as possible)."""

    def __init__(
        self,
        speed: float | None,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        start_ns: int = 0,
    ) -> None:
        """`start_ns`: market time before it goes as fast as possible (catching up to a
        moment of the day), the pace starts there."""
        if speed is not None and speed <= 0:
            raise ValueError(f"--speed must be positive or max, got {speed}")
        self.speed = speed
        self.start_ns = start_ns
        self._clock = clock
        self._sleep = sleep
        self._origin: tuple[int, float] | None = None
        # called once, just before the clock starts (what was caught up is worked off first)
        self.before_start: Callable[[], None] | None = None

    def wait(self, ts_recv: int) -> None:
        if self.speed is None or ts_recv < self.start_ns:
            return
        if self._origin is None:
            if self.before_start is not None:
                self.before_start()
            self._origin = (ts_recv, self._clock())
            return
        delay = self.due(ts_recv) - self._clock()
        if delay > 0:
            self._sleep(delay)

    def due(self, ts_recv: int) -> float:
        """The clock reading at which market time `ts_recv` comes (paced, once started)."""
        if self.speed is None or self._origin is None:
            raise ValueError("a pace as fast as possible, or not started, has no due times")
        return self._origin[1] + (ts_recv - self._origin[0]) / 1e9 / self.speed

    def started(self) -> bool:
        return self.speed is not None and self._origin is not None

    @property
    def origin_ns(self) -> int:
        """The market time the pace started at."""
        if self._origin is None:
            raise ValueError("the pace has not started")
        return self._origin[0]


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
        self,
        paths: Sequence[Path],
        speed: float | None,
        day: dt.date | None = None,
        start_ns: int = 0,
        stop_ns: int | None = None,
    ) -> None:
        """With `day`, files whose period does not cover it are left out (folders of many
        days can be given); market time before `start_ns` goes as fast as possible, and the
        feed ends at `stop_ns`."""
        files = sorted({file for path in paths for file in _dbn_files(path)})
        self.pace = Pace(speed, start_ns=start_ns)
        self.stop_ns = stop_ns
        self._sources = []
        self.symbology: dict[str, InstrumentMap] = {}  # per source, from its own metadata
        for file in files:
            reader = SourceReader(file)
            if day is not None and not _covers(reader, day):
                continue
            check_whole(file)
            chunks = reader.chunks(CHUNK_RECORDS)
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

    def __iter__(self) -> Iterator[FeedEvent]:
        definition = SourceSchema.DEFINITION
        # definitions first among the sources of a slice
        sources = sorted(self._sources, key=lambda s: s.reader.metadata.schema is not definition)
        # time slices, each source's records of a slice in turn (every source stays in its
        # own order), delivered when the slice's end is due, then the clock reads its end
        paced = self.pace.speed is not None
        started = False
        clock = 0
        while True:
            heads = [head for s in sources if (head := s.head()) is not None]
            if not heads:
                return
            first = min(heads)
            if self.stop_ns is not None and first >= self.stop_ns:
                if started:  # the clock runs on to the stop
                    yield from self._ticks(clock, self.stop_ns)
                return
            catching_up = not paced or first < self.pace.start_ns
            slice_ns = SLICE_NS if catching_up else PACED_BATCH_NS
            end = (first // slice_ns + 1) * slice_ns
            if first < self.pace.start_ns:
                end = min(end, self.pace.start_ns)  # the pace starts exactly there
            if self.stop_ns is not None:
                end = min(end, self.stop_ns)
            if not started and first >= self.pace.start_ns:
                self.pace.wait(first)  # the clock starts at the first paced record
                started = True
                clock = first
            if started:
                # a quiet market still ends its seconds: the clock ticks at each one
                yield from self._ticks(clock, first)
                clock = end
            self.pace.wait(end)
            for source in sources:
                while (head := source.head()) is not None and head < end:
                    times = source.chunk["ts_recv"]
                    stop = int(np.searchsorted(times, np.uint64(end), side="left"))
                    yield self._take(source, max(stop, source.position + 1))
            yield ClockTick(end)

    def _ticks(self, after_ns: int, until_ns: int) -> Iterator[ClockTick]:
        """A paced tick at each second boundary in (after_ns, until_ns]."""
        second = (after_ns // SECOND_NS + 1) * SECOND_NS
        while second <= until_ns:
            self.pace.wait(second)
            yield ClockTick(second)
            second += SECOND_NS

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
