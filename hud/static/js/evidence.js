// The evidence view: the typical book around a trigger before a BREAK and before a REJECT and
// their difference (gold.trigger_composite: seconds from the trigger across, ticks from the
// level up, every approach mirrored as if from below), drawn in the live heatmap's colours;
// and the four conditions' table for a level and direction (gold.condition_outcomes), at real
// or placebo levels. Values on screen are the tables' values.
import { fetchEvidence } from "./api.js";
import { fixed, percent } from "./format.js";
import { ASK_RGB, BID_RGB, LAYERS } from "./heatmap.js";
import { OUTCOME_COLORS, context2d } from "./overlay.js";
import { $, showError } from "./state.js";
import { rowsOf } from "./wire.js";

export const PANELS = ["BREAK", "REJECT", "REJECT_MINUS_BREAK"];
const PANEL_TITLES = {
  BREAK: "before and after a BREAK",
  REJECT: "before and after a REJECT",
  REJECT_MINUS_BREAK: "REJECT minus BREAK",
};
export const MEASURES = {
  depth_share: "resting depth, share of the trigger's own zone depth",
  pull_add_log_rest: "pulled vs added: ln((pulled + 1) / (added + 1))",
};
const BACKGROUND = [0.043, 0.055, 0.078];
const FADED = 0.3; // a difference whose interval holds 0 is drawn at this strength
// the picture's geometry in CSS pixels: a cell per second and tick, margins for the axes
export const GEOMETRY = { left: 34, top: 6, cellWidth: 3, cellHeight: 6, bottom: 16 };

const hex = (color) => color.match(/\w\w/g).map((h) => parseInt(h, 16) / 255);
const mix = (a, b, t) => a.map((v, i) => v + (b[i] - v) * t);
const css = (rgb) => `rgb(${rgb.map((v) => Math.round(v * 255)).join(",")})`;

/** One picture's cells: per second, tick and side, the measure and its interval. */
class Picture {
  constructor(rows, measure, seconds, ticks) {
    this.seconds = seconds;
    this.ticks = ticks;
    this.cells = new Map();
    this.triggers = 0;
    this.sessions = 0;
    for (const row of rows) {
      this.triggers = Math.max(this.triggers, row.triggers ?? 0);
      this.sessions = Math.max(this.sessions, row.sessions ?? 0);
      this.cells.set(`${row.second_offset}/${row.ticks_from_level}/${row.side}`, {
        value: row[measure], low: row[`${measure}_ci_low`], high: row[`${measure}_ci_high`],
      });
    }
  }

  cell(second, tick, side) {
    return this.cells.get(`${second}/${tick}/${side}`) ?? null;
  }

  /** The side whose value is larger in size at a cell (what the cell's colour shows). */
  strongest(second, tick) {
    const ask = this.cell(second, tick, "ask");
    const bid = this.cell(second, tick, "bid");
    const size = (cell) => (cell && cell.value !== null ? Math.abs(cell.value) : -1);
    if (size(ask) < 0 && size(bid) < 0) return null;
    return size(ask) >= size(bid) ? { side: "ask", ...ask } : { side: "bid", ...bid };
  }
}

/** Where a cell is drawn: its rectangle in CSS pixels (ticks grow upwards, as prices do). */
export function cellRect(second, tick, seconds, ticks) {
  const { left, top, cellWidth, cellHeight } = GEOMETRY;
  return {
    x: left + (second - seconds[0]) * cellWidth,
    y: top + (ticks[1] - tick) * cellHeight,
    width: cellWidth,
    height: cellHeight,
  };
}

function quantile(values, q) {
  if (!values.length) return 1;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] || 1;
}

/** The colour of a cell: depth in the side's colour (the heatmap's rule), pulled vs added in
 * the pull/add layer's colours, a difference in the colour of the outcome it favours, faded
 * where its session-clustered interval holds 0. */
