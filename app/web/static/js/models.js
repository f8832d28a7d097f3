// The model registry: every model with its versions (the run each came from, its metrics)
// and aliases, and how to call it: curl lines for MLflow's scoring protocol (/serve) and
// annlab's predict, filled with the dataset's columns and a real row, plus a "Try it" button.
import { $, API, ORIGIN, api, apiKey, clear, copyBlock, el, fmt, has, pct, toast, unavailable, when } from "./api.js";

const runs = new Map();
const datasets = new Map();

/** Fetch once per id; a failure (a deleted run, a set without /data) gives null. */
async function cached(map, key, load) {
  if (!map.has(key)) map.set(key, load().catch(() => null));
  return map.get(key);
}
const getRun = (id) => cached(runs, id, () => api(`${API}/runs/${encodeURIComponent(id)}`));
async function getDataset(id) {
  return cached(datasets, id, async () => {
    const ds = await api(`${API}/datasets/${encodeURIComponent(id)}`);
    let row = null;
    if (ds.n_samples <= 20000) {
      try { row = (await api(`${API}/datasets/${encodeURIComponent(id)}/data?format=json`)).features?.[0] ?? null; } catch { /* zeros below */ }
    }
    return { ...ds, row: row || new Array(ds.n_features).fill(0) };
  });
}

function emptyState() {
  const run = "RUN_ID";
  return el("section", { class: "card empty-state", "data-empty": "" },
    el("p", {}, el("b", {}, "No models yet."), " A model is a name for a trained network: each version is a succeeded run (or one of its snapshots), and an alias such as ",
      el("code", {}, "champion"), " points at a version, so clients call the alias and you move it when a better run comes along."),
    el("p", { class: "muted" }, "Register one from a succeeded run (its id is on the ", el("a", { href: "/" }, "runs page"), "):"),
    copyBlock([
      `curl -X POST ${ORIGIN}${API}/models -H 'Content-Type: application/json' \\\n  -d '{"name": "iris-classifier"}'`,
      `curl -X POST ${ORIGIN}${API}/models/iris-classifier/versions -H 'Content-Type: application/json' \\\n  -d '{"run_id": "${run}"}'`,
      `curl -X PUT ${ORIGIN}${API}/models/iris-classifier/aliases/champion -H 'Content-Type: application/json' \\\n  -d '{"version": 1}'`,
    ].join("\n")));
}

function aliasesByVersion(model) {
  const out = {};
  for (const [alias, version] of Object.entries(model.aliases || {})) (out[version] ||= []).push(alias);
  return out;
}

function versionsTable(model, runInfo) {
  const aliases = aliasesByVersion(model);
  return el("table", { class: "versions" },
    el("thead", {}, el("tr", {}, ["Version", "Aliases", "From run", "Dataset", "Epoch", "Val loss", "Val acc.", "Created"].map((h, i) => el("th", { class: [0, 5, 6].includes(i) ? "num" : "" }, h)))),
    el("tbody", {}, [...(model.versions || [])].reverse().map((v) => {
      const run = runInfo.get(v.run_id);
      return el("tr", { "data-version": String(v.version) },
        el("td", { class: "num" }, `v${v.version}`),
        el("td", { class: "aliases" }, (aliases[v.version] || []).map((a) => el("span", { class: "alias-chip", "data-alias": a }, `@${a}`))),
        el("td", { class: "name-cell" }, el("a", { href: `/runs/${encodeURIComponent(v.run_id)}`, title: run?.name || v.run_id }, run?.name || v.run_id),
          run?.name ? el("div", { class: "small muted mono" }, v.run_id) : null),
        el("td", {}, run?.dataset ?? run?.spec?.dataset ?? "—"),
        el("td", {}, v.epoch === null || v.epoch === undefined ? "final" : String(v.epoch)),
        el("td", { class: "num" }, fmt(v.metrics?.val_loss ?? v.metrics?.train_loss)),
        el("td", { class: "num" }, pct(v.metrics?.val_accuracy)),
        el("td", { class: "small muted" }, when(v.created_at)));
    })));
}

/** A JSON body inside a single-quoted shell word ('\'' closes, escapes and reopens). */
const shellJson = (value) => `'${JSON.stringify(value).replace(/'/g, "'\\''")}'`;

