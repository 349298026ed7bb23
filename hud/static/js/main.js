// The page: the replay clock (or the live edge), the session and its data, and every control.
// Nothing here is computed from the market: values on screen are values of the warehouse's
// tables (live: of the live day's tables, computed by the same SQL as they are).
import { FrameStream, HudError, fetchSession, fetchSessions, fetchWindow, timings } from "./api.js";
import { drawPriceAxis, drawScrubber, drawStrip, drawTimeAxis, scrubberSecond } from "./axes.js";
import { ExchangeClock, fixed, price } from "./format.js";
import { GexPanel } from "./gex_panel.js";
import { Heatmap, LAYERS } from "./heatmap.js";
import { drawOverlay } from "./overlay.js";
import { SessionData } from "./session.js";
import { SignalsPanel, renderLegend, renderLevelStates } from "./sidebar.js";
import { SIDE, SecondStore } from "./store.js";
import { View } from "./view.js";
import { decodePayload, rowsOf } from "./wire.js";

const $ = (id) => document.getElementById(id);
const SPEEDS = [1, 2, 5, 10, 20, 30, 60];
const SPANS = [120, 300, 600, 900, 1800, 3600];
const LAYER_KEYS = Object.keys(LAYERS);
const PREFETCH_SECONDS = 60; // ahead of a paused clock, so stepping forward is instant
const PREFETCH_DELAY_MS = 250;
const KEEP_BEHIND = 300; // seconds kept left of the view, and ahead of the clock
const KEEP_AHEAD = 600;
const PANEL_HZ = 10;
const FRAME_DECODE_BUDGET_MS = 4;
const LIVE_DRAW_INTERVAL_MS = 1000 / 60; // live seconds drawn on arrival at most this often
const SEEK_HOLD_MS = 250;
const LIVE_FRAMES_KEPT = 20000; // per-second arrival times kept for the latency benchmark
const epochMs = () => performance.timeOrigin + performance.now();

const state = {
  sessions: [],
  session: null,
  clock: null,
  playing: false,
  speed: 10,
  anchorWall: 0,
  anchorNow: 0,
  layer: "depth",
  cutoffMode: "percentile",
  cutoffInputs: { percentile: [2, 98], contracts: [1, 500] },
  cut: { low: 1, high: 500 },
  cutStamp: "",
  gexExpiry: "all",
  showOutcomes: false,
  crosshair: null,
  dirty: true,
  inflight: [],
  error: null,
  lastUrlUpdate: 0,
  panelsDrawn: 0,
  prefetchTimer: null,
  frameQueue: [],
  buffering: false,
  // live: the session is being computed; the view follows its edge unless held
  live: false,
  following: false,
  lastRender: -Infinity, // performance.now() of the last picture
  liveEdge: 0,
  liveEnded: false,
  liveFailed: false,
  liveDrawn: 0,
  // where the live feed lost records: { after (epoch s), reason }; books invalid until a snapshot
  feedGaps: [],
  drawn: { priceAxis: null, scrubber: null },
};
// What tests and the benchmark read: draws, frames, seconds the clock found missing, the
// latest seeks and windows (when asked, received, decoded, stored, drawn).
const RECENT = 200;
const remember = (list, item) => {
  list.push(item);
  if (list.length > RECENT) list.shift();
};
const stats = {
  draws: 0, frames: 0, behind: 0, seeks: [], windows: [], playStarted: null, firstPicture: null,
  renderMs: {},
  // live frames: the second, when it arrived, was decoded and first drawn (epoch ms)
  live: [],
};
const view = new View();
let store = new SecondStore();
let heatmap = null;
let gexPanel = null;
let signalsPanel = null;
let stream = null;

// ---- errors -------------------------------------------------------------------------------

function showError(error) {
  const banner = $("banner");
  if (!error) {
    banner.hidden = true;
    state.error = null;
    return;
  }
  state.error = error;
  const message = error instanceof HudError || error.message ? error.message : String(error);
  banner.textContent = message;
  if (error.command) {
    banner.append(document.createElement("br"), "run: ");
    const code = document.createElement("code");
    code.textContent = error.command;
    banner.append(code);
  }
  banner.hidden = false;
}

// ---- data ---------------------------------------------------------------------------------

/** Ask for the seconds on screen not yet here, nearest the clock first; once they are all
 * here and the clock has rested a moment, for a minute ahead of it (stepping forward is then
 * instant, and a quick run of seeks asks the server for nothing it does not show). */
