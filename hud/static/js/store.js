// The session's per-second data, from HTTP windows and WebSocket frames alike: for every
// second and frame table, where its rows lie in the columns of the payload that brought that
// table (a second's tables may come in different payloads, or not yet).
import { codesOf, numbersOf, rowsOf, secondsOf } from "./wire.js";

export const SIDE = { bid: 0, ask: 1 };
export const BAND_SIDE = { above: 0, below: 1 };

// The columns each frame table keeps as typed arrays (strings become small codes).
const COLUMNS = {
  book_snapshot_1s: [
    "best_bid_price", "best_bid_size", "best_ask_price", "best_ask_size", "last_trade_price",
    "spot_price",
  ],
  depth_and_flow_1s: [
    "price", "depth_qty_start", "depth_qty_end", "depth_qty_rest", "add_qty",
    "pull_qty", "pull_qty_rest", "fill_qty", "reprice_in_qty", "reprice_out_away_qty",
    "reprice_out_toward_qty",
  ],
  vacuum_surface_1s: ["price", "pull_add_log", "fill_intensity"],
  vacuum_score_1s: ["price", "vacuum_score"],
  physics_bands_1s: ["band_order", "side_score", "ease", "vacuum_score"],
  gex_surface_1s: [
    "strike_price", "call_gex", "put_gex", "net_gex", "call_gex_0dte", "put_gex_0dte",
    "net_gex_0dte", "options_without_exposure",
  ],
  gex_levels_1s: [
    "zero_gamma_level", "zero_gamma_level_0dte", "call_wall", "put_wall", "call_wall_0dte",
    "put_wall_0dte", "options_listed", "options_in_exposure", "options_without_open_interest",
  ],
};
const CODES = {
  depth_and_flow_1s: ["side", SIDE],
  vacuum_surface_1s: ["side", SIDE],
  vacuum_score_1s: ["side", SIDE],
  physics_bands_1s: ["side", BAND_SIDE],
};
export const FRAME_TABLES = Object.keys(COLUMNS);

// The heatmap's own tables: a second with both can be drawn (the others are layers on it).
export const HEATMAP_TABLES = ["book_snapshot_1s", "depth_and_flow_1s"];

/** Each frame table a payload holds, as typed columns with the row range of each of its
 * seconds [start, end): a payload may hold only some of the tables. */
function tablesOf(tables, start, end) {
  const kept = {};
  const seconds = end - start;
  for (const name of FRAME_TABLES) {
    const table = tables[name];
    if (!table) continue;
    const columns = { table };
    for (const column of COLUMNS[name]) columns[column] = numbersOf(table, column);
    if (CODES[name]) columns.side = codesOf(table, ...CODES[name]);
    if (name === "book_snapshot_1s") columns.book_valid = table.getChild("book_valid").toArray();
    // rows are in time order: one pass finds where each second starts
    const times = secondsOf(table, "window_start");
    const bounds = new Int32Array(seconds + 1);
    let row = 0;
    for (let offset = 0; offset <= seconds; offset += 1) {
      while (row < times.length && times[row] < start + offset) row += 1;
      bounds[offset] = row;
    }
    kept[name] = { columns, bounds, start };
  }
  return kept;
}

/** A second's rows of each table it has: `rows(name)` gives [first, end) into
 * `columns(name)`, [0, 0) for a table not here (yet). */
class Second {
  constructor(second) {
    this.second = second;
    this.tables = {};
    this.version = 0; // the store's count when a table of this second last arrived
  }

  has(name) {
    return this.tables[name] !== undefined;
  }

  columns(name) {
    return this.tables[name]?.columns;
  }

  rows(name) {
    const table = this.tables[name];
    if (table === undefined) return [0, 0];
    const offset = this.second - table.start;
    return [table.bounds[offset], table.bounds[offset + 1]];
  }

  /** Rows of depth_and_flow_1s with a fill (found once: drawn every frame). */
  fills() {
    if (this.fillRows === undefined) {
      this.fillRows = [];
      if (!this.has("depth_and_flow_1s")) return this.fillRows;
      const filled = this.columns("depth_and_flow_1s").fill_qty;
      const [first, end] = this.rows("depth_and_flow_1s");
      for (let i = first; i < end; i += 1) if (filled[i] > 0) this.fillRows.push(i);
    }
    return this.fillRows;
  }
}

export class SecondStore {
  constructor() {
    this.seconds = new Map();
    this.version = 0; // counts payloads stored: a second's version says when it last changed
  }

  /** Keep the tables a payload (a window or a frame) holds for the seconds it covers; the
   * other tables of those seconds stay as they were. */
  add(tables) {
    const [message] = rowsOf(tables.message);
    const kept = tablesOf(tables, message.start, message.end);
    this.version += 1;
    for (let second = message.start; second < message.end; second += 1) {
      let entry = this.seconds.get(second);
      if (entry === undefined) {
        entry = new Second(second);
        this.seconds.set(second, entry);
      }
      Object.assign(entry.tables, kept);
      if (kept.depth_and_flow_1s) entry.fillRows = undefined;
      entry.version = this.version;
    }
  }

  get(second) {
    return this.seconds.get(second);
  }

  /** Whether the second has each of `tables` (by default the heatmap's own). */
  has(second, tables = HEATMAP_TABLES) {
    const entry = this.seconds.get(second);
    if (entry === undefined) return false;
    for (const name of tables) if (!entry.has(name)) return false;
    return true;
  }

  /** Forget seconds outside [from, to): memory stays bounded by what is near the view. */
  keepOnly(from, to) {
    for (const second of this.seconds.keys()) {
      if (second < from || second >= to) this.seconds.delete(second);
    }
  }

  /** Runs [start, end) of seconds in [from, to) the heatmap cannot draw and that are not in
   * `inflight`. */
  missing(from, to, inflight) {
    const runs = [];
    let start = null;
    for (let second = from; second < to; second += 1) {
      const absent = !this.has(second) && !inflight.some(([a, b]) => second >= a && second < b);
      if (absent && start === null) start = second;
      if (!absent && start !== null) {
        runs.push([start, second]);
        start = null;
      }
    }
    if (start !== null) runs.push([start, to]);
    return runs;
  }
}