/** The curl lines for one target ("alias" champion or "version" 2). */
function callLines(model, target, ds) {
  const auth = apiKey() ? ` \\\n  -H "Authorization: Bearer $ANNLAB_API_KEY"` : "";
  const ref = target.kind === "alias" ? target.name : String(target.name);
  const predictPath = `${API}/models/${model.name}/${target.kind === "alias" ? "aliases" : "versions"}/${encodeURIComponent(ref)}/predict`;
  const columns = ds?.feature_names || [];
  const row = ds?.row || [];
  const serve = `curl -X POST ${ORIGIN}/serve/${model.name}/${encodeURIComponent(ref)}/invocations${auth} \\\n  -H 'Content-Type: application/json' \\\n  -d ${shellJson({ dataframe_split: { columns, data: [row] } })}`;
  const predict = `curl -X POST ${ORIGIN}${predictPath}${auth} \\\n  -H 'Content-Type: application/json' \\\n  -d ${shellJson({ inputs: [row] })}`;
  return { serve, predict, predictPath, row };
}

function callSection(model, runInfo) {
  const targets = [...Object.keys(model.aliases || {}).sort().map((name) => ({ kind: "alias", name })),
    ...[...(model.versions || [])].reverse().map((v) => ({ kind: "version", name: v.version }))];
  if (!targets.length) return el("p", { class: "muted call" }, "No versions yet: add one from a succeeded run with POST ",
    el("code", {}, `${API}/models/${model.name}/versions`), " and its run_id.");
  const select = el("select", { class: "call-target", "aria-label": "Call which version" },
    targets.map((t, i) => el("option", { value: String(i) }, t.kind === "alias" ? `@${t.name} (v${model.aliases[t.name]})` : `version ${t.name}`)));
  const body = el("div", {});
  const output = el("pre", { class: "code call-output", hidden: true });
  let current = null;
  async function show() {
    const target = targets[Number(select.value)];
    const version = target.kind === "alias" ? model.aliases[target.name] : target.name;
    const runId = (model.versions || []).find((v) => v.version === version)?.run_id;
    const run = runId ? runInfo.get(runId) : null;
    const ds = run ? await getDataset(run.dataset ?? run.spec?.dataset) : null;
    current = callLines(model, target, ds);
    output.hidden = true;
    clear(body,
      el("p", { class: "small muted" }, "MLflow's scoring protocol (works with code written for ", el("code", {}, "mlflow models serve"), "):"),
      copyBlock(current.serve, { "data-call": "serve" }),
      el("p", { class: "small muted" }, "annlab's predict (raw outputs and class names):"),
      copyBlock(current.predict, { "data-call": "predict" }));
  }
  const tryButton = el("button", { class: "btn btn-small", type: "button" }, "Try it on the first row");
  tryButton.addEventListener("click", async () => {
    if (!current) return;
    try {
      const answer = await api(current.predictPath, { method: "POST", body: { inputs: [current.row] } });
      output.hidden = false;
      output.textContent = JSON.stringify(answer);
    } catch (error) { toast(error.message, "error"); }
  });
  select.addEventListener("change", show);
  show();
  return el("div", { class: "call" }, el("h3", {}, "How to call it"),
    el("div", { class: "row" }, el("label", {}, "Target ", select), tryButton), body, el("div", { class: "call-try" }, output));
}

function modelCard(model, runInfo) {
  const aliases = Object.entries(model.aliases || {}).sort();
  return el("section", { class: "card", "data-model": model.name },
    el("div", { class: "model-head" },
      el("h2", {}, model.name),
      el("span", { class: "muted small" }, `${(model.versions || []).length} version(s) · latest v${model.latest_version ?? "—"} · created ${when(model.created_at)}`)),
    model.description ? el("p", { class: "muted description" }, model.description) : null,
    aliases.length ? el("p", { class: "small" }, "Aliases: ", aliases.map(([a, v]) => el("span", { class: "alias-chip", "data-alias": a }, `@${a} → v${v}`)))
      : el("p", { class: "small muted" }, "No aliases: PUT ", el("code", {}, `${API}/models/${model.name}/aliases/champion`), " with {\"version\": n} to add one."),
    (model.versions || []).length ? el("div", { class: "table-wrap" }, versionsTable(model, runInfo)) : null,
    callSection(model, runInfo));
}

async function init() {
  const box = $("#models");
  if (!(await has("/models"))) { clear(box, el("section", { class: "card" }, unavailable("The model registry"))); return; }
  const page = await api(`${API}/models?limit=100`);
  const items = page.items || [];
  if (!items.length) { clear(box, emptyState()); return; }
  const ids = [...new Set(items.flatMap((m) => (m.versions || []).map((v) => v.run_id)))];
  const runInfo = new Map((await Promise.all(ids.map(async (id) => [id, await getRun(id)]))).filter(([, run]) => run));
  clear(box, items.map((m) => modelCard(m, runInfo)),
    (page.total ?? 0) > items.length ? el("p", { class: "muted" }, `Showing ${items.length} of ${page.total} models.`) : null);
}

init().catch((error) => clear($("#models"), el("p", { class: "notice error" }, error.message)));
