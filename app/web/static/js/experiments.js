// The experiments list: each experiment's grid, how many of its runs have ended (polled
// while any is live), and its best run. Feature-detected: a notice while the server has none.
import { $, API, ORIGIN, api, badge, clear, copyBlock, el, fmt, has, unavailable, when } from "./api.js";
import { gridText, isLive, progressOf } from "./grid.js";

const SIZE = 50;
let offset = 0;
let timer = null;

const EXAMPLE = {
  name: "optimizers on iris",
  base: { dataset: "iris", model: { layers: [{ units: 8, activation: "tanh" }, { units: 3, activation: "softmax" }] },
    optimizer: { type: "adam", learning_rate: 0.01 }, training: { epochs: 50 } },
  grid: { optimizer: [{ type: "sgd", learning_rate: 0.1 }, { type: "adam", learning_rate: 0.01 }], "training.seed": [0, 1, 2] },
};

function emptyState() {
  return el("div", { class: "empty-state", "data-empty": "" },
    el("p", {}, el("b", {}, "No experiments yet."), " An experiment trains one spec over a grid of values (optimizers, learning rates, seeds…) and shows the runs side by side, with mean ± std over seeds."),
    el("p", { class: "muted" }, "Start one from a terminal (the grid keys are dotted paths into the run spec, see the API docs):"),
    copyBlock(`curl -X POST ${ORIGIN}${API}/experiments \\\n  -H 'Content-Type: application/json' \\\n  -d '${JSON.stringify(EXAMPLE, null, 2)}'`));
}

function progressCell(x) {
  const { done, total } = progressOf(x);
  const share = total ? Math.round((100 * done) / total) : 0;
  return el("td", { class: "progress-cell", "data-done": String(done), "data-total": String(total) },
    el("span", { class: "progress", title: `${share} %` }, el("span", { style: `width:${share}%` })),
    el("span", { class: "small" }, ` ${done} / ${total} runs done`));
}

function render(page) {
  const box = $("#experiments");
  const items = page.items || [];
  if (!items.length && offset === 0) { clear(box, emptyState()); return; }
  const table = el("table", {}, el("thead", {}, el("tr", {}, ["Name", "Status", "Progress", "Grid", "Best run", "Created"].map((h) => el("th", {}, h)))),
    el("tbody", {}, items.map((x) => el("tr", { "data-experiment-id": x.id },
      el("td", { class: "name-cell" }, el("a", { href: `/experiments/${encodeURIComponent(x.id)}`, title: x.name }, x.name || x.id)),
      el("td", {}, badge(x.status)), progressCell(x),
      el("td", { class: "small mono" }, gridText(x.grid)),
      el("td", {}, x.best ? el("a", { href: `/runs/${encodeURIComponent(x.best.run_id)}` }, `${x.best.metric} ${fmt(x.best.value)}`) : "—"),
      el("td", { class: "small muted" }, when(x.created_at))))));
  const pager = el("div", { class: "pager" },
    el("span", { class: "muted" }, `${offset + 1}–${offset + items.length} of ${page.total ?? items.length}`),
    el("button", { class: "btn btn-small", type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - SIZE); load(); } }, "← Newer"),
    el("button", { class: "btn btn-small", type: "button", disabled: offset + items.length >= (page.total ?? 0), onclick: () => { offset += SIZE; load(); } }, "Older →"));
  clear(box, el("div", { class: "table-wrap" }, table), (page.total ?? 0) > SIZE ? pager : null);
}

async function load() {
  clearTimeout(timer);
  const page = await api(`${API}/experiments?limit=${SIZE}&offset=${offset}`);
  render(page);
  if ((page.items || []).some(isLive)) timer = setTimeout(() => load().catch(showError), 1500);
}

function showError(error) { clear($("#experiments"), el("p", { class: "notice error" }, error.message)); }

async function init() {
  if (!(await has("/experiments"))) { clear($("#experiments"), unavailable("Experiments")); return; }
  await load();
}

init().catch(showError);
