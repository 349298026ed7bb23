// One session's slow-moving facts: its bounds and conventions, levels, approach episodes with
// their triggers and outcomes, and each trigger's signals and nearest earlier setups. What the
// page may show depends on the replay clock: nothing is drawn before it was known.
import { rowsOf } from "./wire.js";

export const LEVEL_COLORS = {
  PM_HIGH: "#ffd166",
  PM_LOW: "#ffd166",
  OR_HIGH: "#9b8cff",
  OR_LOW: "#9b8cff",
  SMA_90: "#5ce1e6",
};
export const levelColor = (levelId) => LEVEL_COLORS[levelId] ?? "#dddddd";
const LIVE_PRICE_STEP_TICKS = 64;

/** The session picker's text for a row of the sessions list; a live session's triggers are
 * the ones so far. */
export function sessionLabel(row, triggers = row.triggers) {
  return `${row.session} ${row.symbol} · ${triggers} triggers${row.is_live ? " so far · LIVE" : ""}`;
}

export class SessionData {
  constructor(tables) {
    this.load(tables);
  }

  /** (Re)read the session payload: a live session's comes again whenever it changes. */
  load(tables) {
    const [info] = rowsOf(tables.session);
    const until = this.sessionUntil ?? null;
    Object.assign(this, info);
    this.loads = (this.loads ?? 0) + 1;
    // live: the session tables (levels, episodes) hold the seconds before this; null: all
    this.sessionUntil = null;
    this.reachSessionUntil(until);
    this.reachSessionUntil(info.live_session_until);
    this.levels = rowsOf(tables.session_levels);
    this.episodes = rowsOf(tables.approach_episodes);
    this.triggers = this.episodes
      .filter((episode) => episode.trigger_id !== null)
      .sort((a, b) => a.trigger_ts - b.trigger_ts);
    this.signals = new Map(rowsOf(tables.trigger_signals).map((row) => [row.trigger_id, row]));
    this.neighbours = new Map();
    for (const row of rowsOf(tables.trigger_neighbours)) {
      if (!this.neighbours.has(row.trigger_id)) this.neighbours.set(row.trigger_id, []);
      this.neighbours.get(row.trigger_id).push(row);
    }
    this.levelIds = [...new Set(this.levels.map((level) => level.level_id))].sort();
    // texture rows: every price the surfaces can hold over the session (live: so far, with
    // room to move, in steps so a new high or low rarely needs new rows)
    const margin = this.surface_depth_ticks * this.tick_size;
    if (this.live_until === null) {
      this.priceBase = (this.spot_low ?? 0) - margin;
      this.priceRows = Math.round(((this.spot_high ?? 0) + margin - this.priceBase) / this.tick_size) + 1;
    } else {
      const step = LIVE_PRICE_STEP_TICKS * this.tick_size;
      const low = Math.floor(((this.spot_low ?? 0) - margin) / step) * step;
      const high = Math.ceil(((this.spot_high ?? 0) + margin) / step) * step;
      this.priceBase = low;
      this.priceRows = Math.round((high - low) / this.tick_size) + 1;
    }
  }

  /** The level's value in effect at `now` (known from valid_from), or null. */
  levelAt(levelId, now) {
    for (const level of this.levels) {
      if (level.level_id === levelId && level.valid_from <= now && now < level.valid_to) return level;
    }
    return null;
  }

  /** Live: the session tables have reached `until` (epoch s); they only move forward. */
  reachSessionUntil(until) {
    if (until !== null && until !== undefined) this.sessionUntil = Math.max(this.sessionUntil ?? until, until);
  }

  /** When spot left the episode's zone: live, an episode still in its zone at the session
   * tables' frontier has not left it yet. */
  zoneExit(episode) {
    const open = this.sessionUntil !== null && episode.zone_exit_ts >= this.sessionUntil;
    return open ? Infinity : episode.zone_exit_ts;
  }

  /** WATCH inside the zone, ARMED within the trigger distance until the trigger's window
   * closes, FIRED from the trigger to the zone's exit; null outside every episode. */
  levelState(levelId, now) {
    // a second is seen once the clock has passed it: `now` is the end of the last second shown
    for (const episode of this.episodes) {
      if (episode.level_id !== levelId || episode.zone_entry_ts >= now) continue;
      const exit = this.zoneExit(episode);
      if (episode.trigger_ts !== null && episode.trigger_ts <= now) {
        if (now <= Math.max(exit, episode.trigger_ts)) return { state: "FIRED", episode };
      } else if (now <= exit) {
        const armed = episode.trigger_second !== null && episode.trigger_second < now;
        return { state: armed ? "ARMED" : "WATCH", episode };
      }
    }
    return null;
  }

  /** The latest trigger at or before `now`. */
  latestTrigger(now) {
    let latest = null;
    for (const trigger of this.triggers) {
      if (trigger.trigger_ts <= now) latest = trigger;
      else break;
    }
    return latest;
  }

  outcomeKnown(trigger, now, showAll) {
    return trigger.outcome !== null && (showAll || trigger.outcome_known_ts <= now);
  }

  /** The latest moment the trigger's outcome is settled: its horizon's end (a barrier hit
   * earlier settles it then). Known at the trigger, so replay and live show the same. */
  settlesBy(trigger) {
    return trigger.trigger_ts + this.outcome_horizon_seconds;
  }

  /** An outcome not known at `now` is pending until its horizon has passed in the data (live:
   * in the session tables); after that it never settled: the day's trades ended first. */
  outcomePending(trigger, now) {
    const settles = this.settlesBy(trigger);
    return now < settles || (this.sessionUntil !== null && this.sessionUntil < settles);
  }

  nextTrigger(now) {
    return this.triggers.find((trigger) => trigger.trigger_ts > now) ?? null;
  }

  previousTrigger(now) {
    return [...this.triggers].reverse().find((trigger) => trigger.trigger_ts < now) ?? null;
  }
}
