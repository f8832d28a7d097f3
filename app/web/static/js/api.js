// Shared by every page: the API client (auth, errors, SSE over fetch), safe DOM
// building (text only, never HTML from data), formatting, the palette, and the
// min/max down-sampler for long metric series.

export const API = "/api/v1";
const KEY = "annlab.apiKey";

/** An HTTP error from the API: its status and FastAPI's `detail` (a string or a list). */
export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : describeDetail(detail) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

export function describeDetail(detail) {
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  if (detail && typeof detail === "object") return JSON.stringify(detail);
  return detail == null ? "" : String(detail);
}

export function apiKey() { return sessionStorage.getItem(KEY); }

let keyPrompt = null;
/** Ask for the key once (the dialog of base.html); concurrent 401s share one prompt. */
function askForKey(message) {
  if (keyPrompt) return keyPrompt;
  const dialog = document.getElementById("auth-dialog");
  const form = document.getElementById("auth-form");
  const input = document.getElementById("auth-key");
  const error = document.getElementById("auth-error");
  error.hidden = !message;
  error.textContent = message || "";
  keyPrompt = new Promise((resolve) => {
    form.addEventListener("submit", () => {
      sessionStorage.setItem(KEY, input.value.trim());
      input.value = "";
      keyPrompt = null;
      showAuthState();
      resolve();
    }, { once: true });
  });
  dialog.showModal();
  input.focus();
  return keyPrompt;
}

function showAuthState() {
  const state = document.getElementById("auth-state");
  const forget = document.getElementById("auth-forget");
  if (!state) return;
  const has = Boolean(apiKey());
  state.hidden = !has;
  forget.hidden = !has;
  state.textContent = has ? "🔑 key in this tab" : "";
}

export function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** fetch() against the API with the key; a 401 asks for a key and tries again. */
export async function rawFetch(path, options = {}, retried = false) {
  const headers = { ...(options.headers || {}), ...authHeaders() };
  const response = await fetch(path.startsWith("/") ? path : `${API}/${path}`, { ...options, headers });
  if (response.status === 401) {
    const hadKey = Boolean(apiKey());
    if (hadKey) sessionStorage.removeItem(KEY);
    if (retried && !hadKey) return response;
    await askForKey(hadKey ? "That key was not accepted. Try another." : "");
    return rawFetch(path, options, true);
  }
  return response;
}

/** JSON in, JSON out; a non-2xx status throws ApiError; a 204 gives null. */
export async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const options = { method, headers: { Accept: "application/json", ...headers }, signal };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  const response = await rawFetch(path, options);
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) throw new ApiError(response.status, data && data.detail !== undefined ? data.detail : data);
  return data;
}

let openapi = null;
/** The paths of the server's OpenAPI document: how pages detect endpoints that may not exist yet. */
export async function features() {
  if (!openapi) {
    openapi = fetch("/openapi.json").then((r) => (r.ok ? r.json() : { paths: {} }))
      .then((doc) => doc.paths || {}).catch(() => ({}));
  }
  return openapi;
}
export async function has(path, method = "get") {
  const paths = await features();
  return Boolean(paths[API + path] && paths[API + path][method]);
}

/** Whether GET `path`'s query parameter `name` accepts `value` (an enum in the schema, or free text). */
export async function paramAllows(path, name, value) {
  const op = (await features())[API + path]?.get;
  const param = (op?.parameters || []).find((p) => p.name === name);
  if (!param) return false;
  const text = JSON.stringify(param.schema || {});
  return !text.includes('"enum"') && !text.includes('"const"') ? true : text.includes(`"${value}"`);
}

/** Read a text/event-stream with fetch (EventSource cannot send the bearer header). */
export async function streamEvents(path, onEvent, signal, lastEventId) {
  const headers = { Accept: "text/event-stream" };
  if (lastEventId) headers["Last-Event-ID"] = String(lastEventId);
  const response = await rawFetch(path, { headers, signal });
  if (!response.ok || !response.body) throw new ApiError(response.status, "event stream unavailable");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue;
      let parsed = data.join("\n");
      try { parsed = JSON.parse(parsed); } catch { /* plain text */ }
      onEvent(event, parsed);
    }
  }
}

// ------------------------------------------------------------------ DOM (text only)

/** el("td", {class: "num"}, "1.0", child): children are nodes or text (never parsed as HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(selector, root = document) { return root.querySelector(selector); }
export function clear(node, ...children) { node.replaceChildren(); node.append(...children.flat().filter(Boolean)); return node; }

export function badge(status) {
  return el("span", { class: `badge badge-${status}`, "data-status": status }, status);
}

export function toast(message, kind = "") {
  const box = document.getElementById("toast");
  const item = el("div", { class: kind }, message);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

export function pageData(name) { return document.getElementById("page").dataset[name] || ""; }

/** A card saying a feature is not on this server (its endpoint answered 404). */
export function unavailable(what) {
  return el("div", { class: "notice", "data-unavailable": "" },
    `${what} is not available on this server yet: its API endpoints are not there. This page lights up once they are.`);
}