function ensureData() {
  const session = state.session;
  if (!session) return;
  const from = Math.max(session.start, Math.floor(view.left));
  store.keepOnly(from - KEEP_BEHIND, view.now + KEEP_AHEAD);
  const runs = store.missing(from, view.now, state.inflight);
  for (const [start, end] of runs) {
    for (let pieceEnd = end; pieceEnd > start; pieceEnd -= 3600) {
      requestWindow(session, Math.max(start, pieceEnd - 3600), pieceEnd);
    }
  }
  clearTimeout(state.prefetchTimer);
  if (runs.length || state.playing || state.inflight.length) return;
  const now = view.now;
  state.prefetchTimer = setTimeout(() => {
    if (state.session !== session || state.playing || view.now !== now) return;
    const ahead = store.missing(now, Math.min(session.end, now + PREFETCH_SECONDS), state.inflight);
    for (const [start, end] of ahead) requestWindow(session, start, end);
  }, PREFETCH_DELAY_MS);
}

function requestWindow(session, start, end) {
  const range = [start, end];
  const requested = performance.now();
  state.inflight.push(range);
  fetchWindow(session.session, start, end)
    .then((tables) => {
      if (state.session !== session) return;
      store.add(tables);
      remember(stats.windows, { start, end, requested, ...timings, stored: performance.now() });
      markDirty();
    })
    .catch((error) => {
      if (state.session === session) showError(error);
    })
    .finally(() => {
      state.inflight = state.inflight.filter((r) => r !== range);
      if (state.session === session && !state.error) ensureData();
    });
}

function onFrame(bytes, arrived) {
  state.frameQueue.push({ bytes, arrived });
  // following a live edge, a new second is decoded and drawn as it arrives: waiting for the
  // next animation frame cost 8-15 ms on 2 busy cores. A burst (a catch-up, --speed max) is
  // left to the animation frames, at most one picture per display frame.
  if (
    state.live && state.following && state.frameQueue.length === 1
    && performance.now() - state.lastRender >= LIVE_DRAW_INTERVAL_MS
  ) {
    takeLiveFrames();
    if (state.dirty && !waitingForSeek()) render();
  }
}

/** Decode queued frames (they come in time order) until the clock's seconds are all here and
 * a few milliseconds are spent: a burst of frames is spread over several drawn frames. */
function drainFrames(needed) {
  const deadline = performance.now() + FRAME_DECODE_BUDGET_MS;
  while (state.frameQueue.length && (performance.now() < deadline || !store.has(needed))) {
    const began = performance.now();
    const { bytes, arrived } = state.frameQueue.shift();
    const tables = decodePayload(bytes);
    const [message] = rowsOf(tables.message);
    if (!state.session || message.session !== state.session.session) continue;
    if (message.kind === "session") {
      updateLiveSession(tables);
      continue;
    }
    store.add(tables);
    if (message.mode === "live") {
      state.liveEdge = Math.max(state.liveEdge, message.end);
      if (stats.live.length < LIVE_FRAMES_KEPT) {
        stats.live.push({ second: message.start, arrived, decoded: epochMs(), drawn: null });
      }
    }
    stats.frames += 1;
    stats.decodeMs = (stats.decodeMs ?? 0) + performance.now() - began;
    markDirty();
  }
}

function onNotice(notice) {
  if (notice.type === "error") showError(new HudError(notice.error, notice));
  else if (notice.type === "end") pause();
  else if (notice.type === "live-end") {
    state.liveEnded = true;
    updateBadge();
  } else if (notice.type === "live-failed") {
    state.liveFailed = true;
    showError(new HudError(`the live feed failed: ${notice.error} (the day so far stays here)`));
    updateBadge();
  } else if (notice.type === "feed-gap") {
    state.feedGaps.push({ after: notice.after, reason: notice.reason });
    markDirty();
  }
}

/** A live session's payload again (new levels, episodes, triggers, or a wider price range). */
function updateLiveSession(tables) {
  const session = state.session;
  const [base, rows] = [session.priceBase, session.priceRows];
  session.load(tables);
  if (session.priceBase !== base || session.priceRows !== rows) {
    heatmap.reset(session, view.span);
    heatmap.setLayer(state.layer);
  }
  markDirty();
}

// ---- live ---------------------------------------------------------------------------------

