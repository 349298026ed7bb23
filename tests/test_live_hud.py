"""The HUD drawing a live feed: a day of the end-to-end market caught up to a moment
at full speed, then replayed at a few times real time with the HUD served; the page opens the
live day and follows its edge, every frame sent live is the warehouse's rows of that second,
and where the feed stops the page shows what a replay of the warehouse shows there."""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading

import pyarrow as pa
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from starlette.testclient import TestClient
from websockets.sync.client import connect

from foundation.lake import Lake
from hud.headless import free_port, launch_chromium
from hud.headless import served as served_warehouse
from hud.live import RECENT_SECONDS
from hud.protocol import decode
from hud.server import create_app
from hud.warehouse import Warehouse
from live.command import LiveHud, LiveRun, format_run, run_replay
from tests.markets import warehouse

pytestmark = pytest.mark.dbt

SPEED = 4.0
PACED_SECONDS = 60
NS = 1_000_000_000
ONE = dt.timedelta(seconds=1)
BEHIND = dt.timedelta(seconds=RECENT_SECONDS + 60)
HEATMAP = {"book_snapshot_1s", "depth_and_flow_1s"}
LAYERS = {
    "vacuum_surface_1s",
    "vacuum_score_1s",
    "physics_bands_1s",
    "gex_surface_1s",
    "gex_levels_1s",
}


def rows(table: pa.Table) -> list[dict[str, object]]:
    """A table's rows with labels decoded (dictionaries may number them differently)."""
    return table.cast(
        pa.schema(
            pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f
            for f in table.schema
        )
    ).to_pylist()


def epoch_ns(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp()) * NS


class LiveServed:
    """`spymaster live --replay ... --speed SPEED --serve` on a thread, from `start` (as fast
    as possible before it) to `stop`; the HUD keeps serving after the feed until `finish`."""

    def __init__(
        self,
        lake: Lake,
        day: dt.date,
        start: dt.datetime,
        stop: dt.datetime,
    ) -> None:
        self.urls: queue.Queue[str] = queue.Queue()
        self.ended: queue.Queue[LiveRun | BaseException] = queue.Queue()
        self.release = threading.Event()
        hud = LiveHud("127.0.0.1", free_port(), self.urls.put, self._after_feed)

        def feed() -> None:
            try:
                files = lake.raw_day_files(day)
                window = (epoch_ns(start), epoch_ns(stop))
                run_replay(lake, files, SPEED, None, day, None, *window, hud=hud)
            except BaseException as error:
                self.urls.put("")
                self.ended.put(error)

        self.thread = threading.Thread(target=feed, daemon=True)
        self.thread.start()

    def _after_feed(self, run: LiveRun) -> None:
        self.ended.put(run)
        self.release.wait(timeout=300)

    def url(self) -> str:
        url = self.urls.get(timeout=600)
        assert url, self.ended.get()
        return url

    def finish(self) -> LiveRun | BaseException:
        self.release.set()
        self.thread.join(timeout=600)
        assert not self.thread.is_alive(), "the live run did not end within 10 minutes"
        return self.ended.get(timeout=1)


