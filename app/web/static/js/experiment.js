// One experiment: the summary per grid cell (mean ± std of the best metrics over seeds),
// every run's validation loss on one chart (colour = grid cell, dash = seed) and the runs
// themselves; polled while the experiment is live.
import { $, API, PLOT_CONFIG, api, badge, baseLayout, clear, color, downsample, el, fmt, has, pageData, pct, toast, unavailable, when, plotText } from "./api.js";
import { SEED, cellKey, gridText, isLive, keyLabel, progressOf, valueText } from "./grid.js";

const id = pageData("experimentId");
const base = `${API}/experiments/${encodeURIComponent(id)}`;
const DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];
let timer = null;

/** The grid keys that make a cell (every key but the seed), in the grid's order. */
const cellKeys = (x) => Object.keys(x.grid || {}).filter((k) => k !== SEED);

function statCell(stats, show) {
  if (!stats || stats.mean === null || stats.mean === undefined) return el("td", { class: "num" }, "—");
  const spread = stats.std === null || stats.std === undefined ? "" : ` ± ${show(stats.std)}`;
  return el("td", { class: "num", "data-mean": String(stats.mean), "data-std": String(stats.std ?? ""),
    title: `min ${show(stats.min)}, max ${show(stats.max)}` }, `${show(stats.mean)}${spread}`);
}
const loss = (v) => (v === null || v === undefined ? "—" : v.toFixed(4));
const percent = (v) => (v === null || v === undefined ? "—" : (100 * v).toFixed(1));

function runLink(run, i) {
  return el("a", { href: `/runs/${encodeURIComponent(run.id)}`, class: "run-chip", title: run.id },
    el("span", { class: "legend-dot", style: `background:${color(i)}` }), `seed ${run.params?.[SEED] ?? "—"}`);
}

function renderSummary(x, cells) {
  const keys = cellKeys(x);
  const rows = x.summary || [];
  const best = rows.reduce((b, s, i) => (s.val_loss?.mean !== null && s.val_loss?.mean !== undefined && (b < 0 || s.val_loss.mean < rows[b].val_loss.mean) ? i : b), -1);
  $("#exp-summary-note").textContent = "each run at its best epoch; std over seeds (ddof = 1); hover for min/max";
  clear($("#exp-summary"),
    el("thead", {}, el("tr", {}, [...keys.map((k) => el("th", { title: k }, keyLabel(k))), el("th", { class: "num" }, "Seeds"),
      el("th", { class: "num" }, "Val loss (mean ± std)"), el("th", { class: "num" }, "Val acc. (mean ± std, %)"), el("th", {}, "Runs")])),
    el("tbody", {}, rows.map((s, i) => {
      const cell = cells.get(cellKey(s.params)) || { index: 0, runs: [] };
      return el("tr", { "data-cell": cellKey(s.params), class: i === best ? "best-row" : "" },
        keys.map((k) => el("td", { class: "mono small" }, k in (s.params || {}) ? valueText(s.params[k]) : "—")),
        el("td", { class: "num" }, String(s.n)),
        statCell(s.val_loss, loss), statCell(s.val_accuracy, percent),
        el("td", {}, cell.runs.map((r) => runLink(r, cell.index)), i === best ? el("span", { class: "tag tag-best" }, "best") : null));
    })));
}

function renderRuns(x, cells) {
  const keys = Object.keys(x.grid || {});
  clear($("#exp-runs"),
    el("thead", {}, el("tr", {}, [el("th", {}, "Run"), ...keys.map((k) => el("th", { title: k }, keyLabel(k))),
      ...["Status", "Best epoch", "Best val loss", "Best val acc."].map((h, i) => el("th", { class: i ? "num" : "" }, h))])),
    el("tbody", {}, (x.runs || []).map((r) => el("tr", { "data-run-id": r.id },
      el("td", { class: "nowrap" }, el("span", { class: "legend-dot", style: `background:${color(cells.get(cellKey(r.params))?.index ?? 0)}` }),
        el("a", { href: `/runs/${encodeURIComponent(r.id)}` }, r.id), x.best?.run_id === r.id ? el("span", { class: "tag tag-best" }, "best") : null),
      keys.map((k) => el("td", { class: "mono small" }, k in (r.params || {}) ? valueText(r.params[k]) : "—")),
      el("td", {}, badge(r.status)), el("td", { class: "num" }, String(r.best_epoch ?? "—")),
      el("td", { class: "num" }, fmt(r.best_metrics?.val_loss ?? r.best_metrics?.train_loss)), el("td", { class: "num" }, pct(r.best_metrics?.val_accuracy))))));
}

