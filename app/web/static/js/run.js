// The run page: header and actions, live curves (SSE read with fetch, polling as the
// fallback), the model's pictures, predict, and downloads.
import { $, API, ApiError, api, badge, clear, download, duration, el, fmt, fmtSeconds, has, pageData, paramAllows, pct, rawFetch, saveBlob, streamEvents, toast, when } from "./api.js";
import { Curves, appendProgress } from "./run_curves.js";
import { Boundary, datasetRows, drawNetwork, showBackprop } from "./run_model.js";

const LIVE = new Set(["queued", "running"]);
const runId = pageData("runId");
const base = `${API}/runs/${encodeURIComponent(runId)}`;
const curves = new Curves();
let run = null;
let dataset = null;
let boundary = null;
let weightsEpoch = undefined;
let finishedOnce = false;

function header() {
  $("#run-name").textContent = run.name || run.id;
  document.title = `${run.name || run.id} · annlab`;
  clear($("#run-status"), badge(run.status));
  const p = run.progress || {};
  $("#run-meta").textContent = [`${run.id}`, `dataset ${run.dataset}`, `${(run.n_parameters ?? 0).toLocaleString()} parameters`,
    `epoch ${p.epoch ?? 0} of ${p.epochs ?? "?"}`, `created ${when(run.created_at)}`, run.stop_reason ? `stop: ${run.stop_reason}` : null,
    run.owner ? `owner ${run.owner}` : null].filter(Boolean).join(" · ");
  const errorBox = $("#run-error");
  errorBox.hidden = !run.error;
  errorBox.textContent = run.error || "";
  const live = LIVE.has(run.status);
  $("#cancel").hidden = !live;
  has("/runs/{run_id}/stop", "post").then((ok) => { $("#stop").hidden = !(ok && live); });
  const best = run.best_metrics || {};
  const m = run.metrics || {};
  const stat = (value, label) => el("div", { class: "stat" }, el("b", {}, value), el("span", {}, label));
  clear($("#run-stats"),
    stat(fmt(m.train_loss), "train loss"), stat(fmt(m.val_loss), "val loss"),
    m.val_accuracy != null || m.train_accuracy != null ? stat(pct(m.val_accuracy ?? m.train_accuracy), m.val_accuracy != null ? "val accuracy" : "train accuracy") : null,
    stat(run.best_epoch ?? "—", "best epoch"),
    run.best_metrics ? stat(fmt(best.val_loss ?? best.train_loss), "best loss") : null,
    stat(fmtSeconds(duration(run)), "duration"),
    stat(fmt(m.learning_rate), "learning rate"));
  $("#run-spec").textContent = JSON.stringify(run.spec, null, 2);
  const succeeded = run.status === "succeeded";
  for (const id of ["#dl-weights", "#dl-npz", "#predict-go"]) $(id).disabled = !succeeded;
  $("#predict-note").textContent = succeeded ? "" : "Predictions need a succeeded run.";
  curves.bestEpoch = run.best_epoch;
}

async function loadRun() {
  run = await api(base);
  header();
  if (!LIVE.has(run.status) && !finishedOnce) { finishedOnce = true; await finished(); }
}

async function loadMetrics() { curves.set(await api(`${base}/metrics`)); }

/** Follow a live run: SSE first; if the stream cannot be read, poll. */
async function follow() {
  try {
    let refetching = false;
    const last = curves.metrics.epoch.length;
    await streamEvents(`${base}/events`, (event, data) => {
      if (event === "progress") {
        if (!appendProgress(curves.metrics, data) && !refetching) { refetching = true; loadMetrics().finally(() => { refetching = false; }); }
        curves.schedule();
        if (run.progress) { run.progress.epoch = data.epoch; run.metrics = { ...run.metrics, ...data.metrics }; throttledHeader(); }
      } else if (event === "status") {
        loadRun();
      }
    }, undefined, last);
  } catch {
    while (run && LIVE.has(run.status)) {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await Promise.all([loadRun(), loadMetrics()]).catch(() => {});
    }
  }
  await Promise.all([loadRun(), loadMetrics()]);
}

let headerTimer = null;
function throttledHeader() {
  if (headerTimer) return;
  headerTimer = setTimeout(() => { headerTimer = null; header(); }, 500);
  if (boundary && !boundary.refreshing) { boundary.refreshing = true; setTimeout(() => boundary.refresh().finally(() => { boundary.refreshing = false; }), 2000); }
}

/** Once the run has ended: weights, ONNX probe, predict and backprop. */
async function finished() {
  if (boundary) await boundary.refresh().catch(() => {});
  await showWeights(weightsEpoch);
  if (run.status === "succeeded" && (await paramAllows("/runs/{run_id}/weights", "format", "onnx"))) {
    const onnx = await rawFetch(`${base}/weights?format=onnx`).catch(() => null);
    if (onnx && onnx.ok) {
      const blob = await onnx.blob();
      const button = $("#dl-onnx");
      button.hidden = false;
      button.onclick = () => saveBlob(blob, `${run.id}.onnx`);
    }
  }
}

async function showWeights(epoch) {
  if (epoch === undefined && run.status !== "succeeded") return;
  const query = epoch !== undefined ? `?epoch=${epoch}` : "";
  try {
    const doc = await api(`${base}/weights${query}`);
    drawNetwork(doc, dataset);
    $("#network-epoch").textContent = epoch !== undefined ? `epoch ${epoch}` : "final model";
  } catch (error) {
    if (error instanceof ApiError && (error.status === 409 || error.status === 404)) {
      $("#network-note").textContent = run.status === "succeeded" ? error.message : "Weights appear once the run has succeeded.";
    } else throw error;
  }
}

