"""The HUD page in a real headless Chromium (Debian's, driven by Playwright) against
`spymaster serve` on the built end-to-end market: what a trader sees is what the tables hold."""

from __future__ import annotations

import base64
import colorsys
import datetime as dt
import io
import math
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import urlopen
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from PIL import Image
from playwright.sync_api import Page, Route, sync_playwright

from foundation.lake import Lake
from foundation.project import PROJECT_ROOT
from hud.headless import launch_chromium, served
from hud.protocol import PayloadKind, decode, encode, message_table
from tests.markets import warehouse

pytestmark = pytest.mark.dbt

SCREENSHOTS = PROJECT_ROOT / "target" / "hud-screenshots"
NEW_YORK = ZoneInfo("America/New_York")
BID_HUE, ASK_HUE = 197, 20  # #2ec4ff and #ff7a3d
HEATMAP_TABLES = ("book_snapshot_1s", "depth_and_flow_1s")
LAYER_TABLES = (
    "vacuum_surface_1s",
    "vacuum_score_1s",
    "physics_bands_1s",
    "gex_surface_1s",
    "gex_levels_1s",
)
UNKNOWN = "\N{EN DASH}"  # what the page shows for a value it does not have


@pytest.fixture(scope="module")
def server(market_lake: Lake) -> Iterator[str]:
    with served(market_lake) as (url, _process):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page; the test fails if the page logged an error, and leaves a screenshot."""
    context = browser.new_context(viewport={"width": 1600, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.console_errors = errors  # a test that provokes an error takes it out
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{request.node.name}.png")
    context.close()
    assert errors == []


@pytest.fixture(scope="module")
def session(market_lake: Lake) -> dict[str, object]:
    day, symbol, start = warehouse(
        market_lake,
        "select selection.dt, selected_symbol, surface_window_start "
        "from silver.contract_day_selection as selection join silver.session_calendar using (dt) "
        "where is_included order by dt desc limit 1",
    )[0]
    return {"day": day, "symbol": symbol, "start": start}


def ny(moment: dt.datetime) -> str:
    """HH:MM:SS New York of a naive UTC time (what the page's clock shows)."""
    return moment.replace(tzinfo=dt.UTC).astimezone(NEW_YORK).strftime("%H:%M:%S")


def epoch(moment: dt.datetime) -> int:
    return int(moment.replace(tzinfo=dt.UTC).timestamp())


def open_at(page: Page, server: str, day: dt.date, moment: dt.datetime, extra: str = "") -> None:
    page.goto(f"{server}?session={day}&t={ny(moment)}{extra}")
    wait_for(page, epoch(moment))


def wait_for(page: Page, now: int) -> None:
    """Until the page shows `now` with every second of its view loaded and drawn."""
    page.wait_for_function(
        f"document.body.dataset.now === '{now}' && document.body.dataset.complete === '1'",
        timeout=30_000,
    )
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")


def hue_at(page: Page, x: float, y: float) -> tuple[float, float, float]:
    """Hue (degrees), saturation and value of the screen pixel at page coordinates."""
    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    red, green, blue = image.getpixel((round(x), round(y)))
    hue, saturation, value = colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)
    return hue * 360, saturation, value


def plot_point(page: Page, second: float, price: float) -> tuple[float, float]:
    box = page.locator("#plot").bounding_box()
    x, y = page.evaluate(
        f"[window.spymasterHud.view.xOf({second}), window.spymasterHud.view.yOf({price})]"
    )
    return box["x"] + x, box["y"] + y


def test_page_loads_the_latest_session_with_no_console_errors(
    page: Page, server: str, session: dict[str, object]
) -> None:
    page.goto(server)
    page.wait_for_function("document.body.dataset.complete === '1'", timeout=30_000)
    assert page.locator("#session-picker").input_value() == str(session["day"])
    options = page.locator("#session-picker option").all_inner_texts()
    assert options[-1].startswith(f"{session['day']} {session['symbol']}")
    assert page.locator("#mode-badge").inner_text() == "REPLAY"
    assert page.locator("#banner").is_hidden()