function updateBadge() {
  const badge = $("mode-badge");
  badge.className = `badge ${state.live ? "live" : "replay"}`;
  badge.textContent = !state.live ? "REPLAY" : state.liveFailed ? "LIVE · failed"
    : state.liveEnded ? "LIVE · ended"
    : state.following ? "LIVE" : "LIVE · held";
  badge.title = state.live ? "the live session: click (or End) to follow its edge" : "a replay of the warehouse";
  $("speed").disabled = state.live;
}

/** Follow the live edge: each second is shown as soon as it is computed. */
function followLive() {
  state.following = true;
  if (state.liveEdge > view.now) seek(state.liveEdge);
  updateBadge();
}

function holdLive() {
  state.following = false;
  updateBadge();
}

// ---- clock --------------------------------------------------------------------------------

function markDirty() {
  state.dirty = true;
}

function clampSecond(second) {
  const session = state.session;
  const last = state.live ? Math.max(session.start, state.liveEdge) : session.end;
  return Math.min(last, Math.max(session.start, Math.round(second)));
}

/** Go to a second (the end of the last second shown), playing on from there if playing. */
function seek(second, { record = true } = {}) {
  if (!state.session) return;
  view.now = clampSecond(second);
  if (state.live && state.following && view.now < state.liveEdge) holdLive();
  if (record) remember(stats.seeks, { now: view.now, requested: performance.now(), rendered: null });
  if (state.playing) startStream();
  ensureData();
  markDirty();
  updateUrl(true);
}

function startStream() {
  state.buffering = true;
  stream.replay(state.session.session, view.now, state.speed);
}

function play() {
  if (state.live) {
    followLive();
    return;
  }
  if (!state.session || state.playing) return;
  if (view.now >= state.session.end) view.now = state.session.start + view.span;
  state.playing = true;
  stats.playStarted = performance.now();
  stats.behind = 0;
  startStream();
  $("play").textContent = "❚❚";
  markDirty();
}

function pause() {
  if (state.live) {
    holdLive();
    return;
  }
  if (!state.playing) return;
  state.playing = false;
  stream.stop();
  $("play").textContent = "▶";
  ensureData();
  updateUrl(true);
  markDirty();
}

function setSpeed(speed) {
  state.speed = speed;
  $("speed").value = String(speed);
  if (state.playing) startStream();
  updateUrl(true);
}

function step(seconds) {
  pause();
  seek(view.now + seconds);
}

// ---- sessions -----------------------------------------------------------------------------

/** Open a session at `at` (epoch seconds), or at `time` (HH:MM:SS New York), or 09:35. */
async function openSession(sessionDate, { at = null, time = null } = {}) {
  pause();
  stream.stop();
  showError(null);
  const tables = await fetchSession(sessionDate);
  const session = new SessionData(tables);
  state.session = session;
  state.live = session.live_until !== null;
  state.following = state.live;
  state.liveEdge = Math.max(session.start, session.live_until ?? 0);
  state.liveEnded = false;
  state.liveFailed = false;
  state.feedGaps = [];
  state.frameQueue = [];
  updateBadge();
  state.inflight = [];
  store = new SecondStore();
  state.clock = new ExchangeClock(session.exchange_timezone, session.start);
  view.tick = session.tick_size;
  view.priceCenter = null;
  view.follow = true;
  heatmap.reset(session, view.span);
  heatmap.setLayer(state.layer);
  signalsPanel.key = null;
  $("session-picker").value = session.session;
  $("plot").dataset.session = session.session;
  let second = at ?? (state.live ? state.liveEdge : (session.session_window_start ?? session.start) + 300);
  if (time !== null) {
    const typed = state.clock.parse(time);
    if (typed === null || typed < session.start || typed > session.end) {
      showError(new HudError(`t=${time} is not a time of session ${session.session} (HH:MM:SS New York)`, { parameter: "t" }));
    } else second = typed;
  }
  if (state.live && (at !== null || time !== null)) state.following = false;
  seek(second);
  if (state.live) stream.live(session.session, state.liveEdge);
  updateBadge();
}

function sessionLabel(row) {
  return `${row.session} ${row.symbol} · ${row.triggers} triggers${row.is_live ? " · LIVE" : ""}`;
}

// ---- drawing ------------------------------------------------------------------------------

