// The server's endpoints (docs/hud.md, "The wire protocol"): HTTP windows for seeking and
// prefetching, one WebSocket for the per-second replay and live frames.
import { decodePayload } from "./wire.js";

/** An error the server explained: its message, the parameter at fault, what to run. */
export class HudError extends Error {
  constructor(message, { parameter = null, command = null, status = null } = {}) {
    super(message);
    this.parameter = parameter;
    this.command = command;
    this.status = status;
  }
}

async function getTables(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new HudError(`the server at ${location.origin} does not answer (${error.message})`);
  }
  if (!response.ok) {
    let body = {};
    try {
      body = await response.json();
    } catch {
      body = { error: `${response.status} ${response.statusText} from ${url.pathname}` };
    }
    throw new HudError(body.error, { ...body, status: response.status });
  }
  const bytes = await response.arrayBuffer();
  timings.received = performance.now();
  const tables = decodePayload(bytes);
  timings.decoded = performance.now();
  return tables;
}

/** When the last response arrived and was decoded (for the benchmark's breakdown). */
export const timings = { received: null, decoded: null };

export const iso = (seconds) => new Date(seconds * 1000).toISOString().replace(".000Z", "Z");

export const fetchSessions = () => getTables("/api/sessions");
export const fetchSession = (session) => getTables("/api/session", { session });
export const fetchEvidence = (params) => getTables("/api/evidence", params);
export const fetchWindow = (session, start, end) =>
  getTables("/api/window", { session, start: iso(start), end: iso(end) });

/** The frame stream: `replay(session, from, speed)`, `live(session, from)` and `stop()`;
 * frames (undecoded, so the page decodes them when it draws; live also sends the session
 * payload again when it changes) and notices arrive through the callbacks. Reconnects after a
 * dropped connection, resuming from `resumeFrom()`. */
export class FrameStream {
  constructor({ onFrame, onNotice, resumeFrom }) {
    this.onFrame = onFrame;
    this.onNotice = onNotice;
    this.resumeFrom = resumeFrom;
    this.command = null;
    this.socket = null;
  }

  connect() {
    const url = new URL("/api/stream", location.origin);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      if (this.command) this.send(this.command);
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        this.onNotice(JSON.parse(event.data));
        return;
      }
      this.onFrame(event.data, performance.timeOrigin + performance.now());
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.command && this.command.op !== "stop") {
        this.command = { ...this.command, from: iso(this.resumeFrom()) };
        setTimeout(() => this.ensureOpen(), 500);
      }
    };
    this.socket = socket;
  }

  ensureOpen() {
    if (!this.socket) this.connect();
  }

  send(command) {
    this.command = command;
    this.ensureOpen();
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(command));
  }

  replay(session, from, speed) {
    this.send({ op: "replay", session, from: iso(from), speed });
  }

  live(session, from) {
    this.send({ op: "live", session, from: iso(from) });
  }

  stop() {
    if (this.command && this.command.op !== "stop") this.send({ op: "stop" });
    this.command = null;
  }
}