def test_walls_have_their_sides_hue(
    page: Page, server: str, market_lake: Lake, session: dict[str, object]
) -> None:
    now = session["start"] + dt.timedelta(minutes=75)
    open_at(page, server, session["day"], now)
    second = now - dt.timedelta(seconds=60)
    for side, expected_hue in (("bid", BID_HUE), ("ask", ASK_HUE)):
        # the deepest price of the side, away from the spot, bid/ask and fill marks
        price, depth = warehouse(
            market_lake,
            "select price, depth_qty_end from silver.depth_and_flow_1s "
            "where dt = ? and window_start = ? and side = ? and abs(rel_ticks) between 3 and 12 "
            "and fill_qty = 0 order by depth_qty_end desc, price limit 1",
            [session["day"], second, side],
        )[0]
        assert depth > 0
        x, y = plot_point(page, epoch(second) + 0.5, price)
        hue, saturation, value = hue_at(page, x, y)
        assert abs(hue - expected_hue) < 20, (side, price, hue)
        assert saturation > 0.4, (side, saturation)
        assert value > 0.25, (side, value)


def test_gex_panel_shows_gex_surface_of_the_last_second(
    page: Page, server: str, market_lake: Lake, session: dict[str, object]
) -> None:
    now = session["start"] + dt.timedelta(minutes=62, seconds=17)
    open_at(page, server, session["day"], now)
    shown = page.eval_on_selector_all(
        "#gex-panel .gex-row:not([hidden])",
        "rows => rows.map(r => [r.dataset.strike, r.dataset.callGex, r.dataset.putGex, "
        "r.dataset.netGex, r.querySelector('.value').textContent])",
    )
    expected = warehouse(
        market_lake,
        "select strike_price, call_gex, put_gex, net_gex from silver.gex_surface_1s "
        "where dt = ? and window_start = ? order by strike_price",
        [session["day"], now - dt.timedelta(seconds=1)],
    )
    assert len(shown) == len(expected) > 5
    for (strike, call, put, net, label), row in zip(shown, expected, strict=True):
        assert (float(strike), float(call), float(put), float(net)) == row
        assert label.lstrip("+-").rstrip("kMB").replace(".", "").isdigit()
    assert f"at {ny(now - dt.timedelta(seconds=1))} NY" in page.locator("#gex-footer").inner_text()
    # 0DTE: the panel switches to the 0DTE columns
    page.locator("#gex-expiry").select_option("0dte")
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
    nets = page.eval_on_selector_all(
        "#gex-panel .gex-row:not([hidden])", "rows => rows.map(r => Number(r.dataset.netGex))"
    )
    assert nets == [
        row[0]
        for row in warehouse(
            market_lake,
            "select net_gex_0dte from silver.gex_surface_1s where dt = ? and window_start = ? "
            "order by strike_price",
            [session["day"], now - dt.timedelta(seconds=1)],
        )
    ]


def test_gex_panel_draws_unknown_exposure_as_unknown_not_as_zero(
    page: Page, server: str, market_lake: Lake, session: dict[str, object]
) -> None:
    """The server's windows with one strike's call exposure made unknown (NULL, 3 options
    without a known exposure), as a day without open interest gives: the panel marks that
    strike unknown instead of drawing a zero bar."""
    now = session["start"] + dt.timedelta(minutes=62, seconds=17)
    (strike,) = warehouse(
        market_lake,
        "select strike_price from silver.gex_surface_1s where dt = ? and window_start = ? "
        "order by abs(rel_ticks) limit 1",
        [session["day"], now - dt.timedelta(seconds=1)],
    )[0]

    def unknown_strike(route: Route) -> None:
        response = route.fetch()
        tables = decode(response.body())
        gex = tables["gex_surface_1s"]
        at_strike = pc.equal(gex["strike_price"], strike)
        for column in ("call_gex", "net_gex"):
            values = pc.if_else(at_strike, pa.scalar(None, gex[column].type), gex[column])
            gex = gex.set_column(gex.schema.get_field_index(column), column, values)
        missing = pc.if_else(at_strike, 3, gex["options_without_exposure"]).cast(
            gex["options_without_exposure"].type
        )
        tables["gex_surface_1s"] = gex.set_column(
            gex.schema.get_field_index("options_without_exposure"),
            "options_without_exposure",
            missing,
        )
        route.fulfill(response=response, body=encode(tables))

    page.route("**/api/window?*", unknown_strike)
    open_at(page, server, session["day"], now)
    rows = page.eval_on_selector_all(
        "#gex-panel .gex-row:not([hidden])",
        "rows => rows.map(r => [Number(r.dataset.strike), r.classList.contains('unknown'), "
        "r.querySelector('.value').textContent, r.title])",
    )
    unknown = [row for row in rows if row[1]]
    assert [row[:3] for row in unknown] == [[strike, True, "unknown"]]
    assert "call unknown" in unknown[0][3]
    assert "3 options without a known exposure" in unknown[0][3]
    assert all(label != "unknown" for _, known, label, _ in rows if not known)
    page.unroute_all(behavior="ignoreErrors")  # windows still loading in the background


