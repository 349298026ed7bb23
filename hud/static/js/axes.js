// The price axis, the time axis, the ease strip under the heatmap and the session bar above it.
import { context2d, OUTCOME_COLORS } from "./overlay.js";
import { BAND_SIDE } from "./store.js";

const PRICE_STEPS = [0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100];
const TIME_STEPS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

export function drawPriceAxis(canvas, view, spot) {
  const ctx = context2d(canvas);
  const step = PRICE_STEPS.find((s) => (s / view.tick) * view.pixelsPerTick >= 22) ?? 100;
  ctx.font = "11px ui-monospace, monospace";
  ctx.fillStyle = "#7d8aa0";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  for (let price = Math.ceil(view.priceBottom / step) * step; price <= view.priceTop; price += step) {
    const y = view.yOf(price);
    ctx.fillRect(0, y, 4, 1);
    ctx.fillText(price.toFixed(2), 6, y);
  }
  if (spot !== null && !Number.isNaN(spot)) {
    const y = view.yOf(spot);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, y - 7, canvas.clientWidth, 14);
    ctx.fillStyle = "#000000";
    ctx.fillText(spot.toFixed(2), 6, y);
  }
}

export function drawTimeAxis(canvas, view, clock) {
  const ctx = context2d(canvas);
  const step = TIME_STEPS.find((s) => (s / view.span) * view.width >= 90) ?? 3600;
  ctx.font = "11px ui-monospace, monospace";
  ctx.fillStyle = "#7d8aa0";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let second = Math.ceil(view.left / step) * step; second <= view.now; second += step) {
    const x = view.xOf(second);
    ctx.fillRect(x, 0, 1, 5);
    ctx.fillText(clock.time(second), x, 8);
  }
}

/** physics_bands_1s side_score: above spot drawn upward, below spot downward. */
export function drawStrip(canvas, view, store, session) {
  const ctx = context2d(canvas);
  const height = canvas.clientHeight;
  const middle = height / 2;
  const scale = middle - 4;
  ctx.fillStyle = "#263042";
  ctx.fillRect(0, middle, canvas.clientWidth, 1);
  const from = Math.max(Math.floor(view.left), session.start);
  for (const [side, color, sign] of [["above", "#3ddc84", -1], ["below", "#ff5c7a", 1]]) {
    const code = BAND_SIDE[side];
    ctx.beginPath();
    let drawing = false;
    for (let second = from; second < view.now; second += 1) {
      const entry = store.get(second);
      let score = null;
      if (entry) {
        const bands = entry.columns("physics_bands_1s");
        const [first, end] = entry.rows("physics_bands_1s");
        for (let i = first; i < end; i += 1) {
          if (bands.side[i] === code && !Number.isNaN(bands.side_score[i])) score = bands.side_score[i];
        }
      }
      if (score === null) {
        drawing = false;
        continue;
      }
      const y = middle + sign * score * scale;
      if (drawing) ctx.lineTo(view.xOf(second + 0.5), y);
      else ctx.moveTo(view.xOf(second + 0.5), y);
      drawing = true;
    }
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.2;
    ctx.stroke();
  }
}

/** The whole session: the part on screen, the clock, the triggers seen so far. */
export function drawScrubber(canvas, view, session, showOutcomes) {
  const ctx = context2d(canvas);
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  const xOf = (second) => ((second - session.start) / (session.end - session.start)) * width;
  ctx.fillStyle = "#0b0e14";
  ctx.fillRect(0, 4, width, height - 8);
  ctx.fillStyle = "#1d2a3d";
  ctx.fillRect(xOf(view.left), 4, xOf(view.now) - xOf(view.left), height - 8);
  ctx.fillStyle = "#263042";
  for (const bound of [session.session_window_start, session.session_window_end]) {
    if (bound) ctx.fillRect(xOf(bound), 2, 1, height - 4);
  }
  for (const trigger of session.triggers) {
    if (trigger.trigger_ts > view.now && !showOutcomes) break;
    const known = session.outcomeKnown(trigger, view.now, showOutcomes);
    ctx.fillStyle = known ? OUTCOME_COLORS[trigger.outcome] : "#c9d3e3";
    ctx.fillRect(xOf(trigger.trigger_ts) - 1, 6, 2, height - 12);
  }
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(xOf(view.now) - 1, 0, 2, height);
}

export const scrubberSecond = (canvas, session, clientX) => {
  const box = canvas.getBoundingClientRect();
  const fraction = Math.min(1, Math.max(0, (clientX - box.left) / box.width));
  return Math.round(session.start + fraction * (session.end - session.start));
};
