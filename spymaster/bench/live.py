"""`spymaster bench --only live`: the HUD's realistic market (its last session) replayed as a
live feed.

At 1x, with the HUD open on the live day in headless Chromium, for `PACED_SECONDS` from the
research window's start (after catching up to it at full speed): from the moment each second
ends on the paced clock (no record of that second can arrive later) to its frame arriving in
the page, decoded into the page's store, and first drawn; to the engine's book row of that
second; to the SQL layers' frame tables holding it (what the HUD then reads and sends); to
its frame encoded, and sent by the page's connection (the feed's thread going on).
The first `WARM_UP_SECONDS` after the catch-up are left out: the first paced step
runs the SQL layers over everything since the catch-up's last step (up to 15 minutes of
market time), and the feed is behind until it has worked that off. Then the whole day at
--speed max, without the HUD: times real time.
"""

from __future__ import annotations

import datetime as dt
import json
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
from live.feed import DbnReplay
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
            frames = page.evaluate("window.spymasterHud.stats.live")
            errors = page.evaluate("window.spymasterHud.state.error?.message ?? null")
            browser.close()
    finally:
        collected.set()
        thread.join()
    if errors:
        raise SystemExit(f"bench live: the page reported {errors}")
    pace = feed.pace
    counted = [
        frame
        for frame in frames
        if frame["second"] * NS >= start_ns + WARM_UP_SECONDS * NS and frame["drawn"] is not None
    ]
    if not counted:
        raise SystemExit("bench live: the page drew no live second after the warm-up")
    ends = np.array(
        [1000 * (pace.due((frame["second"] + 1) * NS) + epoch_offset) for frame in counted]
    )
    book = live_run.close_latency_seconds * 1000
    frame_tables = live_run.frame_latency_seconds * 1000
    return {
        "paced_seconds": PACED_SECONDS,
        "arrived_ms": _percentiles(np.array([f["arrived"] for f in counted]) - ends),
        "decoded_ms": _percentiles(np.array([f["decoded"] for f in counted]) - ends),
        "drawn_ms": _percentiles(np.array([f["drawn"] for f in counted]) - ends),
        "book_row_ms": _after_warm_up(book),
        "frame_tables_ms": _after_warm_up(frame_tables),
        "encoded_ms": _after_warm_up(live_run.encoded_latency_seconds * 1000),
        "sent_ms": _after_warm_up(live_run.handed_over_latency_seconds * 1000),
        "records": live_run.records,
    }


def bench_live(folder: Path) -> dict[str, Any]:
    lake = market_lake(folder)
    day, opening = _last_session(lake)
    results: dict[str, Any] = {"lake": str(lake.root), "day": str(day)}
    results["paced"] = _paced_with_page(lake, day, opening)
    full = run_replay(lake, lake.raw_day_files(day), None, None, day, None)
    results["max_speed"] = {
        "records": full.records,
        "market_seconds": full.market_seconds,
        "wall_seconds": full.wall_seconds,
        "times_real_time": full.market_seconds / full.wall_seconds,
    }
    (folder.parent / "live.json").write_text(json.dumps(results, indent=1, default=str))
    return results
