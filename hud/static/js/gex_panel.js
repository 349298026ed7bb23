// Gamma exposure by strike at the last second shown (gex_surface_1s), on the heatmap's price
// axis: call bars right of the centre line, put bars left (dealer sign policy), net under them.
import { compact, price } from "./format.js";

const SUFFIX = { all: "", "0dte": "_0dte" };

const known = (value) => (Number.isNaN(value) ? "unknown" : compact(value, true));

export class GexPanel {
  constructor(element, footer) {
    this.element = element;
    this.footer = footer;
    this.axis = document.createElement("div");
    this.axis.className = "gex-axis";
    const header = document.createElement("div");
    header.className = "gex-header";
    header.innerHTML = '<span class="put">put</span> ◀ gamma exposure ▶ <span class="call">call</span>';
    element.append(this.axis, header);
    this.rows = [];
  }

  row(index) {
    while (this.rows.length <= index) {
      const row = document.createElement("div");
      row.className = "gex-row";
      row.innerHTML =
        '<span class="bar call"></span><span class="bar put"></span><span class="bar net"></span>' +
        '<span class="strike"></span><span class="value"></span>';
      this.element.append(row);
      this.rows.push(row);
    }
    return this.rows[index];
  }

  /** Draw the strikes of `second` (a store entry, or none) for `expiry` ("all" or "0dte"). */
  update(view, entry, expiry, clock, second) {
    const suffix = SUFFIX[expiry];
    const width = this.element.clientWidth;
    const centre = Math.round(width * 0.55);
    this.axis.style.left = `${centre}px`;
    const [first, end] = entry ? entry.rows("gex_surface_1s") : [0, 0];
    const count = end - first;
    if (count > 0) {
      const gex = entry.columns("gex_surface_1s");
      // the second's one gex_levels_1s row: null while that table has not come
      const [at, atEnd] = entry.rows("gex_levels_1s");
      const level = (column) => (at < atEnd ? entry.columns("gex_levels_1s")[column][at] : null);
      // bars are scaled to the largest exposure among the strikes on screen
      let largest = 1e-9;
      for (let i = first; i < end; i += 1) {
        const strike = gex.strike_price[i];
        if (strike < view.priceBottom || strike > view.priceTop) continue;
        for (const column of ["call_gex", "put_gex", "net_gex"]) {
          largest = Math.max(largest, Math.abs(gex[column + suffix][i]) || 0);
        }
      }
      const half = Math.min(centre, width - centre) - 40;
      const bar = (element, value) => {
        const length = Math.min(1, (Number.isNaN(value) ? 0 : Math.abs(value)) / largest) * half;
        element.style.width = `${length}px`;
        element.style.left = `${value < 0 ? centre - length : centre}px`;
      };
      for (let i = first; i < end; i += 1) {
        const row = this.row(i - first);
        const strike = gex.strike_price[i];
        const [call, put, net] = ["call_gex", "put_gex", "net_gex"].map((c) => gex[c + suffix][i]);
        row.hidden = false;
        row.style.top = `${view.yOf(strike) - 6}px`;
        row.dataset.strike = String(strike);
        row.dataset.callGex = String(call);
        row.dataset.putGex = String(put);
        row.dataset.netGex = String(net);
        // unknown exposure (listed options without a volatility or open interest) is drawn
        // as unknown, never as a zero-length bar that reads as no exposure
        const missing = gex.options_without_exposure[i];
        const unknown = Number.isNaN(call) || Number.isNaN(put);
        row.classList.toggle("unknown", unknown);
        row.dataset.optionsWithoutExposure = String(missing);
        row.title =
          `strike ${price(strike)}: call ${known(call)}, put ${known(put)}, net ${known(net)}` +
          (missing > 0 ? ` (${missing} option${missing > 1 ? "s" : ""} without a known exposure)` : "");
        const [callBar, putBar, netBar, label, value] = row.children;
        bar(callBar, call);
        bar(putBar, put);
        bar(netBar, net);
        label.textContent = strike.toFixed(0);
        value.textContent = unknown ? "unknown" : compact(net, true);
        row.classList.toggle(
          "wall",
          strike === level(`call_wall${suffix}`) || strike === level(`put_wall${suffix}`),
        );
      }
      this.footer.innerHTML =
        `<b>gamma exposure</b> ${expiry === "0dte" ? "0DTE" : "all expiries"}<br>` +
        `at ${clock.time(second)} NY<br>` +
        `zero gamma ${price(level(`zero_gamma_level${suffix}`))}<br>` +
        `call wall ${price(level(`call_wall${suffix}`))}<br>` +
        `put wall ${price(level(`put_wall${suffix}`))}<br>` +
        `${level("options_in_exposure") ?? "–"} of ${level("options_listed") ?? "–"} options in, ` +
        `${level("options_without_open_interest") ?? "–"} without open interest`;
      this.element.dataset.second = String(second);
    } else {
      this.footer.textContent = "no gamma exposure for this second";
      delete this.element.dataset.second;
    }
    for (let i = count; i < this.rows.length; i += 1) this.rows[i].hidden = true;
  }
}
