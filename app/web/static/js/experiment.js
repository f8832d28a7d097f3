// One experiment: its runs with their parameters, the summary over seeds, and every run's
// validation loss on one chart.
import { $, API, PLOT_CONFIG, api, badge, baseLayout, clear, color, downsample, el, fmt, has, pageData, pct, toast, unavailable, when, plotText } from "./api.js";

const id = pageData("experimentId");
const base = `${API}/experiments/${encodeURIComponent(id)}`;
const paramsText = (params) => Object.entries(params || {}).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
const stat = (s) => (s ? `${fmt(s.mean)} ± ${s.std === null || s.std === undefined ? "—" : fmt(s.std)}` : "—");

async function init() {
  const missing = $("#exp-missing");
  if (!(await has("/experiments/{experiment_id}"))) { missing.hidden = false; clear(missing, unavailable("Experiments")); return; }
  let x;
  try { x = await api(base); } catch (error) { missing.hidden = false; clear(missing, el("p", { class: "notice error" }, error.message)); return; }
  $("#exp-body").hidden = false;
  $("#exp-name").textContent = x.name || x.id;
  clear($("#exp-status"), badge(x.status));
  $("#exp-meta").textContent = `${x.id} · ${(x.runs || []).length} runs · created ${when(x.created_at)}` + (x.best ? ` · best ${x.best.metric} ${fmt(x.best.value)}` : "");
  $("#exp-compare").href = `/compare?runs=${(x.runs || []).map((r) => r.id).join(",")}`;
  const cancel = $("#exp-cancel");
  cancel.hidden = !["queued", "running"].includes(x.status);
  cancel.addEventListener("click", async () => { try { await api(`${base}/cancel`, { method: "POST" }); location.reload(); } catch (e) { toast(e.message, "error"); } });
  clear($("#exp-runs"), el("thead", {}, el("tr", {}, ["Run", "Parameters", "Status", "Best epoch", "Best val loss", "Best val acc."].map((h) => el("th", {}, h)))),
    el("tbody", {}, (x.runs || []).map((r, i) => el("tr", { "data-run-id": r.id },
      el("td", {}, el("span", { class: "legend-dot", style: `background:${color(i)}` }), el("a", { href: `/runs/${encodeURIComponent(r.id)}` }, r.id)),
      el("td", { class: "mono small" }, paramsText(r.params)), el("td", {}, badge(r.status)), el("td", { class: "num" }, String(r.best_epoch ?? "—")),
      el("td", { class: "num" }, fmt(r.best_metrics?.val_loss ?? r.best_metrics?.train_loss)), el("td", { class: "num" }, pct(r.best_metrics?.val_accuracy))))));
  if ((x.summary || []).length) {
    $("#exp-summary-card").hidden = false;
    clear($("#exp-summary"), el("thead", {}, el("tr", {}, ["Parameters", "Seeds", "Val loss (mean ± std)", "Val acc. (mean ± std)"].map((h) => el("th", {}, h)))),
      el("tbody", {}, x.summary.map((s) => el("tr", {}, el("td", { class: "mono small" }, paramsText(s.params)), el("td", { class: "num" }, String(s.n)),
        el("td", { class: "num" }, stat(s.val_loss)), el("td", { class: "num" }, stat(s.val_accuracy))))));
  }
  if (await has("/experiments/{experiment_id}/metrics")) {
    const metrics = (await api(`${base}/metrics`)).runs || {};
    const traces = (x.runs || []).map((r, i) => {
      const m = metrics[r.id] || { epoch: [], val_loss: [], train_loss: [] };
      const y = (m.val_loss || []).some((v) => v !== null) ? m.val_loss : m.train_loss;
      const d = downsample(m.epoch || [], y || [], 1000);
      return { x: d.x, y: d.y, mode: "lines", name: plotText(paramsText(r.params) || r.id), line: { color: color(i), width: 1.8 } };
    });
    window.Plotly.react($("#chart-experiment"), traces, baseLayout({ xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: "loss" } }, legend: { orientation: "h", y: -0.2 } }), PLOT_CONFIG);
  }
}

init();