async function drawChart(x, cells) {
  if (!(await has("/experiments/{experiment_id}/metrics"))) return;
  const metrics = (await api(`${base}/metrics`)).runs || {};
  const keys = cellKeys(x);
  const seeds = [...new Set((x.runs || []).map((r) => JSON.stringify(r.params?.[SEED] ?? null)))];
  let anyVal = false;
  const traces = (x.runs || []).map((r) => {
    const m = metrics[r.id] || {};
    const val = (m.val_loss || []).some((v) => v !== null && v !== undefined);
    anyVal ||= val;
    const d = downsample(m.epoch || [], (val ? m.val_loss : m.train_loss) || [], 1000);
    const cell = cells.get(cellKey(r.params)) || { index: 0 };
    const label = keys.map((k) => valueText(r.params?.[k])).join(", ") || "run";
    const seed = SEED in (r.params || {}) ? ` · seed ${valueText(r.params[SEED])}` : "";
    return { x: d.x, y: d.y, mode: "lines", meta: r.id, name: plotText(label + seed), legendgroup: String(cell.index),
      hovertemplate: `${plotText(label + seed)}<br>epoch %{x}: %{y:.4f}<extra></extra>`,
      line: { color: color(cell.index), width: 1.8, dash: DASHES[seeds.indexOf(JSON.stringify(r.params?.[SEED] ?? null)) % DASHES.length] } };
  });
  $("#exp-chart-title").textContent = anyVal || !traces.length ? "Validation loss of every run" : "Training loss of every run (no validation split)";
  const gd = $("#chart-experiment");
  gd.dataset.traces = String(traces.length);
  window.Plotly.react(gd, traces, baseLayout({ xaxis: { title: { text: "epoch" }, gridcolor: "#edf0f4", zeroline: false },
    yaxis: { title: { text: "loss" }, gridcolor: "#edf0f4", zeroline: false }, legend: { orientation: "h", y: -0.22, font: { size: 11 } },
    margin: { l: 56, r: 16, t: 16, b: 44 } }), PLOT_CONFIG);
}

function render(x) {
  document.title = `${x.name || x.id} · annlab`;
  $("#exp-name").textContent = x.name || x.id;
  clear($("#exp-status"), badge(x.status));
  const { done, total } = progressOf(x);
  $("#exp-meta").textContent = `${x.id} · ${gridText(x.grid)} · created ${when(x.created_at)}`
    + (x.best ? ` · best ${x.best.metric} ${fmt(x.best.value)}` : "");
  const share = total ? Math.round((100 * done) / total) : 0;
  clear($("#exp-progress"), el("span", { class: "row small", "data-done": String(done), "data-total": String(total) },
    el("span", { class: "progress" }, el("span", { style: `width:${share}%` })), `${done} / ${total} runs done`));
  $("#exp-compare").href = `/compare?runs=${(x.runs || []).map((r) => encodeURIComponent(r.id)).join(",")}`;
  $("#exp-cancel").hidden = !isLive(x);
  $("#exp-base").textContent = JSON.stringify(x.base, null, 2);
  $("#exp-grid").textContent = JSON.stringify(x.grid, null, 2);
  const cells = new Map();
  for (const r of x.runs || []) {
    const key = cellKey(r.params);
    if (!cells.has(key)) cells.set(key, { index: cells.size, runs: [] });
    cells.get(key).runs.push(r);
  }
  renderSummary(x, cells);
  renderRuns(x, cells);
  return drawChart(x, cells);
}

async function load() {
  clearTimeout(timer);
  const x = await api(base);
  $("#exp-body").hidden = false;
  await render(x);
  if (isLive(x)) timer = setTimeout(() => load().catch((e) => toast(e.message, "error")), 1500);
}

async function init() {
  const missing = $("#exp-missing");
  if (!(await has("/experiments/{experiment_id}"))) { missing.hidden = false; clear(missing, unavailable("Experiments")); return; }
  $("#exp-cancel").addEventListener("click", async () => {
    try { await api(`${base}/cancel`, { method: "POST" }); await load(); } catch (e) { toast(e.message, "error"); }
  });
  try { await load(); } catch (error) {
    missing.hidden = false;
    clear(missing, el("div", { class: "notice error" }, error.status === 404 ? "There is no experiment with this id. " : `${error.message} `,
      el("a", { href: "/experiments" }, "All experiments")));
  }
}

init();
