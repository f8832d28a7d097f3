// A run's curves: loss, accuracy and learning rate per epoch. Smoothed lines over the
// raw ones (kept faint), min/max down-sampling of long series for the overview, the full
// data of the visible window after a zoom, and redraws throttled while the run trains.
import { PALETTE, PLOT_CONFIG, baseLayout, downsample, smooth } from "./api.js";

const POINTS = 1500;
const METRICS = ["train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate"];
const CHARTS = {
  loss: { id: "chart-loss", title: "Loss", series: [["train_loss", "train", PALETTE[0]], ["val_loss", "validation", PALETTE[1]]] },
  accuracy: { id: "chart-accuracy", title: "Accuracy", series: [["train_accuracy", "train", PALETTE[0]], ["val_accuracy", "validation", PALETTE[1]]] },
  lr: { id: "chart-lr", title: "Learning rate", series: [["learning_rate", "learning rate", PALETTE[2]]], raw: true },
};

export function emptyMetrics() {
  return Object.fromEntries([["epoch", []], ...METRICS.map((m) => [m, []])]);
}

/** Append one SSE progress event; false when it is not the next epoch (the caller refetches). */
export function appendProgress(metrics, event) {
  const last = metrics.epoch.length ? metrics.epoch[metrics.epoch.length - 1] : 0;
  if (event.epoch <= last) return true;
  if (event.epoch !== last + 1) return false;
  metrics.epoch.push(event.epoch);
  for (const m of METRICS) metrics[m].push(event.metrics?.[m] ?? null);
  return true;
}

export class Curves {
  constructor() {
    this.metrics = emptyMetrics();
    this.smoothing = 0.6;
    this.logY = false;
    this.bestEpoch = null;
    this.ranges = {};
    this.pending = null;
    this.drawn = new Set();
  }

  set(metrics) { this.metrics = { ...emptyMetrics(), ...metrics }; this.schedule(); }

  /** Redraw at most four times a second, whatever the rate of events. */
  schedule() {
    if (this.pending) return;
    this.pending = setTimeout(() => { this.pending = null; this.draw(); }, 250);
  }

  window(key) {
    const x = this.metrics.epoch;
    const range = this.ranges[key];
    if (!range) return [0, x.length];
    let lo = 0;
    while (lo < x.length && x[lo] < range[0]) lo++;
    let hi = lo;
    while (hi < x.length && x[hi] <= range[1]) hi++;
    return [Math.max(0, lo - 1), Math.min(x.length, hi + 1)];
  }

  traces(key, chart) {
    const x = this.metrics.epoch;
    const [lo, hi] = this.window(key);
    const xs = x.slice(lo, hi);
    const out = [];
    for (const [metric, label, color] of chart.series) {
      const raw = this.metrics[metric] || [];
      if (!raw.some((v) => v !== null && v !== undefined)) continue;
      const smoothed = chart.raw || !this.smoothing ? null : smooth(raw, this.smoothing).slice(lo, hi);
      const r = downsample(xs, raw.slice(lo, hi), POINTS);
      out.push({ x: r.x, y: r.y, name: smoothed ? `${label} (raw)` : label, mode: "lines", type: "scatter",
        line: { color, width: smoothed ? 1 : 2 }, opacity: smoothed ? 0.25 : 1, showlegend: !smoothed,
        hoverinfo: smoothed ? "skip" : undefined, meta: metric });
      if (smoothed) {
        const s = downsample(xs, smoothed, POINTS);
        out.push({ x: s.x, y: s.y, name: label, mode: "lines", type: "scatter", line: { color, width: 2 }, meta: `${metric}:smooth` });
      }
    }
    return out;
  }

  draw() {
    if (!window.Plotly) return;
    for (const [key, chart] of Object.entries(CHARTS)) {
      const node = document.getElementById(chart.id);
      const traces = this.traces(key, chart);
      if (key === "accuracy" && !traces.length && this.metrics.epoch.length) { node.hidden = true; continue; }
      node.hidden = false;
      const shapes = key === "loss" && this.bestEpoch ? [{ type: "line", x0: this.bestEpoch, x1: this.bestEpoch, yref: "paper", y0: 0, y1: 1, line: { dash: "dot", color: "#5d6675", width: 1 } }] : [];
      const layout = baseLayout({
        title: { text: chart.title, font: { size: 13 }, x: 0.02, y: 0.97 },
        uirevision: key,
        shapes,
        annotations: shapes.length ? [{ x: this.bestEpoch, yref: "paper", y: 0.02, text: `best ${this.bestEpoch}`, showarrow: false, font: { size: 10, color: "#5d6675" }, xanchor: "right", yanchor: "bottom", bgcolor: "rgba(255,255,255,.8)" }] : [],
        xaxis: { ...baseLayout().xaxis, title: { text: "epoch" } },
        yaxis: { ...baseLayout().yaxis, type: key === "loss" && this.logY ? "log" : "linear", tickformat: key === "accuracy" ? ".0%" : undefined, rangemode: key === "accuracy" ? undefined : "tozero" },
        margin: { l: 52, r: 10, t: 44, b: 40 },
      });
      if (key === "loss" && this.logY) layout.yaxis.rangemode = undefined;
      window.Plotly.react(node, traces, layout, PLOT_CONFIG);
      if (!this.drawn.has(key)) {
        this.drawn.add(key);
        node.on("plotly_relayout", (event) => this.zoomed(key, event));
      }
      node.dataset.points = String(this.metrics.epoch.length);
      node.dataset.drawn = String(traces.reduce((n, t) => n + t.x.length, 0));
    }
  }

  /** A zoom shows the full data of its window; a reset goes back to the overview. */
  zoomed(key, event) {
    if (event["xaxis.autorange"]) delete this.ranges[key];
    else if (event["xaxis.range[0]"] !== undefined) this.ranges[key] = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
    else if (event["xaxis.range"]) this.ranges[key] = event["xaxis.range"];
    else return;
    this.schedule();
  }

  csv() {
    const lines = [["epoch", ...METRICS].join(",")];
    this.metrics.epoch.forEach((epoch, i) => {
      lines.push([epoch, ...METRICS.map((m) => (this.metrics[m][i] ?? ""))].join(","));
    });
    return `${lines.join("\n")}\n`;
  }
}
