"""`spymaster bench --only live`: the HUD's realistic market (its last session) replayed as a
live feed, against the live tiers: the heatmap's own data drawn within 60 ms of the second's
end (p99), the layers derived from it by the SQL models within 400 ms, the session tables
(levels, episodes, triggers, neighbours) within 2 s, and the whole day at --speed max at 20x
real time or more.

At 1x, with the HUD open on the live day in headless Chromium, for `PACED_SECONDS` from the
research window's start (after catching up to it at full speed): from the moment each second
ends on the paced clock (no record of that second can arrive later) to its heatmap frame
arriving in the page, decoded and first drawn; to its layers' frame drawn; to the first
picture drawn with the session tables reaching past it. On the server: to the engine's book
row, and to each stage's tables holding it. The first `WARM_UP_SECONDS` after the catch-up
are left out: the first paced steps run the SQL layers over everything since the catch-up's
last step. Then the whole day at --speed max, without the HUD: times real time."""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from playwright.sync_api import sync_playwright

from foundation.lake import Lake
from hud.headless import free_port, launch_chromium
from live.command import LiveHud, LiveRun, run_feed, run_replay, selected_contract
from live.feed import DbnReplay, Pace
from spymaster.bench.hud import VIEWPORT, market_lake

PACED_SECONDS = 180
WARM_UP_SECONDS = 60
NS = 1_000_000_000


def _last_session(lake: Lake) -> tuple[dt.date, dt.datetime]:
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        return connection.execute(
            "select dt, session_window_start from silver.session_calendar "
            "join silver.contract_day_selection using (dt) where is_included "
            "order by dt desc limit 1"
        ).fetchall()[0]
    finally:
        connection.close()


def _percentiles(values: np.ndarray) -> dict[str, float]:
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
        "count": len(values),
    }


def _after_warm_up(latencies_ms: np.ndarray) -> dict[str, float]:
    """Per second from the clock's start: the seconds after the warm-up."""
    if len(latencies_ms) <= WARM_UP_SECONDS:
        raise SystemExit("bench live: no second after the warm-up")
    return _percentiles(latencies_ms[WARM_UP_SECONDS:])


def _paced_with_page(lake: Lake, day: dt.date, opening: dt.datetime) -> dict[str, Any]:
    start_ns = int(opening.replace(tzinfo=dt.UTC).timestamp()) * NS
    feed = DbnReplay(lake.raw_day_files(day), 1.0, day, start_ns, start_ns + PACED_SECONDS * NS)
    urls: queue.Queue[str] = queue.Queue()
    ended: queue.Queue[LiveRun] = queue.Queue()
    collected = threading.Event()
    failure: list[BaseException] = []

    def after_feed(run: LiveRun) -> None:
        ended.put(run)
        collected.wait()

    hud = LiveHud("127.0.0.1", free_port(), urls.put, after_feed)

    def run() -> None:
        try:
            contract = selected_contract(lake, day)
            run_feed(lake, feed, feed.symbology, day, contract, None, pace=feed.pace, hud=hud)
        except BaseException as error:  # reported by the main thread
            failure.append(error)
            urls.put("")
            ended.put(None)

    # the pace's clock is perf_counter; the page's is the epoch
    epoch_offset = time.time() - time.perf_counter()
    thread = threading.Thread(target=run, name="live-feed")
    thread.start()
    try:
        url = urls.get(timeout=600)
        if failure:
            raise failure[0]
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url)
            live_run = ended.get(timeout=3600)
            if failure:
                raise failure[0]
            pages = page.evaluate(
                "(({ live, liveLayers, liveSession }) => ({ live, liveLayers, liveSession }))"
                "(window.spymasterHud.stats)"
            )
            errors = page.evaluate("window.spymasterHud.state.error?.message ?? null")
            browser.close()
    finally:
        collected.set()
        thread.join()
    if errors:
        raise SystemExit(f"bench live: the page reported {errors}")
    return _paced_results(pages, live_run, feed.pace, start_ns, epoch_offset)


