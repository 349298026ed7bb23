// The sessions to choose from, and opening one: its payload, a new clock and store, and the
// stream (live: following its edge).
import { HudError, fetchSession, fetchSessions } from "./api.js";
import { pause, seek, stream } from "./clock.js";
import { clearData } from "./data.js";
import { ExchangeClock } from "./format.js";
import { updateBadge } from "./live.js";
import { SessionData, sessionLabel } from "./session.js";
import { $, showError, state, view } from "./state.js";
import { rowsOf } from "./wire.js";

/** The included sessions, in the picker. */
export async function loadSessions() {
  const sessions = rowsOf((await fetchSessions()).sessions);
  state.sessions = sessions;
  $("session-picker").replaceChildren(
    ...sessions.map((row) => {
      const option = document.createElement("option");
      option.value = row.session;
      option.textContent = sessionLabel(row);
      return option;
    }),
  );
  if (!sessions.length) {
    throw new HudError("the warehouse has no included session yet", { command: "spymaster build" });
  }
  return sessions;
}

/** Open a session at `at` (epoch seconds), or at `time` (HH:MM:SS New York), or 09:35; a
 * live session at its edge. */
export async function openSession(sessionDate, { at = null, time = null } = {}) {
  pause();
  stream.stop();
  showError(null);
  const session = new SessionData(await fetchSession(sessionDate));
  state.session = session;
  state.live = session.live_until !== null;
  state.following = state.live;
  state.liveEdge = Math.max(session.start, session.live_until ?? 0);
  state.liveEnded = false;
  state.liveFailed = false;
  state.feedGaps = [];
  updateBadge();
  clearData();
  state.clock = new ExchangeClock(session.exchange_timezone, session.start);
  view.tick = session.tick_size;
  view.priceCenter = null;
  view.follow = true;
  $("session-picker").value = session.session;
  $("plot").dataset.session = session.session;
  let second = at ?? (state.live ? state.liveEdge : (session.session_window_start ?? session.start) + 300);
  if (time !== null) {
    const typed = state.clock.parse(time);
    if (typed === null || typed < session.start || typed > session.end) {
      showError(new HudError(`t=${time} is not a time of session ${session.session} (HH:MM:SS New York)`, { parameter: "t" }));
    } else second = typed;
  }
  if (state.live && (at !== null || time !== null)) state.following = false;
  seek(second);
  if (state.live) stream.live(session.session, state.liveEdge);
  updateBadge();
}
