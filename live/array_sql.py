"""The warehouse's compiled SQL evaluated over NumPy arrays: live's frame models, second by
second, without a DuckDB query per model (on these two cores a DuckDB query over a few hundred
rows costs 3-20 ms, mostly its operators' fixed costs; the frame chain is four such models one
after the other).

DuckDB parses the SQL (`json_serialize_sql`): the statement evaluated is the very text dbt
compiles for the warehouse, so the model's definition stays in one place. This module gives the
parse tree DuckDB's semantics for the constructs the frame models use (CTEs, inner, left and
cross joins, WHERE, GROUP BY with FILTER, LAG windows, CASE, the arithmetic and functions
below) and raises `ArraySqlError` naming any other construct: `ArrayQuery.check` runs a query
once on empty inputs, so a model it cannot evaluate fails when live starts, not mid-session.

Exactness: every value must be the bits DuckDB computes. Arithmetic is IEEE double or int64
as DuckDB binds it (`/` is a double division; a decimal literal is exact and widens to
double), `ln` calls the C library's `log` as DuckDB does (NumPy's own vectorised log differs
in the last bit), `round` rounds half away from zero, ordered list averages add in order.
Sums of doubles, whose order DuckDB leaves open, are refused.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import duckdb
import numba as nb
import numpy as np
import pyarrow as pa

MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}


class ArraySqlError(Exception):
    """A construct outside what this evaluator implements, or a value DuckDB would refuse."""


# -- kernels: the C library's log, sums in a given order ---------------------------------


@nb.njit(cache=True)
def _ln(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.size)
    for i in range(values.size):
        out[i] = math.log(values[i])  # the C library's log, as DuckDB's ln
    return out


@nb.njit(cache=True)
def _ordered_means(values: np.ndarray, valid: np.ndarray, starts: np.ndarray) -> tuple:
    """Per run of rows (`starts`, with the end appended), the mean of its valid values
    added in row order; `counts` 0 where none."""
    groups = starts.size - 1
    means = np.zeros(groups)
    counts = np.zeros(groups, np.int64)
    for group in range(groups):
        total = 0.0
        count = 0
        for i in range(starts[group], starts[group + 1]):
            if valid[i]:
                total += values[i]
                count += 1
        if count:
            means[group] = total / count
        counts[group] = count
    return means, counts


# -- values ---------------------------------------------------------------------------


class Col:
    """A column (or a constant: `values` a 0-d array) of one kind: int (int64), float,
    bool, str (int64 codes into the process's interned strings), ts (int64 microseconds),
    date (int32 days), interval (microseconds, constants only), tuple (`values` a tuple of
    Col: a list_value of columns), null. `valid`: None where every value is valid."""

    __slots__ = ("constant", "kind", "valid", "values")

    def __init__(self, values: Any, valid: np.ndarray | None, kind: str) -> None:
        self.values = values
        self.valid = valid
        self.kind = kind
        # np.ndim costs a function call per column made: a scalar is not an ndarray
        self.constant = kind != "tuple" and not (isinstance(values, np.ndarray) and values.ndim)

    def array(self, rows: int) -> np.ndarray:
        if self.constant:
            return np.full(rows, self.values, dtype=_DTYPES[self.kind])
        return self.values

    def mask(self, rows: int) -> np.ndarray:
        """Which rows are valid (read-only)."""
        if self.valid is None:
            return _all_valid(rows)
        if self.valid.ndim:
            return self.valid
        return _all_valid(rows) if self.valid else _none_valid(rows)

    def take(self, index: np.ndarray) -> Col:
        if self.kind == "tuple":
            return Col(tuple(part.take(index) for part in self.values), None, "tuple")
        if self.constant:
            return self
        valid = None if self.valid is None else self.valid[index]
        return Col(self.values[index], valid, self.kind)


_ALL_VALID: dict[int, np.ndarray] = {}
_NONE_VALID: dict[int, np.ndarray] = {}


def _all_valid(rows: int) -> np.ndarray:
    return _constant_mask(_ALL_VALID, rows, True)


def _none_valid(rows: int) -> np.ndarray:
    return _constant_mask(_NONE_VALID, rows, False)


def _constant_mask(masks: dict[int, np.ndarray], rows: int, value: bool) -> np.ndarray:
    mask = masks.get(rows)
    if mask is None:
        mask = np.full(rows, value)
        mask.flags.writeable = False
        if len(masks) > 4096:  # sizes come and go: keep the dict small
            masks.clear()
        masks[rows] = mask
    return mask


class _Strings:
    """Every string seen, numbered: string columns are int64 codes (equal strings, equal
    codes), decoded when a result leaves."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values: list[str] = []
        self._lock = threading.Lock()

    def code(self, value: str) -> int:
        code = self.codes.get(value)
        if code is None:
            with self._lock:
                code = self.codes.setdefault(value, len(self.values))
                if code == len(self.values):
                    self.values.append(value)
        return code

    def encode(self, array: pa.Array) -> np.ndarray:
        if (
            pa.types.is_dictionary(array.type)
            and len(array.dictionary) == 1
            and not array.null_count
        ):
            # one value repeated (the engine's symbol and fingerprint columns): no indices to map
            return np.full(len(array), self.code(array.dictionary[0].as_py()), np.int64)
        encoded = array if pa.types.is_dictionary(array.type) else array.dictionary_encode()
        mapping = np.array([self.code(value) for value in encoded.dictionary.to_pylist()], np.int64)
        indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
        return mapping[indices] if len(mapping) else np.zeros(len(array), np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.array(self.values, dtype=object)[codes] if len(codes) else codes.astype(object)

    def ranks(self, codes: np.ndarray) -> np.ndarray:
        """Numbers that order the codes as their strings order (by bytes, as DuckDB)."""
        distinct = np.unique(codes)
        by_value = sorted(distinct.tolist(), key=lambda code: self.values[code].encode())
        rank = np.empty(len(distinct), np.int64)
        rank[[int(np.searchsorted(distinct, code)) for code in by_value]] = np.arange(len(distinct))
        return rank[np.searchsorted(distinct, codes)]


STRINGS = _Strings()


_DTYPES = {
    "int": np.int64, "float": np.float64, "bool": np.bool_, "str": np.int64, "ts": np.int64,
    "date": np.int32, "interval": np.int64, "null": np.int64,
}  # fmt: skip
_FILL = {"int": 0, "float": 0.0, "bool": False, "str": 0, "ts": 0, "date": 0, "null": 0}


def _both_valid(*cols: Col) -> np.ndarray | None:
    valid = None
    for col in cols:
        if col.valid is not None:
            valid = col.valid if valid is None else valid & col.valid
    return valid


def _null(rows: int) -> Col:
    return Col(np.zeros(rows, np.int64), np.zeros(rows, bool), "null")


def from_arrow(array: pa.ChunkedArray | pa.Array) -> Col:
    if isinstance(array, pa.ChunkedArray):
        if array.num_chunks != 1:  # chunk by chunk: no unified dictionaries, no copies
            return _concatenated(
                [from_arrow(chunk) for chunk in array.chunks]
                or [from_arrow(pa.array([], array.type))]
            )
        array = array.chunk(0)
    kind_of = array.type
    valid = None if array.null_count == 0 else array.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_timestamp(kind_of):
        scale = MICROS[kind_of.unit]
        if scale is None:
            raise ArraySqlError(f"timestamps in {kind_of.unit} are not evaluated")
        array = array.view(pa.int64())  # the same buffer read as integers: no cast to run
        values = (array.fill_null(0) if valid is not None else array).to_numpy()
        return Col(values * scale if scale != 1 else values, valid, "ts")
    if pa.types.is_date32(kind_of):
        array = array.view(pa.int32())
        return Col((array.fill_null(0) if valid is not None else array).to_numpy(), valid, "date")
    if pa.types.is_boolean(kind_of):
        array = array.fill_null(False) if valid is not None else array
        return Col(array.to_numpy(zero_copy_only=False), valid, "bool")
    if pa.types.is_integer(kind_of):
        if kind_of != pa.int64():
            array = array.cast(pa.int64())
        return Col((array.fill_null(0) if valid is not None else array).to_numpy(), valid, "int")
    if pa.types.is_floating(kind_of):
        if kind_of != pa.float64():
            array = array.cast(pa.float64())
        return Col(
            (array.fill_null(0.0) if valid is not None else array).to_numpy(), valid, "float"
        )
    if pa.types.is_dictionary(kind_of) and (
        pa.types.is_string(kind_of.value_type) or pa.types.is_large_string(kind_of.value_type)
    ):
        return Col(STRINGS.encode(array), valid, "str")
    if pa.types.is_string(kind_of) or pa.types.is_large_string(kind_of):
        return Col(STRINGS.encode(array), valid, "str")
    raise ArraySqlError(f"columns of type {kind_of} are not evaluated")


def to_arrow(col: Col, rows: int, kind_of: pa.DataType) -> pa.Array:
    if col.kind == "tuple":
        raise ArraySqlError("a list cannot be a result column")
    values = col.array(rows)
    mask = None if col.valid is None else ~col.mask(rows)
    if col.kind == "null":
        return pa.nulls(rows, kind_of)
    if col.kind == "str":
        array = pa.array(STRINGS.decode(values), pa.string(), mask=mask)
    elif col.kind == "ts":
        array = pa.array(values, pa.timestamp("us"), mask=mask)
    elif col.kind == "date":
        array = pa.array(values, pa.date32(), mask=mask)
    elif kind_of in _DIRECT.get(col.kind, ()):
        return pa.array(values, kind_of, mask=mask)
    else:
        array = pa.array(values, mask=mask)
    return array if array.type == kind_of else array.cast(kind_of)


# the Arrow type a kind of column converts to and reads back from unchanged (int: any integer
# type, str: a string type)
_READ_AS = {
    "float": pa.float64(), "bool": pa.bool_(), "ts": pa.timestamp("us"), "date": pa.date32()
}  # fmt: skip


def _as_read(col: Col, rows: int, kind_of: pa.DataType) -> Col | None:
    """What `from_arrow` makes of `to_arrow(col, rows, kind_of)` where Arrow holds the very
    values (NULLs' filled as from_arrow fills them); None for other columns (a string column
    with NULLs, a narrower float, a NULL column), which are converted when read."""
    kind = col.kind
    if kind == "int":
        same_type = pa.types.is_integer(kind_of)
    elif kind == "str":
        same_type = col.valid is None and (
            pa.types.is_string(kind_of) or pa.types.is_large_string(kind_of)
        )
    else:
        same_type = kind in _READ_AS and kind_of == _READ_AS[kind]
    if not same_type:
        return None
    values = col.array(rows)
    valid = None
    if col.valid is not None:
        mask = col.mask(rows)
        if not mask.all():
            valid = np.array(mask, bool)
            values = np.where(valid, values, _FILL[col.kind])
            valid.flags.writeable = False
    values = np.asarray(values, _DTYPES[col.kind])
    values.flags.writeable = False  # read by later runs, as Arrow's own buffers are
    return Col(values, valid, col.kind)


# result types NumPy's values convert to directly
_DIRECT = {
    "int": (pa.int64(), pa.int32(), pa.float64()),
    "float": (pa.float64(),),
    "bool": (pa.bool_(),),
}


# -- relations ------------------------------------------------------------------------


class _Lazy:
    """A column whose rows are not taken yet (most of a relation's columns are never read):
    `source` a table's column not converted yet (a function) or another relation's column;
    `index` the rows taken from it, `missing` those without a match (a left join's NULLs)."""

    __slots__ = ("_col", "index", "missing", "source")
    constant = False

    def __init__(
        self,
        source: Col | Callable[[], Col],
        index: np.ndarray | None,
        missing: np.ndarray | None = None,
    ) -> None:
        self.source = source
        self.index = index
        self.missing = missing
        self._col: Col | None = None

    def force(self) -> Col:
        if self._col is None:  # a relation read twice (a CTE) takes its rows once
            col = self.source if isinstance(self.source, Col) else self.source()
            if self.index is not None:
                col = col.take(self.index)
            if self.missing is not None:
                valid = ~self.missing if col.valid is None else col.valid & ~self.missing
                col = Col(col.values, valid, col.kind)
            self._col = col
        return self._col


def _forced(col: Col | _Lazy) -> Col:
    return col.force() if isinstance(col, _Lazy) else col


def _deferred(
    col: Col | _Lazy,
    index: np.ndarray,
    composed: dict[int, np.ndarray],
    missing: np.ndarray | None = None,
) -> Col | _Lazy:
    """`col`'s rows `index` (`missing`: those to be NULL), taken when first read; columns
    taken by one index share its composition with theirs (`composed`, by their index)."""
    if isinstance(col, Col):
        if col.kind == "tuple":
            if missing is not None:
                raise ArraySqlError("a list column of a left join's right side")
            return col.take(index)
        if col.constant:
            if missing is None:
                return col
            return Col(col.array(len(index)), col.mask(len(index)) & ~missing, col.kind)
        return _Lazy(col, index, missing)
    if col._col is not None:
        return _Lazy(col._col, index, missing)
    if col.index is None:
        through = index
    else:
        through = composed.get(id(col.index))
        if through is None:
            through = composed[id(col.index)] = col.index[index]
    if col.missing is not None:
        missing = col.missing[index] if missing is None else col.missing[index] | missing
    return _Lazy(col.source, through, missing)


class HeldTable:
    """An Arrow table that runs read again unchanged (a table not per day, a chunk of a live
    table's rows read by the next seconds' runs): each column is converted once, when first
    read. Its columns are shared by the runs: the evaluator writes only into arrays it made.
    `cols`: columns already converted (None: not yet), as from_arrow converts them."""

    __slots__ = ("_cols", "table")

    def __init__(self, table: pa.Table, cols: list[Col | None] | None = None) -> None:
        self.table = table
        self._cols: list[Col | None] = list(cols) if cols else [None] * table.num_columns

    def col(self, i: int) -> Col:
        col = self._cols[i]
        if col is None:
            col = self._cols[i] = from_arrow(self.table.column(i))
        return col

    def __reduce__(self) -> tuple[Any, ...]:
        # to another process as its Arrow table: a string column's codes are this process's
        return (HeldTable, (self.table,))


@dataclass(frozen=True)
class TableRows:
    """What a query reads as a table: the rows of `pieces` (held tables with `schema`'s
    columns) one after the other; with `time_column`, those whose timestamp is in
    [lower_ns, upper_ns)."""

    schema: pa.Schema
    pieces: list[HeldTable]
    time_column: str | None = None
    lower_ns: float = -math.inf
    upper_ns: float = math.inf


def in_window(col: Col, unit: str, lower_ns: float, upper_ns: float, rows: int) -> np.ndarray:
    """Which rows of a timestamp column (in `unit`) are in [lower_ns, upper_ns), compared
    in that unit as Arrow compares them; NULL is in no window."""
    micros = MICROS.get(unit)
    if col.kind != "ts" or micros is None:
        raise ArraySqlError(f"a window of time over a {col.kind} column in {unit!r}")
    low = int(max(lower_ns, -(2**62))) // (1000 * micros) * micros
    high = int(min(upper_ns, 2**62)) // (1000 * micros) * micros
    values = col.array(rows)
    return (values >= low) & (values < high) & col.mask(rows)


def _concatenated(cols: list[Col]) -> Col:
    if len(cols) == 1:
        return cols[0]
    valid = None
    if any(col.valid is not None for col in cols):
        valid = np.concatenate([col.mask(len(col.values)) for col in cols])
    return Col(np.concatenate([col.values for col in cols]), valid, cols[0].kind)


def _name_index(names: list[tuple[str | None, str]]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for i, (_, name) in enumerate(names):
        index.setdefault(name, []).append(i)
    return index


@dataclass(slots=True)
class Rel:
    """Rows: columns named (qualifier, name); the qualifier is the table or alias read."""

    names: list[tuple[str | None, str]]
    cols: list[Col]
    rows: int
    _index: dict[str, list[int]] | None = None

    def position(self, parts: list[str]) -> int | None:
        index = self._index
        if index is None:
            index = self._index = _name_index(self.names)
        found = index.get(parts[-1], ())  # identifiers are lower case (_normalise)
        if len(parts) > 1:
            found = [i for i in found if self.names[i][0] == parts[-2]]
        if len(found) > 1:
            raise ArraySqlError(f"column {'.'.join(parts)} is ambiguous")
        return found[0] if found else None

    def col_at(self, position: int) -> Col:
        col = self.cols[position]
        if isinstance(col, _Lazy):
            col = self.cols[position] = col.force()
        return col

    def find(self, parts: list[str]) -> Col | None:
        position = self.position(parts)
        return None if position is None else self.col_at(position)

    def take(self, index: np.ndarray) -> Rel:
        # the same names: their index too
        composed: dict[int, np.ndarray] = {}
        cols = [_deferred(col, index, composed) for col in self.cols]
        return Rel(self.names, cols, len(index), self._index)


class _Either(Rel):
    """Columns of `first`, else of `second` (the same rows)."""

    __slots__ = ("first", "second")

    def __init__(self, first: Rel, second: Rel) -> None:
        super().__init__(first.names, first.cols, first.rows)
        self.first = first
        self.second = second

    def find(self, parts: list[str]) -> Col | None:
        found = self.first.find(parts)
        return found if found is not None else self.second.find(parts)


def _rel_from_rows(rows: TableRows, names: tuple[list, dict]) -> Rel:
    """`names`: the columns' qualified names and their index."""
    pieces = rows.pieces or [HeldTable(rows.schema.empty_table())]
    index = None
    count = sum(piece.table.num_rows for piece in pieces)
    columns: dict[int, Col] = {}  # the pieces' columns one after the other, once a run

    def column(i: int) -> Col:
        if i not in columns:
            columns[i] = _concatenated([piece.col(i) for piece in pieces])
        return columns[i]

    if rows.time_column is not None:
        i = rows.schema.get_field_index(rows.time_column)
        time_type = rows.schema.field(i).type
        if not pa.types.is_timestamp(time_type):
            raise ArraySqlError(f"time column {rows.time_column} is a {time_type}")
        kept = in_window(column(i), time_type.unit, rows.lower_ns, rows.upper_ns, count)
        if not kept.all():
            index = np.flatnonzero(kept)
            count = len(index)

    return Rel(
        names[0],
        [_Lazy(partial(column, i), index) for i in range(len(rows.schema))],
        count,
        names[1],
    )


Tables = Callable[[str, str], pa.Table | TableRows]  # (schema, table) -> its rows


class ArrayQuery:
    """One compiled SELECT, parsed once, evaluated over Arrow tables."""

    def __init__(self, sql: str, connection: duckdb.DuckDBPyConnection | None = None) -> None:
        db = connection or duckdb.connect()
        parsed = json.loads(db.execute("select json_serialize_sql(?)", [sql]).fetchall()[0][0])
        if parsed.get("error"):
            raise ArraySqlError(f"cannot parse: {parsed.get('error_message')}")
        statements = parsed["statements"]
        if len(statements) != 1:
            raise ArraySqlError("one SELECT statement expected")
        self._parsed(_normalise(statements[0]["node"]))

    def _parsed(self, node: dict) -> None:
        self.node = node
        self._memo: dict[int, Any] = {}  # per parse-tree node: what does not change per run
        self._compiled: dict[int, Compiled] = {}  # per expression node: its function

    def __reduce__(self) -> tuple[Any, ...]:
        # to another process as its parse tree: what runs keep is by this process's objects
        return (_query_of, (self.node,))

    def run_as(
        self,
        tables: Tables,
        schema: pa.Schema,
        within: tuple[str, float, float] | None = None,
    ) -> pa.Table:
        """The rows as `schema` has them (what an insert into the table stores), in the
        query's ORDER BY's order (else unspecified, as in SQL); `within` (column, lower_ns,
        upper_ns): only the rows whose timestamp column is in [lower_ns, upper_ns)."""
        return self.run_held(tables, schema, within).table

    def run_held(
        self,
        tables: Tables,
        schema: pa.Schema,
        within: tuple[str, float, float] | None = None,
    ) -> HeldTable:
        """`run_as`'s rows held for queries that read them next: the columns they read are
        the evaluator's own arrays, not converted back from Arrow (where Arrow holds the
        same values: `_as_read`)."""
        rel, names = _Evaluation(tables, self._memo, self._compiled).query(self.node, {})
        by_name = dict(zip(names, rel.cols, strict=True))
        by_name = {name: _forced(by_name[name]) for name in schema.names if name in by_name}
        missing = [field.name for field in schema if field.name not in by_name]
        if missing:
            raise ArraySqlError(f"the query has no column {', '.join(missing)}")
        rows = rel.rows
        if within is not None:  # before converting: a run over seconds of lookback keeps one
            column, lower_ns, upper_ns = within
            unit = schema.field(column).type.unit
            kept = in_window(by_name[column], unit, lower_ns, upper_ns, rows)
            if not kept.all():
                index = np.flatnonzero(kept)
                by_name = {name: col.take(index) for name, col in by_name.items()}
                rows = len(index)
        table = pa.table(
            [to_arrow(by_name[field.name], rows, field.type) for field in schema],
            schema=schema,
        )
        return HeldTable(
            table, [_as_read(by_name[field.name], rows, field.type) for field in schema]
        )


def _query_of(node: dict) -> ArrayQuery:
    query = ArrayQuery.__new__(ArrayQuery)
    query._parsed(node)
    return query


_TABLE_REFS = {"BASE_TABLE", "SUBQUERY", "TABLE_FUNCTION", "JOIN", "EMPTY"}


def _normalise(node: Any) -> Any:
    """Identifiers in lower case, as DuckDB compares them (a select item's alias, the
    result's column name, keeps its case)."""
    if isinstance(node, list):
        return [_normalise(value) for value in node]
    if not isinstance(node, dict):
        return node
    out = {key: _normalise(value) for key, value in node.items()}
    for key in ("column_names", "exclude_list", "column_name_alias"):
        if key in out:
            out[key] = [name.lower() for name in out[key]]
    for key in ("relation_name", "table_name", "schema_name"):
        if isinstance(out.get(key), str):
            out[key] = out[key].lower()
    if out.get("type") in _TABLE_REFS and isinstance(out.get("alias"), str):
        out["alias"] = out["alias"].lower()
    if "key" in out and "value" in out and isinstance(out["key"], str):  # a CTE
        out["key"] = out["key"].lower()
    return out


# -- evaluation -----------------------------------------------------------------------

_AGGREGATES = {"sum", "count_star", "count", "max", "min", "bool_and", "arg_max", "list"}


@dataclass
class _Groups:
    ids: np.ndarray  # per row
    count: int
    first: np.ndarray  # a row of each group


@dataclass
class _GroupedList:
    """`list(x order by ...)` per group, before a list function reduces it."""

    element: Col
    order: np.ndarray  # rows sorted by group, then the list's order
    starts: np.ndarray  # each group's first position in `order`, with the end appended


class _Evaluation:
    def __init__(self, tables: Tables, memo: dict[int, Any], compiled: dict[int, Compiled]) -> None:
        self.tables = tables
        self.memo = memo  # the query's, shared by its runs (keyed by id of a parse node)
        self.compiled = compiled  # the query's expressions' functions (see _compile)
        self.windows: dict[tuple[int, str], tuple[np.ndarray, np.ndarray, Rel]] = {}
        self.read: dict[tuple[str, str], Any] = {}  # each table's rows, asked once a run
        self.recording: list[dict[tuple[str, str], Any]] = []  # the CTEs being computed

    def table(self, schema: str, name: str) -> Any:
        """A table's rows, noted as read by every CTE being computed."""
        key = (schema, name)
        rows = self.read.get(key)
        if rows is None:
            rows = self.read[key] = self.tables(schema, name)
        for reads in self.recording:
            reads[key] = rows
        return rows

    def cte(self, node: dict, scope: dict) -> tuple[tuple[Rel, list[str]], dict]:
        """A CTE's rows and the tables it read: the last run's rows when it read the very same
        tables (objects that do not change per second, as a table not per day)."""
        key = ("cte", id(node))
        last = self.memo.get(key)
        if last is not None:
            result, reads = last
            if all(self.table(*table) is rows for table, rows in reads.items()):
                return result, reads
        reads = {}
        self.recording.append(reads)
        try:
            result = self.query(node, scope)
        finally:
            self.recording.pop()
        self.memo[key] = (result, reads)
        return result, reads

    def named(self, node: dict, qualifier: str | None, names: list[str]) -> tuple[list, dict]:
        """The columns `names` of `qualifier` as a relation names them, (qualifier, name in
        lower case), and their index for `Rel.find`: made once per parse node, the same
        objects run after run while the names stay the same."""
        key = ("named", id(node))
        made = self.memo.get(key)
        if made is None or made[0] != qualifier or made[1] != names:
            qualified = [(qualifier, name.lower()) for name in names]
            made = self.memo[key] = (qualifier, list(names), qualified, _name_index(qualified))
        return made[2], made[3]

    def grouped(self, node: dict) -> bool:
        """Whether a SELECT groups its rows (GROUP BY, or an aggregate in its list)."""
        key = id(node)
        if key not in self.memo:
            self.memo[key] = bool(node["group_expressions"]) or any(
                _has_aggregate(e) for e in node["select_list"]
            )
        return self.memo[key]

    # -- query nodes --

    def query(self, node: dict, ctes: dict) -> tuple[Rel, list[str]]:
        if node["type"] != "SELECT_NODE":
            raise ArraySqlError(f"{node['type']} is not evaluated")
        for key in ("having", "qualify", "sample"):
            if node.get(key):
                raise ArraySqlError(f"{key.upper()} is not evaluated")
        if node.get("group_sets") and len(node["group_sets"]) > 1:
            raise ArraySqlError("GROUPING SETS are not evaluated")
        scope = dict(ctes)
        for entry in node["cte_map"]["map"]:
            scope[entry["key"]] = _Cte(entry["value"]["query_node"], dict(scope))
        rel = self.table_ref(node["from_table"], scope)
        if node.get("where_clause"):
            rel = rel.take(np.flatnonzero(_true(self.expr(node["where_clause"], rel), rel.rows)))
        groups = None
        if self.grouped(node):
            keys = [self.expr(e, rel) for e in node["group_expressions"]]
            groups = _group(keys, rel.rows)
        names: list[str] = []
        cols: list[Col] = []
        for item in node["select_list"]:
            if item["class"] == "STAR":
                for name, col in self.star(item, rel):
                    names.append(name)
                    cols.append(col)
                continue
            names.append(item["alias"] or _default_name(item))
            cols.append(self.expr(item, rel, groups))
        rows = groups.count if groups is not None else rel.rows
        qualified, index = self.named(node, None, names)
        out = Rel(qualified, cols, rows, index)
        for modifier in node["modifiers"]:
            if modifier["type"] != "ORDER_MODIFIER":
                raise ArraySqlError(f"{modifier['type']} is not evaluated")
            # ORDER BY reads the select list, then (without GROUP BY) the rows it came from
            scope = out if groups is not None else _Either(out, rel)
            out = out.take(self.order(modifier["orders"], scope))
        return out, names

    def star(self, item: dict, rel: Rel) -> Iterable[tuple[str, Col]]:
        if item.get("replace_list") or item.get("columns") or item.get("rename_list"):
            raise ArraySqlError("STAR with REPLACE, RENAME or COLUMNS is not evaluated")
        qualifier = item["relation_name"] or None
        excluded = set(item["exclude_list"])
        if item.get("qualified_exclude_list"):
            raise ArraySqlError("qualified EXCLUDE is not evaluated")
        for (q, name), col in zip(rel.names, rel.cols, strict=True):
            if (qualifier is None or q == qualifier) and name not in excluded:
                yield name, col

    def order(self, orders: list[dict], rel: Rel, first: list[np.ndarray] = ()) -> np.ndarray:
        """The rows in ORDER BY's order; `first`: keys to sort by before it."""
        keys = list(first)
        for order in orders:
            if order["null_order"] not in ("ORDER_DEFAULT", "NULLS_LAST"):
                raise ArraySqlError("NULLS FIRST is not evaluated")
            col = self.expr(order["expression"], rel)
            codes = _sort_codes(col, rel.rows)
            if order["type"] == "DESCENDING":
                codes = -codes
            elif order["type"] not in ("ORDER_DEFAULT", "ASCENDING"):
                raise ArraySqlError(f"ORDER {order['type']} is not evaluated")
            keys.append(~col.mask(rel.rows))  # NULLs last
            keys.append(codes)
        return np.lexsort(keys[::-1]) if keys else np.arange(rel.rows)

    def table_ref(self, ref: dict, scope: dict) -> Rel:
        kind = ref["type"]
        alias = ref.get("alias", "")
        if kind == "BASE_TABLE":
            if ref.get("column_name_alias") or ref.get("at_clause"):
                raise ArraySqlError("column aliases on a table are not evaluated")
            name = ref["table_name"]
            if not ref["schema_name"] and name in scope:
                rel, names = scope[name].rows(self)
                qualified, index = self.named(ref, alias or name, names)
                return Rel(qualified, rel.cols, rel.rows, index)
            table = self.table(ref["schema_name"], name)
            if not isinstance(table, TableRows):  # read once
                table = TableRows(table.schema, [HeldTable(table)])
            return _rel_from_rows(table, self.named(ref, alias or name, table.schema.names))
        if kind == "SUBQUERY":
            rel, names = self.query(ref["subquery"]["node"], scope)
            aliases = ref.get("column_name_alias", [])
            names = aliases + names[len(aliases) :]
            qualified, index = self.named(ref, alias or None, names)
            return Rel(qualified, rel.cols, rel.rows, index)
        if kind == "TABLE_FUNCTION":
            return self.table_function(ref)
        if kind == "EMPTY":
            return Rel([], [], 1)
        if kind == "JOIN":
            return self.join(ref, scope)
        raise ArraySqlError(f"table reference {kind} is not evaluated")

    def table_function(self, ref: dict) -> Rel:
        function = ref["function"]
        if function["function_name"] != "range" or len(function["arguments"]) != 2:
            raise ArraySqlError(f"table function {function['function_name']} is not evaluated")
        empty = Rel([], [], 1)
        low, high = (self.expr(a["expression"], empty) for a in function["arguments"])
        if not (low.constant and high.constant and low.kind == high.kind == "int"):
            raise ArraySqlError("range() takes two integer constants here")
        values = np.arange(int(low.values), int(high.values), dtype=np.int64)
        names = [a.lower() for a in ref.get("column_name_alias", [])] or ["range"]
        return Rel(
            [(ref["alias"].lower() or None, names[0])], [Col(values, None, "int")], len(values)
        )

    def join(self, ref: dict, scope: dict) -> Rel:
        left = self.table_ref(ref["left"], scope)
        right = self.table_ref(ref["right"], scope)
        if ref.get("using_columns") or ref["ref_type"] not in ("REGULAR", "CROSS"):
            raise ArraySqlError(f"{ref['ref_type']} joins and USING are not evaluated")
        if ref["ref_type"] == "CROSS" or ref["condition"] is None:
            pairs_left = np.repeat(np.arange(left.rows), right.rows)
            pairs_right = np.tile(np.arange(right.rows), left.rows)
            return _joined(
                left, right, pairs_left, pairs_right, self.joined_names(ref, left, right)
            )
        join_type = ref["join_type"]
        if join_type not in ("INNER", "LEFT"):
            raise ArraySqlError(f"{join_type} joins are not evaluated")
        keys_left, keys_right, residual = [], [], []
        for conjunct in _conjuncts(ref["condition"]):
            sides = self.equality_sides(conjunct, left, right)
            if sides is None:
                residual.append(conjunct)
            else:
                keys_left.append(sides[0])
                keys_right.append(sides[1])
        pairs_left, pairs_right = _equi_pairs(keys_left, keys_right, left.rows, right.rows)
        if residual:
            names = self.joined_names(ref, left, right)
            candidates = _joined(left, right, pairs_left, pairs_right, names)
            keep = np.ones(candidates.rows, bool)
            for conjunct in residual:
                keep &= _true(self.expr(conjunct, candidates), candidates.rows)
            pairs_left, pairs_right = pairs_left[keep], pairs_right[keep]
        if join_type == "LEFT":
            matched = np.zeros(left.rows, bool)
            matched[pairs_left] = True
            if not matched.all():  # the rows without a match in their place, in left order
                unmatched = np.flatnonzero(~matched)
                pairs_left = np.concatenate([pairs_left, unmatched])
                pairs_right = np.concatenate([pairs_right, np.full(len(unmatched), -1)])
                order = np.argsort(pairs_left, kind="stable")
                pairs_left, pairs_right = pairs_left[order], pairs_right[order]
        return _joined(left, right, pairs_left, pairs_right, self.joined_names(ref, left, right))

    def joined_names(self, ref: dict, left: Rel, right: Rel) -> tuple[list, dict]:
        """A join's column names and their index, made once while its sides' names are the
        same lists (theirs are made once too)."""
        key = ("joined", id(ref))
        made = self.memo.get(key)
        if made is None or made[0] is not left.names or made[1] is not right.names:
            names = left.names + right.names
            made = self.memo[key] = (left.names, right.names, names, _name_index(names))
        return made[2], made[3]

    def equality_sides(self, node: dict, left: Rel, right: Rel) -> tuple[Col, Col] | None:
        """The two sides of `a = b` when one reads only the left rows and the other only
        the right."""
        if node.get("class") != "COMPARISON" or node["type"] != "COMPARE_EQUAL":
            return None
        a, b = node["left"], node["right"]
        for first, second in ((a, b), (b, a)):
            if _reads_only(first, left, right) and _reads_only(second, right, left):
                return self.expr(first, left), self.expr(second, right)
        return None

    # -- expressions --

    def expr(self, node: dict, rel: Rel, groups: _Groups | None = None) -> Col:
        compiled = self.compiled.get(id(node))
        if compiled is None:
            compiled = _compile(node, self.compiled)
        return compiled(self, rel, groups)

    def list_function(self, node: dict, rel: Rel, groups: _Groups | None) -> Any:
        """list_avg(list_transform(list(x order by k), lambda row: row[i])), over groups."""
        name = node["function_name"]
        args = [a["expression"] for a in node["arguments"]]
        if groups is None:
            raise ArraySqlError(f"{name} outside an aggregate is not evaluated")
        inner = args[0]
        if inner["class"] == "FUNCTION" and inner["function_name"] in ("list", "list_transform"):
            listed = (
                self.grouped_list(inner, rel, groups)
                if inner["function_name"] == "list"
                else self.list_function(inner, rel, groups)
            )
        else:
            raise ArraySqlError(f"{name} takes a list(...) aggregate here")
        if name == "list_transform":
            (lam,) = args[1:]
            if lam["class"] != "LAMBDA" or lam["lhs"]["class"] != "COLUMN_REF":
                raise ArraySqlError("list_transform takes a one-argument lambda")
            parameter = lam["lhs"]["column_names"][0]
            bound = Rel([(None, parameter)], [listed.element], 0)
            return _GroupedList(self.expr(lam["expr"], bound), listed.order, listed.starts)
        element = listed.element
        if element.kind not in ("float", "int"):
            raise ArraySqlError("list_avg takes numbers")
        ordered = element.take(listed.order) if not element.constant else element
        values = _as_kind(ordered, "float").array(len(listed.order))
        means, counts = _ordered_means(
            np.ascontiguousarray(values), ordered.mask(len(listed.order)).copy(), listed.starts
        )
        return Col(means, counts > 0, "float")

    def grouped_list(self, node: dict, rel: Rel, groups: _Groups) -> _GroupedList:
        if node.get("filter"):
            raise ArraySqlError("list(...) with FILTER is not evaluated")
        (arg,) = (a["expression"] for a in node["arguments"])
        element = self.expr(arg, rel)
        keys = [groups.ids]
        for order in node["order_bys"]["orders"]:
            if order["type"] not in ("ORDER_DEFAULT", "ASCENDING"):
                raise ArraySqlError("list(... ORDER BY ... DESC) is not evaluated")
            col = self.expr(order["expression"], rel)
            keys.append(~col.mask(rel.rows))
            keys.append(_sort_codes(col, rel.rows))
        order_rows = np.lexsort(keys[::-1])
        starts = np.searchsorted(groups.ids[order_rows], np.arange(groups.count + 1))
        return _GroupedList(element, order_rows, starts)

    def aggregate(self, node: dict, rel: Rel, groups: _Groups) -> Col:
        name = node["function_name"]
        if node["order_bys"]["orders"] and name != "list":
            raise ArraySqlError(f"{name} with ORDER BY is not evaluated")
        if name == "list":
            raise ArraySqlError("list(...) outside list_avg is not evaluated")
        keep = np.ones(rel.rows, bool)
        if node.get("filter"):
            keep = _true(self.expr(node["filter"], rel), rel.rows)
        args = [self.expr(a["expression"], rel) for a in node["arguments"]]
        if name == "count_star":
            return Col(np.bincount(groups.ids[keep], minlength=groups.count), None, "int")
        (first, *others) = args
        keep = keep & first.mask(rel.rows)
        ids = groups.ids[keep]
        present = np.bincount(ids, minlength=groups.count) > 0
        if name == "count":
            return Col(np.bincount(ids, minlength=groups.count), None, "int")
        values = first.array(rel.rows)[keep] if first.kind != "tuple" else None
        if name == "sum":
            if first.kind != "int":
                raise ArraySqlError("sum of non-integers: DuckDB adds them in no set order")
            totals = np.zeros(groups.count, np.int64)
            np.add.at(totals, ids, values)
            return Col(totals, None if present.all() else present, "int")
        if name in ("max", "min"):
            _expect(first, ("int", "float", "ts", "date"), name)
            if first.kind == "float":
                start = -np.inf if name == "max" else np.inf
            else:
                info = np.iinfo(values.dtype)
                start = info.min if name == "max" else info.max
            out = np.full(groups.count, start, dtype=values.dtype)
            (np.maximum if name == "max" else np.minimum).at(out, ids, values)
            if first.kind == "float" and np.isnan(values).any():
                raise ArraySqlError(f"{name} over NaN is not evaluated")
            return Col(out, None if present.all() else present, first.kind)
        if name == "bool_and":
            _expect(first, "bool", name)
            falses = np.bincount(ids[~values], minlength=groups.count)
            return Col(falses == 0, None if present.all() else present, "bool")
        if name == "arg_max":
            (key,) = others
            key_parts = key.values if key.kind == "tuple" else (key,)
            keep = keep & np.logical_and.reduce([p.mask(rel.rows) for p in key_parts])
            rows_kept = np.flatnonzero(keep)
            sort_keys = [_sort_codes(p, rel.rows)[rows_kept] for p in key_parts]
            order = np.lexsort([*sort_keys[::-1], groups.ids[rows_kept]])
            ordered_ids = groups.ids[rows_kept][order]
            last = np.flatnonzero(np.r_[ordered_ids[1:] != ordered_ids[:-1], True])
            last = last[: len(ordered_ids)]  # none when no row is kept
            chosen = np.zeros(groups.count, np.int64)
            chosen[ordered_ids[last]] = rows_kept[order[last]]
            got = np.zeros(groups.count, bool)
            got[ordered_ids[last]] = True
            result = first.take(chosen)
            valid = got if result.valid is None else got & result.valid
            return Col(result.values, None if valid.all() else valid, result.kind)
        raise ArraySqlError(f"aggregate {name} is not evaluated")

    def window_order(self, node: dict, rel: Rel) -> tuple[np.ndarray, np.ndarray]:
        """The rows in the window's order within partitions, and each one's partition:
        computed once per window and relation (a query's lags share their windows)."""
        spec = self.memo.get(id(node))
        if spec is None:
            spec = self.memo[id(node)] = json.dumps([node["partitions"], node["orders"]])
        key = (id(rel), spec)
        if key not in self.windows:
            partition_ids = _group([self.expr(p, rel) for p in node["partitions"]], rel.rows).ids
            order = self.order(node["orders"], rel, first=[partition_ids])
            self.windows[key] = (order, partition_ids[order], rel)  # rel: its id stays its own
        order, sorted_ids, _ = self.windows[key]
        return order, sorted_ids

    def window(self, node: dict, rel: Rel) -> Col:
        if node["type"] != "WINDOW_LAG":
            raise ArraySqlError(f"window {node['type']} is not evaluated")
        for key in ("filter_expr", "default_expr"):
            if node.get(key):
                raise ArraySqlError(f"LAG with {key} is not evaluated")
        if node.get("ignore_nulls") or node.get("distinct") or node.get("arg_orders"):
            raise ArraySqlError("LAG with IGNORE NULLS, DISTINCT or ordered arguments")
        args = [self.expr(a["expression"], rel) for a in node["arguments"]]
        value = args[0]
        offset = 1
        if len(args) > 1:
            if not args[1].constant or args[1].kind != "int":
                raise ArraySqlError("LAG's offset must be an integer constant")
            offset = int(args[1].values)
        if node.get("offset_expr"):
            raise ArraySqlError("LAG's offset expression is not evaluated")
        order, sorted_ids = self.window_order(node, rel)
        source = np.full(rel.rows, -1, np.int64)
        if rel.rows > offset:
            same = sorted_ids[offset:] == sorted_ids[:-offset]
            source[order[offset:][same]] = order[:-offset][same]
        found = source >= 0
        taken = value.take(np.where(found, source, 0))
        if value.constant:
            taken = Col(value.array(rel.rows), None, value.kind)
        valid = found if taken.valid is None else found & taken.valid
        return Col(taken.values, None if valid.all() else valid, value.kind)


@dataclass
class _Cte:
    node: dict
    scope: dict
    result: tuple[Rel, list[str]] | None = None
    reads: dict[tuple[str, str], Any] | None = None

    def rows(self, evaluation: _Evaluation) -> tuple[Rel, list[str]]:
        if self.result is None:  # read more than once: computed once
            self.result, self.reads = evaluation.cte(self.node, self.scope)
        else:  # a CTE reading this one read its tables too
            for reads in evaluation.recording:
                reads.update(self.reads)
        return self.result


# -- expressions, compiled --
# Each expression node is turned once into a function of (evaluation, rows, groups) that calls
# its children's functions: a run evaluates no parse tree (no dispatch on the node's class, no
# lookups in its dict), and a column reference finds its column by position while the rows
# are named by the same list as when it last looked.

Compiled = Callable[["_Evaluation", Rel, "_Groups | None"], Col]


def _compile(node: dict, compiled: dict[int, Compiled]) -> Compiled:
    """`node`'s function, made once per node (`compiled`: by id of the node, shared by the
    query's runs)."""
    function = compiled.get(id(node))
    if function is None:
        function = compiled[id(node)] = _compile_node(node, compiled)
    return function


def _compile_node(node: dict, compiled: dict[int, Compiled]) -> Compiled:
    kind = node["class"]
    if kind == "COLUMN_REF":
        return _column_ref(node["column_names"])
    if kind == "CONSTANT":
        constant = _constant(node["literal"])
        return lambda evaluation, rel, groups: constant
    if kind == "FUNCTION":
        return _compile_function(node, compiled)
    if kind == "COMPARISON":
        comparison = node["type"]
        if comparison not in _COMPARE:
            raise ArraySqlError(f"comparison {comparison} is not evaluated")
        left = _compile(node["left"], compiled)
        right = _compile(node["right"], compiled)
        return lambda evaluation, rel, groups: _compare(
            comparison, left(evaluation, rel, groups), right(evaluation, rel, groups)
        )
    if kind == "BETWEEN":
        value, lower, upper = (_compile(node[key], compiled) for key in ("input", "lower", "upper"))

        def between(evaluation: _Evaluation, rel: Rel, groups: _Groups | None) -> Col:
            tested = value(evaluation, rel, groups)
            return _and(
                [
                    _compare(
                        "COMPARE_GREATERTHANOREQUALTO", tested, lower(evaluation, rel, groups)
                    ),
                    _compare("COMPARE_LESSTHANOREQUALTO", tested, upper(evaluation, rel, groups)),
                ]
            )

        return between
    if kind == "CONJUNCTION":
        parts = [_compile(child, compiled) for child in node["children"]]
        combine = _and if node["type"] == "CONJUNCTION_AND" else _or
        return lambda evaluation, rel, groups: combine(
            [part(evaluation, rel, groups) for part in parts]
        )
    if kind == "CASE":
        return _compile_case(node, compiled)
    if kind == "CAST":
        if node["try_cast"]:
            raise ArraySqlError("TRY_CAST is not evaluated")
        child = _compile(node["child"], compiled)
        type_name = node["type_expr"]["type_name"]
        return lambda evaluation, rel, groups: _cast(child(evaluation, rel, groups), type_name)
    if kind == "OPERATOR":
        return _compile_operator(node, compiled)
    if kind == "WINDOW":

        def window(evaluation: _Evaluation, rel: Rel, groups: _Groups | None) -> Col:
            if groups is not None:
                raise ArraySqlError("windows over groups are not evaluated")
            return evaluation.window(node, rel)

        return window
    raise ArraySqlError(f"expression {kind} ({node['type']}) is not evaluated")


def _column_ref(parts: list[str]) -> Compiled:
    """A column by position, found again only when the rows' names are another list (the
    names of a relation are made once per parse node while they stay the same)."""
    last: list[tuple[list, int] | None] = [None]  # (names list last seen, the position)

    def column(evaluation: _Evaluation, rel: Rel, groups: _Groups | None) -> Col:
        if groups is not None:  # a grouped query reads a key column's value per group
            return column(evaluation, rel, None).take(groups.first)
        seen = last[0]
        if seen is not None and seen[0] is rel.names and type(rel) is Rel:
            return rel.col_at(seen[1])
        if type(rel) is not Rel:  # _Either: the select list's columns, else the rows'
            col = rel.find(parts)
        else:
            position = rel.position(parts)
            col = None if position is None else rel.col_at(position)
            if position is not None:
                last[0] = (rel.names, position)
        if col is None:
            raise ArraySqlError(f"no column {'.'.join(parts)}")
        return col

    return column


def _compile_function(node: dict, compiled: dict[int, Compiled]) -> Compiled:
    name = node["function_name"]
    if name in _AGGREGATES:

        def aggregate(evaluation: _Evaluation, rel: Rel, groups: _Groups | None) -> Col:
            if groups is None:
                raise ArraySqlError(f"function {name} is not evaluated")
            return evaluation.aggregate(node, rel, groups)

        return aggregate
    if node.get("filter") or node["order_bys"]["orders"]:
        raise ArraySqlError(f"{name} with FILTER or ORDER BY")
    if name in ("list_avg", "list_transform"):
        return lambda evaluation, rel, groups: evaluation.list_function(node, rel, groups)
    args = [_compile(a["expression"], compiled) for a in node["arguments"]]
    if name in ("+", "-", "*", "/"):
        if len(args) == 2:
            a, b = args
            return lambda evaluation, rel, groups: _arithmetic(
                name, [a(evaluation, rel, groups), b(evaluation, rel, groups)]
            )
        return lambda evaluation, rel, groups: _arithmetic(
            name, [arg(evaluation, rel, groups) for arg in args]
        )
    scalar = _SCALAR_FUNCTIONS.get(name)
    if scalar is None:
        raise ArraySqlError(f"function {name} is not evaluated")
    return lambda evaluation, rel, groups: scalar(
        [arg(evaluation, rel, groups) for arg in args], _rows(rel, groups)
    )


def _compile_case(node: dict, compiled: dict[int, Compiled]) -> Compiled:
    checks = [
        (_compile(c["when_expr"], compiled), _compile(c["then_expr"], compiled))
        for c in node["case_checks"]
    ]
    otherwise = _compile(node["else_expr"], compiled)

    def case(evaluation: _Evaluation, rel: Rel, groups: _Groups | None) -> Col:
        rows = _rows(rel, groups)
        chosen = [
            (when(evaluation, rel, groups), then(evaluation, rel, groups)) for when, then in checks
        ]
        result = otherwise(evaluation, rel, groups)
        kind = _common_kind([then for _, then in chosen] + [result])
        if len(chosen) == 1 and kind != "tuple":  # the usual CASE: one pick per row
            when, then = chosen[0]
            hit = _true(when, rows)
            taken, other = _as_kind(then, kind), _as_kind(result, kind)
            values = np.asarray(np.where(hit, taken.values, other.values), _DTYPES[kind])
            if taken.valid is None and other.valid is None:
                return Col(values, None, kind)
            valid = np.where(hit, taken.mask(rows), other.mask(rows))
            return Col(values, None if valid.all() else valid, kind)
        values = _as_kind(result, kind).array(rows).copy()
        valid = result.mask(rows).copy()
        for when, then in reversed(chosen):
            hit = _true(when, rows)
            taken = _as_kind(then, kind)
            values[hit] = taken.array(rows)[hit]
            valid[hit] = taken.mask(rows)[hit]
        return Col(values, None if valid.all() else valid, kind)

    return case


def _compile_operator(node: dict, compiled: dict[int, Compiled]) -> Compiled:
    kind = node["type"]
    children = [_compile(child, compiled) for child in node["children"]]
    if kind in ("OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL"):
        (child,) = children
        null_wanted = kind == "OPERATOR_IS_NULL"

        def is_null(evaluation: _Evaluation, rel: Rel, groups: _Groups | None) -> Col:
            col = child(evaluation, rel, groups)
            null = np.zeros((), bool) if col.valid is None else ~col.valid
            if col.kind == "null":
                null = ~col.mask(_rows(rel, groups))
            return Col(null if null_wanted else ~null, None, "bool")

        return is_null
    if kind == "OPERATOR_NOT":
        (child,) = children

        def negation(evaluation: _Evaluation, rel: Rel, groups: _Groups | None) -> Col:
            col = child(evaluation, rel, groups)
            _expect(col, "bool", "NOT")
            return Col(~col.values, col.valid, "bool")

        return negation
    if kind == "OPERATOR_COALESCE":
        return lambda evaluation, rel, groups: _coalesce(
            [child(evaluation, rel, groups) for child in children], _rows(rel, groups)
        )
    if kind == "ARRAY_EXTRACT":
        items_of, index_of = children

        def extract(evaluation: _Evaluation, rel: Rel, groups: _Groups | None) -> Col:
            items, index = items_of(evaluation, rel, groups), index_of(evaluation, rel, groups)
            if items.kind != "tuple" or not index.constant or index.kind != "int":
                raise ArraySqlError("[] takes a list of columns and an integer constant")
            position = int(index.values)
            if not 1 <= position <= len(items.values):
                return _null(_rows(rel, groups))
            return items.values[position - 1]

        return extract
    raise ArraySqlError(f"operator {kind} is not evaluated")


def _function_ln(values: list[Col], rows: int) -> Col:
    (col,) = values
    col = _as_kind(col, "float")
    array = col.array(rows)
    checked = array[col.mask(rows)]
    if (checked <= 0).any():
        raise ArraySqlError("ln of zero or a negative number")
    return Col(_ln(np.ascontiguousarray(array, np.float64)), col.valid, "float")


def _function_abs(values: list[Col], rows: int) -> Col:
    (col,) = values
    _expect(col, ("int", "float"), "abs")
    return Col(np.abs(col.values), col.valid, col.kind)


def _function_round(values: list[Col], rows: int) -> Col:
    if len(values) != 1:
        raise ArraySqlError("round with a precision is not evaluated")
    (col,) = values
    if col.kind == "int":
        return col
    _expect(col, "float", "round")
    return Col(_round_half_away(col.values), col.valid, "float")


def _function_to_seconds(values: list[Col], rows: int) -> Col:
    (col,) = values
    if not col.constant or col.kind not in ("int", "float"):
        raise ArraySqlError("an interval must be a constant")
    return Col(np.int64(round(float(col.values) * 1_000_000)), None, "interval")


_SCALAR_FUNCTIONS: dict[str, Callable[[list[Col], int], Col]] = {
    "ln": _function_ln,
    "abs": _function_abs,
    "greatest": lambda values, rows: _extreme(values, rows, True),
    "least": lambda values, rows: _extreme(values, rows, False),
    "round": _function_round,
    "to_seconds": _function_to_seconds,
    "list_value": lambda values, rows: Col(tuple(values), None, "tuple"),
}


# -- helpers --------------------------------------------------------------------------


def _rows(rel: Rel, groups: _Groups | None) -> int:
    return groups.count if groups is not None else rel.rows


def _default_name(node: dict) -> str:
    if node["class"] == "COLUMN_REF":
        return node["column_names"][-1]
    raise ArraySqlError("a computed select item needs an alias")


def _has_aggregate(node: Any) -> bool:
    if isinstance(node, dict):
        if node.get("class") == "FUNCTION" and node.get("function_name") in _AGGREGATES:
            return True
        if node.get("class") == "WINDOW":
            return False
        return any(_has_aggregate(value) for value in node.values())
    if isinstance(node, list):
        return any(_has_aggregate(value) for value in node)
    return False


def _column_refs(node: Any) -> list[list[str]]:
    if isinstance(node, dict):
        if node.get("class") == "COLUMN_REF":
            return [node["column_names"]]
        return [ref for value in node.values() for ref in _column_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _column_refs(value)]
    return []


def _reads_only(node: dict, rel: Rel, other: Rel) -> bool:
    refs = _column_refs(node)
    return bool(refs) and all(rel.find(ref) is not None and other.find(ref) is None for ref in refs)


def _conjuncts(node: dict) -> list[dict]:
    if node.get("class") == "CONJUNCTION" and node["type"] == "CONJUNCTION_AND":
        return [part for child in node["children"] for part in _conjuncts(child)]
    return [node]


def _constant(literal: dict) -> Col:
    kind, text = literal["kind"], literal["text"]
    if kind == "INTEGER":
        return Col(np.int64(int(text)), None, "int")
    if kind == "NUMERIC":
        # a decimal literal (or 1e-6, a double): DuckDB widens it to the nearest double
        return Col(np.float64(float(text)), None, "float")
    if kind == "STRING":
        return Col(np.int64(STRINGS.code(text)), None, "str")
    if kind == "BOOLEAN":
        return Col(np.bool_(text.lower() == "true"), None, "bool")
    if kind == "NULL_LITERAL":
        return Col(np.int64(0), np.bool_(False), "null")
    raise ArraySqlError(f"constant of kind {kind} is not evaluated")


def _expect(col: Col, kinds: str | tuple[str, ...], what: str) -> None:
    if col.kind not in ((kinds,) if isinstance(kinds, str) else kinds) and col.kind != "null":
        raise ArraySqlError(f"{what} of a {col.kind} value is not evaluated")


def _common_kind(cols: list[Col]) -> str:
    kinds = {col.kind for col in cols} - {"null"}
    if not kinds:
        return "null"
    if kinds <= {"int", "float"}:
        return "float" if "float" in kinds else "int"
    if len(kinds) == 1:
        return kinds.pop()
    raise ArraySqlError(f"values of kinds {sorted(kinds)} in one column")


def _as_kind(col: Col, kind: str) -> Col:
    if col.kind in (kind, "tuple"):
        return col
    if col.kind == "null":
        return Col(np.array(_FILL.get(kind, 0), dtype=_DTYPES[kind]), col.valid, kind)
    if col.kind == "int" and kind == "float":
        return Col(np.asarray(col.values, np.float64), col.valid, "float")
    raise ArraySqlError(f"a {col.kind} value where a {kind} is expected")


def _arithmetic(name: str, cols: list[Col]) -> Col:
    if len(cols) == 1:
        (col,) = cols
        if name != "-":
            raise ArraySqlError(f"unary {name} is not evaluated")
        _expect(col, ("int", "float"), "negation")
        return Col(-col.values, col.valid, col.kind)
    a, b = cols
    valid = _both_valid(a, b)
    kinds = (a.kind, b.kind)
    if kinds in _NUMERIC_PAIRS:  # the usual case first: numbers
        return _numeric(name, a.values, b.values, kinds, valid)
    if "null" in kinds:
        return Col(np.int64(0), np.bool_(False), "null")
    if kinds in (("ts", "interval"), ("interval", "ts")) and name in ("+", "-"):
        if name == "-" and a.kind == "interval":
            raise ArraySqlError("interval - timestamp")
        values = a.values + b.values if name == "+" else a.values - b.values
        return Col(values, valid, "ts")
    raise ArraySqlError(f"{a.kind} {name} {b.kind} is not evaluated")


_NUMERIC_PAIRS = frozenset({("int", "int"), ("int", "float"), ("float", "int"), ("float", "float")})
_ADD_SUBTRACT_MULTIPLY = {"+": np.add, "-": np.subtract, "*": np.multiply}


def _numeric(name: str, x: Any, y: Any, kinds: tuple[str, str], valid: np.ndarray | None) -> Col:
    if name == "/" or kinds != ("int", "int"):
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        if name == "/":  # IEEE, as DuckDB: x / 0 is an infinity, 0 / 0 NaN
            with np.errstate(divide="ignore", invalid="ignore"):
                return Col(x / y, valid, "float")
        with np.errstate(invalid="ignore", over="ignore"):  # IEEE: inf - inf is NaN
            values = _ADD_SUBTRACT_MULTIPLY[name](x, y)
        return Col(values, valid, "float")
    return Col(_ADD_SUBTRACT_MULTIPLY[name](x, y), valid, "int")


_COMPARE = {
    "COMPARE_EQUAL": np.equal,
    "COMPARE_NOTEQUAL": np.not_equal,
    "COMPARE_LESSTHAN": np.less,
    "COMPARE_GREATERTHAN": np.greater,
    "COMPARE_LESSTHANOREQUALTO": np.less_equal,
    "COMPARE_GREATERTHANOREQUALTO": np.greater_equal,
}


def _compare(kind: str, a: Col, b: Col) -> Col:
    if kind not in _COMPARE:
        raise ArraySqlError(f"comparison {kind} is not evaluated")
    if "null" in (a.kind, b.kind):
        return Col(np.bool_(False), np.bool_(False), "bool")
    if a.kind == b.kind == "str" and kind not in ("COMPARE_EQUAL", "COMPARE_NOTEQUAL"):
        raise ArraySqlError("ordering comparisons of strings are not evaluated")
    if a.kind != b.kind and not {a.kind, b.kind} <= {"int", "float"}:
        if {a.kind, b.kind} == {"date", "str"} or {a.kind, b.kind} == {"ts", "str"}:
            raise ArraySqlError("comparing a date or timestamp with a string")
        raise ArraySqlError(f"comparing {a.kind} with {b.kind}")
    x, y = a.values, b.values
    if {a.kind, b.kind} == {"int", "float"}:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    values = _COMPARE[kind](x, y)
    return Col(np.asarray(values, bool), _both_valid(a, b), "bool")


def _true(col: Col, rows: int) -> np.ndarray:
    """Rows where the condition holds (NULL does not)."""
    if col.kind == "null":
        return np.zeros(rows, bool)
    _expect(col, "bool", "a condition")
    if not col.constant:  # the callers only read it
        return col.values if col.valid is None else col.values & col.mask(rows)
    return np.full(rows, col.values, bool) & col.mask(rows)


def _and(parts: list[Col]) -> Col:
    """Kleene: false if any is false, else NULL if any is NULL."""
    return _kleene(parts, decisive=False, what="AND")


def _or(parts: list[Col]) -> Col:
    """Kleene: true if any is true, else NULL if any is NULL."""
    return _kleene(parts, decisive=True, what="OR")


def _kleene(parts: list[Col], decisive: bool, what: str) -> Col:
    """AND (`decisive` false) or OR (true): a valid decisive part decides; else a NULL part
    makes the result NULL."""
    decided = np.zeros((), bool)
    unknown = np.zeros((), bool)
    for part in parts:
        if part.kind == "null":
            unknown = unknown | True
            continue
        _expect(part, "bool", what)
        valid = np.ones((), bool) if part.valid is None else part.valid
        decided = decided | (valid & (part.values if decisive else ~part.values))
        unknown = unknown | ~valid
    values = decided if decisive else ~decided
    return Col(values, None if not unknown.any() else (decided | ~unknown), "bool")


def _coalesce(cols: list[Col], rows: int) -> Col:
    kind = _common_kind(cols)
    result = _as_kind(cols[-1], kind)
    values = result.array(rows).copy()
    valid = result.mask(rows).copy()
    for other in reversed(cols[:-1]):
        col = _as_kind(other, kind)
        has = col.mask(rows)
        values[has] = col.array(rows)[has]
        valid |= has
    return Col(values, None if valid.all() else valid, kind)


def _extreme(cols: list[Col], rows: int, greatest: bool) -> Col:
    """greatest/least: NULLs are skipped; NULL only when every value is."""
    kind = _common_kind(cols)
    if kind not in ("int", "float"):
        raise ArraySqlError(f"greatest/least of {kind} values is not evaluated")
    pick = np.maximum if greatest else np.minimum
    values: np.ndarray | None = None
    valid = np.zeros(rows, bool)
    for other in cols:
        col = _as_kind(other, kind)
        array = col.array(rows)
        has = col.mask(rows)
        if values is None:
            values = array.copy()
        else:
            values = np.where(has & valid, pick(values, array), np.where(has, array, values))
        valid |= has
    return Col(values, None if valid.all() else valid, kind)


def _round_half_away(values: np.ndarray) -> np.ndarray:
    """C's round(): halves away from zero (NumPy's round goes to even)."""
    truncated = np.trunc(values)
    with np.errstate(invalid="ignore"):  # infinities stay themselves
        rounded = truncated + np.where(np.abs(values - truncated) >= 0.5, np.sign(values), 0.0)
    return np.copysign(rounded, values)  # -0.3 rounds to -0.0


def _cast(col: Col, type_name: str) -> Col:
    target = type_name.upper()
    if col.kind == "null":
        return col
    if target in ("DOUBLE", "FLOAT8"):
        _expect(col, ("int", "float"), "CAST AS DOUBLE")
        return Col(np.asarray(col.values, np.float64), col.valid, "float")
    if target in ("INTEGER", "INT", "INT4", "BIGINT", "INT8"):
        if col.kind == "int":
            return col
        _expect(col, "float", f"CAST AS {target}")
        values = np.asarray(col.values)
        if np.any(np.isnan(values) & (True if col.valid is None else col.valid)):
            raise ArraySqlError(f"CAST of NaN AS {target}")
        # DuckDB casts a double to an integer to the nearest, halves to even
        return Col(np.rint(values).astype(np.int64), col.valid, "int")
    if target == "DATE" and col.kind == "str" and col.constant:
        days = np.datetime64(STRINGS.values[int(col.values)], "D").astype(np.int64)
        return Col(np.int32(days), None, "date")
    raise ArraySqlError(f"CAST of a {col.kind} AS {type_name} is not evaluated")


def _sort_codes(col: Col, rows: int) -> np.ndarray:
    """Numbers that sort as the values do (strings by their bytes, as DuckDB's default
    collation)."""
    if col.kind == "tuple":
        raise ArraySqlError("ordering by a list is not evaluated")
    values = col.array(rows)
    if col.kind == "str":
        return STRINGS.ranks(values)
    if col.kind == "float":
        if np.isnan(values).any():
            raise ArraySqlError("ordering by NaN is not evaluated")
        return values
    return values.astype(np.int64)


def _equality_codes(col: Col, rows: int) -> np.ndarray:
    """int64 codes equal exactly where the values are equal (not dense)."""
    values = col.array(rows)
    if col.kind == "float":
        if np.isnan(values).any():
            raise ArraySqlError("a NaN key is not evaluated")
        return (values + 0.0).view(np.int64)  # + 0.0: -0.0 becomes 0.0
    if col.kind == "tuple":
        raise ArraySqlError("a list as a key is not evaluated")
    return values.astype(np.int64)


def _key_ids(keys: list[np.ndarray], rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by the keys, each row's group (dense, in key order) and each group's
    first position in that order."""
    order = np.lexsort(keys[::-1]) if keys else np.arange(rows)
    change = np.zeros(rows, bool)
    if rows:
        change[0] = True
    for key in keys:
        ordered = key[order]
        change[1:] |= ordered[1:] != ordered[:-1]
    ids = np.empty(rows, np.int64)
    ids[order] = np.cumsum(change) - 1
    return order, ids, np.flatnonzero(change)


def _group(keys: list[Col], rows: int) -> _Groups:
    """GROUP BY (and PARTITION BY): NULL is a group of its own."""
    if not keys:
        return _Groups(np.zeros(rows, np.int64), 1, np.zeros(1, np.int64))
    codes = []
    for key in keys:
        if key.valid is not None:
            codes.append((~key.mask(rows)).astype(np.int64))
        codes.append(_equality_codes(key, rows))
    order, ids, starts = _key_ids(codes, rows)
    return _Groups(ids, len(starts), order[starts])


def _equi_pairs(
    keys_left: list[Col], keys_right: list[Col], rows_left: int, rows_right: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs whose keys are equal (NULL equals nothing)."""
    if not keys_left:
        return np.repeat(np.arange(rows_left), rows_right), np.tile(
            np.arange(rows_right), rows_left
        )
    rows = rows_left + rows_right
    codes = []
    null = np.zeros(rows, bool)
    for key_left, key_right in zip(keys_left, keys_right, strict=True):
        kind = _common_kind([key_left, key_right])
        if kind == "null":
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        a, b = _as_kind(key_left, kind), _as_kind(key_right, kind)
        if a.valid is not None or b.valid is not None:
            null |= ~np.concatenate([a.mask(rows_left), b.mask(rows_right)])
        codes.append(
            np.concatenate(
                [
                    _equality_codes(a, rows_left),
                    _equality_codes(b, rows_right),
                ]
            )
        )
    _, ids, _ = _key_ids(codes, rows)
    left = np.where(null[:rows_left], -1, ids[:rows_left])
    right = np.where(null[rows_left:], -2, ids[rows_left:])
    order = np.argsort(right, kind="stable")
    sorted_right = right[order]
    low = np.searchsorted(sorted_right, left, "left")
    high = np.searchsorted(sorted_right, left, "right")
    counts = high - low
    pairs_left = np.repeat(np.arange(rows_left), counts)
    starts = np.repeat(low, counts)
    offsets = np.arange(len(pairs_left)) - np.repeat(np.cumsum(counts) - counts, counts)
    return pairs_left, order[starts + offsets]


def _joined(
    left: Rel,
    right: Rel,
    pairs_left: np.ndarray,
    pairs_right: np.ndarray,
    names: tuple[list, dict],
) -> Rel:
    """The pairs' columns; a right index of -1 is a left row without a match (NULLs).
    Pairs in left order (each left row once: the left's columns as they are). `names`: the
    join's column names and their index."""
    rows = len(pairs_left)
    missing = pairs_right < 0
    if not missing.any():
        missing = None
    composed: dict[int, np.ndarray] = {}
    if right.rows:
        index_right = pairs_right if missing is None else np.where(missing, 0, pairs_right)
        right_cols = [_deferred(col, index_right, composed, missing) for col in right.cols]
    else:
        right_cols = []
        for col in right.cols:
            kind = _forced(col).kind
            fill = np.full(rows, _FILL.get(kind, 0), _DTYPES.get(kind, object))
            right_cols.append(Col(fill, np.zeros(rows, bool), kind))
    if rows == left.rows and np.array_equal(pairs_left, np.arange(rows)):
        left_cols = left.cols
    else:
        composed = {}
        left_cols = [_deferred(col, pairs_left, composed) for col in left.cols]
    return Rel(names[0], left_cols + right_cols, rows, names[1])