function predictBox() {
  const names = dataset.feature_names || [];
  clear($("#predict-inputs"), names.map((name, i) => el("div", { class: "field" }, el("label", { for: `pf-${i}` }, name),
    el("input", { id: `pf-${i}`, type: "number", step: "any", value: "0", required: true }))));
  $("#predict-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const row = names.map((_, i) => Number($(`#pf-${i}`).value));
    try {
      const out = await api(`${base}/predict`, { method: "POST", body: { inputs: [row] } });
      const outputs = out.outputs[0];
      const classes = dataset.class_names;
      clear($("#predict-out"), el("p", {}, "Prediction: ", el("b", { id: "prediction" }, String(out.predictions[0]))),
        classes && outputs.length === classes.length ? el("table", {}, el("tbody", {}, classes.map((c, i) => el("tr", {}, el("td", {}, c),
          el("td", {}, el("span", { class: "progress", style: "width:160px" }, el("span", { style: `width:${(100 * outputs[i]).toFixed(1)}%` }))),
          el("td", { class: "num" }, pct(outputs[i])))))) : el("p", { class: "vec" }, `outputs ${JSON.stringify(outputs)}`));
    } catch (error) { clear($("#predict-out"), el("p", { class: "field-error" }, error.message)); }
  });
}

async function backpropPanel(rows) {
  if (!(await has("/runs/{run_id}/backprop", "post"))) return;
  $("#backprop-card").hidden = false;
  const names = dataset.feature_names || [];
  const first = rows?.features?.[0] || names.map(() => 0);
  clear($("#backprop-inputs"), names.map((name, i) => el("div", { class: "field" }, el("label", { for: `bp-${i}` }, name),
    el("input", { id: `bp-${i}`, type: "number", step: "any", value: String(first[i] ?? 0), size: 6 }))));
  const target = dataset.class_names
    ? el("select", { id: "backprop-target" }, dataset.class_names.map((c) => el("option", { value: c }, c)))
    : el("input", { id: "backprop-target", type: "number", step: "any", value: String(rows?.targets?.[0] ?? 0) });
  if (dataset.class_names && rows?.targets) target.value = String(typeof rows.targets[0] === "number" ? dataset.class_names[rows.targets[0]] : rows.targets[0]);
  clear($("#backprop-target-slot"), target);
  $("#backprop-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const epochValue = $("#backprop-epoch").value;
    const body = { inputs: [names.map((_, i) => Number($(`#bp-${i}`).value))],
      targets: [dataset.class_names ? target.value : Number(target.value)], epoch: epochValue ? Number(epochValue) : null };
    try { showBackprop(await api(`${base}/backprop`, { method: "POST", body })); } catch (error) {
      clear($("#backprop-out"), el("p", { class: "field-error" }, error.message));
    }
  });
}

function actions() {
  $("#clone").href = `/runs/new?from=${encodeURIComponent(runId)}`;
  const post = (what) => async () => {
    try { await api(`${base}/${what}`, { method: "POST" }); toast(`${what} requested`); loadRun(); } catch (error) { toast(error.message, "error"); }
  };
  $("#stop").addEventListener("click", post("stop"));
  $("#cancel").addEventListener("click", post("cancel"));
  $("#delete").addEventListener("click", async () => {
    if (!confirm("Delete this run and its metrics?")) return;
    try { await api(base, { method: "DELETE" }); location.href = "/"; } catch (error) { toast(error.message, "error"); }
  });
  $("#smoothing").addEventListener("input", (e) => { curves.smoothing = Number(e.target.value); $("#smoothing-value").textContent = curves.smoothing.toFixed(2); curves.schedule(); });
  $("#log-y").addEventListener("change", (e) => { curves.logY = e.target.checked; curves.schedule(); });
  $("#dl-csv").addEventListener("click", () => saveBlob(new Blob([curves.csv()], { type: "text/csv" }), `${run.id}-metrics.csv`));
  for (const format of ["png", "svg"]) {
    $(`#dl-${format}`).addEventListener("click", () => window.Plotly.downloadImage($("#chart-loss"), { format, filename: `${run.id}-loss`, width: 900, height: 500 }));
  }
  const fail = (error) => toast(error.message, "error");
  $("#dl-weights").addEventListener("click", () => download(`${base}/weights`, `${run.id}-weights.json`).catch(fail));
  $("#dl-npz").addEventListener("click", () => download(`${base}/weights?format=npz`, `${run.id}-weights.npz`).catch(fail));
}

async function init() {
  if (!runId) { showMissing("That is not a run id."); return; }
  try { run = await api(base); } catch (error) {
    showMissing(error instanceof ApiError && error.status === 404 ? `There is no run ${runId} (or it is not yours).` : error.message);
    return;
  }
  $("#run-body").hidden = false;
  actions();
  header();
  dataset = await api(`${API}/datasets/${encodeURIComponent(run.dataset)}`).catch(() => ({ id: run.dataset, feature_names: [], n_features: 0, task: "classification" }));
  predictBox();
  await loadMetrics();
  boundary = new Boundary(runId, dataset);
  if (await boundary.available()) {
    boundary.onEpoch = (epoch) => {
      weightsEpoch = epoch;
      showWeights(epoch);
      const select = $("#backprop-epoch");
      if (![...select.options].some((o) => o.value === String(epoch))) select.append(el("option", { value: String(epoch) }, `epoch ${epoch}`));
    };
    await boundary.start().catch(() => { $("#boundary-card").hidden = true; });
  } else boundary = null;
  backpropPanel(await datasetRows(dataset));
  if (LIVE.has(run.status)) await follow();
  await loadRun();
}

function showMissing(text) {
  const box = $("#run-missing");
  box.hidden = false;
  box.textContent = text;
}

init();