function storeValue(second, table, column) {
  const entry = store.get(second);
  if (!entry) return null;
  const [row, end] = entry.rows(table);
  return row < end ? entry.columns(table)[column][row] : null;
}

/** The latest spot at or before `second` among the loaded seconds: a second whose book is
 * not valid has none, and the price axis stays where the market last was. */
function spotBefore(second) {
  for (let at = second; at >= Math.max(state.session.start, second - 3600); at -= 1) {
    const spot = storeValue(at, "book_snapshot_1s", "spot_price");
    if (spot !== null && !Number.isNaN(spot)) return spot;
  }
  return null;
}

/** Percentile cut-offs from the depth on screen (recomputed as the view moves). */
function updateCutoffs(whole) {
  const [low, high] = state.cutoffInputs[state.cutoffMode];
  if (state.cutoffMode === "contracts") {
    state.cut = { low, high: Math.max(high, low + 1) };
    return;
  }
  const stamp = `${Math.floor(view.now / 10)}/${view.span}/${low}/${high}/${whole}`;
  if (stamp === state.cutStamp) return;
  const values = [];
  // a sample of seconds is enough for a percentile, and keeps long spans cheap
  const stride = Math.max(1, Math.round(view.span / 100));
  for (let second = Math.floor(view.left); second < view.now; second += stride) {
    const entry = store.get(second);
    if (!entry) continue;
    const depth = entry.columns("depth_and_flow_1s");
    const [first, end] = entry.rows("depth_and_flow_1s");
    for (let i = first; i < end; i += 1) if (depth.depth_qty_end[i] > 0) values.push(depth.depth_qty_end[i]);
  }
  if (values.length < 50) return;
  state.cutStamp = stamp;
  values.sort((a, b) => a - b);
  const at = (p) => values[Math.min(values.length - 1, Math.floor((p / 100) * values.length))];
  state.cut = { low: at(low), high: Math.max(at(high), at(low) + 1) };
}

function complete() {
  const from = Math.max(state.session.start, Math.floor(view.left));
  for (let second = from; second < view.now; second += 1) if (!store.has(second)) return false;
  return true;
}

function render() {
  state.dirty = false;
  state.lastRender = performance.now();
  const session = state.session;
  if (!session) return;
  const plot = $("plot");
  view.width = plot.clientWidth;
  view.height = plot.clientHeight;
  const last = view.now - 1;
  const spot = storeValue(last, "book_snapshot_1s", "spot_price");
  view.followSpot(spot);
  if (view.priceCenter === null) view.priceCenter = spotBefore(last); // opened inside a gap
  const whole = complete();
  updateCutoffs(whole);
  const timed = (name, work) => {
    const began = performance.now();
    work();
    stats.renderMs[name] = (stats.renderMs[name] ?? 0) + performance.now() - began;
  };
  timed("upload", () => heatmap.sync(store, Math.floor(view.left), view.now));
  timed("heatmap", () => heatmap.draw(view, state.cut));
  timed("overlay", () => drawOverlay($("overlay"), {
    view, session, store, showOutcomes: state.showOutcomes, gexExpiry: state.gexExpiry,
    crosshair: state.crosshair,
  }));
  timed("axes", () => {
    // a canvas is drawn again only when what it shows changed: each redraw costs compositing
    const priceKey = `${spot}/${view.priceCenter}/${view.pixelsPerTick}/${view.height}`;
    if (priceKey !== state.drawn.priceAxis) {
      state.drawn.priceAxis = priceKey;
      drawPriceAxis($("price-axis"), view, spot);
    }
    drawTimeAxis($("time-axis"), view, state.clock);
    drawStrip($("strip"), view, store, session);
    const scrubber = $("scrubber-canvas");
    const perPixel = (session.end - session.start) / scrubber.clientWidth;
    const seen = session.triggers.filter((trigger) => trigger.trigger_ts <= view.now);
    const known = seen.filter((trigger) => session.outcomeKnown(trigger, view.now, state.showOutcomes));
    const scrubberKey = [
      Math.round(view.left / perPixel), Math.round(view.now / perPixel), seen.length, known.length,
      state.showOutcomes, scrubber.clientWidth,
    ].join("/");
    if (scrubberKey !== state.drawn.scrubber) {
      state.drawn.scrubber = scrubberKey;
      drawScrubber(scrubber, view, session, state.showOutcomes);
    }
  });
  // text panels: at most PANEL_HZ a second while playing (nobody reads numbers faster), at
  // once otherwise
  const began = performance.now();
  if (!state.playing || began - state.panelsDrawn >= 1000 / PANEL_HZ) {
    state.panelsDrawn = began;
    timed("panels", () => {
      gexPanel.update(view, store.get(last), state.gexExpiry, state.clock, last);
      renderLevelStates($("level-states"), session, view.now, spot);
      signalsPanel.update(session, view.now, state.showOutcomes, state.clock);
      if (document.activeElement !== $("clock")) $("clock").value = state.clock.time(view.now);
      // what tests wait for: the second shown, and whether every second of the view is drawn
      document.body.dataset.now = String(view.now);
      document.body.dataset.complete = whole ? "1" : "0";
    });
  }
  updateReadout();
  updateBookStatus();
  const status = state.playing && state.buffering ? "buffering…" : whole ? "" : "loading…";
  if ($("plot-status").textContent !== status) $("plot-status").textContent = status;
  stats.draws += 1;
  if (whole && stats.firstPicture === null) stats.firstPicture = performance.now();
  for (; state.liveDrawn < stats.live.length; state.liveDrawn += 1) {
    const entry = stats.live[state.liveDrawn];
    if (entry.second >= view.now) break;
    entry.drawn = epochMs();
  }
  const pending = stats.seeks.at(-1);
  if (pending && pending.rendered === null && whole && pending.now === view.now) {
    pending.rendered = performance.now();
  }
}

