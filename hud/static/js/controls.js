// The toolbar, the keys and the mouse: each changes the state (through the clock, or the
// settings here) and marks the picture dirty.
import { HudError } from "./api.js";
import { scrubberSecond } from "./axes.js";
import { SPEEDS, followLive, pause, play, seek, setSpeed, step } from "./clock.js";
import { ensureData, spotBefore } from "./data.js";
import { LAYERS } from "./heatmap.js";
import { EvidenceView } from "./evidence.js";
import { openSession } from "./sessions.js";
import { renderLegend } from "./sidebar.js";
import { $, markDirty, showError, state, view } from "./state.js";
import { updateUrl } from "./url.js";

export const SPANS = [120, 300, 600, 900, 1800, 3600];
export const evidence = new EvidenceView();
const LAYER_KEYS = Object.keys(LAYERS);

export function setLayer(layer) {
  state.layer = layer;
  $("layer").value = layer;
  renderLegend($("legend"), layer);
  updateUrl(true);
  markDirty();
}

export function setSpan(span) {
  view.span = span;
  $("span").value = String(span);
  ensureData();
  updateUrl(true);
  markDirty();
}

export function setCutoffMode(mode) {
  // carry the current picture over: the new unit starts from today's cut in contracts
  if (mode === "contracts") state.cutoffInputs.contracts = [Math.round(state.cut.low), Math.round(state.cut.high)];
  state.cutoffMode = mode;
  $("cutoff-mode").value = mode;
  [$("cutoff-low").value, $("cutoff-high").value] = state.cutoffInputs[mode].map(String);
  markDirty();
}

/** Open a similar setup at its moment: in this session, a seek; in another, a new history
 * entry (Back returns to this setup). */
function openSetup(sessionDate, second) {
  pause();
  if (sessionDate === state.session.session) {
    seek(second);
    return;
  }
  history.pushState(null, "", location.href);
  openSession(sessionDate, { at: second }).catch(showError);
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

export function wireControls() {
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
  $("signals").addEventListener("click", (event) => {
    const link = event.target.closest("button.evidence-link");
    if (link) {
      if (!state.live) pause(); // live keeps following the edge behind the view
      evidence.show({ level: link.dataset.level, dir: link.dataset.dir }).catch(showError);
      return;
    }
    const row = event.target.closest("tr[data-trigger-id]");
    if (row) openSetup(row.dataset.session, Number(row.dataset.ts));
  });
  evidence.wire();
  wireMouse();
  window.addEventListener("resize", markDirty);
  document.addEventListener("keydown", onKey);
}

/** The plot: crosshair, drag to pan the price axis, double-click to follow spot, wheel to
 * zoom; the time axis and the session bar go to a time. */
function wireMouse() {
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
}

function onKey(event) {
  if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  if (evidence.open) {
    // the view is modal: its own keys only (Esc closes it too)
    if (event.key === "e") evidence.toggle();
    if (event.key === "k") {
      $("evidence-kind").value = evidence.query.kind === "real" ? "placebo" : "real";
      $("evidence-kind").dispatchEvent(new Event("change"));
    }
    return;
  }
  if (!state.session) return;
  const big = event.shiftKey ? 10 : event.altKey ? 60 : 1;
  const faster = () => setSpeed(SPEEDS[Math.min(SPEEDS.length - 1, SPEEDS.indexOf(state.speed) + 1)]);
  const actions = {
    " ": () => (state.playing ? pause() : play()),
    ArrowLeft: () => step(-big),
    ArrowRight: () => step(big),
    "+": faster,
    "=": faster,
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
    e: () => {
      if (!state.live) pause(); // live keeps following the edge behind the view
      evidence.toggle();
    },
  };
  for (const [index, layer] of LAYER_KEYS.entries()) actions[String(index + 1)] = () => setLayer(layer);
  const action = actions[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
}
