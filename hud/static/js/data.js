// The session's seconds on the page: HTTP windows for the seconds on screen (and ahead of a
// resting clock), WebSocket frames queued as they come and decoded as the clock needs them,
// all kept in one per-second store (state.store).
import { fetchWindow, timings } from "./api.js";
import { epochMs, markDirty, remember, showError, state, stats, view } from "./state.js";
import { HEATMAP_TABLES, SecondStore } from "./store.js";
import { updateUrl } from "./url.js";
import { decodePayload, rowsOf } from "./wire.js";

const PREFETCH_SECONDS = 60; // ahead of a paused clock, so stepping forward is instant
const PREFETCH_DELAY_MS = 250;
const WINDOW_SECONDS = 3600; // the most one window may hold
const KEEP_BEHIND = 300; // seconds kept left of the view, and ahead of the clock
const KEEP_AHEAD = 600;
const FRAME_DECODE_BUDGET_MS = 4;
const LIVE_FRAMES_KEPT = 20000; // per-second arrival times kept for the latency benchmark

/** A new session: nothing stored, asked for or queued. */
export function clearData() {
  state.store = new SecondStore();
  state.inflight = [];
  state.frameQueue = [];
}

/** Forget the seconds far from the view: memory stays bounded by what is near it. */
function keepNearView() {
  state.store.keepOnly(Math.floor(view.left) - KEEP_BEHIND, view.now + KEEP_AHEAD);
}

/** A running clock (playing, or following the live edge) moves on to `second`. */
export function runClockTo(second) {
  view.now = second;
  markDirty();
  updateUrl(false);
  if (second % KEEP_BEHIND === 0) keepNearView();
}

/** Ask for the seconds on screen not yet here, nearest the clock first; once they are all
 * here and the clock has rested a moment, for a minute ahead of it (stepping forward is then
 * instant, and a quick run of seeks asks the server for nothing it does not show). */
export function ensureData() {
  const session = state.session;
  if (!session) return;
  keepNearView();
  const from = Math.max(session.start, Math.floor(view.left));
  const runs = state.store.missing(from, view.now, state.inflight);
  for (const [start, end] of runs) {
    for (let pieceEnd = end; pieceEnd > start; pieceEnd -= WINDOW_SECONDS) {
      requestWindow(session, Math.max(start, pieceEnd - WINDOW_SECONDS), pieceEnd);
    }
  }
  clearTimeout(state.prefetchTimer);
  if (runs.length || state.playing || state.inflight.length) return;
  const now = view.now;
  state.prefetchTimer = setTimeout(() => {
    if (state.session !== session || state.playing || view.now !== now) return;
    const end = Math.min(session.end, now + PREFETCH_SECONDS);
    for (const [start, stop] of state.store.missing(now, end, state.inflight)) {
      requestWindow(session, start, stop);
    }
  }, PREFETCH_DELAY_MS);
}

function requestWindow(session, start, end) {
  const range = [start, end];
  const requested = performance.now();
  state.inflight.push(range);
  fetchWindow(session.session, start, end)
    .then((tables) => {
      if (state.session !== session) return;
      state.store.add(tables);
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

/** A frame from the stream, kept undecoded until the clock needs it. */
export function queueFrame(bytes, arrived) {
  state.frameQueue.push({ bytes, arrived });
}

/** Decode queued frames (they come in time order) until the heatmap can draw second
 * `needed` and a few milliseconds are spent: a burst is spread over several drawn frames. */
export function drainFrames(needed) {
  const deadline = performance.now() + FRAME_DECODE_BUDGET_MS;
  while (state.frameQueue.length && (performance.now() < deadline || !state.store.has(needed))) {
    const began = performance.now();
    const { bytes, arrived } = state.frameQueue.shift();
    const tables = decodePayload(bytes);
    const [message] = rowsOf(tables.message);
    if (!state.session || message.session !== state.session.session) continue;
    if (message.kind === "session") {
      // a live session's payload again: new levels, episodes, triggers or a wider price range
      state.session.load(tables);
      timeLive(stats.liveSession, { until: state.session.sessionUntil, arrived });
      markDirty();
      continue;
    }
    state.store.add(tables);
    if (message.mode === "live") {
      // the live edge is the last second the heatmap can draw; each part's frame is timed
      const heatmap = HEATMAP_TABLES.every((name) => tables[name]);
      if (heatmap) state.liveEdge = Math.max(state.liveEdge, message.end);
      timeLive(heatmap ? stats.live : stats.liveLayers, { second: message.start, arrived });
    }
    stats.frames += 1;
    stats.decodeMs = (stats.decodeMs ?? 0) + performance.now() - began;
    markDirty();
  }
}

/** Live: when a frame or session update arrived and was decoded (drawn: see render.js). */
export function timeLive(list, entry) {
  if (list.length < LIVE_FRAMES_KEPT) list.push({ ...entry, decoded: epochMs(), drawn: null });
}

/** A column's value in a table of one row per second (book_snapshot_1s), or null. */
export function storeValue(second, table, column) {
  const entry = state.store.get(second);
  if (!entry) return null;
  const [row, end] = entry.rows(table);
  return row < end ? entry.columns(table)[column][row] : null;
}

/** The latest spot at or before `second` among the loaded seconds: a second whose book is
 * not valid has none, and the price axis stays where the market last was. */
export function spotBefore(second) {
  for (let at = second; at >= Math.max(state.session.start, second - 3600); at -= 1) {
    const spot = storeValue(at, "book_snapshot_1s", "spot_price");
    if (spot !== null && !Number.isNaN(spot)) return spot;
  }
  return null;
}

/** Whether the heatmap can draw every second of the view. */
export function complete() {
  const from = Math.max(state.session.start, Math.floor(view.left));
  for (let second = from; second < view.now; second += 1) if (!state.store.has(second)) return false;
  return true;
}