/** The book of the clock's last second: a badge while it is not valid (before its snapshot, a
 * crossed book outside the pre-open, or a live feed that lost records until its snapshot). */
function updateBookStatus() {
  const badge = $("book-status");
  const valid = storeValue(view.now - 1, "book_snapshot_1s", "book_valid");
  const invalid = valid !== null && !valid;
  const gap = state.feedGaps.findLast((g) => g.after < view.now);
  const why = gap
    ? `the feed lost records after ${state.clock.time(Math.floor(gap.after))} NY (${gap.reason}); `
      + "the books are invalid until the new subscription's snapshot"
    : "the book is not valid at this second: before its snapshot, or crossed outside the pre-open";
  if (badge.hidden === !invalid && badge.title === why) return;
  badge.hidden = !invalid;
  badge.title = why;
}

function updateReadout() {
  const readout = $("readout");
  const crosshair = state.crosshair;
  if (!crosshair || !state.session) {
    readout.hidden = true;
    return;
  }
  const second = Math.floor(view.secondAt(crosshair.x));
  const tick = state.session.tick_size;
  const at = Math.round(view.priceAt(crosshair.y) / tick) * tick;
  readout.hidden = false;
  readout.dataset.second = String(second);
  readout.dataset.price = String(at);
  const entry = second < view.now ? store.get(second) : null;
  const head = `${state.clock.time(second)} NY  ${price(at)}`;
  if (!entry) {
    readout.textContent = `${head}\n${second >= view.now ? "not yet" : "not loaded"}`;
    return;
  }
  const cell = { bid: {}, ask: {} };
  const pick = (table, columns) => {
    const data = entry.columns(table);
    const [first, end] = entry.rows(table);
    for (let i = first; i < end; i += 1) {
      if (Math.abs(data.price[i] - at) > 1e-9) continue;
      const side = data.side[i] === SIDE.bid ? "bid" : "ask";
      for (const column of columns) cell[side][column] = data[column][i];
    }
  };
  pick("depth_and_flow_1s", [
    "depth_qty_start", "depth_qty_end", "depth_qty_rest", "add_qty", "pull_qty", "pull_qty_rest",
    "fill_qty", "reprice_in_qty", "reprice_out_away_qty", "reprice_out_toward_qty",
  ]);
  pick("vacuum_surface_1s", ["pull_add_log", "fill_intensity"]);
  pick("vacuum_score_1s", ["vacuum_score"]);
  const spot = storeValue(second, "book_snapshot_1s", "spot_price");
  const lines = [
    `${head}  ${spot === null ? "" : `(${Math.round((at - spot) / tick)} ticks from spot)`}`,
    `                    bid        ask`,
  ];
  const line = (label, column, digits = null) => {
    const show = (value) =>
      value === undefined ? "–" : digits === null ? String(value) : fixed(value, digits);
    lines.push(`${label.padEnd(16)}${show(cell.bid[column]).padStart(7)}${show(cell.ask[column]).padStart(11)}`);
  };
  line("depth (end)", "depth_qty_end");
  line("depth (start)", "depth_qty_start");
  line("resting", "depth_qty_rest");
  line("added", "add_qty");
  line("pulled", "pull_qty");
  line("pulled resting", "pull_qty_rest");
  line("filled", "fill_qty");
  line("repriced in", "reprice_in_qty");
  line("repriced away", "reprice_out_away_qty");
  line("repriced toward", "reprice_out_toward_qty");
  line("pull/add log", "pull_add_log", 3);
  line("fill intensity", "fill_intensity", 3);
  line("vacuum score", "vacuum_score", 3);
  readout.textContent = lines.join("\n");
}

