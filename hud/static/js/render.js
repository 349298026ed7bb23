// The render pass: the state drawn as it is now. The heatmap, overlay, axes, gamma panel, level
// states and signals; the crosshair's readout and the book's status. Nothing here changes
// what is open or where the clock is.
import { drawPriceAxis, drawScrubber, drawStrip, drawTimeAxis } from "./axes.js";
import { complete, spotBefore, storeValue } from "./data.js";
import { fixed, price } from "./format.js";
import { GexPanel } from "./gex_panel.js";
import { Heatmap } from "./heatmap.js";
import { drawOverlay } from "./overlay.js";
import { sessionLabel } from "./session.js";
import { SignalsPanel, renderLevelStates } from "./sidebar.js";
import { $, epochMs, state, stats, view } from "./state.js";
import { SIDE } from "./store.js";

const PANEL_HZ = 10;
const SEEK_HOLD_MS = 250;

const heatmap = new Heatmap($("heatmap"));
const gexPanel = new GexPanel($("gex-panel"), $("gex-footer"));
const signalsPanel = new SignalsPanel($("signals"));
// what was drawn last: a canvas or panel is drawn again only when what it shows changed
const drawn = {
  priceAxis: null, scrubber: null, cutoffs: "", panels: 0, liveFrames: 0, liveLayers: 0, liveSession: 0,
  picker: null,
};

/** Live timings (stats): the entries this picture is the first to show. */
function markDrawn(list, counter, shown) {
  for (; drawn[counter] < list.length; drawn[counter] += 1) {
    const entry = list[drawn[counter]];
    if (!shown(entry)) break;
    entry.drawn = epochMs();
  }
}

/** Draw the picture if anything changed, unless a seek's seconds are on their way. */
export function renderIfDirty() {
  if (state.dirty && !waitingForSeek()) render();
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

function render() {
  state.dirty = false;
  state.lastRender = performance.now();
  const session = state.session;
  if (!session) return;
  const store = state.store;
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
  timed("upload", () => {
    heatmap.fit(session, view.span, state.layer);
    heatmap.sync(store, Math.floor(view.left), view.now);
  });
  timed("heatmap", () => heatmap.draw(view, state.cut));
  timed("overlay", () => drawOverlay($("overlay"), {
    view, session, store, showOutcomes: state.showOutcomes, gexExpiry: state.gexExpiry,
    crosshair: state.crosshair,
  }));
  timed("axes", () => {
    // each canvas redrawn costs compositing: only when what it shows changed
    const priceKey = `${spot}/${view.priceCenter}/${view.pixelsPerTick}/${view.height}`;
    if (priceKey !== drawn.priceAxis) {
      drawn.priceAxis = priceKey;
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
    if (scrubberKey !== drawn.scrubber) {
      drawn.scrubber = scrubberKey;
      drawScrubber(scrubber, view, session, state.showOutcomes);
    }
  });
  // text panels: at most PANEL_HZ a second while playing (nobody reads numbers faster), at
  // once otherwise
  const began = performance.now();
  if (!state.playing || began - drawn.panels >= 1000 / PANEL_HZ) {
    drawn.panels = began;
    timed("panels", () => {
      gexPanel.update(view, store.get(last), state.gexExpiry, state.clock, last);
      renderLevelStates($("level-states"), session, view.now, spot);
      if (state.live) renderLiveSessionLabel(session);
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
  markDrawn(stats.live, "liveFrames", (entry) => entry.second < view.now);
  markDrawn(stats.liveLayers, "liveLayers", (entry) => entry.second < view.now);
  markDrawn(stats.liveSession, "liveSession", () => true);
  const pending = stats.seeks.at(-1);
  if (pending && pending.rendered === null && whole && pending.now === view.now) {
    pending.rendered = performance.now();
  }
}

/** A live session's entry in the picker counts the triggers its payload holds so far (the
 * sessions list was read when the page opened). */
function renderLiveSessionLabel(session) {
  const key = `${session.session}/${session.triggers.length}`;
  if (drawn.picker === key) return;
  drawn.picker = key;
  const row = state.sessions.find((candidate) => candidate.session === session.session);
  const option = [...$("session-picker").options].find((candidate) => candidate.value === session.session);
  if (row && option) option.textContent = sessionLabel(row, session.triggers.length);
}

/** The depth colour scale: the cut-offs typed in contracts, or percentiles of the depth on
 * screen (recomputed as the view moves). */
function updateCutoffs(whole) {
  const [low, high] = state.cutoffInputs[state.cutoffMode];
  if (state.cutoffMode === "contracts") {
    state.cut = { low, high: Math.max(high, low + 1) };
    drawn.cutoffs = ""; // back to percentiles, they are computed afresh
    return;
  }
  const stamp = `${Math.floor(view.now / 10)}/${view.span}/${low}/${high}/${whole}`;
  if (stamp === drawn.cutoffs) return;
  const values = [];
  // a sample of seconds is enough for a percentile, and keeps long spans cheap
  const stride = Math.max(1, Math.round(view.span / 100));
  for (let second = Math.floor(view.left); second < view.now; second += stride) {
    const entry = state.store.get(second);
    if (!entry) continue;
    const depth = entry.columns("depth_and_flow_1s");
    const [first, end] = entry.rows("depth_and_flow_1s");
    for (let i = first; i < end; i += 1) if (depth.depth_qty_end[i] > 0) values.push(depth.depth_qty_end[i]);
  }
  if (values.length < 50) return;
  drawn.cutoffs = stamp;
  values.sort((a, b) => a - b);
  const at = (p) => values[Math.min(values.length - 1, Math.floor((p / 100) * values.length))];
  state.cut = { low: at(low), high: Math.max(at(high), at(low) + 1) };
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

/** The tables' values at the crosshair's second and price ("–" where a table has none). */
function updateReadout() {
  const readout = $("readout");
  const crosshair = state.crosshair;
  if (!crosshair) {
    readout.hidden = true;
    return;
  }
  const second = Math.floor(view.secondAt(crosshair.x));
  const tick = state.session.tick_size;
  const at = Math.round(view.priceAt(crosshair.y) / tick) * tick;
  readout.hidden = false;
  readout.dataset.second = String(second);
  readout.dataset.price = String(at);
  const entry = second < view.now ? state.store.get(second) : null;
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
