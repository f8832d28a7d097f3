// The model's pictures on a run page: the decision boundary over the snapshots (slider
// and play), the network with its weights coloured by sign and sized by magnitude, and
// the backward pass of one row. Endpoints that may not exist yet are feature-detected.
import { $, API, ApiError, PALETTE, PLOT_CONFIG, api, baseLayout, clear, el, fmt, has, plotText } from "./api.js";

const POS = "#0072B2";
const NEG = "#D55E00";
const MAX_UNITS = 24;

/** The dataset's rows as {features, targets} when the server offers them, else null. */
export async function datasetRows(dataset) {
  if (!(await has("/datasets/{dataset_id}/data"))) return null;
  try {
    const doc = await api(`${API}/datasets/${encodeURIComponent(dataset.id)}/data?format=json`);
    return doc && Array.isArray(doc.features) ? doc : null;
  } catch { return null; }
}

function classIndex(target, classNames) {
  if (typeof target === "number" && Number.isInteger(target) && !(classNames || []).includes(String(target))) return target;
  const at = (classNames || []).indexOf(String(target));
  return at >= 0 ? at : Number(target);
}

function discreteScale(k) {
  const scale = [];
  for (let i = 0; i < k; i++) { scale.push([i / k, PALETTE[i % PALETTE.length]]); scale.push([(i + 1) / k, PALETTE[i % PALETTE.length]]); }
  return scale;
}

export class Boundary {
  constructor(runId, dataset) {
    this.runId = runId;
    this.dataset = dataset;
    this.epochs = [];
    this.cache = new Map();
    this.rows = null;
    this.playing = null;
    this.onEpoch = () => {};
  }

  /** True when this run can have a boundary on this server (the card is shown). */
  async available() {
    const d = this.dataset;
    const shapeOk = (d.task === "classification" && d.n_features === 2) || (d.task === "regression" && d.n_features === 1);
    if (!shapeOk) return false;
    return (await has("/runs/{run_id}/decision-boundary")) && (await has("/runs/{run_id}/snapshots"));
  }

  async start() {
    $("#boundary-card").hidden = false;
    this.rows = await datasetRows(this.dataset);
    $("#boundary-note").textContent = this.rows ? "" : "The dataset's points are not served by this server; the regions alone are shown.";
    $("#boundary-slider").addEventListener("input", () => this.show(Number($("#boundary-slider").value)));
    $("#boundary-play").addEventListener("click", () => this.toggle());
    await this.refresh();
  }

  /** Refetch the snapshot list (it grows while the run trains). */
  async refresh() {
    let epochs;
    try { epochs = (await api(`${API}/runs/${this.runId}/snapshots`)).epochs || []; } catch (error) {
      if (error instanceof ApiError && error.status === 404) { $("#boundary-card").hidden = true; return; }
      throw error;
    }
    const slider = $("#boundary-slider");
    const atEnd = Number(slider.value) >= this.epochs.length - 1;
    this.epochs = epochs;
    slider.max = String(Math.max(0, epochs.length - 1));
    slider.disabled = epochs.length < 2;
    $("#boundary-play").disabled = epochs.length < 2;
    if (!epochs.length) { $("#boundary-epoch").textContent = "no snapshot yet"; return; }
    if (atEnd && !this.playing) { slider.value = String(epochs.length - 1); await this.show(epochs.length - 1); }
  }

  async fetch(epoch) {
    if (!this.cache.has(epoch)) {
      this.cache.set(epoch, api(`${API}/runs/${this.runId}/decision-boundary?epoch=${epoch}&resolution=80`).catch((error) => { this.cache.delete(epoch); throw error; }));
    }
    return this.cache.get(epoch);
  }

  async show(index) {
    const epoch = this.epochs[index];
    if (epoch === undefined) return;
    $("#boundary-epoch").textContent = `epoch ${epoch} · snapshot ${index + 1} of ${this.epochs.length}`;
    let grid;
    try { grid = await this.fetch(epoch); } catch (error) { $("#boundary-note").textContent = error.message; return; }
    if (this.epochs[Number($("#boundary-slider").value)] !== epoch) return;
    const node = $("#chart-boundary");
    window.Plotly.react(node, this.traces(grid), this.layout(grid), PLOT_CONFIG);
    node.dataset.epoch = String(epoch);
    this.onEpoch(epoch);
  }