/** Live: the frames received so far, and the clock at the live edge when following it. */
function takeLiveFrames() {
  if (!state.session) return;
  drainFrames(view.now - 1);
  if (state.following && state.liveEdge > view.now) {
    view.now = state.liveEdge;
    markDirty();
    if (performance.now() - state.lastUrlUpdate > 1000) updateUrl(false);
    if (view.now % KEEP_BEHIND === 0) store.keepOnly(Math.floor(view.left) - KEEP_BEHIND, view.now + KEEP_AHEAD);
  }
}

function frame() {
  if (state.live && state.session) {
    takeLiveFrames();
  } else if (state.playing && state.session) {
    if (state.buffering) {
      // the clock starts once the first second to show is here, as a player does
      drainFrames(view.now);
      if (store.has(view.now)) {
        state.buffering = false;
        state.anchorWall = performance.now();
        state.anchorNow = view.now;
      }
    } else {
      const elapsed = (performance.now() - state.anchorWall) / 1000;
      const target = Math.min(state.session.end, Math.floor(state.anchorNow + elapsed * state.speed));
      drainFrames(target - 1);
      if (target !== view.now) {
        for (let second = view.now; second < target; second += 1) if (!store.has(second)) stats.behind += 1;
        view.now = target;
        markDirty();
        if (target >= state.session.end) pause();
        if (performance.now() - state.lastUrlUpdate > 1000) updateUrl(false);
        if (target % KEEP_BEHIND === 0) store.keepOnly(Math.floor(view.left) - KEEP_BEHIND, view.now + KEEP_AHEAD);
      }
    }
  } else if (state.frameQueue.length) {
    drainFrames(view.now - 1);
  }
  if (state.dirty && !waitingForSeek()) render();
  requestAnimationFrame(frame);
}

/** Right after a seek the old picture stays up until the new seconds arrive (or a moment
 * passes): drawing a half-empty view meanwhile would only take the CPU the answer needs. */
function waitingForSeek() {
  const seek = stats.seeks.at(-1);
  return (
    !state.playing && seek !== undefined && seek.rendered === null && seek.now === view.now &&
    state.inflight.length > 0 && performance.now() - seek.requested < SEEK_HOLD_MS
  );
}

// ---- URL ----------------------------------------------------------------------------------

function updateUrl(now) {
  if (!state.session) return;
  state.lastUrlUpdate = performance.now();
  const params = new URLSearchParams({
    session: state.session.session,
    t: state.clock.time(view.now),
    speed: String(state.speed),
    span: String(view.span),
    layer: state.layer,
    gex: state.gexExpiry,
  });
  if (state.showOutcomes) params.set("outcomes", "1");
  if (state.live && state.following) params.delete("t"); // a reload follows the edge again
  const url = `${location.pathname}?${params}`;
  // replaceState costs 3 ms, up to 17 ms on 2 busy cores: only when the address changes (a
  // page following the live edge keeps one address)
  if (now || url !== `${location.pathname}${location.search}`) history.replaceState(null, "", url);
}

// ---- controls -----------------------------------------------------------------------------

function setLayer(layer) {
  state.layer = layer;
  $("layer").value = layer;
  heatmap.setLayer(layer);
  renderLegend($("legend"), layer);
  updateUrl(true);
  markDirty();
}

function setSpan(span) {
  view.span = span;
  $("span").value = String(span);
  if (state.session && heatmap.width < span + 64) heatmap.reset(state.session, span), heatmap.setLayer(state.layer);
  ensureData();
  updateUrl(true);
  markDirty();
}

