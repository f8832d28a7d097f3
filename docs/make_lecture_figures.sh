#!/usr/bin/env bash
# Makes every figure of docs/lecture.md by running the commands the page shows against a
# fresh annlab server (its own temporary data directory, 127.0.0.1:$PORT), then stops it.
#   docs/make_lecture_figures.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-18950}
ANNLAB=${ANNLAB:-.venv/bin/annlab}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=docs/img/lecture
API=http://127.0.0.1:$PORT/api/v1
DATA=$(mktemp -d)
mkdir -p "$OUT"

"$ANNLAB" serve --port "$PORT" --workers 1 --data-dir "$DATA" >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$DATA"' EXIT

deadline() { # deadline SECONDS COMMAND...: retry COMMAND every 0.2 s until it succeeds
  local until=$((SECONDS + $1)); shift
  until "$@"; do
    if ((SECONDS >= until)); then echo "timed out: $*" >&2; cat "$DATA/server.log" >&2; exit 1; fi
    sleep 0.2
  done
}
finished() { # finished RUN_ID: true once the run succeeded (exit 1 at once if it failed)
  local status
  status=$(curl -sf "$API/runs/$1" | jq -r .status)
  case $status in
    succeeded) return 0 ;;
    failed | cancelled) echo "run $1 $status" >&2; exit 1 ;;
    *) return 1 ;;
  esac
}
deadline 30 curl -sf "http://127.0.0.1:$PORT/readyz" -o /dev/null

# --- 1. the perceptron on blobs: one step unit, batch gradient descent --------------
RUN=$(curl -sf "$API/runs" -H 'Content-Type: application/json' -d '{
  "name": "perceptron on blobs",
  "dataset": "blobs",
  "model": {"layers": [{"units": 1, "activation": "step"}], "init": "normal"},
  "loss": "mse",
  "optimizer": {"type": "sgd", "learning_rate": 0.02},
  "training": {"epochs": 10000, "batch_size": null, "seed": 3,
               "snapshots": [3, 5, 100, 10000]}
}' | jq -r .id)
deadline 300 finished "$RUN"
curl -sf "$API/runs/$RUN/snapshots"; echo
for EPOCH in 3 5 100 10000; do
  curl -sf "$API/runs/$RUN/plots/decision-boundary.png?epoch=$EPOCH&width=560&height=420" \
    -o "$OUT/perceptron-epoch-$EPOCH.png"
done
curl -sf "$API/runs/$RUN/plots/loss.png?width=700&height=420" -o "$OUT/perceptron-loss.png"

# --- 2. the activation functions (no endpoint: the engine's code and matplotlib) -----
"$PYTHON" docs/lecture_activations.py "$OUT/activations.png"

# --- 3. the five optimizers racing on a surface --------------------------------------
curl -sf "$API/optimizers/trajectories.png?width=800&height=560" \
  -H 'Content-Type: application/json' -d '{
  "function": "rosenbrock", "start": [-1.5, 2.0], "steps": 1000,
  "optimizers": [
    {"type": "sgd", "learning_rate": 0.001},
    {"type": "sgd", "learning_rate": 0.001, "momentum": 0.9},
    {"type": "adagrad", "learning_rate": 0.5},
    {"type": "rmsprop", "learning_rate": 0.01},
    {"type": "adam", "learning_rate": 0.05}
  ]
}' -o "$OUT/optimizers-race.png"

# --- 4. a dense network on iris and its backward pass --------------------------------
IRIS=$(curl -sf "$API/runs" -H 'Content-Type: application/json' -d '{
  "name": "dense network on iris",
  "dataset": "iris",
  "model": {"layers": [{"units": 4, "activation": "relu"},
                       {"units": 3, "activation": "softmax"}]},
  "loss": "cross_entropy",
  "optimizer": {"type": "adam", "learning_rate": 0.01},
  "training": {"epochs": 200, "batch_size": 16, "seed": 0}
}' | jq -r .id)
deadline 300 finished "$IRIS"
curl -sf "$API/runs/$IRIS/plots/loss.png?width=700&height=420" -o "$OUT/iris-loss.png"
curl -sf "$API/runs/$IRIS/backprop" -H 'Content-Type: application/json' -d '{
  "inputs": [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [4.7, 3.2, 1.3, 0.2]],
  "targets": ["setosa", "setosa", "versicolor"],
  "epoch": 5
}' | jq -c '.' >"$OUT/iris-backprop.json"
jq -c '{epoch, loss, penalty}, (.layers[] | {net: .net[0], outputs: .outputs[0],
        dvalues: .dvalues[0], dnet: .dnet[0], dbiases})' "$OUT/iris-backprop.json"
echo "figures written to $OUT"
