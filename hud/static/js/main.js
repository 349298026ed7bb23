// The page: one state (state.js) that the clock, the data, the live feed and the controls
// change, and one loop that, each animation frame, moves the clock on and draws the state if
// it changed. Nothing here is computed from the market: values on screen are values of the
// warehouse's tables (live: of the live day's tables, computed by the same SQL as they are).
import { SPEEDS, advance, pause, play, seek, setSpeed } from "./clock.js";
import { SPANS, evidence, setCutoffMode, setLayer, setSpan, wireControls } from "./controls.js";
import { LAYERS } from "./heatmap.js";
import { onFrame } from "./live.js";
import { renderIfDirty } from "./render.js";
import { loadSessions, openSession } from "./sessions.js";
import { $, showError, state, stats, view } from "./state.js";

/** Open what the address asks for: its session, moment and settings (or the live session,
 * else the latest). */
async function boot() {
  const params = new URLSearchParams(location.search);
  const sessions = await loadSessions();
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

function frame() {
  advance();
  renderIfDirty();
  requestAnimationFrame(frame);
}

// For the browser tests and the benchmark: the view's mapping, the clock and the counters;
// `receive` hands the page a payload as the frame stream would.
window.spymasterHud = {
  view, stats, state, seek, play, pause, setSpeed, setSpan, setLayer, evidence,
  receive: (bytes) => onFrame(bytes, performance.timeOrigin + performance.now()),
  get session() {
    return state.session;
  },
};

setCutoffMode(state.cutoffMode);
wireControls();
window.addEventListener("popstate", () => boot().catch(showError));
requestAnimationFrame(frame);
boot().catch(showError);
