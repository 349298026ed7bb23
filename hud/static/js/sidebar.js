// The sidebar: each level's state, the latest trigger's outcome distribution and its most
// similar earlier setups (trigger_signals), and the legend.
import { fixed, percent, price } from "./format.js";
import { LAYERS } from "./heatmap.js";
import { OUTCOME_COLORS } from "./overlay.js";
import { levelColor } from "./session.js";

const escape = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderLevelStates(table, session, now, spot) {
  const rows = session.levelIds.map((levelId) => {
    const level = session.levelAt(levelId, now);
    const state = session.levelState(levelId, now);
    const distance =
      level && spot !== null && !Number.isNaN(spot)
        ? Math.round((spot - level.level_price) / session.tick_size)
        : null;
    const name = state ? state.state : "–";
    return (
      `<tr data-level="${levelId}" data-state="${state ? state.state : ""}">` +
      `<td style="color:${levelColor(levelId)}">${levelId}</td>` +
      `<td class="num">${level ? price(level.level_price) : "not yet"}</td>` +
      `<td class="num">${distance === null ? "" : `${distance > 0 ? "+" : ""}${distance} t`}</td>` +
      `<td class="state ${name}">${name}</td></tr>`
    );
  });
  const html =
    '<tr><th>level</th><th class="num">price</th><th class="num">spot</th><th>state</th></tr>' +
    rows.join("");
  if (table.dataset.html !== html) {
    table.innerHTML = html;
    table.dataset.html = html;
  }
}

function probability(label, value, color) {
  return (
    `<span>${label}</span><span class="track"><span class="fill" style="display:block;` +
    `width:${((value ?? 0) * 100).toFixed(1)}%;background:${color}"></span></span>` +
    `<span class="num" data-p="${label}">${percent(value)}</span>`
  );
}

/** The latest trigger's panel; redrawn only when the session opened, the trigger or its
 * outcome's visibility changes. A row of a similar setup (`tr[data-trigger-id]`) carries
 * its session and time for the page to open. */
export class SignalsPanel {
  constructor(element) {
    this.element = element;
    this.session = null;
    this.key = null;
  }

