"""A session's seconds in blocks, read from the warehouse once and kept in memory (least
recently used out first), so many replay clients and seeks share reads.

A read costs mostly the same for a few seconds as for a few minutes (DuckDB decompresses whole
row groups), so the server reads whole blocks of `BLOCK_SECONDS`, several adjacent ones in one
read, and slices every window and frame out of them. Two requests for a block being read wait
for the one read. A live day's block is kept only once the live frontier has passed it."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from hud.warehouse import Session

BLOCK_SECONDS = 120
CACHE_BYTES = 192 * 2**20

Tables = dict[str, pa.Table]
BlockKey = tuple[dt.date, int]


def _epoch_ms(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp() * 1000)


def rows_between(table: pa.Table, start: dt.datetime, end: dt.datetime) -> pa.Table:
    """The rows with window_start in [start, end) of a table in time order (a zero-copy slice)."""
    times = table.column("window_start").cast(pa.int64()).to_numpy()
    first, last = np.searchsorted(times, [_epoch_ms(start), _epoch_ms(end)], side="left")
    return table.slice(first, last - first)


def split_seconds(
    tables: Mapping[str, pa.Table], start: dt.datetime, end: dt.datetime
) -> Iterator[tuple[dt.datetime, dict[str, pa.Table]]]:
    """The window's tables second by second (zero-copy slices; every table is in time order)."""
    seconds = int((end - start).total_seconds())
    edges = _epoch_ms(start) + 1000 * np.arange(seconds + 1, dtype=np.int64)
    bounds = {
        name: np.searchsorted(
            table.column("window_start").cast(pa.int64()).to_numpy(), edges, side="left"
        )
        for name, table in tables.items()
    }
    for offset in range(seconds):
        frame = {}
        for name, table in tables.items():
            first, last = bounds[name][offset], bounds[name][offset + 1]
            frame[name] = table.slice(first, last - first)
        yield start + dt.timedelta(seconds=offset), frame


def _owned(table: pa.Table) -> pa.Table:
    """A copy holding only its own rows (a slice keeps its whole read alive)."""
    return table.take(pa.array(np.arange(table.num_rows)))


class BlockCache:
    def __init__(
        self,
        read: Callable[[object, dt.datetime, dt.datetime], Tables],
        complete_until: Callable[[Session], dt.datetime | None],
        max_bytes: int = CACHE_BYTES,
    ) -> None:
        """`complete_until(session)`: where the session's rows end for now (a live day), None
        when they are final; a block past it is read for its request but not kept."""
        self._read = read
        self._complete_until = complete_until
        self._max_bytes = max_bytes
        self._blocks: OrderedDict[BlockKey, tuple[Tables, int]] = OrderedDict()
        self._bytes = 0
        self._reading: dict[BlockKey, Future[Tables]] = {}
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        return self._bytes

    def window(self, session: Session, start: dt.datetime, end: dt.datetime) -> Tables:
        """Every table's rows of [start, end) (seconds of `session`, whose `start` and `end`
        bound the blocks)."""
        first = self._index(session, start)
        last = self._index(session, end - dt.timedelta(microseconds=1))
        blocks = self._blocks_of(session, range(first, last + 1))
        return {
            name: rows_between(pa.concat_tables([block[name] for block in blocks]), start, end)
            for name in blocks[0]
        }

    @staticmethod
    def _index(session: Session, moment: dt.datetime) -> int:
        return int((moment - session.start).total_seconds()) // BLOCK_SECONDS

    def _bounds(self, session: Session, index: int) -> tuple[dt.datetime, dt.datetime]:
        start = session.start + dt.timedelta(seconds=index * BLOCK_SECONDS)
        return start, min(start + dt.timedelta(seconds=BLOCK_SECONDS), session.end)

    def _blocks_of(self, session: Session, indices: range) -> list[Tables]:
        keys = [(session.session, index) for index in indices]
        found: dict[BlockKey, Tables | Future[Tables]] = {}
        mine: list[int] = []
        with self._lock:
            for key, index in zip(keys, indices, strict=True):
                if key in self._blocks:
                    self._blocks.move_to_end(key)
                    found[key] = self._blocks[key][0]
                elif key in self._reading:
                    found[key] = self._reading[key]
                else:
                    found[key] = self._reading[key] = Future()
                    mine.append(index)
        # read this request's missing blocks, adjacent ones together
        runs: list[list[int]] = []
        for index in mine:
            if runs and runs[-1][-1] == index - 1:
                runs[-1].append(index)
            else:
                runs.append([index])
        for number, run in enumerate(runs):
            try:
                self._read_run(session, run)
            except BaseException as error:
                later = [(session.session, i) for rest in runs[number + 1 :] for i in rest]
                self._fail(later, error)
                raise
        return [
            found[key].result() if isinstance(found[key], Future) else found[key] for key in keys
        ]

    def _fail(self, keys: list[BlockKey], error: BaseException) -> None:
        with self._lock:
            for key in keys:
                self._reading.pop(key).set_exception(error)

    def _read_run(self, session: Session, run: list[int]) -> None:
        start = self._bounds(session, run[0])[0]
        end = self._bounds(session, run[-1])[1]
        keys = [(session.session, index) for index in run]
        complete = self._complete_until(session)
        try:
            tables = self._read(session, start, end)
        except BaseException as error:
            self._fail(keys, error)
            raise
        for key, index in zip(keys, run, strict=True):
            block_start, block_end = self._bounds(session, index)
            block = {
                name: _owned(rows_between(table, block_start, block_end))
                for name, table in tables.items()
            }
            size = sum(table.nbytes for table in block.values())
            with self._lock:
                if complete is not None and block_end > complete:
                    self._reading.pop(key).set_result(block)
                    continue
                self._blocks[key] = (block, size)
                self._bytes += size
                while self._bytes > self._max_bytes and len(self._blocks) > 1:
                    _, (_, evicted) = self._blocks.popitem(last=False)
                    self._bytes -= evicted
                self._reading.pop(key).set_result(block)
