"""`spymaster bench --only hud`: the replay HUD on a realistic-scale market, in headless
Chromium against `spymaster serve`, and the server under 20 replay clients.

Measured: the first full picture of a session (navigation to every second of the view drawn),
50 seeks to random seconds (from the call to the drawn picture), 60 s of replay at 60x (frames
drawn per second, seconds the clock found missing), 20 WebSocket clients at 10x for 60 s (how
early or late each frame arrives against its own replay clock), and the server's peak resident
memory over all of it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from playwright.sync_api import sync_playwright
from websockets.asyncio.client import connect

from foundation.lake import Lake
from foundation.project import project_digest
from hud.headless import launch_chromium, served
from hud.protocol import decode
from ingest.landing import ingest
from synthetic_market.scales import SCALES
from synthetic_market.simulate import MarketConfig, simulate_market

# Two realistic sessions: the second has calibrated vacuum scores and neighbours.
MARKET = MarketConfig(
    sessions=2, seed=7, scale=SCALES["realistic"], start_date=dt.date(2024, 3, 18)
)
VIEWPORT = {"width": 1600, "height": 900}
OPENS = 5
SEEKS = 50
REPLAY_SPEED = 60
REPLAY_SECONDS = 60
CLIENTS = 20
CLIENT_SPEED = 10
CLIENT_SECONDS = 60


def market_lake(folder: Path) -> Lake:
    """The benchmark's market, generated and landed once, and built again whenever the
    project changed (a marker says what it was made from)."""
    lake = Lake(folder / "lake")
    marker = folder / "built.json"
    market = {"sessions": MARKET.sessions, "seed": MARKET.seed, "scale": MARKET.scale}
    wanted = {"market": market, "project": project_digest()}
    made = json.loads(marker.read_text()) if marker.exists() else {}
    if made == wanted:
        return lake
    if made.get("market") != market:
        if lake.root.exists():  # another market, or an interrupted earlier run
            shutil.rmtree(lake.root)
        simulate_market(lake.raw, MARKET, workers=2)
        ingest(lake.raw, lake, workers=2)
    marker.write_text(json.dumps({"market": market}))  # landed; built below
    spymaster = str(Path(sys.executable).with_name("spymaster"))
    if subprocess.run([spymaster, "build", "--lake", str(lake.root)], check=False).returncode:
        raise SystemExit(f"bench: building the HUD market in {lake.root} failed")
    marker.write_text(json.dumps(wanted))
    return lake


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def _sessions(lake: Lake) -> list[dict[str, Any]]:
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        rows = connection.execute(
            "select dt, surface_window_start, surface_window_end, session_window_start "
            "from silver.session_calendar join silver.contract_day_selection using (dt) "
            "where is_included order by dt"
        ).fetchall()
    finally:
        connection.close()
    return [
        {"day": day, "start": start, "end": end, "open": opening}
        for day, start, end, opening in rows
    ]


def _epoch(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp())


def _browser_measurements(url: str, session: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        opens = []
        for _ in range(OPENS):
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}?session={session['day']}&t=10:00:00")
            page.wait_for_function(
                "window.spymasterHud.stats.firstPicture !== null", timeout=60_000
            )
            opens.append(page.evaluate("window.spymasterHud.stats.firstPicture"))
            page.close()
        results["open_ms"] = opens

        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}?session={session['day']}&t=10:00:00")
        page.wait_for_function("document.body.dataset.complete === '1'", timeout=60_000)
        rng = random.Random(7)
        first, last = _epoch(session["start"]) + 300, _epoch(session["end"])
        seeks = []
        for _ in range(SEEKS):
            target = rng.randrange(first, last)
            page.evaluate(f"window.spymasterHud.seek({target})")
            page.wait_for_function(
                f"(() => {{ const s = window.spymasterHud.stats.seeks.at(-1); "
                f"return s.now === {target} && s.rendered !== null; }})()",
                timeout=60_000,
            )
            seek = page.evaluate("window.spymasterHud.stats.seeks.at(-1)")
            seeks.append(seek["rendered"] - seek["requested"])
        results["seek_ms"] = seeks

        opening = _epoch(session["open"])
        page.evaluate(f"window.spymasterHud.seek({opening})")
        page.wait_for_function("document.body.dataset.complete === '1'", timeout=60_000)
        page.evaluate(f"window.spymasterHud.setSpeed({REPLAY_SPEED}); window.spymasterHud.play()")
        samples = []
        began = time.perf_counter()
        for second in range(1, REPLAY_SECONDS + 1):
            time.sleep(max(0.0, began + second - time.perf_counter()))
            samples.append(
                page.evaluate(
                    "[performance.now(), window.spymasterHud.stats.draws, "
                    "window.spymasterHud.view.now, window.spymasterHud.stats.behind]"
                )
            )
        page.evaluate("window.spymasterHud.pause()")
        per_second = [(b[1] - a[1]) / ((b[0] - a[0]) / 1000) for a, b in pairwise(samples)]
        elapsed = (samples[-1][0] - samples[0][0]) / 1000
        results["replay_fps"] = (samples[-1][1] - samples[0][1]) / elapsed
        results["replay_fps_min"] = min(per_second)
        results["replay_fps_seconds"] = [round(fps, 1) for fps in per_second]
        results["replay_seconds_under_30"] = sum(fps < 30 for fps in per_second)
        results["replay_clock_rate"] = (samples[-1][2] - samples[0][2]) / elapsed
        results["replay_behind"] = samples[-1][3]
        browser.close()
    return results


async def _client(url: str, session: dict[str, Any], start: dt.datetime) -> dict[str, Any]:
    """One replay client: its clock starts when its first frame arrives (as a player starts
    once it has its first picture); every later frame must arrive before its second ends."""
    async with connect(url, max_size=None) as socket:
        command = {
            "op": "replay",
            "session": str(session["day"]),
            "from": start.isoformat() + "Z",
            "speed": CLIENT_SPEED,
        }
        sent = time.perf_counter()
        await socket.send(json.dumps(command))
        arrivals = []
        while not arrivals or arrivals[-1][0] - sent < CLIENT_SECONDS:
            payload = await socket.recv()
            second = decode(payload)["message"].column("start")[0].as_py()
            arrivals.append((time.perf_counter(), second))
    first_arrival = arrivals[0][0]
    lateness = [
        arrival - (first_arrival + (second - start).total_seconds() / CLIENT_SPEED)
        for arrival, second in arrivals
    ]
    return {
        "frames": len(arrivals),
        "start_s": first_arrival - sent,
        "latest_s": max(lateness),
        "late": sum(late > 0 for late in lateness),
    }


async def _clients(url: str, sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stream = url.replace("http", "ws") + "api/stream"
    return await asyncio.gather(
        *(
            _client(
                stream,
                sessions[i % len(sessions)],
                sessions[i % len(sessions)]["start"] + dt.timedelta(seconds=1800 + 300 * i),
            )
            for i in range(CLIENTS)
        )
    )


def bench_hud(folder: Path) -> dict[str, Any]:
    lake = market_lake(folder)
    sessions = _sessions(lake)
    with served(lake) as (url, server):
        results = _browser_measurements(url, sessions[-1])
        clients = asyncio.run(_clients(url, sessions))
        results["server_peak_rss_mib"] = _peak_rss_mib(server.pid)
    results["clients"] = clients
    results["client_frames"] = sum(client["frames"] for client in clients)
    results["client_late_frames"] = sum(client["late"] for client in clients)
    results["client_latest_ms"] = 1000 * max(client["latest_s"] for client in clients)
    starts = [1000 * client["start_s"] for client in clients]
    results["client_start_p50_ms"] = statistics.median(starts)
    results["client_start_max_ms"] = max(starts)
    results["open_p50_ms"] = statistics.median(results["open_ms"])
    results["open_max_ms"] = max(results["open_ms"])
    results["seek_p50_ms"] = float(np.percentile(results["seek_ms"], 50))
    results["seek_p95_ms"] = float(np.percentile(results["seek_ms"], 95))
    results["lake"] = str(lake.root)
    (folder.parent / "hud.json").write_text(json.dumps(results, indent=1, default=str))
    return results