export function cellColor(panel, measure, cell, scale) {
  if (!cell || cell.value === null || Number.isNaN(cell.value)) return BACKGROUND;
  if (panel === "REJECT_MINUS_BREAK") {
    const t = Math.min(1, Math.abs(cell.value) / scale);
    const holdsZero = cell.low === null || (cell.low <= 0 && cell.high >= 0);
    const toward = hex(cell.value > 0 ? OUTCOME_COLORS.REJECT : OUTCOME_COLORS.BREAK);
    return mix(BACKGROUND, toward, t * (holdsZero ? FADED : 1));
  }
  if (measure === "depth_share") {
    if (cell.value <= 0) return BACKGROUND;
    const t = Math.min(1, Math.sqrt(cell.value / scale));
    return mix(BACKGROUND, cell.side === "bid" ? BID_RGB : ASK_RGB, 0.12 + 0.88 * t);
  }
  const [added, pulled] = LAYERS.pull_add.colors;
  const t = Math.max(-1, Math.min(1, cell.value / scale));
  return mix(BACKGROUND, t < 0 ? added : pulled, Math.abs(t));
}

function drawAxes(ctx, seconds, ticks) {
  const { left, top, cellWidth, cellHeight } = GEOMETRY;
  const width = (seconds[1] - seconds[0] + 1) * cellWidth;
  const height = (ticks[1] - ticks[0] + 1) * cellHeight;
  ctx.font = "10px ui-monospace, monospace";
  ctx.fillStyle = "#7d8aa0";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let tick = ticks[0]; tick <= ticks[1]; tick += 10) {
    const rect = cellRect(seconds[0], tick, seconds, ticks);
    ctx.fillText(`${tick > 0 ? "+" : ""}${tick}`, left - 4, rect.y + cellHeight / 2);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let second = seconds[0]; second <= seconds[1] + 1; second += 30) {
    ctx.fillText(`${second > 0 ? "+" : ""}${second}s`, left + (second - seconds[0]) * cellWidth, top + height + 3);
  }
  // the level (tick 0) and the trigger (second 0)
  ctx.strokeStyle = "rgba(255,255,255,0.55)";
  ctx.setLineDash([3, 3]);
  ctx.beginPath();
  const level = cellRect(seconds[0], 0, seconds, ticks);
  ctx.moveTo(left, level.y + cellHeight / 2);
  ctx.lineTo(left + width, level.y + cellHeight / 2);
  const trigger = cellRect(0, ticks[0], seconds, ticks);
  ctx.moveTo(trigger.x, top);
  ctx.lineTo(trigger.x, top + height);
  ctx.stroke();
  ctx.setLineDash([]);
}

/** The view's one state, its data and its drawing. */
export class EvidenceView {
  constructor() {
    this.dialog = $("evidence");
    this.query = { kind: "real", level: "ALL", dir: "ALL", window: "" };
    this.measure = "depth_share";
    this.rows = null; // the composite's rows for the kind loaded
    this.conditions = [];
    this.choices = [];
    this.pictures = {};
    this.scales = {};
    this.loads = 0; // answers drawn (for the tests)
  }

  get open() {
    return this.dialog.open;
  }

  wire() {
    for (const [id, key] of [["evidence-kind", "kind"], ["evidence-level", "level"], ["evidence-dir", "dir"], ["evidence-window", "window"]]) {
      $(id).addEventListener("change", (event) => {
        this.query[key] = event.target.value;
        this.load().catch(showError);
      });
    }
    $("evidence-measure").addEventListener("change", (event) => {
      this.measure = event.target.value;
      this.draw();
    });
    $("evidence-close").addEventListener("click", () => this.dialog.close());
    for (const panel of PANELS) {
      const canvas = $(`evidence-${panel}`);
      canvas.addEventListener("mousemove", (event) => this.readout(panel, event));
      canvas.addEventListener("mouseleave", () => {
        $("evidence-readout").textContent = "";
      });
    }
  }

  /** Open the view, for a level and direction when given (from the trigger panel). */
  async show({ level, dir } = {}) {
    if (level) this.query.level = level;
    if (dir) this.query.dir = dir;
    if (!this.dialog.open) this.dialog.showModal();
    await this.load();
  }

  toggle() {
    if (this.dialog.open) this.dialog.close();
    else this.show().catch(showError);
  }

  async load() {
    const params = { kind: this.query.kind, level: this.query.level, dir: this.query.dir };
    if (this.query.window) params.window = this.query.window;
    $("evidence-status").textContent = "loading…";
    let tables;
    try {
      tables = await fetchEvidence(params);
    } catch (error) {
      $("evidence-status").textContent = error.message;
      throw error;
    }
    const [chosen] = rowsOf(tables.evidence);
    this.query = { kind: chosen.kind, level: chosen.level, dir: chosen.direction, window: String(chosen.window_seconds) };
    this.rows = rowsOf(tables.trigger_composite);
    this.conditions = rowsOf(tables.condition_outcomes);
    this.choices = rowsOf(tables.evidence_choices);
    this.fillControls();
    this.draw();
    $("evidence-status").textContent = "";
    this.loads += 1;
  }

