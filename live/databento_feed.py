"""The Databento Live source: GLBX.MDP3 market-by-order of ES.FUT and ES.OPT with the book
snapshot, plus definitions and statistics, through the official `databento.Live` client.

Records arrive one by one as databento_dbn objects; `RecordBatcher` turns them into the feed
batches the replay produces (the same record arrays: a record's bytes are its DBN layout), so
everything after the subscription is the code path the replay tests cover.

`GatewayFeed` keeps the day going across failures. Sequence numbers cannot show a gap here (a
parent subscription interleaves many instruments' channels), so the gateway's own signals do:
the connection ends or raises (the client's heartbeat timeout included), or the gateway
reports records it skipped for a slow reader. Each is a `FeedGap`: the books are invalid from
the last record received, and a new subscription with the snapshot restates them.

Definitions and statistics sent before a subscription started (the day's open interest, an
option listed earlier) come by the gateway's intraday replay: each subscription asks for all
the gateway holds (the day's definitions carry the ts_event of the instrument's definition,
often days before, and a replay filters on ts_event), records of an earlier day or already
delivered are dropped (`ReplayedRecords`), and statistics, market-by-order records and
heartbeats wait until both replays have completed, so the session sees the day's
definitions, then its open interest, before its first market record, as in the day's
files. Only `_LiveSubscription` (the client's subscription calls) needs the gateway."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import databento as db
import databento_dbn
import numpy as np
from databento.common.error import BentoError
from databento.common.symbology import InstrumentMap

from foundation.dbn_facts import DATASET
from foundation.exchange_time import day_start_ns
from ingest.bronze_tables import SourceSchema
from live.capture import FUTURES, OPTIONS, product_of
from live.feed import ClockTick, FeedBatch, FeedEvent, FeedGap
from live.session import LiveError

LIVE_SOURCE = f"databento-live:{DATASET}"
SYMBOLS = ("ES.FUT", "ES.OPT")
# (schema, with the book snapshot): the snapshot exists for market-by-order only
SUBSCRIPTIONS = (("definition", False), ("statistics", False), ("mbo", True))
# the schemas replayed, by record type, each from the start of what the gateway holds
# (`start=0`): GLBX.MDP3's definitions of the whole week, the last 24 hours of statistics
REPLAYED = {"definition": databento_dbn.InstrumentDefMsg, "statistics": databento_dbn.StatMsg}
REPLAYED_TYPES = frozenset(REPLAYED.values())
# a record received this long before the last one delivered of its schema was delivered; one
# received since is compared with those delivered (its bytes)
REPLAY_MARGIN_NS = 60 * 1_000_000_000
# records held while the replays run (the day's statistics and a few seconds of a busy
# market), and for how long at most (by the gateway's heartbeats)
MAX_HELD_RECORDS = 1 << 21
MAX_REPLAY_SECONDS = 120
SCHEMA_OF = {
    databento_dbn.MBOMsg: SourceSchema.MBO,
    databento_dbn.InstrumentDefMsg: SourceSchema.DEFINITION,
    databento_dbn.StatMsg: SourceSchema.STATISTICS,
}
MAX_BATCH_RECORDS = 1 << 14
DAY_NS = 86_400 * 1_000_000_000
# the gateway sends a heartbeat after this long without data; the client drops a connection
# silent for longer (plus its margin), so a dead link is a gap within seconds, not minutes
HEARTBEAT_SECONDS = 5
# waits before each new subscription while none delivers a record (then the last, repeated)
RECONNECT_DELAYS_SECONDS = (0.0, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
MAX_FAILED_SUBSCRIPTIONS = 20


class SkippedRecordsError(Exception):
    """The gateway skipped records (the reader fell behind): the books cannot be trusted."""


class RecordBatcher:
    """Records as they became available (a list each time the reader looked) to feed
    batches: each run of one schema in a list is cut by product and UTC day (ES.FUT and
    ES.OPT interleave; their engines are separate), so batches grow with the load and a quiet
    market sends each event at once (the engine itself waits for an event's F_LAST). A
    batch's offset is its first record's position in the raw file the capture writes it to
    (per product, schema and day): the warehouse's record_index once that file is landed.
    Symbol mappings update `symbology`; a heartbeat is a clock tick (every record before it
    was sent); a gateway error stops the feed with its text, skipped records raise
    `SkippedRecordsError`. The batches end before the first market record at or after
    `stop_ns` (`stopped`). `last_ns`: the last market record's ts_recv."""

    def __init__(
        self,
        symbology: InstrumentMap,
        warn: Callable[[str], None],
        stop_ns: int,
        replayed: ReplayedRecords,
    ) -> None:
        self.symbology = symbology
        self.warn = warn
        self.stop_ns = stop_ns
        self.replayed = replayed
        self.stopped = False
        self.offsets: dict[tuple[type, str, int], int] = {}
        self.products: dict[tuple[int, int], str] = {}  # (instrument_id, day): product
        self.last_ns = 0
        self.replays_running = 0
        self.held: list[databento_dbn.DBNRecord] = []
        self.first_held_heartbeat_ns: int | None = None

    def subscribed(self) -> None:
        """A new subscription starts: its replays run before its statistics and market
        records are used."""
        self.replays_running = len(REPLAYED)
        self.held = []
        self.first_held_heartbeat_ns = None

    def batches(
        self, available: Iterable[Sequence[databento_dbn.DBNRecord]]
    ) -> Iterator[FeedBatch | ClockTick]:
        for received in available:
            run: dict[tuple[type, str, int], list[bytes]] = {}
            kind: type | None = None
            # outside a subscription's replays (nearly always) the records go straight through
            records = self._released(received) if self.replays_running else received
            for record in records:
                if type(record) in REPLAYED_TYPES and not self.replayed.deliver(record):
                    continue  # replayed again after a reconnect, or the day before
                if type(record) is not kind and run:
                    yield from self._batches(run)
                    run = {}
                kind = type(record)
                if self._at_stop(record):
                    yield from self._batches(run)
                    self.stopped = True
                    return
                if kind not in SCHEMA_OF:
                    yield from self._system(record)
                    continue
                key = (kind, self._product(record), record.ts_recv // DAY_NS)
                run.setdefault(key, []).append(bytes(record))
            yield from self._batches(run)

    def _released(
        self, records: Sequence[databento_dbn.DBNRecord]
    ) -> Iterator[databento_dbn.DBNRecord]:
        """`records` in order, but statistics, market-by-order records and heartbeats held
        from the start of a subscription until its replays have completed, then released:
        the statistics first, then the rest in order. So every definition comes before the
        statistics (a statistic of an option is routed by its definition), and the day's
        open interest before the first market record (its time moves the session past the
        open interest's cutoff), as in the day's files, however the gateway interleaves the
        replays and the snapshot."""
        for record in records:
            if not self.replays_running:
                yield record
            elif (
                isinstance(record, databento_dbn.SystemMsg)
                and record.code == databento_dbn.SystemCode.REPLAY_COMPLETED
            ):
                self.replays_running -= 1
                if not self.replays_running:
                    yield from (r for r in self.held if isinstance(r, databento_dbn.StatMsg))
                    yield from (r for r in self.held if not isinstance(r, databento_dbn.StatMsg))
                    self.held = []
            elif isinstance(record, databento_dbn.MBOMsg | databento_dbn.StatMsg) or (
                isinstance(record, databento_dbn.SystemMsg)
                and record.code == databento_dbn.SystemCode.HEARTBEAT
            ):
                self.held.append(record)
                self._check_held(record)
            else:
                yield record

    def _check_held(self, record: databento_dbn.DBNRecord) -> None:
        """The replays may hold at most MAX_HELD_RECORDS records, for at most
        MAX_REPLAY_SECONDS between the gateway's heartbeats."""
        if isinstance(record, databento_dbn.SystemMsg):
            first = self.first_held_heartbeat_ns = self.first_held_heartbeat_ns or record.ts_event
            if record.ts_event - first <= MAX_REPLAY_SECONDS * 1_000_000_000:
                return
        elif len(self.held) <= MAX_HELD_RECORDS:
            return
        raise LiveError(
            f"{LIVE_SOURCE}: the gateway's replay of the day's definitions and statistics did "
            f"not complete within {MAX_REPLAY_SECONDS} s and {MAX_HELD_RECORDS:,} records "
            f"({len(self.held):,} held)"
        )

    def _at_stop(self, record: databento_dbn.DBNRecord) -> bool:
        """A market record, or a heartbeat, at or after the stop."""
        if isinstance(record, databento_dbn.SystemMsg):
            heartbeat = record.code == databento_dbn.SystemCode.HEARTBEAT
            return heartbeat and record.ts_event >= self.stop_ns
        market = type(record) in SCHEMA_OF and type(record) is not databento_dbn.InstrumentDefMsg
        return market and record.ts_recv >= self.stop_ns

    def _product(self, record: databento_dbn.DBNRecord) -> str:
        if isinstance(record, databento_dbn.InstrumentDefMsg):
            return OPTIONS if str(record.instrument_class) in ("C", "P") else FUTURES
        key = (record.instrument_id, record.ts_recv // DAY_NS)
        if key not in self.products:
            day = dt.date(1970, 1, 1) + dt.timedelta(days=key[1])
            self.products[key] = product_of(self.symbology.resolve(key[0], day))
        return self.products[key]

    def _system(self, record: databento_dbn.DBNRecord) -> Iterator[ClockTick]:
        if isinstance(record, databento_dbn.SymbolMappingMsg):
            self.symbology.insert_symbol_mapping_msg(record)
            self.products.clear()
        elif isinstance(record, databento_dbn.ErrorMsg):
            if record.code == databento_dbn.ErrorCode.SKIPPED_RECORDS_AFTER_SLOW_READING:
                raise SkippedRecordsError(f"the gateway skipped records: {record.err}")
            raise LiveError(f"{LIVE_SOURCE}: the gateway reports an error: {record.err}")
        elif isinstance(record, databento_dbn.SystemMsg):
            if record.code == databento_dbn.SystemCode.HEARTBEAT:
                yield ClockTick(int(record.ts_event))
            elif record.code == databento_dbn.SystemCode.SLOW_READER_WARNING:
                self.warn(f"{LIVE_SOURCE}: the gateway warns: {record.msg}")

    def _batches(self, run: dict[tuple[type, str, int], list[bytes]]) -> Iterator[FeedBatch]:
        # by day, options before futures: an option's statistics are landed before a
        # future's later record can move the session past the open interest cutoff
        for key in sorted(run, key=lambda key: (key[2], key[1] != OPTIONS)):
            encoded = run[key]
            kind = key[0]
            schema = SCHEMA_OF[kind]
            records = np.frombuffer(b"".join(encoded), dtype=np.dtype(kind._dtypes))
            offset = self.offsets.get(key, 0)
            self.offsets[key] = offset + len(records)
            if schema is not SourceSchema.DEFINITION:
                self.last_ns = max(self.last_ns, int(records["ts_recv"][-1]))
            yield FeedBatch(schema, records, LIVE_SOURCE, offset)


class ReplayedRecords:
    """The definitions and statistics delivered so far, as far as a replay can repeat them:
    `deliver` says whether a record is new: received on the day, not more than the margin
    before the last one of its schema delivered (records arrive in ts_recv order), and not
    with the bytes of one delivered within the margin (kept in arrival order, forgotten as
    the margin passes them)."""

    def __init__(self, day_start_ns: int) -> None:
        self.day_start_ns = day_start_ns
        self.last_ns: dict[type, int] = {}
        self.recent: dict[type, set[bytes]] = {kind: set() for kind in REPLAYED_TYPES}
        self.arrived: dict[type, deque[tuple[int, bytes]]] = {
            kind: deque() for kind in REPLAYED_TYPES
        }

    def deliver(self, record: databento_dbn.DBNRecord) -> bool:
        kind, received_ns = type(record), record.ts_recv
        last_ns = max(self.last_ns.get(kind, received_ns), received_ns)
        if received_ns < self.day_start_ns or received_ns < last_ns - REPLAY_MARGIN_NS:
            return False
        recent, arrived = self.recent[kind], self.arrived[kind]
        data = bytes(record)
        if data in recent:
            return False
        self.last_ns[kind] = last_ns
        recent.add(data)
        arrived.append((received_ns, data))
        while arrived[0][0] < last_ns - REPLAY_MARGIN_NS:  # no replay can repeat it now
            recent.discard(arrived.popleft()[1])
        return True


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def drained(
    records: Iterable[databento_dbn.DBNRecord],
) -> Iterator[list[databento_dbn.DBNRecord]]:
    """What a reader thread has received each time the consumer looks: the first record
    waits, the rest is what already arrived (at most MAX_BATCH_RECORDS). An error the
    records raise is raised here, after every record received before it."""
    received: queue.Queue = queue.Queue()
    done = object()

    def read() -> None:
        try:
            for record in records:
                received.put(record)
        except BaseException as error:  # raised in the consumer's thread
            received.put(_Failed(error))
        finally:
            received.put(done)

    threading.Thread(target=read, name="databento-live-reader", daemon=True).start()
    available: list[databento_dbn.DBNRecord] = []
    while True:
        item = received.get() if not available else _next_now(received)
        if item is None or item is done or isinstance(item, _Failed):
            if available:
                yield available
                available = []
            if item is done:
                return
            if isinstance(item, _Failed):
                raise item.error
            continue
        available.append(item)
        if len(available) == MAX_BATCH_RECORDS:
            yield available
            available = []


def _next_now(received: queue.Queue) -> object | None:
    try:
        return received.get_nowait()
    except queue.Empty:
        return None


class Subscription(Protocol):
    """An open gateway session: its records until it ends, and a way to end it."""

    def __iter__(self) -> Iterator[databento_dbn.DBNRecord]: ...

    def stop(self) -> None: ...


class GatewayFeed:
    """A gateway's records as one feed of the day that starts at `day_start_ns`, until
    `stop_ns` (market time, or the wall clock while nothing arrives): every failure is a
    `FeedGap`, then a new subscription, which starts with the snapshot and the replays.
    Subscriptions that deliver no record are retried after growing delays and given up
    after MAX_FAILED_SUBSCRIPTIONS with the last error. `symbology`: one map for the source,
    kept by the gateway's symbol mappings."""

    def __init__(
        self,
        subscribe: Callable[[], Subscription],
        day_start_ns: int,
        stop_ns: int,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.subscribe = subscribe
        self.day_start_ns = day_start_ns
        self.stop_ns = stop_ns
        self.clock_ns = clock_ns
        self.sleep = sleep
        self.warn = warn or (lambda text: print(text, file=sys.stderr, flush=True))
        self.symbology = {LIVE_SOURCE: InstrumentMap()}

    def __iter__(self) -> Iterator[FeedEvent]:
        batcher = RecordBatcher(
            self.symbology[LIVE_SOURCE],
            self.warn,
            self.stop_ns,
            ReplayedRecords(self.day_start_ns),
        )
        failed = 0
        while True:
            self.sleep(RECONNECT_DELAYS_SECONDS[min(failed, len(RECONNECT_DELAYS_SECONDS) - 1)])
            reason, received, ended = yield from self._subscription(batcher)
            if ended or max(self.clock_ns(), batcher.last_ns) >= self.stop_ns:
                return
            failed = 0 if received else failed + 1
            if failed > MAX_FAILED_SUBSCRIPTIONS:
                raise LiveError(
                    f"{LIVE_SOURCE}: {MAX_FAILED_SUBSCRIPTIONS} subscriptions in a row "
                    f"delivered no record; the last: {reason}"
                )
            if received:  # one gap per loss, however many subscriptions fail after it
                self.warn(f"{LIVE_SOURCE}: {reason}; the books are invalid until the snapshot")
                yield FeedGap(batcher.last_ns, reason)
            else:
                self.warn(f"{LIVE_SOURCE}: {reason}; subscribing again")

    def _subscription(
        self, batcher: RecordBatcher
    ) -> Generator[FeedEvent, None, tuple[str, bool, bool]]:
        """One subscription's events; then why it ended, whether it delivered records, and
        whether the feed reached its stop."""
        try:
            subscription = self.subscribe()
        except (BentoError, OSError) as error:
            return f"subscribing failed: {error}", False, False
        batcher.subscribed()
        received = False
        try:
            for event in batcher.batches(drained(subscription)):
                received = received or isinstance(event, FeedBatch)
                yield event
            if batcher.stopped:
                return "", received, True
        except SkippedRecordsError as skipped:
            return str(skipped), received, False
        except (BentoError, OSError) as error:
            return f"the connection dropped: {error}", received, False
        finally:
            subscription.stop()
        return "the gateway closed the connection", received, False


class _LiveSubscription:
    """A `databento.Live` session subscribed to SUBSCRIPTIONS, the REPLAYED schemas with
    intraday replay (the code tests cannot reach)."""

    def __init__(self, key: str) -> None:
        self.client = db.Live(key=key, heartbeat_interval_s=HEARTBEAT_SECONDS)
        try:
            for schema, snapshot in SUBSCRIPTIONS:
                self.client.subscribe(
                    dataset=DATASET,
                    schema=schema,
                    stype_in="parent",
                    symbols=list(SYMBOLS),
                    start=0 if schema in REPLAYED else None,
                    snapshot=snapshot,
                )
        except BaseException:
            self.stop()  # a session half subscribed still counts against the key's limit
            raise

    def __iter__(self) -> Iterator[databento_dbn.DBNRecord]:
        return iter(self.client)

    def stop(self) -> None:
        with contextlib.suppress(BentoError, ValueError):  # already closed
            self.client.terminate()


def databento_live(day: dt.date, stop_ns: int, key: str | None = None) -> GatewayFeed:
    """The Databento Live subscription of `day` (today) as a feed until `stop_ns`; the key
    from DATABENTO_API_KEY unless given."""
    key = key or os.environ.get("DATABENTO_API_KEY")
    if not key:
        raise LiveError(
            "no Databento API key: set DATABENTO_API_KEY (a live subscription to "
            f"{DATASET} is needed)"
        )
    return GatewayFeed(lambda: _LiveSubscription(key), day_start_ns(day), stop_ns)