def test_typing_a_time_seeks_the_clock_and_the_picture(
    page: Page, server: str, session: dict[str, object]
) -> None:
    first = session["start"] + dt.timedelta(minutes=45)
    open_at(page, server, session["day"], first)
    before = page.locator("#plot").screenshot()
    target = first + dt.timedelta(minutes=37, seconds=11)
    page.locator("#clock").fill(ny(target))
    page.locator("#clock").press("Enter")
    wait_for(page, epoch(target))
    assert page.locator("#clock").input_value() == ny(target)
    assert page.locator("#plot").screenshot() != before
    assert f"t={ny(target).replace(':', '%3A')}" in page.url
    # the URL reopens the same session and moment
    page.goto(page.url)
    wait_for(page, epoch(target))
    # one second forward with the keyboard, ten back with shift
    page.keyboard.press("ArrowRight")
    wait_for(page, epoch(target) + 1)
    page.keyboard.press("Shift+ArrowLeft")
    wait_for(page, epoch(target) - 9)


def test_clicking_the_time_axis_seeks_there(
    page: Page, server: str, session: dict[str, object]
) -> None:
    now = session["start"] + dt.timedelta(minutes=90)
    open_at(page, server, session["day"], now)
    box = page.locator("#time-axis").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        f"document.body.dataset.now !== '{epoch(now)}' && document.body.dataset.complete === '1'"
    )
    target = page.evaluate("Number(document.body.dataset.now)")
    assert epoch(now) - 160 < target < epoch(now) - 140  # the middle of a 5-minute view


def test_playing_advances_the_clock_with_streamed_frames(
    page: Page, server: str, session: dict[str, object]
) -> None:
    now = session["start"] + dt.timedelta(minutes=50)
    open_at(page, server, session["day"], now, "&speed=30")
    page.keyboard.press("Space")
    # the seconds shown while playing come as WebSocket frames, one per second (a second
    # the view's window already held may be shown before its frame is decoded: wait for both)
    page.wait_for_function(
        f"Number(document.body.dataset.now) >= {epoch(now) + 20} && "
        "window.spymasterHud.stats.frames >= 20"
    )
    page.keyboard.press("Space")
    stats = page.evaluate("window.spymasterHud.stats")
    assert stats["frames"] >= 20
    assert stats["draws"] > 5
    assert page.locator("#play").inner_text() == "▶"


def triggers_with_neighbours(lake: Lake, day: dt.date) -> list[tuple[object, ...]]:
    return warehouse(
        lake,
        "select signals.trigger_id, outcomes.ts, outcomes.outcome_known_ts, outcomes.outcome, "
        "signals.neighbour_trigger_ids, signals.neighbour_similarities, signals.p_break "
        "from gold.trigger_signals as signals join gold.trigger_outcomes as outcomes "
        "using (trigger_id) where signals.dt = ? and signals.neighbour_count > 0 "
        "and outcomes.outcome is not null order by outcomes.ts",
        [day],
    )


def test_a_triggers_neighbours_are_its_trigger_signals(
    page: Page, server: str, market_lake: Lake, session: dict[str, object]
) -> None:
    trigger_id, ts, _known, _outcome, ids, similarities, p_break = triggers_with_neighbours(
        market_lake, session["day"]
    )[0]
    open_at(page, server, session["day"], ts)
    assert page.locator("#signals").get_attribute("data-trigger-id") == trigger_id
    rows = page.eval_on_selector_all(
        "#neighbours tr[data-trigger-id]",
        "rows => rows.map(r => [r.dataset.triggerId, Number(r.dataset.similarity)])",
    )
    assert rows == [[i, s] for i, s in zip(ids, similarities, strict=True)]
    assert page.locator('[data-p="P(BREAK)"]').inner_text() == f"{p_break * 100:.0f}%"


