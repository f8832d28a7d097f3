// Experiments' grid values as people read them: the same compact text the server puts
// in run names ("sgd(lr=0.1, momentum=0.9)"), grid cells (runs that differ only in their
// seed) and how far an experiment has got.

export const SEED = "training.seed";
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** A grid value as core/grid.py's `_render` writes it in run names. */
export function valueText(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (Array.isArray(value)) return `[${value.map(valueText).join(", ")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 2 && "units" in value && "activation" in value) return `${valueText(value.units)} ${valueText(value.activation)}`;
    const items = Object.entries(value).filter(([k]) => k !== "type");
    items.sort((a, b) => Number(a[0] !== "learning_rate") - Number(b[0] !== "learning_rate"));
    const inner = items.map(([k, v]) => `${k === "learning_rate" ? "lr" : k}=${valueText(v)}`).join(", ");
    return "type" in value ? `${value.type}(${inner})` : `(${inner})`;
  }
  return String(value);
}

/** "optimizer=sgd(lr=0.1), training.seed=0" */
export function paramsText(params) {
  return Object.entries(params || {}).map(([k, v]) => `${k}=${valueText(v)}`).join(", ");
}

/** A grid key as a column heading: its last segment (or two, when the last is an index). */
export function keyLabel(path) {
  const parts = path.split(".");
  const last = parts[parts.length - 1];
  return /^\d+$/.test(last) && parts.length > 1 ? parts.slice(-2).join(".") : last;
}

/** The grid cell of a run's params: every key but the seed, as a stable string. */
export function cellKey(params) {
  const entries = Object.entries(params || {}).filter(([k]) => k !== SEED);
  return JSON.stringify(entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

/** "optimizer (3) × training.seed (2)" */
export function gridText(grid) {
  return Object.entries(grid || {}).map(([k, v]) => `${k} (${Array.isArray(v) ? v.length : 1})`).join(" × ");
}

/** How many of an experiment's runs have ended, and how many it has. */
export function progressOf(experiment) {
  const runs = experiment.runs || [];
  return { done: runs.filter((r) => TERMINAL.has(r.status)).length, total: runs.length };
}

export const isLive = (experiment) => ["queued", "running"].includes(experiment.status);
