// The runs page: one page of GET /runs at a time (limit ≤ 100, so 5,000 runs cost the
// same as 50), filters and sort in the URL, polled while anything on it is live.
import { $, API, ApiError, api, badge, clear, duration, el, features, fmt, fmtSeconds, pct, when } from "./api.js";

const LIVE = new Set(["queued", "running"]);
const params = new URLSearchParams(location.search);
const state = {
  status: params.get("status") || "",
  dataset: params.get("dataset") || "",
  tag: params.get("tag") || "",
  sort: params.get("sort") || "",
  page: Math.max(0, Number(params.get("page") || 0)),
  size: Number(params.get("size") || 50),
  name: "",
  items: [],
  total: 0,
  serverSort: false,
  selected: new Set(),
};
let timer = null;
let inflight = null;

function syncUrl() {
  const q = new URLSearchParams();
  for (const key of ["status", "dataset", "tag", "sort"]) if (state[key]) q.set(key, state[key]);
  if (state.page) q.set("page", state.page);
  if (state.size !== 50) q.set("size", state.size);
  history.replaceState(null, "", q.toString() ? `/?${q}` : "/");
}

const best = (run, key) => (run.best_metrics && run.best_metrics[key] != null ? run.best_metrics[key] : run.metrics?.[key]);
const SORT_VALUE = {
  created_at: (r) => r.created_at,
  best_val_loss: (r) => best(r, "val_loss") ?? best(r, "train_loss") ?? Infinity,
  best_val_accuracy: (r) => best(r, "val_accuracy") ?? -Infinity,
  duration: (r) => duration(r) ?? -1,
};

function sortedItems() {
  let items = state.items;
  if (state.name) {
    const needle = state.name.toLowerCase();
    items = items.filter((r) => (r.name || "").toLowerCase().includes(needle) || r.id.includes(needle));
  }
  if (state.sort && !state.serverSort) {
    const desc = state.sort.startsWith("-");
    const value = SORT_VALUE[state.sort.replace(/^-/, "")];
    items = [...items].sort((a, b) => {
      const va = value(a);
      const vb = value(b);
      return (va < vb ? -1 : va > vb ? 1 : 0) * (desc ? -1 : 1);
    });
  }
  return items;
}

function optimizerText(spec) {
  const opt = spec?.optimizer;
  if (!opt) return "—";
  return `${opt.type} · lr ${fmt(opt.learning_rate, 3)}`;
}

function row(run) {
  const progress = run.progress || {};
  const share = progress.epochs ? Math.min(1, (progress.epoch || 0) / progress.epochs) : 0;
  const box = el("input", { type: "checkbox", "aria-label": "Select for comparison", checked: state.selected.has(run.id) });
  box.addEventListener("change", () => {
    if (box.checked) state.selected.add(run.id); else state.selected.delete(run.id);
    updateCompare();
  });
  const tags = Object.entries(run.tags || {}).map(([k, v]) => el("span", { class: "tag" }, `${k}:${v}`));
  const valLoss = best(run, "val_loss") ?? best(run, "train_loss");
  return el("tr", { "data-run-id": run.id, "data-status": run.status },
    el("td", {}, box),
    el("td", { class: "name-cell" }, el("a", { href: `/runs/${encodeURIComponent(run.id)}`, class: "run-name", title: run.name || run.id }, run.name || run.id),
      tags.length ? el("div", {}, tags) : null),
    el("td", {}, badge(run.status)),
    el("td", {}, run.dataset),
    el("td", { class: "small" }, optimizerText(run.spec)),
    el("td", { class: "small" }, el("span", { class: "progress", title: `${Math.round(share * 100)} %` }, el("span", { style: `width:${(share * 100).toFixed(1)}%` })),
      ` ${progress.epoch ?? 0}/${progress.epochs ?? "?"}`),
    el("td", { class: "num" }, fmt(valLoss)),
    el("td", { class: "num" }, pct(best(run, "val_accuracy") ?? best(run, "train_accuracy"))),
    el("td", { class: "num" }, fmtSeconds(duration(run))),
    el("td", { class: "small muted", title: run.created_at }, when(run.created_at)),
  );
}

