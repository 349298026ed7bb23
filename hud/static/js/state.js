// The page's one state: what is open, where the clock is, what is shown and how; the counters
// tests and the benchmark read; the view. Every other module reads and changes these, and
// marks the picture dirty; the animation frame loop (main.js) draws it again.
import { HudError } from "./api.js";
import { SecondStore } from "./store.js";
import { View } from "./view.js";

export const $ = (id) => document.getElementById(id);
export const epochMs = () => performance.timeOrigin + performance.now();

export const view = new View();

export const state = {
  sessions: [],
  session: null,
  clock: null, // the session's exchange-time clock (format.js)
  store: new SecondStore(),
  inflight: [], // [start, end) of the windows asked for and not yet here
  frameQueue: [], // frames received, not yet decoded: { bytes, arrived }
  prefetchTimer: null,
  // replay: the clock runs from (anchorWall, anchorNow) at `speed` once `buffering` is over
  playing: false,
  speed: 10,
  anchorWall: 0,
  anchorNow: 0,
  buffering: false,
  // live: the session is being computed; the view follows its edge unless held
  live: false,
  following: false,
  liveEdge: 0,
  liveEnded: false,
  liveFailed: false,
  // where the live feed lost records: { after (epoch s), reason }; books invalid until a snapshot
  feedGaps: [],
  // what is shown and how
  layer: "depth",
  cutoffMode: "percentile",
  cutoffInputs: { percentile: [2, 98], contracts: [1, 500] },
  cut: { low: 1, high: 500 },
  gexExpiry: "all",
  showOutcomes: false,
  crosshair: null,
  error: null,
  dirty: true,
  lastRender: -Infinity, // performance.now() of the last picture
};

// What tests and the benchmark read: draws, frames, seconds the clock found missing, the
// latest seeks and windows (when asked, received, decoded, stored, drawn).
export const stats = {
  draws: 0, frames: 0, behind: 0, seeks: [], windows: [], playStarted: null, firstPicture: null,
  renderMs: {},
  // live: when each second's heatmap frame, then its layers' frame, arrived, was decoded and
  // first drawn (epoch ms); and each update of the session tables' frontier (`until`)
  live: [],
  liveLayers: [],
  liveSession: [],
};
const RECENT = 200;

export function remember(list, item) {
  list.push(item);
  if (list.length > RECENT) list.shift();
}

export function markDirty() {
  state.dirty = true;
}

/** The error banner: an error's message and the command that fixes it, or hidden (null). */
export function showError(error) {
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
