// The address: what is open and how it is shown, so a reload or a shared link opens the same.
import { state, view } from "./state.js";

const RUNNING_UPDATE_MS = 1000; // a running clock rewrites the address at most this often
let lastUpdate = 0;

/** The address of the page as it is now: at once (`now`, after a control), or, while the
 * clock runs, when a second has passed since the last time. */
export function updateUrl(now) {
  if (!state.session || (!now && performance.now() - lastUpdate <= RUNNING_UPDATE_MS)) return;
  lastUpdate = performance.now();
  const params = new URLSearchParams({
    session: state.session.session,
    t: state.clock.time(view.now),
    speed: String(state.speed),
    span: String(view.span),
    layer: state.layer,
    gex: state.gexExpiry,
  });
  if (state.showOutcomes) params.set("outcomes", "1");
  if (state.live && state.following) params.delete("t"); // a reload follows the edge again
  const url = `${location.pathname}?${params}`;
  // replaceState costs 3 ms, up to 17 ms on 2 busy cores: only when the address changes (a
  // page following the live edge keeps one address)
  if (now || url !== `${location.pathname}${location.search}`) history.replaceState(null, "", url);
}