def test_the_page_follows_the_live_day_and_its_edge_shows_what_replay_shows(
    market_lake: Lake,
) -> None:
    """One live run, paced for its last minute up to 10 seconds after a trigger: the page
    follows the edge; every frame sent live is the warehouse's rows of that second; and once
    the feed has stopped there, the live page shows each level's state and the latest
    trigger's outcome as a replay of the warehouse shows them at that second: an episode still
    in its zone is open (not over at the session tables' last second), and an outcome not yet
    settled is pending until its horizon, never 'the day ended'."""
    day, trigger_ts, level_id = warehouse(
        market_lake,
        "select t.dt, t.ts, t.level_id from gold.trigger_outcomes as t "
        "join gold.trigger_vectors using (trigger_id) "
        "join gold.approach_episodes as e using (episode_id) "
        "join silver.contract_day_selection as s on s.dt = t.dt and s.is_included "
        "where t.outcome_known_ts > t.ts + interval 30 second "
        "and e.zone_exit_ts > t.ts + interval 20 second order by t.dt desc, t.ts limit 1",
    )[0]
    stop = trigger_ts.replace(microsecond=0) + dt.timedelta(seconds=10)
    start = stop - dt.timedelta(seconds=PACED_SECONDS)
    served = LiveServed(market_lake, day, start, stop)
    try:
        url = served.url()
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.goto(url)
            follows_the_edge(page)
            # from further back than the HUD holds the newest rows: the first seconds come
            # from the live day's database, the ones after from the rows just made
            frames, sessions, notices = stream_from(url, day, start - BEHIND)
            page.wait_for_function(
                "document.getElementById('mode-badge').textContent === 'LIVE · ended'"
            )
            at_live_edge, picked, so_far = edge_of(page, stop)
            in_replay = replayed_at(browser, market_lake, day, stop)
            browser.close()
        assert errors == []
    finally:
        run = served.finish()
    assert isinstance(run, LiveRun), run
    assert_the_run_reports_its_paced_seconds(run)
    assert_frames_are_the_warehouses(market_lake, day, start, frames, sessions, notices)

    assert at_live_edge == in_replay
    levels, outcome = in_replay
    assert (level_id, "FIRED") in {(level, state) for level, _, state in levels}
    assert outcome.startswith("outcome: pending: settles by ")
    # the picker counts the live day's triggers so far, not the sessions list's at opening
    (triggers_so_far,) = warehouse(
        market_lake,
        "select count(*) from gold.trigger_vectors where dt = ? and epoch(ts) < ?",
        [day, so_far[1]],
    )[0]
    assert triggers_so_far >= 1
    assert picked.endswith(f" · {triggers_so_far} triggers so far · LIVE")
    assert so_far[0] == triggers_so_far


def assert_the_run_reports_its_paced_seconds(run: LiveRun) -> None:
    # nothing waited before --start; from it, every second the paced clock saw end made its
    # book row (how late: the run's report); --stop ended the feed
    assert len(run.close_latency_seconds) == PACED_SECONDS
    assert f"over {PACED_SECONDS} seconds" in format_run(run)
    # and the heatmap's tables held it; the layers and the session tables were brought up to
    # date while the feed ran, their last seconds completed by the feed's end (how many the
    # slower stages had not reached when --stop came depends on the machine's load)
    assert PACED_SECONDS - 6 <= len(run.stage_latency_seconds["heatmap"]) <= PACED_SECONDS
    for stage in ("heatmap", "layers", "session"):
        late = run.stage_latency_seconds[stage]
        assert 0 < len(late) <= PACED_SECONDS, stage
        assert (late >= 0).all(), stage
    for what in ("heatmap tables", "layer tables", "session tables"):
        assert f"each second's {what}" in format_run(run)


def assert_frames_are_the_warehouses(
    lake: Lake,
    day: dt.date,
    start: dt.datetime,
    frames: dict[dt.datetime, dict[str, pa.Table]],
    sessions: list[dict[str, pa.Table]],
    notices: list[dict],
) -> None:
    assert notices[-1]["type"] == "live-end"
    seconds = sorted(frames)
    assert seconds[0] == start - BEHIND
    assert seconds == [seconds[0] + dt.timedelta(seconds=i) for i in range(len(seconds))]
    assert len(seconds) >= PACED_SECONDS + BEHIND.total_seconds()
    # the session payload came at once and again as it changed, each as of the live frontier
    frontiers = [payload["session"]["live_until"][0].as_py() for payload in sessions]
    assert frontiers
    assert frontiers == sorted(frontiers)
    assert frontiers[-1] <= seconds[-1] + ONE

    # what was sent live is what the warehouse holds for those seconds
    built = Warehouse(lake)
    try:
        session = built.session(day)
        for second in seconds:
            expected = built.window(session, second, second + ONE)
            for name, table in expected.items():
                assert frames[second][name].schema == table.schema, (second, name)
                assert rows(frames[second][name]) == rows(table), (second, name)
    finally:
        built.close()


def follows_the_edge(page: Page) -> None:
    """The live day opens by itself and follows its edge; a step back holds the view while
    the edge moves on; End follows it again."""
    # the feed catches up from the day's start first: minutes on a loaded machine
    page.wait_for_function("window.spymasterHud.stats.live.length >= 3", timeout=300_000)
    assert page.text_content("#mode-badge") == "LIVE"
    picked = page.eval_on_selector("#session-picker", "e => e.selectedOptions[0].text")
    assert picked.endswith("LIVE")
    hud_state = "[window.spymasterHud.view.now, window.spymasterHud.state.liveEdge]"
    now, edge = page.evaluate(hud_state)
    assert now == edge
    page.keyboard.press("ArrowLeft")
    held = page.evaluate("window.spymasterHud.view.now")
    assert page.text_content("#mode-badge") == "LIVE · held"
    page.wait_for_function(f"window.spymasterHud.state.liveEdge >= {held + 3}")
    assert page.evaluate("window.spymasterHud.view.now") == held
    page.keyboard.press("End")
    now, edge = page.evaluate(hud_state)
    assert now == edge > held + 2
    assert page.text_content("#mode-badge") == "LIVE"


