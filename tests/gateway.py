"""Gateway sessions as the Databento Live client delivers them, made from a day's raw files:
the gateway cannot be reached here, so everything after the subscription call runs for real
on records it would send (databento_dbn objects, in its order)."""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import databento as db
import databento_dbn as dbn

from foundation.dbn_facts import F_LAST, F_SNAPSHOT, UNDEF_PRICE
from foundation.exchange_time import day_start_ns
from live.databento_feed import REPLAYED
from tests.dbn_fixtures import mbo


def day_end(day: dt.date) -> int:
    return day_start_ns(day + dt.timedelta(days=1))


def gateway_records(
    paths: Sequence[Path], after_ns: int = -1, until_ns: int | None = None
) -> Iterator[dbn.DBNRecord]:
    """The day's definitions, market-by-order and statistics records merged by ts_recv (a
    definition first at the same time: an option listed during the session is defined before
    its first order), as one subscription delivers them; records with after_ns < ts_recv <=
    until_ns only."""
    stores = [db.DBNStore.from_file(path) for path in paths]
    # definitions first among equal times (heapq.merge keeps the order of its inputs)
    stores.sort(key=lambda store: store.schema != db.Schema.DEFINITION)
    for record in heapq.merge(*map(iter, stores), key=lambda record: record.ts_recv):
        if until_ns is not None and record.ts_recv > until_ns:
            return
        if record.ts_recv > after_ns:
            yield record


def snapshot_at(paths: Sequence[Path], at_ns: int) -> list[dbn.MBOMsg]:
    """What a new subscription starts with: every instrument's book after the records up to
    `at_ns`, restated at `at_ns` (a clear, then its resting orders, all F_SNAPSHOT, F_LAST on
    the instrument's last). Kept by a plain order map, independent of the engine: an add
    rests, a cancel removes, a modify moves (or adds), a clear empties."""
    books: dict[int, dict[int, tuple[str, int, int]]] = {}
    mbo_files = [p for p in paths if db.DBNStore.from_file(p).schema == db.Schema.MBO]
    for record in gateway_records(mbo_files, until_ns=at_ns):
        orders = books.setdefault(record.instrument_id, {})
        action = record.action
        if action == dbn.Action.CLEAR:
            orders.clear()
        elif action in (dbn.Action.ADD, dbn.Action.MODIFY):
            orders[record.order_id] = (str(record.side), record.price, record.size)
        elif action == dbn.Action.CANCEL:
            orders.pop(record.order_id, None)
    snapshot = []
    for instrument, orders in books.items():
        rows = [("R", "N", UNDEF_PRICE, 0, 0)]
        rows += [("A", side, px, size, oid) for oid, (side, px, size) in orders.items()]
        for i, (action, side, price, size, order_id) in enumerate(rows):
            last = F_LAST if i == len(rows) - 1 else 0
            snapshot.append(
                mbo(instrument, at_ns, action, side, price, size, order_id, F_SNAPSHOT | last)
            )
    return snapshot


def replays_completed(at_ns: int) -> list[dbn.SystemMsg]:
    """What the gateway sends as each of a subscription's replays catches up."""
    return [
        dbn.SystemMsg(at_ns, f"Finished {schema} replay", code=dbn.SystemCode.REPLAY_COMPLETED)
        for schema in REPLAYED
    ]


def subscription_at(
    paths: Sequence[Path], at_ns: int, until_ns: int | None = None
) -> Iterator[dbn.DBNRecord]:
    """What a subscription made at `at_ns` delivers: the books' snapshot at `at_ns`; the
    definitions and statistics received by then (replayed from the start of what the gateway
    holds: the day's files here), each replay followed by its completion (the snapshot comes
    first here: the feed must hold market records until the replays have completed); then
    every record received after `at_ns` (up to `until_ns`)."""
    yield from snapshot_at(paths, at_ns)
    for schema in REPLAYED:
        files = [p for p in paths if db.DBNStore.from_file(p).schema == db.Schema(schema)]
        yield from gateway_records(files, until_ns=at_ns)
    yield from replays_completed(at_ns)
    yield from gateway_records(paths, after_ns=at_ns, until_ns=until_ns)


def subscription_before(
    paths: Sequence[Path], day: dt.date, until_ns: int | None = None
) -> Iterator[dbn.DBNRecord]:
    """A subscription made before the day's first record: the day's records as the files
    hold them (no snapshot made, nothing to replay), after the replays' completions."""
    return subscription_at(paths, day_start_ns(day) - 1, until_ns)


class GatewaySession:
    """One subscription: its records, then its end (`error` raised, as a dropped connection
    raises from the client); `clock` (wall time, ns) moves to `ended_at` when it ends."""

    def __init__(
        self,
        records: Iterable[dbn.DBNRecord],
        clock: list[int],
        ended_at: int,
        error: BaseException | None = None,
    ) -> None:
        self.records = records
        self.clock = clock
        self.ended_at = ended_at
        self.error = error
        self.stopped = False

    def __iter__(self) -> Iterator[dbn.DBNRecord]:
        yield from self.records
        self.clock[0] = self.ended_at
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self.stopped = True