  traces(grid) {
    const d = this.dataset;
    const names = d.feature_names || ["x", "y"];
    if (grid.values) {
      const out = [{ x: grid.x, y: grid.values, mode: "lines", name: "fitted", line: { color: PALETTE[0], width: 3 } }];
      if (this.rows) out.unshift({ x: this.rows.features.map((r) => r[0]), y: this.rows.targets.map((t) => (Array.isArray(t) ? t[0] : t)), mode: "markers", name: "data", marker: { color: "#9aa3b1", size: 4 } });
      return out;
    }
    const k = grid.class_names.length;
    const out = [{
      type: "heatmap", x: grid.x, y: grid.y, z: grid.predictions, customdata: grid.confidence, zmin: -0.5, zmax: k - 0.5,
      colorscale: discreteScale(k), showscale: false, opacity: 0.35, zsmooth: false,
      hovertemplate: `${plotText(names[0])} %{x:.2f}<br>${plotText(names[1])} %{y:.2f}<br>class %{z}<br>confidence %{customdata:.2f}<extra></extra>`,
    }];
    if (this.rows) {
      grid.class_names.forEach((name, c) => {
        const idx = this.rows.targets.map((t, i) => [classIndex(t, grid.class_names), i]).filter(([t]) => t === c).map(([, i]) => i);
        out.push({ x: idx.map((i) => this.rows.features[i][0]), y: idx.map((i) => this.rows.features[i][1]), mode: "markers", type: "scatter", name: plotText(name),
          marker: { color: PALETTE[c % PALETTE.length], size: 6, line: { color: "#fff", width: 0.8 }, symbol: ["circle", "square", "diamond", "triangle-up", "x"][c % 5] } });
      });
    }
    return out;
  }

  layout(grid) {
    const names = this.dataset.feature_names || ["x", "y"];
    return baseLayout({
      margin: { l: 50, r: 10, t: 30, b: 44 }, uirevision: "boundary",
      xaxis: { ...baseLayout().xaxis, title: { text: plotText(names[0]) }, range: [grid.x[0], grid.x[grid.x.length - 1]] },
      yaxis: { ...baseLayout().yaxis, title: { text: grid.values ? "output" : plotText(names[1]) }, ...(grid.values ? {} : { range: [grid.y[0], grid.y[grid.y.length - 1]] }) },
    });
  }

  toggle() {
    const button = $("#boundary-play");
    if (this.playing) { clearInterval(this.playing); this.playing = null; button.textContent = "▶ Play"; return; }
    const slider = $("#boundary-slider");
    if (Number(slider.value) >= this.epochs.length - 1) slider.value = "0";
    button.textContent = "❚❚ Pause";
    const step = async () => {
      const next = Number(slider.value) + 1;
      if (next >= this.epochs.length) { this.toggle(); return; }
      slider.value = String(next);
      await this.show(next);
    };
    this.show(Number(slider.value));
    this.playing = setInterval(step, 700);
  }
}

// ------------------------------------------------------------------ the network diagram

