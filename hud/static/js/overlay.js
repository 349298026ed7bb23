// What is drawn over the heatmap with Canvas2D: approach episodes, levels, best bid/ask and
// spot, fills, the gamma lines, triggers and their outcomes, the crosshair. Only what is known
// at the replay clock is drawn.
import { levelColor } from "./session.js";

export const OUTCOME_COLORS = {
  BREAK: "#3ddc84", REJECT: "#ff5c7a", CHOP: "#a0a8b8", WHIPSAW: "#c58cff",
};

/** A canvas sized to its element, drawing in CSS pixels. */
export function context2d(canvas) {
  const ratio = Math.min(window.devicePixelRatio || 1, 2);
  const width = Math.round(canvas.clientWidth * ratio);
  const height = Math.round(canvas.clientHeight * ratio);
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, canvas.clientWidth, canvas.clientHeight);
  return ctx;
}

/** A step line through one value per second (NaN breaks it); `jumps` false leaves out the
 * vertical joins (for levels that move in jumps, like zero gamma). A run of seconds with one
 * value is one segment: a level that rarely moves is a few segments, not one per second. */
function stepLine(ctx, view, from, to, valueAt, style, dash = [], jumps = true) {
  ctx.beginPath();
  let run = null; // the value of the run being drawn, from second `runFrom`
  let runFrom = from;
  let joined = false; // the run starts where the one before ended
  const end = (second) => {
    const y = view.yOf(run);
    if (joined) ctx.lineTo(view.xOf(runFrom), y);
    else ctx.moveTo(view.xOf(runFrom), y);
    ctx.lineTo(view.xOf(second), y);
  };
  for (let second = from; second < to; second += 1) {
    let value = valueAt(second);
    if (Number.isNaN(value)) value = null;
    if (value === run) continue;
    if (run !== null) end(second);
    joined = jumps && run !== null && value !== null;
    run = value;
    runFrom = second;
  }
  if (run !== null) end(to);
  ctx.strokeStyle = style;
  ctx.setLineDash(dash);
  ctx.stroke();
  ctx.setLineDash([]);
}

function triangle(ctx, x, y, up, size) {
  ctx.beginPath();
  if (up) {
    ctx.moveTo(x, y - size);
    ctx.lineTo(x - size, y + size * 0.8);
    ctx.lineTo(x + size, y + size * 0.8);
  } else {
    ctx.moveTo(x, y + size);
    ctx.lineTo(x - size, y - size * 0.8);
    ctx.lineTo(x + size, y - size * 0.8);
  }
  ctx.closePath();
}

