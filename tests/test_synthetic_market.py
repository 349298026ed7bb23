"""The synthetic GLBX market: real DBN, realistic books, planted approaches, deterministic."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import databento as db
import numpy as np
import pyarrow.parquet as pq
import pytest

from foundation.dbn_files import RawFileExistsError
from foundation.lake import Lake
from gex.black76 import MINUTES_PER_YEAR, implied_volatility
from ingest.landing import ingest
from synthetic_market.calendar import utc_ns
from synthetic_market.options_book import Smile
from synthetic_market.scales import SCALES
from synthetic_market.simulate import MarketConfig, merge_by_ts_recv, simulate_market
from tests.conftest import SHARED_DATA
from tests.lake_queries import bronze_sql
from tests.replay import ReplayBook, replay

DAY = dt.date(2024, 3, 4)
FRONT = 4001
# Live (non-snapshot) message mix of the real ESH4 2023-12-25 file, for when it is absent.
ESH4_LIVE_MIX = {"A": 0.341, "C": 0.300, "M": 0.204, "T": 0.049, "F": 0.106}
MIX_TOLERANCE = 0.04


@pytest.fixture(scope="module")
def futures_records(demo_day: Path) -> np.ndarray:
    path = demo_day / "ES.FUT" / "mbo" / "glbx-mdp3-20240304.mbo.dbn.zst"
    return db.DBNStore.from_file(path).to_ndarray()


@pytest.fixture(scope="module")
def front_records(futures_records: np.ndarray) -> np.ndarray:
    return futures_records[futures_records["instrument_id"] == FRONT]


def digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    config = MarketConfig(sessions=2, seed=3, scale=SCALES["tiny"])
    simulate_market(tmp_path / "one", config)
    simulate_market(tmp_path / "two", config, workers=2)
    simulate_market(tmp_path / "other", MarketConfig(sessions=2, seed=4, scale=SCALES["tiny"]))
    assert digests(tmp_path / "one") == digests(tmp_path / "two")
    assert digests(tmp_path / "one") != digests(tmp_path / "other")


def test_rerun_into_the_same_folder_leaves_files_untouched(tmp_path: Path) -> None:
    config = MarketConfig(sessions=1, seed=3, scale=SCALES["tiny"])
    simulate_market(tmp_path, config)
    mbo = tmp_path / "ES.FUT" / "mbo" / "glbx-mdp3-20240304.mbo.dbn.zst"
    before = mbo.stat().st_mtime_ns
    simulate_market(tmp_path, config)
    assert mbo.stat().st_mtime_ns == before


def test_a_different_market_never_overwrites_raw_files(tmp_path: Path) -> None:
    simulate_market(tmp_path, MarketConfig(sessions=1, seed=3, scale=SCALES["tiny"]))
    with pytest.raises(RawFileExistsError, match="raw files are never modified"):
        simulate_market(tmp_path, MarketConfig(sessions=1, seed=5, scale=SCALES["tiny"]))


def test_generated_files_go_through_the_real_ingest(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    simulate_market(out, MarketConfig(sessions=2, seed=5, scale=SCALES["tiny"]))
    lake = Lake(tmp_path / "lake")
    report = ingest(out, lake)
    assert len(report.landed) == 10  # 2 days x (futures mbo, definition; options x 3)
    filtered = {r for source in report.landed for r in source.filtered}
    assert filtered == {"futures spread ESH4-ESM4"}
    assert bronze_sql(lake, "select distinct symbol from futures_mbo order by 1") == [
        ("ESH4",),
        ("ESM4",),
    ]
    assert bronze_sql(lake, "select distinct symbol from options_mbo") == [("ESH4",)]
    per_day = bronze_sql(
        lake,
        "select dt, count(*) from options_statistics where stat_type = 9 group by 1 order by 1",
    )
    assert per_day == [(dt.date(2024, 3, 4), 150), (dt.date(2024, 3, 5), 150)]
    # An option listed on both days keeps its instrument id; the 0DTE expiry changes daily.
    # (strikes listed during the session come on top of each day's chain)
    definitions = bronze_sql(
        lake,
        "select count(*) filter (where ts_recv = epoch_ns(dt::timestamp)), "
        "count(distinct instrument_id), count(distinct raw_symbol), "
        "count(distinct raw_symbol) filter (where raw_symbol like 'ESH4 %') "
        "from options_definitions",
    )
    (chain, instruments, symbols, quarterly) = definitions[0]
    assert (chain, instruments == symbols) == (300, True)
    assert quarterly < 100


def test_files_are_daily_parent_files_with_snapshots(
    futures_records: np.ndarray, demo_day: Path
) -> None:
    store = db.DBNStore.from_file(demo_day / "ES.FUT" / "mbo" / "glbx-mdp3-20240304.mbo.dbn.zst")
    assert store.metadata.symbols == ["ES.FUT"]
    assert str(store.metadata.stype_in) == "parent"
    ts_recv = futures_records["ts_recv"].astype(np.int64)
    assert (np.diff(ts_recv) >= 0).all()
    assert (ts_recv > futures_records["ts_event"].astype(np.int64)).mean() > 0.999
    assert (np.diff(futures_records["sequence"].astype(np.int64)) > 0).all()
    for instrument in np.unique(futures_records["instrument_id"]):
        own = futures_records[futures_records["instrument_id"] == instrument]
        assert own["action"][0] == b"R"
    # the file starts with the snapshot of every instrument; as in Databento's parent-symbol
    # files, F_LAST stands only on the last record of the whole snapshot
    options = db.DBNStore.from_file(
        demo_day / "ES.OPT" / "mbo" / "glbx-mdp3-20240304.mbo.dbn.zst"
    ).to_ndarray()
    for records in (futures_records, options):
        snapshot = (records["flags"] & 32) != 0
        last_snapshot = np.flatnonzero(snapshot)[-1]
        assert snapshot[: last_snapshot + 1].all()
        assert records["flags"][last_snapshot] & 128
        assert not (records["flags"][:last_snapshot] & 128).any()
        assert len(np.unique(records["instrument_id"][: last_snapshot + 1])) > 1


def test_regular_session_book_is_never_crossed(front_records: np.ndarray) -> None:
    rth = (utc_ns(DAY, dt.time(9, 30)), utc_ns(DAY, dt.time(16, 0)))
    ts_recv = front_records["ts_recv"].astype(np.int64)
    crossed = 0
    for index, book in replay(front_records):
        if rth[0] <= ts_recv[index] < rth[1]:
            bid, ask = book.best("B"), book.best("A")
            crossed += bid is not None and ask is not None and bid >= ask
    assert crossed == 0


def test_spread_is_one_tick_in_most_regular_session_seconds(front_records: np.ndarray) -> None:
    ts_recv = front_records["ts_recv"].astype(np.int64)
    boundaries = np.arange(utc_ns(DAY, dt.time(9, 30)), utc_ns(DAY, dt.time(16, 0)), 10**9)
    last_before = np.searchsorted(ts_recv, boundaries) - 1
    wanted = iter(np.unique(last_before).tolist())
    target = next(wanted)
    spreads: dict[int, int] = {}
    for index, book in replay(front_records):
        while target is not None and index >= target:
            spreads[target] = book.best("A") - book.best("B")
            target = next(wanted, None)
    per_second = np.array([spreads[i] for i in last_before])
    assert (per_second == 250_000_000).mean() >= 0.90


def test_fills_are_followed_by_their_cancel_or_modify(futures_records: np.ndarray) -> None:
    for instrument in np.unique(futures_records["instrument_id"]):
        records = futures_records[futures_records["instrument_id"] == instrument]
        book = ReplayBook()
        awaiting: dict[int, int] = {}
        unknown_fills = 0
        refills = 0
        for i in range(len(records)):
            action = records["action"][i].decode()
            order_id = int(records["order_id"][i])
            ts_event = int(records["ts_event"][i])
            if action == "F":
                if order_id in book.orders:
                    awaiting[order_id] = ts_event
                else:
                    unknown_fills += 1
            elif action in "CM" and order_id in awaiting:
                assert awaiting.pop(order_id) == ts_event, f"record {i}"
                if action == "M" and records["size"][i] > book.orders[order_id][2]:
                    refills += 1
            book.apply(
                i,
                action,
                records["side"][i].decode(),
                int(records["price"][i]),
                int(records["size"][i]),
                order_id,
            )
        assert awaiting == {}, "an F on a resting order without its C or M"
        assert book.unknown_references == [], "C or M on an order that does not exist"
        if instrument == FRONT:
            assert unknown_fills > 0, "hidden iceberg fills are part of real data"
            assert refills > 0, "iceberg refills are part of real data"


def real_live_mix() -> dict[str, float]:
    sample = SHARED_DATA / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
    if not sample.exists():
        return ESH4_LIVE_MIX
    records = db.DBNStore.from_file(sample).to_ndarray()
    return live_mix(records)


def live_mix(records: np.ndarray) -> dict[str, float]:
    live = records[(records["flags"] & 32) == 0]
    actions, counts = np.unique(live["action"], return_counts=True)
    return {a.decode(): c / len(live) for a, c in zip(actions, counts, strict=True)}


def test_message_mix_is_that_of_real_es(front_records: np.ndarray) -> None:
    """Live records only: the real holiday file's snapshot is 13% of it, a full day's is not."""
    real = real_live_mix()
    generated = live_mix(front_records)
    for action in "ACMTF":
        assert abs(generated[action] - real[action]) <= MIX_TOLERANCE, (action, generated, real)


def test_option_quotes_invert_to_the_smile(demo_day: Path, front_records: np.ndarray) -> None:
    definitions = db.DBNStore.from_file(
        demo_day / "ES.OPT" / "definition" / "glbx-mdp3-20240304.definition.dbn.zst"
    ).to_ndarray()
    options = db.DBNStore.from_file(
        demo_day / "ES.OPT" / "mbo" / "glbx-mdp3-20240304.mbo.dbn.zst"
    ).to_ndarray()
    moment = utc_ns(DAY, dt.time(11, 0))
    futures_mid = _mid_at(front_records, moment) / 1e9
    strikes, years, mids, calls = [], [], [], []
    for definition in definitions:
        quotes = options[options["instrument_id"] == definition["instrument_id"]]
        mid = _mid_at(quotes, moment)
        if mid is None:
            continue
        strikes.append(definition["strike_price"] / 1e9)
        years.append((int(definition["expiration"]) - moment) / 6e10 / MINUTES_PER_YEAR)
        mids.append(mid / 1e9)
        calls.append(definition["instrument_class"] == b"C")
    strikes, years, mids = np.array(strikes), np.array(years), np.array(mids)
    forward = np.full(len(strikes), futures_mid)
    solved = implied_volatility(mids, forward, strikes, years, 0.0, np.array(calls))
    expected = Smile().volatility(np.log(strikes / forward), years)
    near_the_money = (np.abs(np.log(strikes / forward)) < 0.006) & (years > 1 / 365)
    assert near_the_money.sum() >= 8
    error = np.abs(solved[near_the_money] - expected[near_the_money])
    assert np.nanmax(error) < 0.01, error


def _mid_at(records: np.ndarray, moment: int) -> float | None:
    """Mid price after the last F_LAST record before `moment` (independent replay)."""
    before = records[records["ts_recv"].astype(np.int64) < moment]
    result = None
    for _, book in replay(before):
        result = book
    if result is None or result.best("B") is None or result.best("A") is None:
        return None
    return (result.best("B") + result.best("A")) / 2


def test_approaches_are_planted_in_the_research_window(demo_day: Path) -> None:
    approaches = pq.read_table(demo_day / "ground_truth" / "approaches.parquet").to_pylist()
    assert len(approaches) >= 15
    window = (utc_ns(DAY, dt.time(9, 45)), utc_ns(DAY, dt.time(12, 30)))
    assert all(window[0] <= a["trigger_ts"] < window[1] for a in approaches)
    assert {a["outcome"] for a in approaches} == {"BREAK", "REJECT", "CHOP"}
    assert {a["approach_dir"] for a in approaches} == {"UP", "DOWN"}
    assert {a["level_id"] for a in approaches} >= {"PM_HIGH", "PM_LOW"}
    assert all(a["zone_entry_ts"] <= a["trigger_ts"] < a["resolved_ts"] for a in approaches)


def test_signal_strength_changes_signatures_only(tmp_path: Path) -> None:
    base = {"sessions": 1, "seed": 9, "scale": SCALES["tiny"]}
    simulate_market(tmp_path / "signal", MarketConfig(**base, signal_strength=1.0))
    simulate_market(tmp_path / "control", MarketConfig(**base, signal_strength=0.0))

    def approaches(folder: str) -> list[tuple[object, ...]]:
        rows = pq.read_table(tmp_path / folder / "ground_truth" / "approaches.parquet").to_pylist()
        return [(r["level_id"], r["approach_dir"], r["trigger_ts"], r["outcome"]) for r in rows]

    assert approaches("signal") == approaches("control")
    control = pq.read_table(tmp_path / "control" / "ground_truth" / "approaches.parquet")
    assert set(control["signature_outcome"].to_pylist()) == {None}


def test_front_month_dominance_rolls_inside_the_sample(tmp_path: Path) -> None:
    simulate_market(tmp_path, MarketConfig(sessions=6, seed=2, scale=SCALES["tiny"]))
    market = json.loads((tmp_path / "ground_truth" / "market.json").read_text())
    dominant = list(market["dominant_by_day"].values())
    assert dominant[0] == "ESH4"
    assert dominant[-1] == "ESM4"
    assert market["roll_date"] == "2024-03-07"


def test_strikes_listed_during_the_session_leave_the_rest_of_the_market_unchanged(
    tmp_path: Path,
) -> None:
    """As the future moves, the exchange lists strikes beyond the chain: each is defined (an
    ADD) after the file's start and before its first record, has no snapshot and no open
    interest, and is quoted from its listing on; the chain's own records, definitions and open
    interest are those of the same market generated without listings."""
    base = {"sessions": 1, "seed": 11, "scale": SCALES["tiny"]}
    simulate_market(tmp_path / "listed", MarketConfig(**base))
    simulate_market(tmp_path / "none", MarketConfig(**base, intraday_listing_edge_points=None))

    def read(folder: str, schema: str) -> np.ndarray:
        path = tmp_path / folder / "ES.OPT" / schema / f"glbx-mdp3-20240304.{schema}.dbn.zst"
        return db.DBNStore.from_file(path).to_ndarray()

    chain = read("none", "definition")
    definitions = read("listed", "definition")
    listed = definitions[~np.isin(definitions["instrument_id"], chain["instrument_id"])]
    np.testing.assert_array_equal(definitions[: len(chain)], chain)
    assert len(listed) >= 4
    assert (listed["ts_recv"] > utc_ns(DAY, dt.time(0, 0))).all()
    assert set(listed["security_update_action"].tolist()) == {b"A"}
    strikes = listed["strike_price"]
    assert ((strikes > chain["strike_price"].max()) | (strikes < chain["strike_price"].min())).all()
    # both rights of each listed strike and expiry
    assert (listed["instrument_class"] == b"C").sum() == (listed["instrument_class"] == b"P").sum()

    records = read("listed", "mbo")
    assert (np.diff(records["sequence"].astype(np.int64)) == 1).all()
    assert (np.diff(records["ts_recv"].astype(np.int64)) >= 0).all()
    of_chain = records[np.isin(records["instrument_id"], chain["instrument_id"])]
    alone = read("none", "mbo")
    for field in (f for f in alone.dtype.names if f != "sequence"):
        np.testing.assert_array_equal(of_chain[field], alone[field], err_msg=field)
    quoted = 0
    for definition in listed:
        own = records[records["instrument_id"] == definition["instrument_id"]]
        assert not (own["flags"] & 32).any()  # F_SNAPSHOT: none
        if len(own):
            assert own["ts_recv"].min() >= definition["ts_recv"]
            quoted += set(own["side"][own["action"] == b"A"].tolist()) >= {b"B", b"A"}
    assert quoted >= len(listed) // 2
    statistics = read("listed", "statistics")
    np.testing.assert_array_equal(statistics, read("none", "statistics"))
    assert not np.isin(statistics["instrument_id"], listed["instrument_id"]).any()


@pytest.mark.parametrize(("n_first", "n_second"), [(0, 5), (5, 0), (1000, 37), (50, 500)])
def test_merge_by_ts_recv_is_a_stable_sort_of_both(n_first: int, n_second: int) -> None:
    rng = np.random.default_rng(n_first + n_second)
    dtype = np.dtype([("ts_recv", "i8"), ("which", "i8")])
    first, second = np.zeros(n_first, dtype), np.zeros(n_second, dtype)
    first["ts_recv"] = np.sort(rng.integers(0, 100, n_first))
    first["which"] = np.arange(n_first)
    second["ts_recv"] = np.sort(rng.integers(0, 100, n_second))
    second["which"] = -1 - np.arange(n_second)
    both = np.concatenate([first, second])
    expected = both[np.argsort(both["ts_recv"], kind="stable")]
    assert merge_by_ts_recv(first, second).tolist() == expected.tolist()