def test_an_outcome_shows_only_once_it_has_happened(
    page: Page, server: str, market_lake: Lake, session: dict[str, object]
) -> None:
    # a trigger still the latest when its outcome becomes known
    trigger_id, ts, known, outcome = warehouse(
        market_lake,
        "with ordered as (select trigger_id, ts, outcome_known_ts, outcome, "
        "lead(ts) over (order by ts) as next_ts from gold.trigger_outcomes where dt = ?) "
        "select trigger_id, ts, outcome_known_ts, outcome from ordered "
        "where outcome_known_ts > ts + interval 1 second "
        "and coalesce(next_ts > outcome_known_ts, true) order by ts limit 1",
        [session["day"]],
    )[0]
    open_at(page, server, session["day"], ts)
    signals = page.locator("#signals")
    assert signals.get_attribute("data-trigger-id") == trigger_id
    # pending until its horizon's end at the latest (known at the trigger): not when it came
    horizon = dt.timedelta(seconds=3 * 120)  # (label_primary_horizon + 1) bars of bar_seconds
    assert f"pending: settles by {ny(ts + horizon)}" in signals.inner_text()
    assert ny(known) not in signals.inner_text()
    own = signals.locator(f".trigger-outcome .outcome.{outcome}")
    assert own.count() == 0
    page.locator("#show-outcomes").check()
    own.wait_for()
    page.locator("#show-outcomes").uncheck()
    page.wait_for_function("document.querySelector('#signals').innerText.includes('pending')")
    # one second before the outcome it is still unknown; at it, it is shown
    for moment, shown in ((known - dt.timedelta(seconds=1), 0), (known, 1)):
        page.locator("#clock").fill(ny(moment))
        page.locator("#clock").press("Enter")
        wait_for(page, epoch(moment))
        assert signals.get_attribute("data-trigger-id") == trigger_id
        assert own.count() == shown


def test_choosing_a_neighbour_opens_its_session_at_its_moment(
    page: Page, server: str, market_lake: Lake, session: dict[str, object]
) -> None:
    trigger_id, ts, *_ = triggers_with_neighbours(market_lake, session["day"])[0]
    open_at(page, server, session["day"], ts)
    first = page.locator("#neighbours tr[data-trigger-id]").first
    neighbour_id = first.get_attribute("data-trigger-id")
    neighbour_day, neighbour_ts = warehouse(
        market_lake, "select dt, ts from gold.trigger_outcomes where trigger_id = ?", [neighbour_id]
    )[0]
    first.click()
    wait_for(page, epoch(neighbour_ts))
    assert page.locator("#session-picker").input_value() == str(neighbour_day)
    assert f"session={neighbour_day}" in page.url
    assert page.locator("#clock").input_value() == ny(neighbour_ts)
    # the neighbour is now the latest trigger on screen
    assert page.locator("#signals").get_attribute("data-trigger-id") == neighbour_id
    page.go_back()
    wait_for(page, epoch(ts))
    assert page.locator("#signals").get_attribute("data-trigger-id") == trigger_id


def test_crosshair_reads_the_tables_values(
    page: Page, server: str, market_lake: Lake, session: dict[str, object]
) -> None:
    now = session["start"] + dt.timedelta(minutes=70)
    open_at(page, server, session["day"], now)
    second = now - dt.timedelta(seconds=30)
    price, depth, added, pulled, filled = warehouse(
        market_lake,
        "select price, depth_qty_end, add_qty, pull_qty, fill_qty from silver.depth_and_flow_1s "
        "where dt = ? and window_start = ? and side = 'bid' and rel_ticks = -2",
        [session["day"], second],
    )[0]
    x, y = plot_point(page, epoch(second) + 0.5, price)
    page.mouse.move(x, y)
    readout = page.locator("#readout")
    page.wait_for_function("!document.querySelector('#readout').hidden")
    assert readout.get_attribute("data-second") == str(epoch(second))
    assert float(readout.get_attribute("data-price")) == price
    lines = {line[:16].strip(): line[16:].split() for line in readout.inner_text().splitlines()}
    assert lines["depth (end)"][0] == str(depth)
    assert lines["added"][0] == str(added)
    assert lines["pulled"][0] == str(pulled)
    assert lines["filled"][0] == str(filled)
    assert ny(second) in readout.inner_text()


