"""Live's models computed over arrays (live.array_sql): what they read (the live tables' newest
rows, the warehouse's relations not per day), their runs, and the second process that runs
some of them while the feed's thread runs the others.

On two cores the frame models were one chain on the feed's thread, holding the GIL: the
options' gamma surface (4.4 ms a second at p50) after the book's chain (5.2 ms). The models
computed from the options engine's rows run in a process of their own, pinned to a CPU the
feed's thread keeps off while both compute (the scheduler otherwise woke the process on the
feed's CPU, where it waited for it: p90 5 ms late), fed every row they read as it arrives:
each second the feed asks for their runs, goes on with its own models, then collects them.
"""

from __future__ import annotations

import contextlib
import gc
import math
import multiprocessing
import os
import signal
import traceback
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from live.array_sql import ArrayQuery, ArraySqlError, HeldTable, TableRows

NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
STOP_TIMEOUT_S = 5.0


class TimeSpans:
    """The first and last time (ns) of a batch of rows' time columns, each computed once
    (a batch is noted by the rows held for the array models and by the times held)."""

    def __init__(self, rows: pa.Table) -> None:
        self.rows = rows
        self._spans: dict[str, tuple[int, int] | None] = {}

    def of(self, column: str) -> tuple[int, int] | None:
        """None when every time is NULL."""
        if column not in self._spans:
            values = self.rows.column(column)
            unit = values.type.unit if pa.types.is_timestamp(values.type) else "ns"
            low, high = pc.min_max(values.cast(pa.int64())).values()
            scale = NS_PER_UNIT[unit]
            self._spans[column] = (
                (low.as_py() * scale, high.as_py() * scale) if low.is_valid else None
            )
        return self._spans[column]


class RecentRows:
    """A live table's newest rows in memory, for the models computed over arrays: chunks as
    they came, with their times (`column`: None for a table not keyed by time), each
    converted to arrays once for every run that reads it."""

    def __init__(self, column: str | None) -> None:
        self.column = column
        self._chunks: list[tuple[int, int, HeldTable]] = []  # one thread's alone
        # a table not keyed by time: one object while no rows come, so what a query
        # computes from it alone is computed once (ArrayQuery keeps such CTEs' rows)
        self._whole: TableRows | None = None

    def add(self, held: HeldTable, spans: TimeSpans) -> None:
        """`held`: new rows (an array model's with its columns already converted), `spans`
        their times."""
        if not held.table.num_rows:
            return
        low = high = 0
        if self.column is not None:
            span = spans.of(self.column)
            if span is None:  # NULL is in no window of time
                return
            low, high = span
        self._chunks.append((low, high, held))
        self._whole = None

    def rows(self, schema: pa.Schema, lower: float, upper: float) -> TableRows:
        """The rows whose time is in [lower, upper) (every row of a table without time)."""
        chunks = [
            rows
            for low, high, rows in self._chunks
            if self.column is None or (high >= lower and low < upper)
        ]
        if self.column is None:
            if self._whole is None or self._whole.schema is not schema:
                self._whole = TableRows(schema, chunks)
            return self._whole
        return TableRows(schema, chunks, self.column, lower, upper)

    def forget_before(self, horizon: float) -> None:
        if self.column is not None:
            self._chunks = [chunk for chunk in self._chunks if chunk[1] >= horizon]


@dataclass(frozen=True)
class ArrayModel:
    name: str
    query: ArrayQuery
    schema: pa.Schema  # of its rows as the live table holds them
    time_column: str
    parents: frozenset[str]


class ArrayModels:
    """Array models and what they read: the newest rows of the live tables (`recent`, with
    their `schemas`) and the warehouse's relations not per day (`static`)."""

    def __init__(self) -> None:
        self.models: dict[str, ArrayModel] = {}
        self.recent: dict[str, RecentRows] = {}
        self.schemas: dict[str, pa.Schema] = {}
        self.static: dict[tuple[str, str], TableRows] = {}

    def input(
        self, model: ArrayModel, schema: str, table: str, lower: float = 0, upper: float = 0
    ) -> TableRows:
        """What `model`'s compiled SQL reads as "spymaster".`schema`.`table`: a live parent's
        rows of the day (a tail run's: its time in [lower, upper)), else the warehouse's."""
        if table in self.recent and table in model.parents:
            return self.recent[table].rows(self.schemas[table], lower, upper)
        if (schema, table) in self.static:
            return self.static[(schema, table)]
        raise ArraySqlError(f"reads {schema}.{table}, which live does not hold")

    def run(self, name: str, start: float, lower: float, end: float) -> HeldTable:
        """The model's new rows [start, end), computed over its parents' rows from `lower`
        (to `add` for the models here that read them)."""
        model = self.models[name]
        return model.query.run_held(
            lambda schema, table: self.input(model, schema, table, lower, end),
            model.schema,
            within=(model.time_column, start, end),
        )

    def add(self, table: str, held: HeldTable, spans: TimeSpans) -> None:
        if table in self.recent:
            self.recent[table].add(held, spans)

    def forget_before(self, horizon: float) -> None:
        for recent in self.recent.values():
            recent.forget_before(horizon)

    def subset(self, names: set[str]) -> ArrayModels:
        """The models `names` alone, with what they read."""
        part = ArrayModels()
        part.models = {name: self.models[name] for name in names}
        reads = {parent for name in names for parent in self.models[name].parents}
        part.recent = {name: rows for name, rows in self.recent.items() if name in reads}
        part.schemas = {name: self.schemas[name] for name in part.recent}
        part.static = {key: rows for key, rows in self.static.items() if key[1] in reads}
        return part

    def without(self, names: set[str]) -> ArrayModels:
        """Every model but `names`, with what they read."""
        return self.subset(set(self.models) - names)