export function drawOverlay(canvas, { view, session, store, showOutcomes, gexExpiry, crosshair }) {
  const ctx = context2d(canvas);
  const now = view.now;
  const from = Math.max(Math.floor(view.left), session.start);
  const tick = session.tick_size;

  // seconds whose book is not valid (before its snapshot, crossed, or lost by a live feed)
  ctx.fillStyle = "rgba(255,216,77,0.12)";
  let invalidFrom = null;
  for (let second = from; second <= now; second += 1) {
    const entry = second < now ? store.get(second) : null;
    const [row, end] = entry ? entry.rows("book_snapshot_1s") : [0, 0];
    const invalid = row < end && !entry.columns("book_snapshot_1s").book_valid[row];
    if (invalid && invalidFrom === null) invalidFrom = second;
    if (!invalid && invalidFrom !== null) {
      ctx.fillRect(view.xOf(invalidFrom), 0, view.xOf(second) - view.xOf(invalidFrom), view.height);
      invalidFrom = null;
    }
  }

  // approach episodes: the level's zone, shaded while spot was in it
  for (const episode of session.episodes) {
    if (episode.zone_entry_ts >= now || episode.zone_exit_ts <= view.left) continue;
    const x0 = view.xOf(Math.max(episode.zone_entry_ts, view.left));
    const x1 = view.xOf(Math.min(episode.zone_exit_ts, now));
    const half = session.level_zone_ticks * tick;
    const y0 = view.yOf(episode.entry_level_price + half);
    const y1 = view.yOf(episode.entry_level_price - half);
    ctx.fillStyle = `${levelColor(episode.level_id)}22`;
    ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
  }

  // levels, from the moment each value is known
  ctx.lineWidth = 1.5;
  ctx.font = "11px ui-monospace, monospace";
  for (const level of session.levels) {
    if (level.valid_from >= now || level.valid_to <= view.left) continue;
    const x0 = view.xOf(Math.max(level.valid_from, view.left));
    const x1 = view.xOf(Math.min(level.valid_to, now));
    const y = view.yOf(level.level_price);
    ctx.strokeStyle = levelColor(level.level_id);
    ctx.setLineDash(level.level_id === "SMA_90" ? [] : [6, 3]);
    ctx.beginPath();
    ctx.moveTo(x0, y);
    ctx.lineTo(x1, y);
    ctx.stroke();
  }
  ctx.setLineDash([]);
  for (const levelId of session.levelIds) {
    const level = session.levelAt(levelId, now);
    if (!level) continue;
    const y = view.yOf(level.level_price);
    const label = `${levelId} ${level.level_price.toFixed(2)}`;
    const width = ctx.measureText(label).width + 6;
    ctx.fillStyle = "rgba(11,14,20,0.8)";
    ctx.fillRect(view.width - width - 2, y - 14, width, 13);
    ctx.fillStyle = levelColor(levelId);
    ctx.textAlign = "right";
    ctx.fillText(label, view.width - 5, y - 4);
  }

  // best bid, best ask, spot
  const book = (second, column) => {
    const entry = store.get(second);
    if (!entry) return null;
    const [row, end] = entry.rows("book_snapshot_1s");
    return row < end ? entry.columns("book_snapshot_1s")[column][row] : null;
  };
  ctx.lineWidth = 1;
  stepLine(ctx, view, from, now, (s) => book(s, "best_bid_price"), "#7fd8ff");
  stepLine(ctx, view, from, now, (s) => book(s, "best_ask_price"), "#ffb38a");
  ctx.lineWidth = 2;
  stepLine(ctx, view, from, now, (s) => book(s, "spot_price"), "#ffffff");

  // gamma: zero gamma, call wall, put wall
  const suffix = gexExpiry === "0dte" ? "_0dte" : "";
  const gex = (second, column) => {
    const entry = store.get(second);
    if (!entry) return null;
    const [row, end] = entry.rows("gex_levels_1s");
    return row < end ? entry.columns("gex_levels_1s")[column + suffix][row] : null;
  };
  ctx.lineWidth = 1.5;
  stepLine(ctx, view, from, now, (s) => gex(s, "zero_gamma_level"), "#f4e04d", [], false);
  stepLine(ctx, view, from, now, (s) => gex(s, "call_wall"), "rgba(61,220,132,0.7)", [], false);
  stepLine(ctx, view, from, now, (s) => gex(s, "put_wall"), "rgba(255,92,122,0.7)", [], false);

  // fills: dots sized by the quantity filled at their price and second; a filled bid is a sell
  // (red), a filled ask a buy (green). One path per side: one fill and one outline each.
  const dots = [new Path2D(), new Path2D()];
  for (let second = from; second < now; second += 1) {
    const entry = store.get(second);
    if (!entry) continue;
    const depth = entry.columns("depth_and_flow_1s");
    const x = view.xOf(second + 0.5);
    for (const i of entry.fills()) {
      const radius = Math.min(1.5 + Math.sqrt(depth.fill_qty[i]) * 0.7, 10);
      const y = view.yOf(depth.price[i]);
      const dot = dots[depth.side[i]];
      dot.moveTo(x + radius, y);
      dot.arc(x, y, radius, 0, Math.PI * 2);
    }
  }
  ctx.lineWidth = 1;
  ctx.strokeStyle = "rgba(0,0,0,0.6)";
  for (const [side, color] of [[0, "rgba(255,92,122,0.85)"], [1, "rgba(61,220,132,0.85)"]]) {
    ctx.fillStyle = color;
    ctx.fill(dots[side]);
    ctx.stroke(dots[side]);
  }

  // triggers, and their outcomes once they have happened
  for (const trigger of session.triggers) {
    if (trigger.trigger_ts > now) break;
    if (trigger.trigger_ts < view.left) continue;
    const x = view.xOf(trigger.trigger_ts);
    const y = view.yOf(trigger.trigger_level_price);
    const known = session.outcomeKnown(trigger, now, showOutcomes);
    triangle(ctx, x, y, trigger.approach_dir === "UP", 7);
    ctx.fillStyle = known ? OUTCOME_COLORS[trigger.outcome] : "#ffffff";
    ctx.strokeStyle = "#000000";
    ctx.fill();
    ctx.stroke();
    if (known) {
      ctx.fillStyle = OUTCOME_COLORS[trigger.outcome];
      ctx.textAlign = "center";
      ctx.fillText(trigger.outcome, x, trigger.approach_dir === "UP" ? y - 11 : y + 19);
    }
  }

  if (crosshair) {
    ctx.strokeStyle = "rgba(255,255,255,0.45)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(crosshair.x, 0);
    ctx.lineTo(crosshair.x, view.height);
    ctx.moveTo(0, crosshair.y);
    ctx.lineTo(view.width, crosshair.y);
    ctx.stroke();
  }
}
