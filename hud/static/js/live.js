// A live session: its frames drawn as they come while the view follows the edge, the mode
// badge, and what the live feed tells (its end, its failure, records it lost).
import { HudError } from "./api.js";
import { drainFrames, queueFrame, runClockTo, timeLive } from "./data.js";
import { renderIfDirty } from "./render.js";
import { $, epochMs, markDirty, showError, state, stats, view } from "./state.js";

const LIVE_DRAW_INTERVAL_MS = 1000 / 60; // live seconds drawn on arrival at most this often

export function updateBadge() {
  const badge = $("mode-badge");
  badge.className = `badge ${state.live ? "live" : "replay"}`;
  badge.textContent = !state.live ? "REPLAY" : state.liveFailed ? "LIVE · failed"
    : state.liveEnded ? "LIVE · ended"
    : state.following ? "LIVE" : "LIVE · held";
  badge.title = state.live ? "the live session: click (or End) to follow its edge" : "a replay of the warehouse";
  $("speed").disabled = state.live;
}

/** A frame from the stream. Following a live edge, a new second is decoded and drawn as it
 * arrives: waiting for the next animation frame cost 8-15 ms on 2 busy cores. A burst (a
 * catch-up, --speed max) is left to the animation frames, at most one picture per display
 * frame. */
export function onFrame(bytes, arrived) {
  queueFrame(bytes, arrived);
  if (
    state.live && state.following && state.frameQueue.length === 1
    && performance.now() - state.lastRender >= LIVE_DRAW_INTERVAL_MS
  ) {
    takeLiveFrames();
    renderIfDirty();
  }
}

/** The frames received so far, and the clock at the live edge when following it. */
export function takeLiveFrames() {
  drainFrames(view.now - 1);
  if (state.following && state.liveEdge > view.now) runClockTo(state.liveEdge);
}

/** What the live feed tells: it ended, it failed (the day so far stays), it lost records. */
export function onLiveNotice(notice) {
  if (notice.type === "live-end") {
    state.liveEnded = true;
    updateBadge();
  } else if (notice.type === "live-failed") {
    state.liveFailed = true;
    showError(new HudError(`the live feed failed: ${notice.error} (the day so far stays here)`));
    updateBadge();
  } else if (notice.type === "session-until") {
    // the session tables reached a new second: episodes still in their zone stay open
    state.session.reachSessionUntil(notice.until);
    timeLive(stats.liveSession, { until: notice.until, arrived: epochMs() });
    markDirty();
  } else if (notice.type === "feed-gap") {
    state.feedGaps.push({ after: notice.after, reason: notice.reason });
    markDirty();
  }
}
