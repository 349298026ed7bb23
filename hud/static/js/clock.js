// The replay clock: where the view ends (`view.now`), playing, pausing, seeking and its speed;
// on a live session, following the live edge or held behind it. Each animation frame moves it
// on (`advance`); the frame stream brings the seconds it plays.
import { FrameStream, HudError } from "./api.js";
import { drainFrames, ensureData, runClockTo } from "./data.js";
import { onFrame, onLiveNotice, takeLiveFrames, updateBadge } from "./live.js";
import { $, markDirty, remember, showError, state, stats, view } from "./state.js";
import { updateUrl } from "./url.js";

export const SPEEDS = [1, 2, 5, 10, 20, 30, 60];

export const stream = new FrameStream({ onFrame, onNotice, resumeFrom: () => view.now });

function onNotice(notice) {
  if (notice.type === "error") showError(new HudError(notice.error, notice));
  else if (notice.type === "end") pause();
  else onLiveNotice(notice);
}

function clampSecond(second) {
  const session = state.session;
  const last = state.live ? Math.max(session.start, state.liveEdge) : session.end;
  return Math.min(last, Math.max(session.start, Math.round(second)));
}

/** Go to a second (the end of the last second shown), playing on from there if playing. */
export function seek(second, { record = true } = {}) {
  if (!state.session) return;
  view.now = clampSecond(second);
  if (state.live && state.following && view.now < state.liveEdge) holdLive();
  if (record) remember(stats.seeks, { now: view.now, requested: performance.now(), rendered: null });
  if (state.playing) startStream();
  ensureData();
  markDirty();
  updateUrl(true);
}

function startStream() {
  state.buffering = true;
  stream.replay(state.session.session, view.now, state.speed);
}

/** Play the replay; on a live session, follow its edge. */
export function play() {
  if (state.live) {
    followLive();
    return;
  }
  if (!state.session || state.playing) return;
  if (view.now >= state.session.end) view.now = state.session.start + view.span;
  state.playing = true;
  stats.playStarted = performance.now();
  stats.behind = 0;
  startStream();
  $("play").textContent = "❚❚";
  markDirty();
}

/** Pause the replay; on a live session, hold the view where it is. */
export function pause() {
  if (state.live) {
    holdLive();
    return;
  }
  if (!state.playing) return;
  state.playing = false;
  stream.stop();
  $("play").textContent = "▶";
  ensureData();
  updateUrl(true);
  markDirty();
}

export function setSpeed(speed) {
  state.speed = speed;
  $("speed").value = String(speed);
  if (state.playing) startStream();
  updateUrl(true);
}

export function step(seconds) {
  pause();
  seek(view.now + seconds);
}

/** Follow the live edge: each second is shown as soon as it is computed. */
export function followLive() {
  state.following = true;
  if (state.liveEdge > view.now) seek(state.liveEdge);
  updateBadge();
}

function holdLive() {
  state.following = false;
  updateBadge();
}

/** One animation frame of the clock: the live edge, the replay clock's time, or the frames
 * a stopped stream left. */
export function advance() {
  if (!state.session) return;
  if (state.live) {
    takeLiveFrames();
  } else if (state.playing && state.buffering) {
    // the clock starts once the first second to show is here, as a player does
    drainFrames(view.now);
    if (state.store.has(view.now)) {
      state.buffering = false;
      state.anchorWall = performance.now();
      state.anchorNow = view.now;
    }
  } else if (state.playing) {
    const elapsed = (performance.now() - state.anchorWall) / 1000;
    const target = Math.min(state.session.end, Math.floor(state.anchorNow + elapsed * state.speed));
    drainFrames(target - 1);
    if (target !== view.now) {
      for (let second = view.now; second < target; second += 1) if (!state.store.has(second)) stats.behind += 1;
      runClockTo(target);
      if (target >= state.session.end) pause();
    }
  } else if (state.frameQueue.length) {
    drainFrames(view.now - 1);
  }
}