function setCutoffMode(mode) {
  // carry the current picture over: the new unit starts from today's cut in contracts
  if (mode === "contracts") state.cutoffInputs.contracts = [Math.round(state.cut.low), Math.round(state.cut.high)];
  state.cutoffMode = mode;
  $("cutoff-mode").value = mode;
  [$("cutoff-low").value, $("cutoff-high").value] = state.cutoffInputs[mode].map(String);
  state.cutStamp = "";
  markDirty();
}

function goToTyped() {
  const text = $("clock").value;
  const second = state.clock.parse(text);
  if (second === null) {
    showError(new HudError(`time ${JSON.stringify(text)} is not HH:MM or HH:MM:SS (New York)`));
    return;
  }
  const session = state.session;
  if (second < session.start || second > session.end) {
    showError(new HudError(
      `time ${text} is outside session ${session.session}, which covers ` +
      `${state.clock.time(session.start)}-${state.clock.time(session.end)} New York`,
    ));
    return;
  }
  showError(null);
  $("clock").blur();
  seek(second);
}

function wireControls() {
  $("session-picker").addEventListener("change", (event) => {
    history.pushState(null, "", `?session=${event.target.value}`);
    openSession(event.target.value).catch(showError);
  });
  $("play").addEventListener("click", () => (state.playing ? pause() : play()));
  $("step-back").addEventListener("click", () => step(-1));
  $("step-forward").addEventListener("click", () => step(1));
  $("speed").addEventListener("change", (event) => setSpeed(Number(event.target.value)));
  $("seek-form").addEventListener("submit", (event) => {
    event.preventDefault();
    goToTyped();
  });
  $("span").addEventListener("change", (event) => setSpan(Number(event.target.value)));
  $("layer").addEventListener("change", (event) => setLayer(event.target.value));
  $("cutoff-mode").addEventListener("change", (event) => setCutoffMode(event.target.value));
  for (const [id, index] of [["cutoff-low", 0], ["cutoff-high", 1]]) {
    $(id).addEventListener("input", (event) => {
      const value = Number(event.target.value);
      if (Number.isFinite(value) && value >= 0) {
        state.cutoffInputs[state.cutoffMode][index] = value;
        state.cutStamp = "";
        markDirty();
      }
    });
  }
  $("gex-expiry").addEventListener("change", (event) => {
    state.gexExpiry = event.target.value;
    updateUrl(true);
    markDirty();
  });
  $("show-outcomes").addEventListener("change", (event) => {
    state.showOutcomes = event.target.checked;
    updateUrl(true);
    markDirty();
  });
  $("help-button").addEventListener("click", () => $("help").showModal());
  $("mode-badge").addEventListener("click", () => state.live && followLive());

  const plot = $("plot");
  let drag = null;
  plot.addEventListener("mousemove", (event) => {
    const box = plot.getBoundingClientRect();
    state.crosshair = { x: event.clientX - box.left, y: event.clientY - box.top };
    if (drag) {
      view.follow = false;
      view.priceCenter = drag.center + ((event.clientY - drag.y) / view.pixelsPerTick) * view.tick;
    }
    markDirty();
  });
  plot.addEventListener("mouseleave", () => {
    state.crosshair = null;
    drag = null;
    markDirty();
  });
  plot.addEventListener("mousedown", (event) => {
    drag = { y: event.clientY, center: view.priceCenter };
  });
  window.addEventListener("mouseup", () => {
    drag = null;
  });
  plot.addEventListener("dblclick", () => {
    view.follow = true;
    view.priceCenter = spotBefore(view.now - 1) ?? view.priceCenter;
    markDirty();
  });
  for (const element of [plot, $("price-axis"), $("gex-panel")]) {
    element.addEventListener("wheel", (event) => {
      event.preventDefault();
      view.zoomPrice(event.deltaY < 0 ? 1.15 : 1 / 1.15);
      markDirty();
    }, { passive: false });
  }
  $("time-axis").addEventListener("click", (event) => {
    const box = $("time-axis").getBoundingClientRect();
    seek(Math.floor(view.secondAt(event.clientX - box.left)));
  });
  const scrubber = $("scrubber-canvas");
  let scrubbing = false;
  const scrub = (event) => state.session && seek(scrubberSecond(scrubber, state.session, event.clientX));
  scrubber.addEventListener("mousedown", (event) => {
    scrubbing = true;
    scrub(event);
  });
  window.addEventListener("mousemove", (event) => scrubbing && scrub(event));
  window.addEventListener("mouseup", () => {
    scrubbing = false;
  });
  window.addEventListener("resize", markDirty);
  window.addEventListener("popstate", () => boot().catch(showError));
  document.addEventListener("keydown", onKey);
}