export function drawNetwork(doc, dataset) {
  const sizes = [doc.layers[0].weights.length, ...doc.layers.map((l) => l.units)];
  const shown = sizes.map((n) => Math.min(n, MAX_UNITS));
  const ypos = (l, j) => (shown[l] === 1 ? 0 : 1 - (2 * j) / (shown[l] - 1)) * Math.min(1, shown[l] / 8);
  let maxAbs = 0;
  for (const layer of doc.layers) for (const row of layer.weights) for (const w of row) maxAbs = Math.max(maxAbs, Math.abs(w));
  maxAbs = maxAbs || 1;
  const bins = new Map();
  doc.layers.forEach((layer, l) => {
    for (let i = 0; i < shown[l]; i++) {
      for (let j = 0; j < shown[l + 1]; j++) {
        const w = layer.weights[i][j];
        const level = Math.min(3, Math.floor((4 * Math.abs(w)) / maxAbs));
        const key = `${w >= 0 ? "+" : "-"}${level}`;
        if (!bins.has(key)) bins.set(key, { x: [], y: [] });
        const bin = bins.get(key);
        bin.x.push(l, l + 1, null);
        bin.y.push(ypos(l, i), ypos(l + 1, j), null);
      }
    }
  });
  const traces = [...bins.entries()].sort().map(([key, bin]) => {
    const level = Number(key.slice(1));
    return { x: bin.x, y: bin.y, mode: "lines", hoverinfo: "skip", showlegend: false,
      line: { color: key[0] === "+" ? POS : NEG, width: 0.6 + 1.6 * level }, opacity: 0.35 + 0.2 * level };
  });
  const nx = [];
  const ny = [];
  const text = [];
  const colors = [];
  shown.forEach((n, l) => {
    for (let j = 0; j < n; j++) {
      nx.push(l); ny.push(ypos(l, j));
      if (l === 0) { text.push(`input ${plotText(dataset.feature_names?.[j] ?? j)}`); colors.push("#5d6675"); continue; }
      const b = doc.layers[l - 1].biases[j];
      text.push(`layer ${l} unit ${j + 1} (${doc.layers[l - 1].activation})<br>bias ${fmt(b)}`);
      colors.push(b >= 0 ? POS : NEG);
    }
  });
  traces.push({ x: nx, y: ny, mode: "markers", text, hoverinfo: "text", showlegend: false,
    marker: { size: 14, color: "#fff", line: { color: colors, width: 2.5 } } });
  traces.push({ x: [null], y: [null], mode: "lines", name: "positive weight", line: { color: POS, width: 3 } });
  traces.push({ x: [null], y: [null], mode: "lines", name: "negative weight", line: { color: NEG, width: 3 } });
  const labels = sizes.map((n, l) => ({ x: l, y: -1.18, text: `${l === 0 ? "inputs" : doc.layers[l - 1].activation} · ${n}${n > MAX_UNITS ? ` (${MAX_UNITS} shown)` : ""}`, showarrow: false, font: { size: 11, color: "#5d6675" } }));
  const layout = baseLayout({
    margin: { l: 10, r: 10, t: 30, b: 20 }, annotations: labels, hovermode: "closest",
    xaxis: { visible: false, range: [-0.3, sizes.length - 0.7] }, yaxis: { visible: false, range: [-1.3, 1.15] },
  });
  window.Plotly.react($("#chart-network"), traces, layout, PLOT_CONFIG);
  $("#network-note").textContent = `Edge colour: sign of the weight (blue +, orange −); width: |w| relative to the largest (${fmt(maxAbs)}). Node ring: the bias's sign.`;
}

// ------------------------------------------------------------------ the backward pass

function vector(values) { return el("span", { class: "vec" }, `[${values.map((v) => fmt(v, 3)).join(", ")}]`); }

export function showBackprop(result) {
  const blocks = [el("div", { class: "stats" },
    el("div", { class: "stat" }, el("b", {}, fmt(result.loss)), el("span", {}, "loss")),
    el("div", { class: "stat" }, el("b", {}, fmt(result.penalty)), el("span", {}, "penalty")),
    el("div", { class: "stat" }, el("b", {}, String(result.epoch ?? "final")), el("span", {}, "epoch")))];
  result.layers.forEach((layer, l) => {
    const rows = [["inputs", layer.inputs[0]], ["net = inputs·W + b", layer.net[0]], ["outputs = f(net)", layer.outputs[0]],
      ["∂L/∂outputs", layer.dvalues[0]], ["∂L/∂net", layer.dnet[0]], ["∂L/∂b", layer.dbiases], ["∂L/∂inputs", layer.dinputs[0]]];
    const table = el("table", {}, el("tbody", {}, rows.map(([name, v]) => el("tr", {}, el("th", {}, name), el("td", {}, vector(v || []))))));
    const heat = el("div", { class: "chart", style: "height:220px" });
    blocks.push(el("div", { class: "card", "data-layer": l }, el("h3", {}, `Layer ${l + 1}`), el("div", { class: "split" }, table, heat)));
    requestAnimationFrame(() => window.Plotly.react(heat, [{ type: "heatmap", z: layer.dweights, colorscale: "RdBu", zmid: 0, reversescale: true,
      hovertemplate: "input %{y} → unit %{x}<br>∂L/∂w %{z:.4g}<extra></extra>" }],
    baseLayout({ title: { text: "∂L/∂W", font: { size: 12 } }, margin: { l: 40, r: 10, t: 30, b: 30 }, xaxis: { title: { text: "unit" } }, yaxis: { title: { text: "input" }, autorange: "reversed" } }), PLOT_CONFIG));
  });
  clear($("#backprop-out"), blocks);
}
