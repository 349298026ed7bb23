// The wire format (docs/hud.md, "The wire protocol"): back-to-back Arrow IPC streams, one per
// table, each named in its schema metadata under `spymaster.table`; the first is `message`.
const Arrow = globalThis.Arrow;
const TABLE_KEY = "spymaster.table";

/** The tables of one payload (an HTTP body or a WebSocket frame) by name. */
export function decodePayload(bytes) {
  const tables = {};
  for (const reader of Arrow.RecordBatchReader.readAll(new Uint8Array(bytes))) {
    const table = new Arrow.Table(reader.readAll());
    tables[table.schema.metadata.get(TABLE_KEY)] = table;
  }
  return tables;
}

/** A timestamp[ms] column as seconds since the epoch (Float64Array). The int64 milliseconds
 * are read as two 32-bit halves: exact below 2^53, and far cheaper than BigInt. */
export function secondsOf(table, name) {
  const out = new Float64Array(table.numRows);
  let row = 0;
  for (const chunk of table.getChild(name).data) {
    const halves = new Uint32Array(
      chunk.values.buffer, chunk.values.byteOffset + chunk.offset * 8, chunk.length * 2,
    );
    for (let i = 0; i < chunk.length; i += 1) {
      out[row] = (halves[2 * i + 1] * 4294967296 + halves[2 * i]) / 1000;
      row += 1;
    }
  }
  return out;
}

/** A numeric column as a typed array (nulls read as NaN for doubles). */
export function numbersOf(table, name) {
  const vector = table.getChild(name);
  if (!vector) throw new Error(`the server sent no column ${name}: is the page older than it?`);
  const values = vector.toArray();
  if (vector.nullCount === 0 || !(values instanceof Float64Array)) return values;
  const out = Float64Array.from(values);
  for (let i = 0; i < out.length; i += 1) if (!vector.isValid(i)) out[i] = NaN;
  return out;
}

/** Rows as plain objects (small tables: sessions, levels, episodes, neighbours). Timestamps
 * become epoch seconds, dates ISO strings, nulls null. */
export function rowsOf(table) {
  const fields = table.schema.fields;
  const rows = [];
  for (let i = 0; i < table.numRows; i += 1) rows.push({});
  for (const field of fields) {
    const vector = table.getChild(field.name);
    const typeId = field.type.typeId;
    for (let i = 0; i < table.numRows; i += 1) {
      let value = vector.get(i);
      if (value !== null && value !== undefined) {
        if (typeId === Arrow.Type.Timestamp) value = Number(value) / 1000;
        else if (typeId === Arrow.Type.Date) value = new Date(Number(value)).toISOString().slice(0, 10);
        else if (typeof value === "bigint") value = Number(value);
      } else value = null;
      rows[i][field.name] = value;
    }
  }
  return rows;
}

/** A label column (dictionary-encoded strings) as small integers through a lookup
 * (`side`: bid 0, ask 1): each dictionary entry is looked up once, not each row. */
export function codesOf(table, name, codes) {
  const out = new Uint8Array(table.numRows);
  let row = 0;
  for (const chunk of table.getChild(name).data) {
    const dictionary = chunk.dictionary;
    const lookup = Array.from({ length: dictionary.length }, (_, i) => codes[dictionary.get(i)]);
    for (let i = 0; i < chunk.length; i += 1) {
      out[row] = lookup[chunk.values[chunk.offset + i]];
      row += 1;
    }
  }
  return out;
}