function render() {
  const items = sortedItems();
  const body = $("#runs-table tbody");
  if (!items.length) {
    clear(body, el("tr", {}, el("td", { colspan: 10, class: "empty" },
      state.total ? "No run on this page matches." : "No runs yet. ", state.total ? null : el("a", { href: "/runs/new" }, "Start one."))));
  } else {
    clear(body, items.map(row));
  }
  const first = state.total ? state.page * state.size + 1 : 0;
  const last = Math.min(state.total, (state.page + 1) * state.size);
  $("#page-label").textContent = `${first}–${last} of ${state.total}`;
  $("#prev").disabled = state.page === 0;
  $("#next").disabled = last >= state.total;
  const live = state.items.filter((r) => LIVE.has(r.status)).length;
  $("#runs-summary").textContent = `${state.total} run${state.total === 1 ? "" : "s"}${live ? ` · ${live} live on this page` : ""}`;
  for (const th of document.querySelectorAll("th[data-sort]")) {
    const key = th.dataset.sort;
    const current = state.sort.replace(/^-/, "");
    if (current === key) th.setAttribute("aria-sort", state.sort.startsWith("-") ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
    const button = th.querySelector("button.sort");
    const arrow = current === key ? (state.sort.startsWith("-") ? " ↓" : " ↑") : "";
    button.textContent = `${button.dataset.label}${arrow}`;
  }
}

function updateCompare() {
  const button = $("#compare-selected");
  button.disabled = state.selected.size < 2;
  button.textContent = state.selected.size ? `Compare selected (${state.selected.size})` : "Compare selected";
}

async function load() {
  clearTimeout(timer);
  if (inflight) inflight.abort();
  inflight = new AbortController();
  const q = new URLSearchParams({ limit: state.size, offset: state.page * state.size });
  if (state.status) q.set("status", state.status);
  if (state.dataset) q.set("dataset", state.dataset);
  if (state.tag) q.set("tag", state.tag);
  if (state.sort && state.serverSort) q.set("sort", state.sort);
  try {
    const page = await api(`${API}/runs?${q}`, { signal: inflight.signal });
    state.items = page.items;
    state.total = page.total;
    $("#live-state").textContent = `updated ${new Date().toLocaleTimeString()}`;
    render();
  } catch (error) {
    if (error.name === "AbortError") return;
    $("#live-state").textContent = error instanceof ApiError ? `error: ${error.message}` : "server unreachable, retrying";
  }
  const live = state.items.some((r) => LIVE.has(r.status));
  timer = setTimeout(poll, live ? 1500 : 8000);
}

function poll() {
  if (document.visibilityState === "visible") load();
  else timer = setTimeout(poll, 2000);
}

function refilter() { state.page = 0; syncUrl(); load(); }

async function init() {
  const paths = await features();
  const listParams = (paths[`${API}/runs`]?.get?.parameters || []).map((p) => p.name);
  state.serverSort = listParams.includes("sort");
  $("#f-tag-field").hidden = !listParams.includes("tag");
  for (const th of document.querySelectorAll("th[data-sort]")) {
    const button = el("button", { class: "sort", type: "button", dataset: { label: th.textContent } }, th.textContent);
    th.replaceChildren(button);
    button.addEventListener("click", () => {
      const key = th.dataset.sort;
      const firstDesc = key !== "best_val_loss";
      const current = state.sort.replace(/^-/, "");
      if (current !== key) state.sort = firstDesc ? `-${key}` : key;
      else state.sort = state.sort.startsWith("-") ? key : `-${key}`;
      if (state.serverSort) refilter(); else { syncUrl(); render(); }
    });
  }
  $("#f-status").value = state.status;
  $("#f-tag").value = state.tag;
  $("#page-size").value = String(state.size);
  $("#f-status").addEventListener("change", (e) => { state.status = e.target.value; refilter(); });
  $("#f-dataset").addEventListener("change", (e) => { state.dataset = e.target.value; refilter(); });
  $("#f-tag").addEventListener("change", (e) => { state.tag = e.target.value.trim(); refilter(); });
  $("#f-name").addEventListener("input", (e) => { state.name = e.target.value.trim(); render(); });
  $("#filters").addEventListener("submit", (e) => e.preventDefault());
  $("#page-size").addEventListener("change", (e) => { state.size = Number(e.target.value); refilter(); });
  $("#prev").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); syncUrl(); load(); });
  $("#next").addEventListener("click", () => { state.page += 1; syncUrl(); load(); });
  $("#select-all").addEventListener("change", (e) => {
    for (const run of sortedItems()) { if (e.target.checked) state.selected.add(run.id); else state.selected.delete(run.id); }
    render(); updateCompare();
  });
  $("#compare-selected").addEventListener("click", () => {
    location.href = `/compare?runs=${[...state.selected].map(encodeURIComponent).join(",")}`;
  });
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") load(); });
  load();
  try {
    const datasets = await api(`${API}/datasets`);
    const select = $("#f-dataset");
    for (const ds of datasets.items) select.append(el("option", { value: ds.id }, ds.builtin ? ds.id : `${ds.name} (${ds.id})`));
    select.value = state.dataset;
  } catch { /* the filter stays "any" */ }
}

init();
