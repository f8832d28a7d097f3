// The datasets page: the list, a CSV upload with a preview parsed in the browser, and a
// scatter plot of two-feature sets (from GET /datasets/{id}/data when the server has it).
import { $, API, ApiError, PALETTE, PLOT_CONFIG, api, baseLayout, clear, el, has, toast, unavailable, plotText } from "./api.js";

let items = [];
let parsed = null;

function parseCsv(text) {
  const lines = text.replace(/\r\n?/g, "\n").split("\n").filter((l) => l.trim());
  const head = lines[0] || "";
  const delimiter = [",", ";", "\t"].sort((a, b) => head.split(b).length - head.split(a).length)[0];
  const rows = lines.map((l) => l.split(delimiter).map((c) => c.trim().replace(/^"(.*)"$/, "$1")));
  return { header: rows[0] || [], rows: rows.slice(1), delimiter };
}

function scatter(title, features, targets, names, classNames) {
  const node = $("#chart-scatter");
  node.hidden = false;
  const traces = [];
  if (classNames) {
    classNames.forEach((c, k) => {
      const idx = targets.map((t, i) => [t, i]).filter(([t]) => String(t) === c || t === k).map(([, i]) => i);
      traces.push({ x: idx.map((i) => features[i][0]), y: idx.map((i) => features[i][1]), mode: "markers", type: "scatter", name: plotText(c),
        marker: { color: PALETTE[k % PALETTE.length], size: 6, symbol: ["circle", "square", "diamond", "triangle-up", "x"][k % 5], line: { color: "#fff", width: 0.6 } } });
    });
  } else {
    traces.push({ x: features.map((r) => r[0]), y: features.map((r) => r[1]), mode: "markers", type: "scatter", name: "rows",
      marker: { color: targets.map(Number), colorscale: "Viridis", showscale: true, size: 6 } });
  }
  window.Plotly.react(node, traces, baseLayout({ title: { text: plotText(title), font: { size: 13 } }, margin: { l: 50, r: 10, t: 40, b: 44 },
    xaxis: { ...baseLayout().xaxis, title: { text: plotText(names[0]) } }, yaxis: { ...baseLayout().yaxis, title: { text: plotText(names[1]) } } }), PLOT_CONFIG);
}

async function showScatter(id) {
  const ds = items.find((d) => d.id === id);
  if (!ds) return;
  const note = $("#scatter-note");
  if (!(await has("/datasets/{dataset_id}/data"))) {
    $("#chart-scatter").hidden = true;
    clear(note, unavailable("Plotting a stored dataset (GET /datasets/{id}/data)"),
      el("p", { class: "hint" }, "Choosing a CSV to upload draws its preview here."));
    return;
  }
  try {
    const doc = await api(`${API}/datasets/${encodeURIComponent(id)}/data?format=json`);
    scatter(ds.name, doc.features, doc.targets, ds.feature_names, ds.class_names);
    note.textContent = `${ds.n_samples} rows`;
  } catch (error) { note.textContent = error.message; }
}

function row(ds) {
  const del = ds.builtin ? null : el("button", { class: "btn btn-small btn-danger", type: "button" }, "Delete");
  if (del) del.addEventListener("click", async () => {
    if (!confirm(`Delete ${ds.name}?`)) return;
    try { await api(`${API}/datasets/${encodeURIComponent(ds.id)}`, { method: "DELETE" }); load(); } catch (error) { toast(error.message, "error"); }
  });
  const plot = ds.n_features === 2 ? el("button", { class: "btn btn-small", type: "button" }, "Scatter") : null;
  if (plot) plot.addEventListener("click", () => { $("#scatter-pick").value = ds.id; showScatter(ds.id); });
  return el("tr", { "data-dataset-id": ds.id }, el("td", { class: "mono" }, ds.id), el("td", { class: "name-cell" }, ds.name, ds.builtin ? el("span", { class: "tag" }, "built-in") : null),
    el("td", {}, ds.task), el("td", { class: "num" }, String(ds.n_samples)), el("td", { class: "num" }, String(ds.n_features)),
    el("td", { class: "small" }, ds.class_names ? ds.class_names.join(", ") : `${ds.n_outputs} output${ds.n_outputs === 1 ? "" : "s"}`),
    el("td", {}, el("div", { class: "row end" }, plot, del)));
}

async function load() {
  items = (await api(`${API}/datasets`)).items;
  clear($("#datasets-table tbody"), items.map(row));
  const pick = $("#scatter-pick");
  const current = pick.value;
  clear(pick, items.filter((d) => d.n_features === 2).map((d) => el("option", { value: d.id }, d.builtin ? d.id : d.name)));
  if (current) pick.value = current;
}

function preview() {
  const { header, rows } = parsed;
  const target = $("#up-target").value;
  const shown = rows.slice(0, 8);
  clear($("#up-preview"), el("p", { class: "hint" }, `${rows.length} rows × ${header.length} columns (delimiter “${parsed.delimiter === "\t" ? "tab" : parsed.delimiter}”); first ${shown.length}:`),
    el("div", { class: "table-wrap" }, el("table", { id: "up-table" }, el("thead", {}, el("tr", {}, header.map((h) => el("th", { class: h === target ? "num" : "" }, h === target ? `${h} (target)` : h)))),
      el("tbody", {}, shown.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))))));
  const featureCols = header.map((h, i) => i).filter((i) => header[i] !== target);
  if (featureCols.length === 2) {
    const t = header.indexOf(target);
    const features = rows.map((r) => featureCols.map((i) => Number(r[i])));
    const targets = rows.map((r) => r[t]);
    const classes = $("#up-task").value === "classification" ? [...new Set(targets)].sort() : null;
    scatter("preview (not uploaded yet)", features, targets, featureCols.map((i) => header[i]), classes);
    $("#scatter-note").textContent = "Preview of the chosen file, drawn in the browser.";
  }
}

async function upload(event) {
  event.preventDefault();
  const errors = $("#up-errors");
  errors.hidden = true;
  const form = new FormData();
  form.append("file", $("#up-file").files[0]);
  form.append("target", $("#up-target").value);
  form.append("task", $("#up-task").value);
  if ($("#up-name").value.trim()) form.append("name", $("#up-name").value.trim());
  try {
    const ds = await api(`${API}/datasets`, { method: "POST", body: form });
    toast(`Uploaded ${ds.name}`);
    await load();
    if (ds.n_features === 2) { $("#scatter-pick").value = ds.id; showScatter(ds.id); }
  } catch (error) {
    errors.hidden = false;
    errors.textContent = error instanceof ApiError ? `The server refused the file: ${error.message}` : error.message;
  }
}

async function init() {
  await load();
  $("#scatter-pick").addEventListener("change", (e) => showScatter(e.target.value));
  if (items.some((d) => d.id === "moons")) $("#scatter-pick").value = "moons";
  if (items.some((d) => d.n_features === 2)) showScatter($("#scatter-pick").value);
  $("#up-file").addEventListener("change", async () => {
    const file = $("#up-file").files[0];
    if (!file) return;
    parsed = parseCsv(await file.text());
    clear($("#up-target"), parsed.header.map((h) => el("option", { value: h }, h)));
    $("#up-target").value = parsed.header[parsed.header.length - 1];
    if (!$("#up-name").value) $("#up-name").placeholder = file.name.replace(/\.[^.]+$/, "");
    $("#up-go").disabled = false;
    preview();
  });
  $("#up-target").addEventListener("change", preview);
  $("#up-task").addEventListener("change", preview);
  $("#upload-form").addEventListener("submit", upload);
}

init();