def _paced_results(
    pages: dict[str, list[dict[str, Any]]],
    live_run: LiveRun,
    pace: Pace,
    start_ns: int,
    epoch_offset: float,
) -> dict[str, Any]:
    """The page's and the server's timings of the paced seconds after the warm-up."""
    warm_ns = start_ns + WARM_UP_SECONDS * NS

    def due_ms(end_ns: int) -> float:
        """When a second ending at `end_ns` ended, in the page's clock (epoch ms)."""
        return 1000 * (pace.due(end_ns) + epoch_offset)

    def drawn(frames: list[dict[str, Any]], what: str) -> dict[str, float]:
        counted = [f for f in frames if f["second"] * NS >= warm_ns and f[what] is not None]
        if not counted:
            raise SystemExit("bench live: the page drew no live second after the warm-up")
        ends = np.array([due_ms((f["second"] + 1) * NS) for f in counted])
        return _percentiles(np.array([f[what] for f in counted]) - ends)

    heatmap, layers = pages["live"], pages["liveLayers"]
    # each second: the first picture drawn with the session tables past it
    updates = sorted((u["until"], u["drawn"]) for u in pages["liveSession"] if u["drawn"])
    session = []
    for end_ns in range(warm_ns + NS, start_ns + PACED_SECONDS * NS + 1, NS):
        shown = [when for until, when in updates if until * NS >= end_ns]
        if shown:
            session.append(min(shown) - due_ms(end_ns))
    stages = live_run.stage_latency_seconds
    return {
        "paced_seconds": PACED_SECONDS,
        "heatmap_arrived_ms": drawn(heatmap, "arrived"),
        "heatmap_drawn_ms": drawn(heatmap, "drawn"),
        "layers_drawn_ms": drawn(layers, "drawn"),
        "session_drawn_ms": _percentiles(np.array(session)),
        "book_row_ms": _after_warm_up(live_run.close_latency_seconds * 1000),
        **{
            f"{stage}_tables_ms": _after_warm_up(stages[stage] * 1000)
            for stage in ("heatmap", "layers", "session")
        },
        "records": live_run.records,
    }


def bench_live(folder: Path) -> dict[str, Any]:
    lake = market_lake(folder)
    day, opening = _last_session(lake)
    results: dict[str, Any] = {"day": str(day)}
    results["paced"] = _paced_with_page(lake, day, opening)
    full = run_replay(lake, lake.raw_day_files(day), None, None, day, None)
    results["max_speed"] = {
        "records": full.records,
        "market_seconds": full.market_seconds,
        "wall_seconds": full.wall_seconds,
        "times_real_time": full.market_seconds / full.wall_seconds,
    }
    return results


def print_live(live: dict[str, Any]) -> None:
    paced, full = live["paced"], live["max_speed"]

    def line(what: str, measured: dict[str, float]) -> str:
        return (
            f"{what} p50 {measured['p50']:,.0f} ms, p99 {measured['p99']:,.0f} ms, "
            f"max {measured['max']:,.0f} ms"
        )

    print(
        f"live  the HUD market's last session ({live['day']}) replayed live at 1x for "
        f"{paced['paced_seconds']} s with the HUD open in headless Chromium, from the end of "
        "each second: "
        + "; ".join(
            line(what, paced[key])
            for what, key in (
                ("heatmap drawn", "heatmap_drawn_ms"),
                ("layers drawn", "layers_drawn_ms"),
                ("session tables drawn", "session_drawn_ms"),
                ("book row", "book_row_ms"),
                ("heatmap tables", "heatmap_tables_ms"),
                ("layer tables", "layers_tables_ms"),
                ("session tables", "session_tables_ms"),
            )
        )
        + f"; the whole day at --speed max: {full['records']:,} records, "
        f"{full['market_seconds']:,.0f} s of market time in {full['wall_seconds']:,.0f} s, "
        f"{full['times_real_time']:,.0f}x real time",
        flush=True,
    )