  update(session, now, showOutcomes, clock) {
    const trigger = session.latestTrigger(now);
    const known = trigger ? session.outcomeKnown(trigger, now, showOutcomes) : false;
    const pending = trigger && !known ? session.outcomePending(trigger, now) : false;
    // a live session's payload comes again as its tables change (signals, outcomes)
    const key = trigger ? `${trigger.trigger_id}/${known}/${pending}/${session.loads}` : "none";
    if (session === this.session && key === this.key) return;
    this.session = session;
    this.key = key;
    if (!trigger) {
      this.element.innerHTML = '<p class="muted">no trigger yet this session</p>';
      delete this.element.dataset.triggerId;
      return;
    }
    this.element.dataset.triggerId = trigger.trigger_id;
    const signals = session.signals.get(trigger.trigger_id);
    const neighbours = session.neighbours.get(trigger.trigger_id) ?? [];
    const outcome = known
      ? `<span class="outcome ${trigger.outcome}">${trigger.outcome}</span>` +
        (trigger.seconds_to_first_hit === null ? "" : ` after ${trigger.seconds_to_first_hit} s`) +
        ` · MFE ${fixed(trigger.max_favorable_excursion_ticks, 0)} · MAE ${fixed(trigger.max_adverse_excursion_ticks, 0)} ticks`
      : pending
        ? `<span class="muted">pending: settles by ${clock.time(session.settlesBy(trigger))}</span>`
        : '<span class="muted">never settled (the day ended)</span>';
    let body =
      `<div><b style="color:${levelColor(trigger.level_id)}">${trigger.level_id}</b> ` +
      `${trigger.approach_dir} at ${price(trigger.trigger_level_price)} · ${clock.time(trigger.trigger_ts)} NY</div>` +
      `<div class="trigger-outcome">outcome: ${outcome}</div>` +
      `<button class="evidence-link" data-level="${escape(trigger.level_id)}" data-dir="${trigger.approach_dir}" ` +
      'title="the typical book before a BREAK and a REJECT, and the four conditions at this level and direction (e)">' +
      "what does a setup like this usually look like?</button>";
    if (!signals || signals.p_break === null) {
      body += `<p class="muted">no earlier setups to compare (${signals ? signals.training_triggers : 0} earlier labelled triggers)</p>`;
    } else {
      body +=
        '<div class="probabilities">' +
        probability("P(BREAK)", signals.p_break, OUTCOME_COLORS.BREAK) +
        probability("P(REJECT)", signals.p_reject, OUTCOME_COLORS.REJECT) +
        probability("P(CHOP)", signals.p_chop, OUTCOME_COLORS.CHOP) +
        "</div>" +
        `<div class="muted">${signals.neighbour_count} nearest of ${signals.training_triggers} earlier triggers ` +
        `(${signals.training_sessions} sessions); similarity ${fixed(signals.similarity_mean)} ± ${fixed(signals.similarity_std)}; ` +
        `base rate ${percent(signals.base_rate_prior)}, time of day ${percent(signals.time_of_day_rate_prior)}</div>` +
        '<table id="neighbours"><tr><th>#</th><th>day</th><th>time NY</th><th class="num">sim</th>' +
        '<th>outcome</th><th class="num" title="seconds to the first barrier">hit s</th>' +
        '<th class="num" title="max favourable excursion, ticks">MFE</th>' +
        '<th class="num" title="max adverse excursion, ticks">MAE</th></tr>' +
        neighbours
          .map(
            (n) =>
              `<tr data-trigger-id="${escape(n.neighbour_trigger_id)}" data-session="${n.neighbour_session}" ` +
              `data-ts="${n.neighbour_ts}" data-similarity="${n.similarity}" title="open ${escape(n.neighbour_trigger_id)}">` +
              `<td>${n.neighbour_rank}</td><td>${n.neighbour_session.slice(5)}</td><td>${clock.time(n.neighbour_ts)}</td>` +
              `<td class="num">${fixed(n.similarity, 3)}</td>` +
              `<td class="outcome ${n.outcome ?? ""}">${n.outcome ?? "–"}</td>` +
              `<td class="num">${n.seconds_to_first_hit ?? "–"}</td>` +
              `<td class="num">${fixed(n.max_favorable_excursion_ticks, 0)}</td>` +
              `<td class="num">${fixed(n.max_adverse_excursion_ticks, 0)}</td></tr>`,
          )
          .join("") +
        "</table>";
    }
    this.element.innerHTML = body;
  }
}

export function renderLegend(element, layer) {
  const swatch = (color) => `<span class="swatch" style="background:${color}"></span>`;
  const rgb = (c) => `rgb(${c.map((v) => Math.round(v * 255)).join(",")})`;
  const selected = LAYERS[layer];
  let layerLine = "";
  if (selected.colors) {
    layerLine = `<div>${swatch(rgb(selected.colors[0]))}${swatch(rgb(selected.colors[1]))}${selected.label}</div>`;
  }
  element.innerHTML =
    `<div>${swatch("#2ec4ff")}bid depth ${swatch("#ff7a3d")}ask depth (log; cut-offs above)</div>` +
    layerLine +
    `<div>${swatch("#ffffff")}spot ${swatch("#7fd8ff")}best bid ${swatch("#ffb38a")}best ask</div>` +
    `<div>${swatch("#ff5c7a")}bid filled (sell) ${swatch("#3ddc84")}ask filled (buy), dot size ~ contracts</div>` +
    `<div>${swatch("#f4e04d")}zero gamma ${swatch("#3ddc84")}call wall ${swatch("#ff5c7a")}put wall</div>` +
    `<div>${swatch("#ffd166")}PM high/low ${swatch("#9b8cff")}OR high/low ${swatch("#5ce1e6")}SMA 90; shaded: approach zone</div>` +
    `<div>▲▼ trigger (approach from below / above), coloured by outcome once known</div>`;
}