class ArrayProcessError(Exception):
    """The array models' process ended or failed; the message says which models and why."""


class ArrayProcess:
    """`models` computed in a process of their own. It is sent the rows of every table they
    read from elsewhere (`add`); `start_run` asks for a run, `result` waits for the oldest
    run's rows. With two CPUs or more it runs on the last one, which `beside` keeps the
    calling thread off."""

    def __init__(self, models: ArrayModels) -> None:
        self.names = frozenset(models.models)
        self.reads = frozenset(models.recent) - self.names  # the rows it is sent
        # where the platform lets a process choose its CPUs (Linux)
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.cpu = cpus[-1] if len(cpus) > 1 else None
        context = _context()
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(child, models, self.cpu),
            name="live-array-models",
            daemon=True,  # ends with the feed's process
        )
        try:
            self._process.start()
        except OSError as error:
            raise ArrayProcessError(
                f"cannot start the process computing {self._described()}: {error}"
            ) from None
        finally:
            child.close()
        self._runs: deque[str] = deque()
        self._rows: list[tuple[str, bytes]] = []
        self._horizon = -math.inf

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _described(self) -> str:
        return ", ".join(sorted(self.names))

    def add(self, table: str, rows: pa.Table) -> None:
        """Rows of a table the process reads, sent with the next run asked for (a message
        wakes it: one a second, not one per table)."""
        if table in self.reads and rows.num_rows:
            self._rows.append((table, _to_ipc(rows)))

    def forget_before(self, horizon: float) -> None:
        """Its held rows before `horizon` are read no more (told with the next run)."""
        self._horizon = horizon

    def start_run(self, name: str, start: float, lower: float, end: float) -> None:
        rows, self._rows = self._rows, []
        self._send(("run", self._horizon, rows, name, start, lower, end))
        self._runs.append(name)

    def result(self) -> tuple[str, pa.Table]:
        """The oldest run asked for and its rows (ArraySqlError: what it could not compute)."""
        name = self._runs.popleft()
        try:
            kind, payload = self._connection.recv()
        except (EOFError, OSError):
            raise self._ended() from None
        if kind == "unsupported":
            raise ArraySqlError(payload)
        if kind == "failed":
            raise ArrayProcessError(f"{name} failed in its process:\n{payload}")
        return name, _from_ipc(payload)

    @contextlib.contextmanager
    def beside(self) -> Iterator[None]:
        """The calling thread off the process's CPU meanwhile (as it was after)."""
        if self.cpu is None:
            yield
            return
        before = os.sched_getaffinity(0)
        others = before - {self.cpu}
        if others and others != before:
            os.sched_setaffinity(0, others)
        try:
            yield
        finally:
            if others and others != before:
                os.sched_setaffinity(0, before)

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self._connection.send(message)
        except OSError:  # a broken pipe: it ended
            raise self._ended() from None

    def _ended(self) -> ArrayProcessError:
        self._process.join(STOP_TIMEOUT_S)
        return ArrayProcessError(
            f"the process computing {self._described()} ended (exit code {self._process.exitcode})"
        )

    def close(self) -> None:
        if not self._runs:  # else it may be sending rows no one reads: stopped at once
            with contextlib.suppress(OSError):
                self._connection.send(("stop",))
            self._process.join(STOP_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()


def _to_ipc(rows: pa.Table) -> bytes:
    """Rows as an Arrow IPC stream: 15-30 us for a second's rows, where pickling them took
    50-280 us (and 30-160 us back)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    return sink.getvalue().to_pybytes()


def _from_ipc(stream: bytes) -> pa.Table:
    return pa.ipc.open_stream(stream).read_all()


def _context() -> multiprocessing.context.ForkServerContext:
    """Processes forked from a server that has imported this module once (the feed's
    process has threads: a fork of it could inherit a lock held by one)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])
    return context


def _serve(connection: Connection, models: ArrayModels, cpu: int | None) -> None:
    """The process: rows in, runs out, until told to stop or the feed's process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the feed's process's
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    gc.collect()
    gc.freeze()  # what the server imported lives as long as this process
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message[0] != "run":
            return
        _, horizon, rows, name, start, lower, end = message
        models.forget_before(horizon)
        for table, stream in rows:
            table_rows = _from_ipc(stream)
            models.add(table, HeldTable(table_rows), TimeSpans(table_rows))
        try:
            held = models.run(name, start, lower, end)
            models.add(name, held, TimeSpans(held.table))
            reply = ("rows", _to_ipc(held.table))
        except ArraySqlError as error:
            reply = ("unsupported", str(error))
        except Exception:  # a defect: its trace goes to the feed's process
            reply = ("failed", traceback.format_exc())
        connection.send(reply)