// ------------------------------------------------------------------ numbers and colours

/** Okabe–Ito, safe for the common colour-vision deficiencies. */
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
export const color = (i) => PALETTE[i % PALETTE.length];

export function fmt(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (typeof value !== "number") return String(value);
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(digits - 1);
  return Number(value.toPrecision(digits)).toString();
}
export const pct = (v) => (v === null || v === undefined ? "—" : `${(100 * v).toFixed(1)} %`);

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return date.toISOString().slice(0, 16).replace("T", " ");
}

export function duration(run) {
  if (!run.started_at) return null;
  const end = run.finished_at ? new Date(run.finished_at) : new Date();
  return (end - new Date(run.started_at)) / 1000;
}
export function fmtSeconds(s) {
  if (s === null || s === undefined) return "—";
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/**
 * Down-sample (x, y) to at most ~`target` points, keeping each bucket's minimum and
 * maximum in their order, so spikes and the curve's envelope survive. Nulls are kept
 * out of buckets (a gap stays a gap only at bucket resolution).
 */
export function downsample(x, y, target = 2000) {
  const n = x.length;
  if (n <= target) return { x, y };
  const buckets = Math.max(1, Math.floor(target / 2));
  const size = n / buckets;
  const outX = [];
  const outY = [];
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor(b * size);
    const end = Math.min(n, Math.floor((b + 1) * size));
    let lo = -1;
    let hi = -1;
    for (let i = start; i < end; i++) {
      const v = y[i];
      if (v === null || v === undefined || !Number.isFinite(v)) continue;
      if (lo < 0 || v < y[lo]) lo = i;
      if (hi < 0 || v > y[hi]) hi = i;
    }
    if (lo < 0) continue;
    const first = Math.min(lo, hi);
    const second = Math.max(lo, hi);
    outX.push(x[first]); outY.push(y[first]);
    if (second !== first) { outX.push(x[second]); outY.push(y[second]); }
  }
  return { x: outX, y: outY };
}

/** TensorBoard's debiased exponential moving average; weight 0 returns the series. */
export function smooth(values, weight) {
  if (!weight) return values;
  const out = new Array(values.length);
  let last = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) { out[i] = null; continue; }
    last = last * weight + (1 - weight) * v;
    count++;
    out[i] = last / (1 - weight ** count);
  }
  return out;
}

/** A user-typed string for a Plotly label: Plotly reads a few HTML tags in labels, so
 * escape them (it shows the entities as the characters they stand for). */
export function plotText(value) {
  return String(value ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export const PLOT_CONFIG = {
  displaylogo: false, responsive: true,
  modeBarButtonsToRemove: ["lasso2d", "select2d"],
  toImageButtonOptions: { format: "png", scale: 2 },
};
export function baseLayout(extra = {}) {
  return {
    margin: { l: 56, r: 16, t: 28, b: 44 },
    font: { family: "system-ui, DejaVu Sans, sans-serif", size: 12, color: "#1d2330" },
    paper_bgcolor: "#fff", plot_bgcolor: "#fff",
    legend: { orientation: "h", y: 1.12, x: 0, font: { size: 11 } },
    xaxis: { gridcolor: "#edf0f4", zeroline: false, automargin: true },
    yaxis: { gridcolor: "#edf0f4", zeroline: false, automargin: true },
    colorway: PALETTE,
    ...extra,
  };
}

/** Save a Blob under a file name (the API answers need the bearer header, so no plain links). */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function download(path, name) {
  const response = await rawFetch(path);
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try { detail = describeDetail((await response.json()).detail); } catch { /* keep status */ }
    throw new ApiError(response.status, detail);
  }
  saveBlob(await response.blob(), name);
}

document.addEventListener("DOMContentLoaded", () => {
  showAuthState();
  const forget = document.getElementById("auth-forget");
  if (forget) forget.addEventListener("click", () => { sessionStorage.removeItem(KEY); showAuthState(); location.reload(); });
});

/** A dark code block with a Copy button (a curl line a user is meant to paste). */
export function copyBlock(text, attrs = {}) {
  const pre = el("pre", { class: "code" }, text);
  const button = el("button", { class: "btn btn-small copy", type: "button" }, "Copy");
  button.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(pre.textContent); toast("Copied"); } catch {
      const range = document.createRange(); range.selectNodeContents(pre);
      getSelection().removeAllRanges(); getSelection().addRange(range); toast("Selected: press Ctrl+C");
    }
  });
  return el("div", { class: "code-block", ...attrs }, button, pre);
}

/** The origin a curl line should name: this page's own. */
export const ORIGIN = location.origin;
