// The compare page: several runs' curves on one chart, their final and best metrics, and
// the spec fields in which they differ. The run list is the URL (?runs=a,b,c).
import { $, API, PLOT_CONFIG, api, badge, baseLayout, clear, color, downsample, el, fmt, pct, plotText } from "./api.js";

const ids = (new URLSearchParams(location.search).get("runs") || "").split(",").map((s) => s.trim()).filter(Boolean);
const loaded = [];

/** {"optimizer.type": "adam", "model.layers.0.units": 16, ...} */
function flatten(value, prefix = "", out = {}) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(value) && value.every((v) => v && typeof v === "object")) {
    value.forEach((v, i) => flatten(v, `${prefix}.${i}`, out));
  } else out[prefix] = value;
  return out;
}

function atBest(run, metrics, key) {
  if (run.best_metrics && key in run.best_metrics) return run.best_metrics[key];
  const i = metrics.epoch.indexOf(run.best_epoch);
  return i >= 0 ? metrics[key][i] : null;
}

function runLabel(run, i) {
  return el("span", {}, el("span", { class: "legend-dot", style: `background:${color(i)}` }),
    el("a", { href: `/runs/${encodeURIComponent(run.id)}` }, run.name || run.id));
}

function drawChart() {
  const metric = $("#compare-metric").value;
  const traces = loaded.map(({ run, metrics }, i) => {
    const d = downsample(metrics.epoch, metrics[metric] || [], 1500);
    return { x: d.x, y: d.y, name: plotText(run.name || run.id), mode: "lines", line: { color: color(i), width: 2 } };
  });
  const layout = baseLayout({
    xaxis: { ...baseLayout().xaxis, title: { text: "epoch" } },
    yaxis: { ...baseLayout().yaxis, type: $("#compare-log").checked ? "log" : "linear", title: { text: plotText($("#compare-metric").selectedOptions[0].textContent) } },
    legend: { orientation: "h", y: -0.2 }, margin: { l: 60, r: 16, t: 16, b: 40 },
  });
  window.Plotly.react($("#chart-compare"), traces, layout, PLOT_CONFIG);
}

function metricsTable() {
  const head = ["Run", "Status", "Epochs", "Final train loss", "Final val loss", "Final val acc.", "Best epoch", "Best val loss", "Best val acc."];
  const rows = loaded.map(({ run, metrics }, i) => {
    const m = run.metrics || {};
    return el("tr", { "data-run-id": run.id }, el("td", { class: "name-cell" }, runLabel(run, i)), el("td", {}, badge(run.status)),
      el("td", { class: "num" }, String(run.progress?.epoch ?? metrics.epoch.length)),
      el("td", { class: "num" }, fmt(m.train_loss)), el("td", { class: "num" }, fmt(m.val_loss)), el("td", { class: "num" }, pct(m.val_accuracy)),
      el("td", { class: "num" }, String(run.best_epoch ?? "—")),
      el("td", { class: "num" }, fmt(atBest(run, metrics, "val_loss") ?? atBest(run, metrics, "train_loss"))),
      el("td", { class: "num" }, pct(atBest(run, metrics, "val_accuracy"))));
  });
  clear($("#compare-metrics"), el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { class: i > 1 ? "num" : "" }, h)))), el("tbody", {}, rows));
}

function diffTable() {
  const flat = loaded.map(({ run }) => flatten({ ...run.spec, name: undefined }));
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].filter((k) => k !== "name").sort();
  const differ = keys.filter((k) => new Set(flat.map((f) => JSON.stringify(f[k] ?? null))).size > 1);
  const show = (v) => (v === undefined ? "—" : typeof v === "string" ? v : JSON.stringify(v));
  clear($("#compare-diff"),
    el("thead", {}, el("tr", {}, el("th", {}, "Field"), loaded.map(({ run }, i) => el("th", {}, runLabel(run, i))))),
    el("tbody", {}, differ.map((k) => el("tr", { "data-field": k }, el("td", { class: "mono" }, k), flat.map((f) => el("td", { class: "mono" }, show(f[k])))))));
  $("#compare-same").textContent = differ.length ? `${keys.length - differ.length} other fields are the same in every run.` : "The specs are identical in every field.";
}

async function picker() {
  $("#compare-pick").hidden = false;
  const page = await api(`${API}/runs?limit=20`);
  const chosen = new Set();
  const go = el("button", { class: "btn btn-primary", type: "button", disabled: true }, "Compare");
  go.addEventListener("click", () => { location.href = `/compare?runs=${[...chosen].join(",")}`; });
  clear($("#compare-recent"), page.items.length ? el("div", { class: "stack" }, page.items.map((run) => {
    const box = el("input", { type: "checkbox", value: run.id });
    box.addEventListener("change", () => { if (box.checked) chosen.add(run.id); else chosen.delete(run.id); go.disabled = chosen.size < 2; });
    return el("label", { class: "check" }, box, run.name || run.id, " ", badge(run.status));
  }), go) : el("p", { class: "empty" }, "No runs yet."));
}

async function init() {
  $("#compare-ids").value = ids.join(", ");
  $("#compare-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const list = $("#compare-ids").value.split(/[\s,]+/).filter(Boolean);
    location.href = `/compare?runs=${list.map(encodeURIComponent).join(",")}`;
  });
  if (!ids.length) { await picker(); return; }
  const missing = [];
  const results = await Promise.all(ids.map(async (id) => {
    try {
      const base = `${API}/runs/${encodeURIComponent(id)}`;
      const [run, metrics] = await Promise.all([api(base), api(`${base}/metrics`)]);
      return { run, metrics };
    } catch { missing.push(id); return null; }
  }));
  loaded.push(...results.filter(Boolean));
  if (missing.length) { $("#compare-missing").hidden = false; $("#compare-missing").textContent = `Not found: ${missing.join(", ")}`; }
  $("#compare-summary").textContent = `${loaded.length} run${loaded.length === 1 ? "" : "s"}`;
  if (!loaded.length) return;
  if (loaded.every(({ metrics }) => !(metrics.val_loss || []).some((v) => v !== null))) $("#compare-metric").value = "train_loss";
  for (const id of ["#compare-chart-card", "#compare-metrics-card", "#compare-diff-card"]) $(id).hidden = false;
  $("#compare-metric").addEventListener("change", drawChart);
  $("#compare-log").addEventListener("change", drawChart);
  drawChart(); metricsTable(); diffTable();
}

init();