  fillControls() {
    const options = (values, chosen) =>
      values.map((value) => `<option value="${value}"${String(value) === String(chosen) ? " selected" : ""}>${value}</option>`).join("");
    const levels = [...new Set(this.choices.map((row) => row.level_id))];
    const windows = [...new Set(this.choices.map((row) => row.window_seconds))];
    $("evidence-level").innerHTML = options(levels, this.query.level);
    $("evidence-window").innerHTML = options(windows, this.query.window);
    $("evidence-kind").value = this.query.kind;
    $("evidence-dir").value = this.query.dir;
    $("evidence-measure").value = this.measure;
  }

  draw() {
    if (!this.rows) return;
    const seconds = [Infinity, -Infinity];
    const ticks = [Infinity, -Infinity];
    for (const row of this.rows) {
      seconds[0] = Math.min(seconds[0], row.second_offset);
      seconds[1] = Math.max(seconds[1], row.second_offset);
      ticks[0] = Math.min(ticks[0], row.ticks_from_level);
      ticks[1] = Math.max(ticks[1], row.ticks_from_level);
    }
    this.seconds = seconds;
    this.ticks = ticks;
    for (const panel of PANELS) {
      this.pictures[panel] = new Picture(
        this.rows.filter((row) => row.outcome === panel), this.measure, seconds, ticks,
      );
    }
    // BREAK and REJECT share one scale, so their colours compare; the difference its own
    const sizes = (panels) =>
      panels.flatMap((panel) => [...this.pictures[panel].cells.values()].map((cell) => Math.abs(cell.value ?? 0)));
    const outcomeScale = quantile(sizes(["BREAK", "REJECT"]).filter((v) => v > 0), 0.99);
    this.scales = {
      BREAK: outcomeScale,
      REJECT: outcomeScale,
      REJECT_MINUS_BREAK: quantile(sizes(["REJECT_MINUS_BREAK"]).filter((v) => v > 0), 0.99),
    };
    for (const panel of PANELS) this.drawPanel(panel);
    this.drawKey();
    this.drawConditions();
  }

  drawPanel(panel) {
    const canvas = $(`evidence-${panel}`);
    const picture = this.pictures[panel];
    const ctx = context2d(canvas);
    const { seconds, ticks } = this;
    for (let second = seconds[0]; second <= seconds[1]; second += 1) {
      for (let tick = ticks[0]; tick <= ticks[1]; tick += 1) {
        const rect = cellRect(second, tick, seconds, ticks);
        ctx.fillStyle = css(cellColor(panel, this.measure, picture.strongest(second, tick), this.scales[panel]));
        ctx.fillRect(rect.x, rect.y, rect.width, rect.height);
      }
    }
    drawAxes(ctx, seconds, ticks);
    $(`evidence-${panel}-title`).textContent =
      `${PANEL_TITLES[panel]} · ${picture.triggers.toLocaleString()} triggers, ${picture.sessions} sessions`;
  }

  drawKey() {
    const swatch = (rgb) => `<span class="swatch" style="background:${css(rgb)}"></span>`;
    const scale = this.scales.BREAK;
    const outcomes =
      this.measure === "depth_share"
        ? `${swatch(BID_RGB)}bid ${swatch(ASK_RGB)}ask resting depth, full colour at ${fixed(scale, 3)} of the trigger's zone depth`
        : `${swatch(LAYERS.pull_add.colors[0])}added ${swatch(LAYERS.pull_add.colors[1])}pulled, full colour at ±${fixed(scale, 2)}`;
    $("evidence-key").innerHTML =
      `<div>${MEASURES[this.measure]}; across: seconds from the trigger, up: ticks from the level ` +
      "(positive beyond it), every approach drawn as one from below; the larger side of each cell is shown</div>" +
      `<div>${outcomes}</div>` +
      `<div>${swatch(hex(OUTCOME_COLORS.REJECT))}more before a REJECT ${swatch(hex(OUTCOME_COLORS.BREAK))}more before a BREAK, ` +
      `full colour at ±${fixed(this.scales.REJECT_MINUS_BREAK, 3)}; faded where the 95% session-clustered interval holds 0</div>` +
      `<div class="muted">${this.query.kind} levels, all levels and directions pooled</div>`;
  }

