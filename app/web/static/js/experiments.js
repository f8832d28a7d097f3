// The experiments list (feature-detected: a friendly notice while the server has none).
import { $, API, api, badge, clear, el, fmt, has, unavailable, when } from "./api.js";

async function init() {
  const box = $("#experiments");
  if (!(await has("/experiments"))) { clear(box, unavailable("Experiments")); return; }
  const page = await api(`${API}/experiments`);
  const items = page.items || page;
  if (!items.length) { clear(box, el("p", { class: "empty" }, "No experiments yet. POST /api/v1/experiments with a base spec and a grid.")); return; }
  clear(box, el("table", {}, el("thead", {}, el("tr", {}, ["Name", "Status", "Runs", "Best", "Created"].map((h) => el("th", {}, h)))),
    el("tbody", {}, items.map((x) => el("tr", { "data-experiment-id": x.id },
      el("td", { class: "name-cell" }, el("a", { href: `/experiments/${encodeURIComponent(x.id)}` }, x.name || x.id)),
      el("td", {}, badge(x.status)), el("td", { class: "num" }, String((x.runs || []).length)),
      el("td", {}, x.best ? el("a", { href: `/runs/${encodeURIComponent(x.best.run_id)}` }, `${x.best.metric} ${fmt(x.best.value)}`) : "—"),
      el("td", { class: "small muted" }, when(x.created_at)))))));
}

init().catch((error) => clear($("#experiments"), el("p", { class: "notice error" }, error.message)));
