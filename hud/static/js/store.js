// The session's per-second data, from HTTP windows and WebSocket frames alike: for every
// second, where its rows lie in the columns of the payload that brought it.
import { codesOf, numbersOf, rowsOf, secondsOf } from "./wire.js";

export const SIDE = { bid: 0, ask: 1 };
export const BAND_SIDE = { above: 0, below: 1 };

// The columns each frame table keeps as typed arrays (strings become small codes).
const COLUMNS = {
  book_snapshot_1s: [
    "best_bid_price", "best_bid_size", "best_ask_price", "best_ask_size", "mid_price",
    "last_trade_price", "spot_price",
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

/** One payload's frame tables as typed columns, with each second's row range. */
function columnsOf(tables, start, end) {
  const chunk = { tables: {}, bounds: {} };
  const seconds = end - start;
  for (const name of FRAME_TABLES) {
    const table = tables[name];
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
    chunk.tables[name] = columns;
    chunk.bounds[name] = bounds;
  }
  return chunk;
}

/** A second's rows: `rows(name)` gives [first, end) into `columns(name)`. */
class Second {
  constructor(chunk, offset) {
    this.chunk = chunk;
    this.offset = offset;
  }

  columns(name) {
    return this.chunk.tables[name];
  }

  rows(name) {
    const bounds = this.chunk.bounds[name];
    return [bounds[this.offset], bounds[this.offset + 1]];
  }

  /** Rows of depth_and_flow_1s with a fill (found once: drawn every frame). */
  fills() {
    if (this.fillRows === undefined) {
      const filled = this.columns("depth_and_flow_1s").fill_qty;
      const [first, end] = this.rows("depth_and_flow_1s");
      this.fillRows = [];
      for (let i = first; i < end; i += 1) if (filled[i] > 0) this.fillRows.push(i);
    }
    return this.fillRows;
  }
}

export class SecondStore {
  constructor() {
    this.seconds = new Map();
    this.version = 0; // bumps whenever seconds arrive
  }

  /** Keep every second a payload covers (a window or a frame). */
  add(tables) {
    const [message] = rowsOf(tables.message);
    const chunk = columnsOf(tables, message.start, message.end);
    for (let second = message.start; second < message.end; second += 1) {
      this.seconds.set(second, new Second(chunk, second - message.start));
    }
    this.version += 1;
    return [message.start, message.end];
  }

  get(second) {
    return this.seconds.get(second);
  }

  has(second) {
    return this.seconds.has(second);
  }

  /** Forget seconds outside [from, to): memory stays bounded by what is near the view. */
  keepOnly(from, to) {
    for (const second of this.seconds.keys()) {
      if (second < from || second >= to) this.seconds.delete(second);
    }
  }

  /** Runs [start, end) of seconds in [from, to) that are neither here nor in `inflight`. */
  missing(from, to, inflight) {
    const runs = [];
    let start = null;
    for (let second = from; second < to; second += 1) {
      const absent = !this.seconds.has(second) && !inflight.some(([a, b]) => second >= a && second < b);
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