  drawConditions() {
    const rows = this.conditions.filter((row) => row.level_kind === this.query.kind);
    const flagged = (kind) => {
      const tested = this.conditions.filter((row) => row.level_kind === kind && row.p_value !== null && (row.grouping === "pattern" || row.held));
      return `${kind} levels: ${tested.filter((row) => row.is_significant).length} of ${tested.length} tests flagged`;
    };
    const where = this.query.level === "ALL" ? "all levels" : this.query.level;
    const way = this.query.dir === "ALL" ? "both directions" : `approached ${this.query.dir}`;
    const name = (row) =>
      row.grouping === "all" ? "all triggers"
        : row.grouping === "condition" ? `${row.member} ${row.held ? "held" : "not held"}`
          : `pattern ${row.member}`;
    const interval = (low, high) => (low === null ? "" : ` [${fixed(low)}, ${fixed(high)}]`);
    $("evidence-conditions-title").textContent =
      `the four conditions in the ${this.query.window} s before each trigger, ${where}, ${way} · ` +
      `${flagged("real")}; ${flagged("placebo")} (Holm-adjusted)`;
    $("evidence-conditions").innerHTML =
      '<tr><th></th><th class="num">n</th><th class="num">sessions</th><th>BREAK [95%]</th><th>REJECT [95%]</th>' +
      '<th class="num">CHOP</th><th>lift [95%]</th><th class="num">separation</th><th class="num">p (Holm)</th></tr>' +
      (rows.length
        ? rows.map((row) =>
          `<tr data-member="${row.grouping}/${row.member}/${row.held}"${row.is_significant ? ' class="significant"' : ""}>` +
          `<td>${name(row)}</td><td class="num">${row.n}</td><td class="num">${row.sessions}</td>` +
          `<td>${percent(row.break_share)}${interval(row.break_share_ci_low, row.break_share_ci_high)}</td>` +
          `<td>${percent(row.reject_share)}${interval(row.reject_share_ci_low, row.reject_share_ci_high)}</td>` +
          `<td class="num">${percent(row.chop_share)}</td>` +
          `<td>${fixed(row.lift)}${interval(row.lift_ci_low, row.lift_ci_high)}</td>` +
          `<td class="num">${row.separation === null ? "–" : (row.separation > 0 ? "+" : "") + fixed(row.separation)}</td>` +
          `<td class="num">${fixed(row.p_value_holm, 3)}${row.is_significant ? " *" : ""}</td></tr>`).join("")
        : `<tr><td colspan="9" class="muted">no labelled triggers at ${this.query.kind} levels here</td></tr>`);
  }

  /** Where a cell's centre is on the page (for the tests). */
  cellCenter(panel, second, tick) {
    const box = $(`evidence-${panel}`).getBoundingClientRect();
    const rect = cellRect(second, tick, this.seconds, this.ticks);
    return [box.left + rect.x + rect.width / 2, box.top + rect.y + rect.height / 2];
  }

  /** The values under the mouse: both sides and their intervals. */
  readout(panel, event) {
    if (!this.pictures[panel]) return;
    const box = event.target.getBoundingClientRect();
    const { left, top, cellWidth, cellHeight } = GEOMETRY;
    const second = this.seconds[0] + Math.floor((event.clientX - box.left - left) / cellWidth);
    const tick = this.ticks[1] - Math.floor((event.clientY - box.top - top) / cellHeight);
    if (second < this.seconds[0] || second > this.seconds[1] || tick < this.ticks[0] || tick > this.ticks[1]) return;
    const side = (name) => {
      const cell = this.pictures[panel].cell(second, tick, name);
      return cell ? `${name} ${fixed(cell.value, 3)}${cell.low === null ? "" : ` [${fixed(cell.low, 3)}, ${fixed(cell.high, 3)}]`}` : `${name} –`;
    };
    $("evidence-readout").textContent =
      `${PANEL_TITLES[panel]}, ${second > 0 ? "+" : ""}${second} s, ${tick > 0 ? "+" : ""}${tick} ticks: ${side("ask")} · ${side("bid")}`;
  }
}