def one_second(server: str, day: dt.date, second: dt.datetime) -> dict[str, pa.Table]:
    """The server's window of one second (its frame tables)."""
    end = second + dt.timedelta(seconds=1)
    query = urlencode(
        {"session": day, "start": f"{second.isoformat()}Z", "end": f"{end.isoformat()}Z"}
    )
    with urlopen(f"{server}api/window?{query}") as response:
        return decode(response.read())


def receive(page: Page, day: dt.date, second: dt.datetime, tables: dict[str, pa.Table]) -> None:
    """The page receives a frame of `second` holding only `tables`, as the stream would send
    it, and draws it."""
    message = message_table(PayloadKind.FRAME, day, second, second + dt.timedelta(seconds=1))
    frames = page.evaluate("window.spymasterHud.stats.frames")
    page.evaluate(
        "(text) => window.spymasterHud.receive("
        "Uint8Array.from(atob(text), (c) => c.charCodeAt(0)))",
        base64.b64encode(encode({"message": message, **tables})).decode(),
    )
    page.wait_for_function(f"window.spymasterHud.stats.frames > {frames}")
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")


def readout_at(page: Page, second: dt.datetime, price: float) -> dict[str, list[str]]:
    """The crosshair readout's lines (label: bid, ask) at a second and price."""
    page.mouse.move(*plot_point(page, epoch(second) + 0.5, price))
    page.wait_for_function(
        f"document.querySelector('#readout').dataset.second === '{epoch(second)}'"
    )
    text = page.locator("#readout").inner_text()
    page.mouse.move(0, 0)  # off the plot: no crosshair over the heatmap
    return {line[:16].strip(): line[16:].split() for line in text.splitlines()}


def test_a_seconds_layers_may_come_after_its_heatmap_tables(
    page: Page, server: str, session: dict[str, object]
) -> None:
    """A frame may hold only some frame tables of its second (the live server will send the
    heatmap's first, the others in a later frame): the page draws the second from the
    heatmap's tables alone, the layers' values unknown, then the layers once they come, the
    heatmap's tables kept."""
    day, now = session["day"], session["start"] + dt.timedelta(minutes=70)
    open_at(page, server, day, now)
    second = now + dt.timedelta(seconds=200)  # beyond the minute the page asks for ahead
    tables = one_second(server, day, second)
    # a bid price near spot with a vacuum score and a pull/add log
    scored = {
        row["price"]: row["vacuum_score"]
        for row in tables["vacuum_score_1s"].to_pylist()
        if row["side"] == "bid" and row["vacuum_score"] is not None
    }
    pull_add = {
        row["price"]: row["pull_add_log"]
        for row in tables["vacuum_surface_1s"].to_pylist()
        if row["side"] == "bid" and row["pull_add_log"] is not None
    }
    spot = tables["book_snapshot_1s"]["spot_price"][0].as_py()
    nearest = sorted(
        (abs(row["price"] - spot), row["price"], row["depth_qty_end"])
        for row in tables["depth_and_flow_1s"].to_pylist()
        if row["side"] == "bid" and row["price"] in scored and row["price"] in pull_add
    )
    _, price, depth = nearest[0]
    receive(page, day, second, {name: tables[name] for name in HEATMAP_TABLES})
    page.evaluate(f"window.spymasterHud.seek({epoch(second) + 1})")
    wait_for(page, epoch(second) + 1)
    page.keyboard.press("3")  # the vacuum score layer
    page.wait_for_function("document.querySelector('#layer').value === 'vacuum'")
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
    without_layers = page.locator("#heatmap").screenshot()
    lines = readout_at(page, second, price)
    assert lines["depth (end)"][0] == str(depth)
    for label in ("pull/add log", "fill intensity", "vacuum score"):
        assert lines[label] == [UNKNOWN, UNKNOWN], label
    assert page.locator("#gex-footer").inner_text() == "no gamma exposure for this second"

    receive(page, day, second, {name: tables[name] for name in LAYER_TABLES})
    redrawn = page.locator("#heatmap").screenshot() != without_layers  # the layer's column
    assert redrawn
    lines = readout_at(page, second, price)
    assert lines["depth (end)"][0] == str(depth)
    assert abs(float(lines["vacuum score"][0]) - scored[price]) <= 0.0005
    assert abs(float(lines["pull/add log"][0]) - pull_add[price]) <= 0.0005
    strikes = page.locator("#gex-panel .gex-row:not([hidden])").count()
    assert strikes == tables["gex_surface_1s"].num_rows > 5
    assert f"at {ny(second)} NY" in page.locator("#gex-footer").inner_text()