function onKey(event) {
  if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  if (!state.session) return;
  const big = event.shiftKey ? 10 : event.altKey ? 60 : 1;
  const actions = {
    " ": () => (state.playing ? pause() : play()),
    ArrowLeft: () => step(-big),
    ArrowRight: () => step(big),
    "+": () => setSpeed(SPEEDS[Math.min(SPEEDS.length - 1, SPEEDS.indexOf(state.speed) + 1)]),
    "=": () => setSpeed(SPEEDS[Math.min(SPEEDS.length - 1, SPEEDS.indexOf(state.speed) + 1)]),
    "-": () => setSpeed(SPEEDS[Math.max(0, SPEEDS.indexOf(state.speed) - 1)]),
    "[": () => setSpan(SPANS[Math.max(0, SPANS.indexOf(view.span) - 1)]),
    "]": () => setSpan(SPANS[Math.min(SPANS.length - 1, SPANS.indexOf(view.span) + 1)]),
    t: () => $("clock").select(),
    Home: () => seek(state.session.start + view.span),
    End: () => (state.live ? followLive() : seek(state.session.end)),
    o: () => $("show-outcomes").click(),
    g: () => {
      $("gex-expiry").value = state.gexExpiry === "all" ? "0dte" : "all";
      $("gex-expiry").dispatchEvent(new Event("change"));
    },
    f: () => $("plot").dispatchEvent(new MouseEvent("dblclick")),
    n: () => {
      const next = state.session.nextTrigger(view.now);
      if (next) step(next.trigger_ts - view.now);
    },
    p: () => {
      const previous = state.session.previousTrigger(view.now);
      if (previous) step(previous.trigger_ts - view.now);
    },
    "?": () => $("help").showModal(),
  };
  for (const [index, layer] of LAYER_KEYS.entries()) actions[String(index + 1)] = () => setLayer(layer);
  const action = actions[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
}

// ---- start --------------------------------------------------------------------------------

async function boot() {
  const params = new URLSearchParams(location.search);
  const sessions = rowsOf((await fetchSessions()).sessions);
  state.sessions = sessions;
  const picker = $("session-picker");
  picker.replaceChildren(
    ...sessions.map((row) => {
      const option = document.createElement("option");
      option.value = row.session;
      option.textContent = sessionLabel(row);
      return option;
    }),
  );
  if (!sessions.length) {
    throw new HudError("the warehouse has no included session yet", { command: "spymaster build" });
  }
  const speed = Number(params.get("speed"));
  if (SPEEDS.includes(speed)) setSpeed(speed);
  const span = Number(params.get("span"));
  if (SPANS.includes(span)) setSpan(span);
  if (LAYERS[params.get("layer")]) state.layer = params.get("layer");
  if (params.get("gex") === "0dte") state.gexExpiry = "0dte";
  $("gex-expiry").value = state.gexExpiry;
  state.showOutcomes = params.get("outcomes") === "1";
  $("show-outcomes").checked = state.showOutcomes;
  setLayer(state.layer);
  const live = sessions.find((row) => row.is_live);
  const chosen = params.get("session") ?? (live ?? sessions.at(-1)).session;
  await openSession(chosen, { time: params.get("t") });
}

function start() {
  heatmap = new Heatmap($("heatmap"));
  gexPanel = new GexPanel($("gex-panel"), $("gex-footer"));
  signalsPanel = new SignalsPanel($("signals"), (sessionDate, second) => {
    pause();
    if (sessionDate === state.session.session) {
      seek(second);
      return;
    }
    // a new history entry: Back returns to this setup
    history.pushState(null, "", location.href);
    openSession(sessionDate, { at: second }).catch(showError);
  });
  stream = new FrameStream({ onFrame, onNotice, resumeFrom: () => view.now });
  setCutoffMode(state.cutoffMode);
  wireControls();
  requestAnimationFrame(frame);
  boot().catch(showError);
}

// For the browser tests and the benchmark: the view's mapping, the clock and the counters.
window.spymasterHud = {
  view, stats, state, seek, play, pause, setSpeed, setSpan, setLayer,
  get session() {
    return state.session;
  },
};

start();
