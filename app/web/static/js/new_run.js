// The new-run form: every spec field with its default, the JSON it sends and the curl
// line, client-side hints, and the server's 422 errors placed at the field their `loc` names.
import { $, API, ApiError, api, apiKey, clear, el, toast } from "./api.js";

const ACTIVATIONS = ["linear", "step", "sigmoid", "tanh", "arctan", "relu", "leaky_relu", "softmax"];
const OPTIMIZERS = {
  sgd: [["learning_rate", 0.01], ["momentum", 0], ["nesterov", false]],
  adagrad: [["learning_rate", 0.01], ["epsilon", 1e-7], ["initial_accumulator", 0]],
  rmsprop: [["learning_rate", 0.001], ["rho", 0.9], ["epsilon", 1e-7]],
  adam: [["learning_rate", 0.001], ["beta1", 0.9], ["beta2", 0.999], ["epsilon", 1e-7]],
};
const SCHEDULES = { constant: [], inverse_time: [["decay", 0.01]], step: [["step_size", 100], ["gamma", 0.5]], exponential: [["gamma", 0.999]] };
const DEFAULT_SPEC = {
  name: "", dataset: "iris",
  model: { layers: [{ units: 16, activation: "relu" }, { units: 3, activation: "softmax" }], init: "auto" },
  optimizer: { type: "adam", learning_rate: 0.01 },
  training: { epochs: 100, batch_size: 32, shuffle: true, seed: 0, validation_split: 0.2, standardize: true, early_stopping: null },
  dtype: "float32",
};
let datasets = {};
let optional = { snapshots: false, threads: false, tags: false };

// ------------------------------------------------------------------ building the form

function layerRow(layer, index, count) {
  const units = el("input", { type: "number", min: 1, step: 1, value: layer.units, "data-path": `model.layers.${index}.units`, "aria-label": `Layer ${index + 1} units`, class: "layer-units" });
  const act = el("select", { "data-path": `model.layers.${index}.activation`, "aria-label": `Layer ${index + 1} activation`, class: "layer-act" },
    ACTIVATIONS.map((a) => el("option", { value: a, selected: a === layer.activation }, a)));
  const remove = el("button", { type: "button", class: "btn btn-small", "aria-label": `Remove layer ${index + 1}`, disabled: count === 1 }, "✕");
  remove.addEventListener("click", () => { const layers = readLayers(); layers.splice(index, 1); renderLayers(layers); update(); });
  return el("div", { class: "layer-row" }, el("span", { class: "idx" }, `#${index + 1}`),
    el("div", { class: "field" }, units, el("span", { class: "hint" }, index === count - 1 ? "units (output)" : "units")),
    el("div", { class: "field" }, act), remove);
}
function readLayers() {
  return [...document.querySelectorAll("#layers .layer-row")].map((row) => ({
    units: Number(row.querySelector(".layer-units").value), activation: row.querySelector(".layer-act").value,
  }));
}
function renderLayers(layers) { clear($("#layers"), layers.map((l, i) => layerRow(l, i, layers.length))); }

function numberField(prefix, name, value, def) {
  const id = `${prefix}-${name}`;
  if (typeof def === "boolean") {
    return el("label", { class: "check" }, el("input", { type: "checkbox", id, checked: Boolean(value), "data-path": `${prefix === "opt" ? "optimizer" : "optimizer.schedule"}.${name}`, "data-name": name }), ` ${name} (default ${def})`);
  }
  return el("div", { class: "field" }, el("label", { for: id }, name.replace(/_/g, " ")),
    el("input", { id, type: "number", step: "any", value: value ?? def, "data-path": `${prefix === "opt" ? "optimizer" : "optimizer.schedule"}.${name}`, "data-name": name }),
    el("span", { class: "hint" }, `default ${def}`));
}
function renderOptimizer(opt) {
  clear($("#opt-fields"), OPTIMIZERS[opt.type].map(([name, def]) => numberField("opt", name, opt[name], def)));
}
function renderSchedule(schedule) {
  clear($("#sched-fields"), SCHEDULES[schedule.type].map(([name, def]) => numberField("sched", name, schedule[name], def)));
}

