// Numbers and exchange-time clocks as the page prints them.

/** Clock formatting and parsing in the exchange's time zone for one session. */
export class ExchangeClock {
  constructor(timeZone, sessionStart) {
    this.timeZone = timeZone;
    this.format = new Intl.DateTimeFormat("en-GB", {
      timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    });
    this.sessionStart = sessionStart;
    this.startLocal = this.localSeconds(sessionStart);
  }

  /** HH:MM:SS in the exchange's time zone. */
  time(seconds) {
    return this.format.format(new Date(seconds * 1000));
  }

  localSeconds(seconds) {
    const [h, m, s] = this.time(seconds).split(":").map(Number);
    return h * 3600 + m * 60 + s;
  }

  /** Epoch seconds of "HH:MM[:SS]" on the session's date (no daylight-saving change falls
   * inside a session's hours), or null if it is not a time. */
  parse(text) {
    const match = /^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$/.exec(text);
    if (!match) return null;
    const [h, m, s] = [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
    if (h > 23 || m > 59 || s > 59) return null;
    return this.sessionStart + (h * 3600 + m * 60 + s - this.startLocal);
  }
}

/** 1234567 -> "1.23M", -4200 -> "-4.2k" (signed when asked). */
export function compact(value, signed = false) {
  if (value === null || Number.isNaN(value)) return "–";
  const sign = value < 0 ? "-" : signed && value > 0 ? "+" : "";
  const size = Math.abs(value);
  if (size >= 1e9) return `${sign}${(size / 1e9).toFixed(2)}B`;
  if (size >= 1e6) return `${sign}${(size / 1e6).toFixed(2)}M`;
  if (size >= 1e3) return `${sign}${(size / 1e3).toFixed(1)}k`;
  return `${sign}${size.toFixed(size >= 100 ? 0 : 1)}`;
}

export const price = (value) => (value === null || Number.isNaN(value) ? "–" : value.toFixed(2));
export const fixed = (value, digits = 2) =>
  value === null || value === undefined || Number.isNaN(value) ? "–" : value.toFixed(digits);
export const percent = (value) =>
  value === null || value === undefined || Number.isNaN(value) ? "–" : `${(value * 100).toFixed(0)}%`;
