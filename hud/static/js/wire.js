// The wire format (README "HUD protocol"): back-to-back Arrow IPC streams, one per table, each
// named in its schema metadata under `spymaster.table`; the first is `message`.
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

/** A timestamp[ms] column as seconds since the epoch (Float64Array). */
export function secondsOf(table, name) {
  const values = table.getChild(name).toArray();
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i += 1) out[i] = Number(values[i]) / 1000;
  return out;
}

/** A numeric column as a typed array (nulls read as NaN for doubles). */
export function numbersOf(table, name) {
  const vector = table.getChild(name);
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

/** A string column as small integers through a lookup (`side`: bid 0, ask 1). */
export function codesOf(table, name, codes) {
  const vector = table.getChild(name);
  const out = new Uint8Array(table.numRows);
  for (let i = 0; i < out.length; i += 1) out[i] = codes[vector.get(i)];
  return out;
}