/** Put a spec (the defaults, or a run's to clone) into the form. */
function fill(spec) {
  $("#name").value = spec.name || "";
  if (spec.dataset) $("#dataset").value = spec.dataset;
  renderLayers(spec.model.layers);
  const init = spec.model.init || "auto";
  $("#init").value = typeof init === "string" ? init : init.type;
  $("#init-std").value = typeof init === "object" ? init.std : 1;
  $("#loss").value = spec.loss || "";
  $("#dtype").value = spec.dtype || "float32";
  const opt = spec.optimizer;
  $("#opt-type").value = opt.type;
  renderOptimizer(opt);
  $("#opt-l1").value = opt.l1 ?? 0;
  $("#opt-l2").value = opt.l2 ?? 0;
  const schedule = opt.schedule || { type: "constant" };
  $("#sched-type").value = schedule.type;
  renderSchedule(schedule);
  const t = { ...DEFAULT_SPEC.training, ...(spec.training || {}) };
  $("#epochs").value = t.epochs;
  $("#full-batch").checked = t.batch_size === null;
  $("#batch-size").value = t.batch_size ?? 32;
  $("#seed").value = t.seed;
  $("#val-split").value = t.validation_split;
  $("#shuffle").checked = t.shuffle;
  $("#standardize").checked = t.standardize;
  $("#es-on").checked = Boolean(t.early_stopping);
  if (t.early_stopping) {
    $("#es-patience").value = t.early_stopping.patience;
    $("#es-delta").value = t.early_stopping.min_delta;
    $("#es-restore").checked = t.early_stopping.restore_best;
  }
  if (t.snapshots !== undefined) $("#snapshots").value = Array.isArray(t.snapshots) ? t.snapshots.join(", ") : t.snapshots;
  if (t.threads !== undefined) $("#threads").value = t.threads;
  $("#tags").value = Object.entries(spec.tags || {}).map(([k, v]) => `${k}=${v}`).join("\n");
}

// ------------------------------------------------------------------ reading it back

const num = (selector) => {
  const raw = $(selector).value.trim();
  return raw === "" ? null : Number(raw);
};
function readParams(container) {
  const out = {};
  for (const input of container.querySelectorAll("input[data-name]")) {
    out[input.dataset.name] = input.type === "checkbox" ? input.checked : (input.value.trim() === "" ? null : Number(input.value));
  }
  return out;
}

