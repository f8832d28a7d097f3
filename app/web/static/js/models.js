// The model registry (feature-detected: a friendly notice while the server has none).
import { $, API, api, clear, el, fmt, has, unavailable, when } from "./api.js";

function versionsTable(model) {
  const aliases = {};
  for (const [alias, version] of Object.entries(model.aliases || {})) (aliases[version] ||= []).push(alias);
  return el("table", {}, el("thead", {}, el("tr", {}, ["Version", "Aliases", "Run", "Epoch", "Val loss", "Created"].map((h) => el("th", {}, h)))),
    el("tbody", {}, (model.versions || []).map((v) => el("tr", { "data-version": v.version },
      el("td", { class: "num" }, String(v.version)), el("td", {}, (aliases[v.version] || []).map((a) => el("span", { class: "tag" }, `@${a}`))),
      el("td", {}, el("a", { href: `/runs/${encodeURIComponent(v.run_id)}` }, v.run_id)), el("td", { class: "num" }, String(v.epoch ?? "final")),
      el("td", { class: "num" }, fmt(v.metrics?.val_loss ?? v.metrics?.train_loss)), el("td", { class: "small muted" }, when(v.created_at))))));
}

async function init() {
  const box = $("#models");
  if (!(await has("/models"))) { clear(box, el("section", { class: "card" }, unavailable("The model registry"))); return; }
  const page = await api(`${API}/models`);
  const items = page.items || page;
  if (!items.length) { clear(box, el("section", { class: "card" }, el("p", { class: "empty" }, "No models yet. POST /api/v1/models, then add versions from succeeded runs."))); return; }
  clear(box, items.map((m) => el("section", { class: "card", "data-model": m.name },
    el("h2", {}, el("span", {}, m.name), el("span", { class: "muted small" }, `latest v${m.latest_version ?? "—"} · serve at /serve/${m.name}/<version or alias>`)),
    m.description ? el("p", { class: "muted" }, m.description) : null,
    el("div", { class: "table-wrap" }, versionsTable(m)))));
}

init().catch((error) => clear($("#models"), el("p", { class: "notice error" }, error.message)));