def test_the_spot_line_runs_through_each_seconds_spot(
    page: Page, server: str, market_lake: Lake, session: dict[str, object]
) -> None:
    """The overlay's spot step line (white) is at each second's spot_price, read from the
    overlay canvas itself: seconds without a fill near them (its dots are drawn over the
    line) and with the gamma lines away from spot, across the view."""
    now = session["start"] + dt.timedelta(minutes=75)
    open_at(page, server, session["day"], now)
    seconds = warehouse(
        market_lake,
        "select book.window_start, book.spot_price "
        "from silver.book_snapshot_1s as book "
        "join (select distinct window_start, zero_gamma_level, call_wall, put_wall "
        "      from silver.gex_surface_1s where dt = ?) as gex using (window_start) "
        "where book.dt = ? and book.window_start between ? and ? and book.spot_price is not null "
        "and not exists (select 1 from silver.depth_and_flow_1s as depth "
        "    where depth.dt = book.dt and depth.fill_qty > 0 "
        "    and depth.window_start between book.window_start - interval 3 second "
        "    and book.window_start + interval 3 second) "
        "and coalesce(abs(gex.zero_gamma_level - book.spot_price), 99) > 2 "
        "and coalesce(abs(gex.call_wall - book.spot_price), 99) > 2 "
        "and coalesce(abs(gex.put_wall - book.spot_price), 99) > 2 "
        "order by book.window_start",
        [
            session["day"],
            session["day"],
            now - dt.timedelta(seconds=280),
            now - dt.timedelta(seconds=20),
        ],
    )
    assert len(seconds) >= 5
    for second, spot in seconds[:: len(seconds) // 5][:5]:
        pixel = page.evaluate(
            """([second, price]) => {
                const view = window.spymasterHud.view;
                const canvas = document.querySelector("#overlay");
                const x = Math.floor(view.xOf(second + 0.5));
                const y = Math.floor(view.yOf(price));
                return Array.from(canvas.getContext("2d").getImageData(x, y, 1, 1).data);
            }""",
            [epoch(second), spot],
        )
        assert pixel == [255, 255, 255, 255], (second, spot)


def test_physics_layers_change_the_picture(
    page: Page, server: str, session: dict[str, object]
) -> None:
    now = session["start"] + dt.timedelta(minutes=80)
    open_at(page, server, session["day"], now)
    pictures = {}
    for key, layer in enumerate(["depth", "pull_add", "vacuum", "reprice_away", "fill_intensity"]):
        page.keyboard.press(str(key + 1))
        page.wait_for_function(f"document.querySelector('#layer').value === '{layer}'")
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
        pictures[layer] = page.locator("#heatmap").screenshot()
    assert len(set(pictures.values())) == len(pictures)
    assert "layer=fill_intensity" in page.url


def test_levels_show_their_state(
    page: Page, server: str, market_lake: Lake, session: dict[str, object]
) -> None:
    level_id, entry, trigger_second, trigger_ts = warehouse(
        market_lake,
        "select episodes.level_id, episodes.zone_entry_ts, episodes.trigger_second, triggers.ts "
        "from gold.approach_episodes as episodes join gold.trigger_vectors as triggers "
        "using (episode_id) where episodes.dt = ? and triggers.ts > episodes.trigger_second + "
        "interval 1 second and episodes.trigger_second > episodes.zone_entry_ts + "
        "interval 1 second order by episodes.zone_entry_ts limit 1",
        [session["day"]],
    )[0]
    for moment, state in (
        (entry + dt.timedelta(seconds=1), "WATCH"),
        (trigger_second + dt.timedelta(seconds=1), "ARMED"),
        (trigger_ts, "FIRED"),
    ):
        open_at(page, server, session["day"], moment)
        assert (
            page.locator(f'#level-states tr[data-level="{level_id}"]').get_attribute("data-state")
            == state
        ), (moment, state)


def test_an_episode_reaching_a_live_days_session_tables_frontier_is_still_open(
    page: Page, server: str, market_lake: Lake, session: dict[str, object]
) -> None:
    """Live, the session tables lag the heatmap: an episode still in its zone at their last
    second ends there in their rows. The page keeps it open (FIRED) while its clock is past
    that second, as replay shows it; one that ended before the frontier is over."""
    level_id, trigger_ts, exit_ts = warehouse(
        market_lake,
        "select episodes.level_id, triggers.ts, episodes.zone_exit_ts "
        "from gold.approach_episodes as episodes join gold.trigger_vectors as triggers "
        "using (episode_id) where episodes.dt = ? "
        "and episodes.zone_exit_ts > triggers.ts + interval 20 second order by triggers.ts limit 1",
        [session["day"]],
    )[0]
    moment = trigger_ts.replace(microsecond=0) + dt.timedelta(seconds=10)
    open_at(page, server, session["day"], moment)
    row = page.locator(f'#level-states tr[data-level="{level_id}"]')
    assert row.get_attribute("data-state") == "FIRED"
    frontier = epoch(moment) - 4

    def as_live(until: int) -> str | None:
        """The episode's rows as a live day's session tables reaching `until` hold them."""
        page.evaluate(
            """([level, exit, until]) => {
                const hud = window.spymasterHud;
                for (const episode of hud.session.episodes) {
                  if (episode.level_id === level && episode.zone_exit_ts === exit) {
                    episode.zone_exit_ts = Math.min(exit, until);
                  }
                }
                hud.session.sessionUntil = until;
                hud.seek(hud.view.now);
            }""",
            [level_id, epoch(exit_ts), until],
        )
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
        return row.get_attribute("data-state")

    assert as_live(frontier) == "FIRED"  # still in its zone at the frontier
    assert as_live(frontier + 1) == ""  # the tables reach past its exit: over


def test_an_unknown_session_in_the_url_is_named_on_the_page(page: Page, server: str) -> None:
    page.goto(f"{server}?session=1999-01-04")
    banner = page.locator("#banner")
    banner.wait_for(state="visible")
    assert "no included session on 1999-01-04" in banner.inner_text()
    # the browser logs the API's 404 itself; nothing else went wrong
    page.console_errors.remove(
        "Failed to load resource: the server responded with a status of 404 (Not Found)"
    )


def test_a_lake_without_a_warehouse_tells_what_to_run(
    browser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    lake = Lake(tmp_path / "empty-lake")
    lake.root.mkdir()
    with served(lake) as (url, _process):
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        banner = page.locator("#banner")
        banner.wait_for(state="visible")
        assert "no warehouse in this lake yet" in banner.inner_text()
        assert banner.locator("code").inner_text() == "spymaster build"
        context.close()


def test_an_empty_table_between_others_decodes_as_itself(page: Page, server: str) -> None:
    """The page reads a payload's back-to-back Arrow streams with apache-arrow, which took the
    next table's batches for an empty table's (a live day has no trigger signals before its
    first trigger): every table, empty or not, is read as itself."""
    payload = encode(
        {
            "first": pa.table({"x": [1]}),
            "empty": pa.table({"y": pa.array([], pa.string())}),
            "last": pa.table({"x": [2, 3]}),
        }
    )
    page.goto(server)
    decoded = page.evaluate(
        """async (text) => {
          const wire = await import('/static/js/wire.js');
          const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
          const tables = wire.decodePayload(bytes);
          return Object.fromEntries(Object.entries(tables).map(([k, t]) => [k, t.numRows]));
        }""",
        base64.b64encode(payload).decode(),
    )
    assert decoded == {"first": 1, "empty": 0, "last": 2}


# A cell of the evidence view's picture shows the side whose value is larger in size.
COMPOSITE_CELLS = """
with sides as (
    select
        second_offset,
        ticks_from_level,
        arg_max(side, abs(coalesce({measure}, 0)) + if(side = 'ask', 1e-12, 0)) as side,
        arg_max({measure}, abs(coalesce({measure}, 0)) + if(side = 'ask', 1e-12, 0)) as value,
        arg_max({measure}_ci_low, abs(coalesce({measure}, 0)) + if(side = 'ask', 1e-12, 0)) as low,
        arg_max({measure}_ci_high, abs(coalesce({measure}, 0)) + if(side = 'ask', 1e-12, 0)) as high
    from gold.trigger_composite
    where level_kind = 'real' and outcome = ?
    group by all
)
select second_offset, ticks_from_level, side, value, low, high from sides
"""


# evidence.js's colours: the heatmap's background and sides, the outcomes' colours
EVIDENCE_COLOURS = {
    "background": (0.043, 0.055, 0.078),
    "bid": (0.18, 0.77, 1.0),
    "ask": (1.0, 0.48, 0.24),
    "REJECT": (0xFF / 255, 0x5C / 255, 0x7A / 255),
    "BREAK": (0x3D / 255, 0xDC / 255, 0x84 / 255),
}


SIDES = ("ask", "bid")


def evidence_cells(lake: Lake, outcome: str) -> list[tuple]:
    return warehouse(lake, COMPOSITE_CELLS.format(measure="depth_share"), [outcome])


def test_the_evidence_view_draws_the_composite_where_the_table_says(
    page: Page, server: str, market_lake: Lake, session: dict[str, object]
) -> None:
    """From the trigger panel's link: the view opens on the trigger's level and direction, its
    condition table holds condition_outcomes' rows, and each picture's pixels are
    trigger_composite's cells in their colours (before a REJECT, its strongest ask and bid
    cells and its weakest cell in their sides' colours at their values; in REJECT
    minus BREAK, the strongest cell whose interval leaves out 0 in its outcome's colour, the
    strongest whose interval holds 0 faded)."""
    trigger_id, ts, *_ = triggers_with_neighbours(market_lake, session["day"])[0]
    level_id, direction = warehouse(
        market_lake,
        "select level_id, approach_dir from gold.approach_triggers where trigger_id = ?",
        [trigger_id],
    )[0]
    open_at(page, server, session["day"], ts)
    page.locator("#signals button.evidence-link").click()
    page.wait_for_function("window.spymasterHud.evidence.loads > 0")
    assert page.locator("#evidence-level").input_value() == level_id
    assert page.locator("#evidence-dir").input_value() == direction
    expected = warehouse(
        market_lake,
        "select grouping || '/' || member || '/' || held, n from gold.condition_outcomes "
        "where level_kind = 'real' and level_id = ? and approach_dir = ? and window_seconds = 30",
        [level_id, direction],
    )
    shown = page.eval_on_selector_all(
        "#evidence-conditions tr[data-member]",
        "rows => rows.map(r => [r.dataset.member, Number(r.cells[1].innerText)])",
    )
    assert sorted(shown) == sorted([member, n] for member, n in expected)

    scales = page.evaluate("window.spymasterHud.evidence.scales")
    screen = Image.open(io.BytesIO(page.screenshot())).convert("RGB")

    def pixel(panel: str, second: int, tick: int) -> tuple[int, int, int]:
        x, y = page.evaluate(
            f"window.spymasterHud.evidence.cellCenter('{panel}', {second}, {tick})"
        )
        return screen.getpixel((round(x), round(y)))

    def assert_shows(panel: str, cell: tuple, colour: str, strength: float) -> None:
        """The cell's pixel is `colour` mixed into the background at `strength`."""
        dark, light = EVIDENCE_COLOURS["background"], EVIDENCE_COLOURS[colour]
        expected = [round(255 * (d + (c - d) * strength)) for d, c in zip(dark, light, strict=True)]
        shown = pixel(panel, cell[0], cell[1])
        assert max(abs(a - b) for a, b in zip(shown, expected, strict=True)) <= 2, (cell, shown)

    rejects = evidence_cells(market_lake, "REJECT")
    strongest = [max((c for c in rejects if c[2] == side), key=lambda c: c[3]) for side in SIDES]
    for cell in [*strongest, min(rejects, key=lambda c: c[3])]:
        depth = 0.12 + 0.88 * min(1, math.sqrt(cell[3] / scales["REJECT"])) if cell[3] > 0 else 0
        assert_shows("REJECT", cell, cell[2], depth)

    differences = evidence_cells(market_lake, "REJECT_MINUS_BREAK")
    clear = max((c for c in differences if c[4] > 0 or c[5] < 0), key=lambda c: abs(c[3]))
    held = max((c for c in differences if c[4] <= 0 <= c[5]), key=lambda c: abs(c[3]))
    for cell, fade in ((clear, 1), (held, 0.3)):
        strength = min(1, abs(cell[3]) / scales["REJECT_MINUS_BREAK"]) * fade
        assert_shows("REJECT_MINUS_BREAK", cell, "REJECT" if cell[3] > 0 else "BREAK", strength)