/** The body that Start run sends. */
function buildSpec() {
  const spec = {};
  const name = $("#name").value.trim();
  if (name) spec.name = name;
  spec.dataset = $("#dataset").value;
  const initType = $("#init").value;
  spec.model = { layers: readLayers(), init: initType === "normal" ? { type: "normal", std: num("#init-std") } : initType };
  if ($("#loss").value) spec.loss = $("#loss").value;
  const type = $("#opt-type").value;
  const schedType = $("#sched-type").value;
  spec.optimizer = { type, ...readParams($("#opt-fields")), l1: num("#opt-l1"), l2: num("#opt-l2"), schedule: { type: schedType, ...readParams($("#sched-fields")) } };
  const training = {
    epochs: num("#epochs"),
    batch_size: $("#full-batch").checked ? null : num("#batch-size"),
    shuffle: $("#shuffle").checked, seed: num("#seed"), validation_split: num("#val-split"),
    standardize: $("#standardize").checked,
    early_stopping: $("#es-on").checked ? { patience: num("#es-patience"), min_delta: num("#es-delta"), restore_best: $("#es-restore").checked } : null,
  };
  if (optional.snapshots) {
    const raw = $("#snapshots").value.trim();
    if (raw && raw !== "log") training.snapshots = raw === "none" ? "none" : raw.split(/[\s,]+/).filter(Boolean).map(Number);
  }
  if (optional.threads && num("#threads") !== 1 && num("#threads") !== null) training.threads = num("#threads");
  spec.training = training;
  spec.dtype = $("#dtype").value;
  if (optional.tags) {
    const tags = {};
    for (const line of $("#tags").value.split("\n")) {
      const at = line.indexOf("=");
      if (at > 0) tags[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    if (Object.keys(tags).length) spec.tags = tags;
  }
  return spec;
}

function shellQuote(text) { return `'${text.replace(/'/g, "'\\''")}'`; }
function curlLine(spec) {
  const auth = apiKey() ? " \\\n  -H 'Authorization: Bearer $ANNLAB_API_KEY'" : "";
  return `curl -X POST ${location.origin}${API}/runs \\\n  -H 'Content-Type: application/json'${auth} \\\n  -d ${shellQuote(JSON.stringify(spec))}`;
}

// ------------------------------------------------------------------ hints

function hints(spec) {
  const ds = datasets[spec.dataset];
  const layers = spec.model.layers;
  const out = layers[layers.length - 1];
  const messages = [];
  layers.slice(0, -1).forEach((l, i) => { if (l.activation === "softmax") messages.push([`model.layers.${i}.activation`, "softmax only on the last layer"]); });
  if (ds) {
    $("#dataset-hint").textContent = `${ds.task} · ${ds.n_samples} × ${ds.n_features}` + (ds.class_names ? ` · ${ds.class_names.length} classes` : ` → ${ds.n_outputs}`);
    const want = ds.task === "classification" && ds.n_outputs === 2 && out.activation === "sigmoid" ? 1 : ds.n_outputs;
    if (out.units !== want) messages.push([`model.layers.${layers.length - 1}.units`, `${ds.id} needs ${want} output unit${want === 1 ? "" : "s"}`]);
    let inputs = ds.n_features;
    let params = 0;
    for (const l of layers) { params += (inputs + 1) * (l.units || 0); inputs = l.units || 0; }
    $("#params-hint").textContent = `${params.toLocaleString()} parameters`;
  }
  if (spec.training.validation_split > 0.9 || spec.training.validation_split < 0) messages.push(["training.validation_split", "must be between 0 and 0.9"]);
  if (spec.optimizer.learning_rate > 1) messages.push(["optimizer.learning_rate", "a learning rate above 1 usually diverges"]);
  for (const node of document.querySelectorAll(".hint.warn.client")) node.remove();
  for (const [path, text] of messages) {
    const input = document.querySelector(`[data-path="${path}"]`);
    if (input) input.closest(".field, .layer-row").append(el("span", { class: "hint warn client" }, `⚠ ${text}`));
  }
}

function update() {
  const spec = buildSpec();
  $("#json-preview").textContent = JSON.stringify(spec, null, 2);
  $("#curl-line").textContent = curlLine(spec);
  $("#init-std-field").hidden = $("#init").value !== "normal";
  $("#es-fields").hidden = !$("#es-on").checked;
  $("#batch-size").disabled = $("#full-batch").checked;
  hints(spec);
}

// ------------------------------------------------------------------ server errors at their fields

function fieldFor(loc) {
  const parts = loc.filter((p) => p !== "body").map(String);
  let bestNode = null;
  let bestLength = 0;
  for (const node of document.querySelectorAll("[data-path]")) {
    const path = node.dataset.path.split(".");
    if (path[0] !== parts[0]) continue;
    let at = 0;
    for (const part of parts) if (at < path.length && part === path[at]) at++;
    if (at === path.length && path.length > bestLength && !node.closest("[hidden]")) { bestNode = node; bestLength = path.length; }
  }
  return bestNode;
}

function clearErrors() {
  for (const node of document.querySelectorAll(".field-error.server")) node.remove();
  for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  $("#form-errors").hidden = true;
}

function showErrors(error) {
  const items = Array.isArray(error.detail) ? error.detail : [{ loc: [], msg: error.message }];
  const summary = [];
  let first = null;
  for (const item of items) {
    const node = fieldFor(item.loc || []);
    const where = (item.loc || []).filter((p) => p !== "body").join(".");
    if (node) {
      node.setAttribute("aria-invalid", "true");
      node.closest(".field, .layer-row, .check, h3").append(el("p", { class: "field-error server", "data-loc": where }, item.msg));
      first = first || node;
    }
    summary.push(el("li", {}, where ? `${where}: ` : "", item.msg));
  }
  clear($("#form-errors"), el("b", {}, `The server refused the spec (HTTP ${error.status}):`), el("ul", {}, summary));
  $("#form-errors").hidden = false;
  (first || $("#form-errors")).scrollIntoView({ block: "center" });
  if (first) first.focus();
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  const button = $("#submit");
  button.disabled = true;
  try {
    const run = await api(`${API}/runs`, { method: "POST", body: buildSpec() });
    location.href = `/runs/${encodeURIComponent(run.id)}`;
  } catch (error) {
    if (error instanceof ApiError) showErrors(error);
    else toast(`Could not reach the server: ${error.message}`, "error");
    button.disabled = false;
  }
}

async function init() {
  try {
    const doc = await (await fetch("/openapi.json")).json();
    const schemas = Object.values(doc.components?.schemas || {});
    const training = schemas.find((s) => s.properties?.validation_split);
    const run = schemas.find((s) => s.properties?.dataset && s.properties?.model);
    optional = { snapshots: Boolean(training?.properties?.snapshots), threads: Boolean(training?.properties?.threads), tags: Boolean(run?.properties?.tags) };
  } catch { /* only the core fields */ }
  $("#snapshots-field").hidden = !optional.snapshots;
  $("#threads-field").hidden = !optional.threads;
  $("#tags-fieldset").hidden = !optional.tags;
  try {
    const list = await api(`${API}/datasets`);
    for (const ds of list.items) {
      datasets[ds.id] = ds;
      $("#dataset").append(el("option", { value: ds.id }, ds.builtin ? `${ds.id} (built-in)` : `${ds.name} (${ds.id})`));
    }
  } catch (error) { toast(`Datasets: ${error.message}`, "error"); }
  let spec = DEFAULT_SPEC;
  const from = new URLSearchParams(location.search).get("from");
  if (from) {
    try { spec = (await api(`${API}/runs/${encodeURIComponent(from)}`)).spec; } catch { toast("Could not load the run to copy", "error"); }
  }
  fill(spec);
  const form = $("#spec-form");
  form.addEventListener("input", update);
  form.addEventListener("change", (event) => {
    if (event.target.id === "opt-type") renderOptimizer({ type: event.target.value });
    if (event.target.id === "sched-type") renderSchedule({ type: event.target.value });
    update();
  });
  form.addEventListener("submit", submit);
  $("#add-layer").addEventListener("click", () => {
    const layers = readLayers();
    layers.splice(layers.length - 1, 0, { units: 16, activation: "relu" });
    renderLayers(layers); update();
  });
  $("#fit-output").addEventListener("click", () => {
    const ds = datasets[$("#dataset").value];
    if (!ds) return;
    const layers = readLayers();
    layers[layers.length - 1] = { units: ds.n_outputs, activation: ds.task === "classification" ? "softmax" : "linear" };
    renderLayers(layers); update();
  });
  $("#copy-curl").addEventListener("click", async () => {
    const text = curlLine(buildSpec());
    try { await navigator.clipboard.writeText(text); toast("curl line copied"); } catch {
      const range = document.createRange(); range.selectNodeContents($("#curl-line"));
      getSelection().removeAllRanges(); getSelection().addRange(range); toast("Selected: press Ctrl+C");
    }
  });
  update();
}

init();