def stream_from(
    url: str, day: dt.date, start: dt.datetime
) -> tuple[dict[dt.datetime, dict[str, pa.Table]], list[dict[str, pa.Table]], list[dict]]:
    """A client of the live stream from `start` until the live day ends: its frames by
    second (each second once), session payloads and notices."""
    frames: dict[dt.datetime, dict[str, pa.Table]] = {}
    sessions: list[dict[str, pa.Table]] = []
    notices: list[dict[str, object]] = []
    with connect(url.replace("http", "ws") + "api/stream", max_size=None) as socket:
        command = {"op": "live", "session": str(day), "from": start.isoformat() + "Z"}
        socket.send(json.dumps(command))
        while not notices or notices[-1]["type"] not in ("live-end", "error"):
            message = socket.recv(timeout=120)
            if isinstance(message, str):
                notices.append(json.loads(message))
                continue
            tables = decode(message)
            head = tables.pop("message").to_pylist()[0]
            assert head["mode"] == "live"
            if head["kind"] == "session":
                sessions.append(tables)
                continue
            # each second's heatmap tables, then its layers' (a part once)
            second = frames.setdefault(head["start"], {})
            assert not set(second) & set(tables)
            assert set(tables) in (HEATMAP, LAYERS)
            assert set(second) in (set(), HEATMAP)
            second.update(tables)
    return frames, sessions, notices


def test_live_refuses_a_stream_of_a_session_that_is_not_live(market_lake: Lake) -> None:
    day = warehouse(
        market_lake,
        "select dt from silver.contract_day_selection where is_included order by dt limit 1",
    )[0][0]
    with TestClient(create_app(market_lake)).websocket_connect("/api/stream") as socket:
        socket.send_text(
            json.dumps({"op": "live", "session": str(day), "from": f"{day}T14:00:00Z"})
        )
        notice = json.loads(socket.receive_text())
    assert notice["type"] == "error"
    assert notice["parameter"] == "session"
    assert "is not live (no session is live here)" in notice["error"]


def sidebar(page: Page) -> tuple[list[tuple[str, str, str]], str]:
    """Each level's row (level, price, state) and the latest trigger's outcome, as shown."""
    levels = page.eval_on_selector_all(
        "#level-states tr[data-level]",
        "rows => rows.map(r => [r.dataset.level, r.cells[1].textContent, r.dataset.state])",
    )
    return [tuple(row) for row in levels], page.text_content(".trigger-outcome") or ""


def edge_of(page: Page, second: dt.datetime) -> tuple[tuple, str, list]:
    """Once every frame and session payload received is decoded and the picture drawn at the
    live day's last second: the sidebar, the picker's text and the triggers so far."""
    page.wait_for_function(
        f"window.spymasterHud.view.now === {epoch_ns(second) // NS}"
        " && window.spymasterHud.state.frameQueue.length === 0"
        f" && document.body.dataset.now === '{epoch_ns(second) // NS}'",
        timeout=60_000,
    )
    picked = page.eval_on_selector("#session-picker", "e => e.selectedOptions[0].text")
    so_far = page.evaluate(
        "[window.spymasterHud.state.session.triggers.length,"
        " window.spymasterHud.state.session.sessionUntil]"
    )
    return sidebar(page), picked, so_far


def replayed_at(browser: Browser, lake: Lake, day: dt.date, second: dt.datetime) -> tuple:
    """The sidebar of `spymaster serve` opened at that second of the day."""
    with served_warehouse(lake) as (replay_url, _process):
        replay = browser.new_page(viewport={"width": 1400, "height": 800})
        clock = replay.evaluate(
            "([ms, zone]) => new Date(ms).toLocaleTimeString('en-GB', {timeZone: zone})",
            [epoch_ns(second) // 10**6, "America/New_York"],
        )
        replay.goto(f"{replay_url}?session={day}&t={clock}")
        replay.wait_for_function(
            f"document.body.dataset.now === '{epoch_ns(second) // NS}'"
            " && document.body.dataset.complete === '1'"
        )
        return sidebar(replay)
