// The optimizer race: the contour plot of a 2-D test function (clicked to choose the
// start), optimizers with their parameters, and their trajectories from
// POST /optimizers/trajectories animated step by step.
import { $, API, ApiError, PLOT_CONFIG, api, baseLayout, clear, color, el, fmt, has } from "./api.js";

/** API.md's five functions, with plotting windows and starts of ours (used when the
 * server has no GET /optimizers/functions, and to draw contours of the known ones). */
const FUNCTIONS = {
  quadratic: { formula: "x² + 10 y²", f: (x, y) => x * x + 10 * y * y, x: [-3, 3], y: [-2, 2], start: [-2.5, 1.5], minima: [[0, 0]] },
  rosenbrock: { formula: "(1 − x)² + 100 (y − x²)²", f: (x, y) => (1 - x) ** 2 + 100 * (y - x * x) ** 2, x: [-2, 2], y: [-1, 3], start: [-1.5, 2], minima: [[1, 1]] },
  beale: { formula: "(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²", f: (x, y) => (1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2 + (2.625 - x + x * y ** 3) ** 2, x: [-4.5, 4.5], y: [-4.5, 4.5], start: [1, 1.4], minima: [[3, 0.5]] },
  himmelblau: { formula: "(x² + y − 11)² + (x + y² − 7)²", f: (x, y) => (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2, x: [-5, 5], y: [-5, 5], start: [-0.5, -0.5], minima: [[3, 2], [-2.805118, 3.131312], [-3.77931, -3.283186], [3.584428, -1.848126]] },
  saddle: { formula: "x² − y²", f: (x, y) => x * x - y * y, x: [-2, 2], y: [-2, 2], start: [-1.5, 0.05], minima: [] },
};
const PARAMS = {
  sgd: [["learning_rate", 0.001], ["momentum", 0.9], ["nesterov", false]],
  adagrad: [["learning_rate", 0.5]],
  rmsprop: [["learning_rate", 0.01], ["rho", 0.9]],
  adam: [["learning_rate", 0.05], ["beta1", 0.9], ["beta2", 0.999]],
};
const GRID = 110;
let functions = { ...FUNCTIONS };
let start = [0, 0];
let animation = null;

/** Merge GET /optimizers/functions into the built-in table (its windows and minima win). */
async function loadFunctions() {
  if (!(await has("/optimizers/functions"))) return;
  try {
    const doc = await api(`${API}/optimizers/functions`);
    const list = Array.isArray(doc.functions) ? doc.functions : Object.entries(doc.functions || {}).map(([name, v]) => ({ name, ...v }));
    for (const fn of list) {
      const known = FUNCTIONS[fn.name] || {};
      const win = fn.window || {};
      functions[fn.name] = { ...known, formula: fn.formula || known.formula || fn.name,
        x: win.x || fn.x_range || known.x || [-3, 3], y: win.y || fn.y_range || known.y || [-3, 3],
        start: fn.start || known.start || [0, 0], minima: fn.minima || known.minima || [] };
    }
  } catch { /* the built-in table */ }
}

function current() { return functions[$("#fn").value]; }

function contour(fn) {
  const xs = Array.from({ length: GRID }, (_, i) => fn.x[0] + ((fn.x[1] - fn.x[0]) * i) / (GRID - 1));
  const ys = Array.from({ length: GRID }, (_, j) => fn.y[0] + ((fn.y[1] - fn.y[0]) * j) / (GRID - 1));
  if (!fn.f) return { type: "contour", x: xs, y: ys, z: ys.map(() => xs.map(() => 0)), showscale: false, hoverinfo: "x+y" };
  const positive = fn.minima.length > 0;
  const z = ys.map((y) => xs.map((x) => (positive ? Math.log10(1 + fn.f(x, y)) : fn.f(x, y))));
  return { type: "contour", x: xs, y: ys, z, colorscale: "Viridis", reversescale: false, ncontours: 24,
    contours: { coloring: "heatmap", showlines: true }, line: { width: 0.5, color: "rgba(255,255,255,.35)" },
    colorbar: { thickness: 10, title: { text: positive ? "log₁₀(1+f)" : "f", side: "right" } },
    hovertemplate: "x %{x:.3f}<br>y %{y:.3f}<extra></extra>" };
}

function baseTraces(fn) {
  return [
    contour(fn),
    { x: fn.minima.map((m) => m[0]), y: fn.minima.map((m) => m[1]), mode: "markers", name: "minimum", marker: { symbol: "star", size: 14, color: "#fff", line: { color: "#000", width: 1 } }, hoverinfo: "skip" },
    { x: [start[0]], y: [start[1]], mode: "markers", name: "start", marker: { symbol: "diamond", size: 12, color: "#F0E442", line: { color: "#000", width: 1 } }, hoverinfo: "skip" },
  ];
}

function layout(fn) {
  return baseLayout({ margin: { l: 44, r: 10, t: 10, b: 36 }, uirevision: $("#fn").value, showlegend: true,
    legend: { orientation: "h", y: -0.09, x: 0, bgcolor: "rgba(255,255,255,.8)" }, hovermode: "closest",
    xaxis: { range: fn.x, title: { text: "x" }, zeroline: false, gridcolor: "rgba(0,0,0,0)" },
    yaxis: { range: fn.y, title: { text: "y" }, zeroline: false, gridcolor: "rgba(0,0,0,0)" } });
}

function drawFunction() {
  stop();
  const fn = current();
  const inside = (v, [lo, hi]) => v >= lo && v <= hi;
  start = inside(fn.start[0], fn.x) && inside(fn.start[1], fn.y)
    ? [...fn.start] : [fn.x[0] + 0.2 * (fn.x[1] - fn.x[0]), fn.y[0] + 0.8 * (fn.y[1] - fn.y[0])];
  $("#start-x").value = start[0];
  $("#start-y").value = start[1];
  $("#fn-formula").textContent = `f(x, y) = ${fn.formula}`;
  window.Plotly.react($("#chart-race"), baseTraces(fn), layout(fn), PLOT_CONFIG);
  clear($("#race-results"));
  window.Plotly.react($("#chart-values"), [], valuesLayout(), PLOT_CONFIG);
  $("#race-status").textContent = "";
}

function moveStart(x, y) {
  start = [Number(x.toFixed(3)), Number(y.toFixed(3))];
  $("#start-x").value = start[0];
  $("#start-y").value = start[1];
  stop();
  const fn = current();
  window.Plotly.react($("#chart-race"), baseTraces(fn), layout(fn), PLOT_CONFIG);
  $("#chart-race").dataset.start = start.join(",");
}

function optimizerRow(type = "adam", values = {}) {
  const select = el("select", { class: "opt-type", "aria-label": "Optimizer type" }, Object.keys(PARAMS).map((t) => el("option", { value: t, selected: t === type }, t)));
  const params = el("span", { class: "row" });
  const fill = (t) => clear(params, PARAMS[t].map(([name, def]) => (typeof def === "boolean"
    ? el("label", { class: "check" }, el("input", { type: "checkbox", "data-name": name, checked: values[name] ?? def }), name)
    : el("span", { class: "field" }, el("span", { class: "hint" }, name.replace("learning_rate", "lr")),
      el("input", { type: "number", step: "any", "data-name": name, value: values[name] ?? def, size: 6, style: "width:6.5rem", "aria-label": name })))));
  select.addEventListener("change", () => { values = {}; fill(select.value); recolour(); });
  fill(type);
  const remove = el("button", { type: "button", class: "btn btn-small", "aria-label": "Remove optimizer" }, "✕");
  const row = el("div", { class: "opt-row" }, el("div", { class: "row" }, el("span", { class: "legend-dot" }), select, el("span", { class: "spacer" }), remove), params);
  remove.addEventListener("click", () => { if (document.querySelectorAll(".opt-row").length > 1) { row.remove(); recolour(); } });
  $("#optimizer-rows").append(row);
  recolour();
}

function recolour() {
  document.querySelectorAll(".opt-row .legend-dot").forEach((dot, i) => { dot.style.background = color(i); });
}

function readOptimizers() {
  return [...document.querySelectorAll(".opt-row")].map((row) => {
    const spec = { type: row.querySelector(".opt-type").value };
    for (const input of row.querySelectorAll("input[data-name]")) spec[input.dataset.name] = input.type === "checkbox" ? input.checked : Number(input.value);
    return spec;
  });
}

function label(opt) {
  const lr = opt.learning_rate !== undefined ? ` lr ${fmt(opt.learning_rate, 3)}` : "";
  const extra = opt.type === "sgd" && opt.momentum ? ` m ${opt.momentum}${opt.nesterov ? " nesterov" : ""}` : "";
  return `${opt.type}${lr}${extra}`;
}

function valuesLayout() {
  return baseLayout({ margin: { l: 50, r: 10, t: 10, b: 36 }, xaxis: { title: { text: "step" } }, yaxis: { type: "log", title: { text: "f" }, exponentformat: "power" }, showlegend: false });
}

function stop() { if (animation) cancelAnimationFrame(animation); animation = null; }

function animate(answer, steps) {
  stop();
  const fn = current();
  const gd = $("#chart-race");
  const paths = answer.trajectories;
  const traces = baseTraces(fn);
  const first = traces.length;
  paths.forEach((t, i) => {
    traces.push({ x: [], y: [], mode: "lines", name: label(t.optimizer), line: { color: color(i), width: 2.5 }, hoverinfo: "skip" });
    traces.push({ x: [], y: [], mode: "markers", showlegend: false, marker: { color: color(i), size: 10, line: { color: "#fff", width: 1.5 } }, hoverinfo: "skip" });
  });
  window.Plotly.react(gd, traces, layout(fn), PLOT_CONFIG);
  const shift = fn.minima.length ? 0 : null;
  const positive = (v) => (shift === null ? Math.abs(v) + 1e-12 : Math.max(v, 1e-12));
  window.Plotly.react($("#chart-values"), paths.map((t, i) => ({ x: [], y: [], mode: "lines", line: { color: color(i), width: 2 }, name: label(t.optimizer) })), valuesLayout(), PLOT_CONFIG);
  const began = performance.now();
  const status = $("#race-status");
  delete status.dataset.done;
  const frame = (now) => {
    const speed = Number($("#speed").value);
    const step = Math.max(0, Math.min(steps, Math.floor(((now - began) / 1000) * speed)));
    const xs = []; const ys = []; const idx = []; const vx = []; const vy = []; const vidx = [];
    paths.forEach((t, i) => {
      const n = Math.min(step + 1, t.points.length);
      const pts = t.points.slice(0, n);
      xs.push(pts.map((p) => p[0]), [pts[n - 1][0]]);
      ys.push(pts.map((p) => p[1]), [pts[n - 1][1]]);
      idx.push(first + 2 * i, first + 2 * i + 1);
      vx.push(Array.from({ length: n }, (_, k) => k));
      vy.push(t.values.slice(0, n).map(positive));
      vidx.push(i);
    });
    window.Plotly.restyle(gd, { x: xs, y: ys }, idx);
    window.Plotly.restyle($("#chart-values"), { x: vx, y: vy }, vidx);
    status.textContent = `step ${step} / ${steps}`;
    gd.dataset.step = String(step);
    if (step < steps) animation = requestAnimationFrame(frame);
    else { animation = null; finish(answer, steps); }
  };
  animation = requestAnimationFrame(frame);
}

function finish(answer, steps) {
  const status = $("#race-status");
  status.textContent = `finished: ${steps} steps`;
  status.dataset.done = "1";
  clear($("#race-results"), el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Optimizer"), el("th", { class: "num" }, "final f"), el("th", {}, "end point"))),
    el("tbody", {}, answer.trajectories.map((t, i) => {
      const last = t.points[t.points.length - 1];
      return el("tr", { "data-optimizer": t.optimizer.type }, el("td", {}, el("span", { class: "legend-dot", style: `background:${color(i)}` }), label(t.optimizer)),
        el("td", { class: "num" }, t.diverged_at !== undefined && t.diverged_at !== null ? `diverged at step ${t.diverged_at}` : fmt(t.values[t.values.length - 1])),
        el("td", { class: "mono" }, `(${fmt(last[0], 3)}, ${fmt(last[1], 3)})`));
    }))));
}

async function race(event) {
  event.preventDefault();
  const errors = $("#race-errors");
  errors.hidden = true;
  const steps = Number($("#steps").value);
  start = [Number($("#start-x").value), Number($("#start-y").value)];
  const body = { function: $("#fn").value, start, steps, optimizers: readOptimizers() };
  $("#race-status").textContent = "computing…";
  try {
    const answer = await api(`${API}/optimizers/trajectories`, { method: "POST", body });
    animate(answer, Math.max(...answer.trajectories.map((t) => t.points.length - 1)));
  } catch (error) {
    errors.hidden = false;
    errors.textContent = error instanceof ApiError ? error.message : `Could not reach the server: ${error.message}`;
    $("#race-status").textContent = "";
  }
}

async function init() {
  await loadFunctions();
  clear($("#fn"), Object.keys(functions).map((name) => el("option", { value: name }, name)));
  $("#fn").value = functions.rosenbrock ? "rosenbrock" : Object.keys(functions)[0];
  optimizerRow("sgd");
  optimizerRow("adam");
  drawFunction();
  $("#fn").addEventListener("change", drawFunction);
  $("#add-optimizer").addEventListener("click", () => optimizerRow("rmsprop"));
  $("#race-form").addEventListener("submit", race);
  $("#chart-race").on("plotly_click", (event) => {
    const point = event.points && event.points[0];
    if (point && typeof point.x === "number") moveStart(point.x, point.y);
  });
}

init();
