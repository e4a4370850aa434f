/* global document, window, fetch, setTimeout */
// The duty console's live refresh: every few seconds the overview is fetched again as HTML from the server and put in
// place, without reloading the page. When the server cannot be reached, the last figures stay, marked as stale.
const main = document.getElementById("overview");
const live = document.getElementById("live");
const every = Number(main?.dataset.every) || 10_000;
let lostSince;

const clock = (d) => [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");

async function refresh() {
  try {
    const res = await fetch(main.dataset.refresh, { cache: "no-store", credentials: "same-origin", headers: { accept: "text/html" } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    // The reasons an operator opened stay open across the refresh.
    const open = new Set([...main.querySelectorAll("details[open][data-key]")].map((d) => d.dataset.key));
    main.innerHTML = await res.text();
    for (const d of main.querySelectorAll("details[data-key]")) if (open.has(d.dataset.key)) d.open = true;
    lostSince = undefined;
    live.hidden = true;
  } catch {
    lostSince ??= new Date();
    live.textContent = live.dataset.lost.replace("%TIME%", clock(lostSince));
    live.hidden = false;
  } finally {
    setTimeout(refresh, every);
  }
}

if (main && live) window.setTimeout(refresh, every);
