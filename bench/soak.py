"""A bounded soak: mixed traffic against a real ``annlab serve`` for N minutes, with
the server's memory growth and the error count reported.

    python -m bench.soak --minutes 10 [--port 19950] [--clients 4] [--json out.json]

Traffic, all at once from threads: submissions of small runs (followed to their end
on their SSE stream, half of them deleted afterwards so the database stays bounded),
predictions on a trained run and by a model alias, PNG plots (loss and decision
boundary, a few sizes), and reads of the run list. An error is a 5xx, an exception
(timeout, dropped connection) or a status the API does not document for the request.

Memory: the resident set (VmRSS, /proc) of the server process and of the whole
process group (server + worker processes + the plot pool), sampled every 5 s. The
growth is measured from the end of a warm-up (a tenth of the run, at least 20 s) to
the end, and over the second half alone: a leak grows in both, a cache filling up
only in the first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.serve import running_server

API = "/api/v1"
XOR = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
TERMINAL = {"succeeded", "failed", "cancelled"}
SAMPLE_SECONDS = 5.0


def xor_spec(seed: int, epochs: int = 40) -> dict[str, Any]:
    return {
        "name": f"soak {seed}",
        "dataset": "xor",
        "model": {
            "layers": [{"units": 8, "activation": "tanh"}, {"units": 2, "activation": "softmax"}]
        },
        "optimizer": {"type": "adam", "learning_rate": 0.05},
        "training": {"epochs": epochs, "batch_size": None, "seed": seed, "validation_split": 0.0},
    }


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_rss_kib(pgid: int) -> int:
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                text = stat.read()
            if int(text[text.rindex(")") + 2 :].split()[2]) == pgid:
                total += rss_kib(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return total


@dataclass
class Tally:
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.requests[kind] += 1
            if not ok:
                self.errors[kind] += 1
                if len(self.examples) < 20:
                    self.examples.append(f"{kind}: {detail[:300]}")


def call(
    tally: Tally,
    kind: str,
    send: Callable[..., httpx.Response],
    path: str,
    expected: Sequence[int] = (200,),
    **request: Any,
) -> httpx.Response | None:
    try:
        response = send(path, **request)
    except httpx.HTTPError as error:
        tally.record(kind, False, repr(error))
        return None
    ok = response.status_code in expected
    tally.record(kind, ok, f"{response.status_code} {response.text[:200]}" if not ok else "")
    return response


def follow_events(client: httpx.Client, tally: Tally, run_id: str) -> None:
    """Read a run's SSE stream to its end (the stream closes after the terminal status)."""
    try:
        with client.stream("GET", f"{API}/runs/{run_id}/events", timeout=60) as response:
            ok = response.status_code == 200
            for _ in response.iter_lines():
                pass
        tally.record("events", ok, "" if ok else str(response.status_code))
    except httpx.HTTPError as error:
        tally.record("events", False, repr(error))


def submitter(url: str, tally: Tally, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=30) as client:
        n = 0
        while not stop.is_set():
            n += 1
            spec = xor_spec(seed * 100_000 + n, epochs=rng.choice([20, 40, 80]))
            answer = call(tally, "submit", client.post, f"{API}/runs", (202,), json=spec)
            if answer is None or answer.status_code != 202:
                stop.wait(1.0)
                continue
            run_id = answer.json()["id"]
            follow_events(client, tally, run_id)
            call(tally, "get run", client.get, f"{API}/runs/{run_id}")
            if n % 2 == 0:
                call(tally, "delete", client.delete, f"{API}/runs/{run_id}", (204,))
            stop.wait(rng.uniform(0.2, 0.8))


def predictor(url: str, tally: Tally, stop: threading.Event, run_id: str) -> None:
    body = {"inputs": XOR}
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            call(tally, "predict", client.post, f"{API}/runs/{run_id}/predict", json=body)
            call(
                tally, "by alias", client.post, f"{API}/models/soak/aliases/prod/predict", json=body
            )
            stop.wait(0.02)


def plotter(url: str, tally: Tally, stop: threading.Event, run_id: str, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            width = rng.choice([300, 400, 640, 800])
            plot = rng.choice(["loss.png", "decision-boundary.png", "loss.svg"])
            size = {"width": width, "height": 300}
            # 503: the plot pool is busy (documented, with Retry-After), not an error
            call(
                tally,
                "plot",
                client.get,
                f"{API}/runs/{run_id}/plots/{plot}",
                (200, 503),
                params=size,
            )
            call(tally, "list runs", client.get, f"{API}/runs", params={"limit": 20})
            stop.wait(0.3)


def prepare(url: str) -> str:
    """A trained run for predictions and plots, registered as ``soak@prod``."""
    with httpx.Client(base_url=url, timeout=30) as client:
        run_id = client.post(f"{API}/runs", json=xor_spec(0)).json()["id"]
        deadline = time.monotonic() + 120
        while client.get(f"{API}/runs/{run_id}").json()["status"] not in TERMINAL:
            if time.monotonic() > deadline:
                raise RuntimeError("the first run did not finish within 120 s")
            time.sleep(0.2)
        client.post(f"{API}/models", json={"name": "soak"})
        client.post(f"{API}/models/soak/versions", json={"run_id": run_id})
        client.put(f"{API}/models/soak/aliases/prod", json={"version": 1})
    return run_id


def soak(url: str, pid: int, *, minutes: float, clients: int) -> dict[str, Any]:
    run_id = prepare(url)
    tally = Tally()
    stop = threading.Event()
    threads = []
    for i in range(clients):
        threads.append(threading.Thread(target=submitter, args=(url, tally, stop, i + 1)))
        threads.append(threading.Thread(target=predictor, args=(url, tally, stop, run_id)))
    threads.append(threading.Thread(target=plotter, args=(url, tally, stop, run_id, 7)))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    samples: list[tuple[float, int, int]] = []
    duration = minutes * 60
    while (elapsed := time.monotonic() - started) < duration:
        samples.append((elapsed, rss_kib(pid), group_rss_kib(pid)))
        time.sleep(min(SAMPLE_SECONDS, max(0.0, duration - elapsed)))
    samples.append((time.monotonic() - started, rss_kib(pid), group_rss_kib(pid)))
    stop.set()
    for thread in threads:
        thread.join(timeout=90)
    return report(samples, tally, duration)


def report(samples: list[tuple[float, int, int]], tally: Tally, duration: float) -> dict[str, Any]:
    warm = max(20.0, duration / 10)
    after = [s for s in samples if s[0] >= warm] or samples
    half = [s for s in samples if s[0] >= duration / 2] or samples[-1:]

    def mib(kib: int) -> float:
        return round(kib / 1024, 1)

    return {
        "seconds": round(samples[-1][0], 1),
        "requests": dict(tally.requests),
        "total_requests": sum(tally.requests.values()),
        "errors": dict(tally.errors),
        "total_errors": sum(tally.errors.values()),
        "error_examples": tally.examples,
        "server_rss_mib": {
            "start": mib(samples[0][1]),
            "after_warmup": mib(after[0][1]),
            "end": mib(samples[-1][1]),
            "max": mib(max(s[1] for s in samples)),
            "growth_after_warmup": mib(samples[-1][1] - after[0][1]),
            "growth_second_half": mib(samples[-1][1] - half[0][1]),
        },
        "group_rss_mib": {
            "after_warmup": mib(after[0][2]),
            "end": mib(samples[-1][2]),
            "growth_after_warmup": mib(samples[-1][2] - after[0][2]),
            "growth_second_half": mib(samples[-1][2] - half[0][2]),
        },
        "samples": [(round(t, 1), mib(a), mib(b)) for t, a, b in samples],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--clients", type=int, default=4, help="submitters (and as many predictors)"
    )
    parser.add_argument("--port", type=int, default=None, help="the server's port (default: free)")
    parser.add_argument("--workers", type=int, default=2, help="ANNLAB_WORKERS of the server")
    parser.add_argument("--json", help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and server log")
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="annlab-soak-")
    log_path = os.path.join(workdir, "annlab.log")
    env = {"ANNLAB_WORKERS": str(args.workers), "ANNLAB_AUTH": "off"}
    ports = range(args.port, args.port + 1) if args.port else None
    with running_server(os.path.join(workdir, "data"), log_path, env, ports=ports) as (url, pid):
        result = soak(url, pid, minutes=args.minutes, clients=args.clients)
    result["server_log"] = log_path if args.keep else None
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as sink:
            json.dump(result, sink, indent=2)
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if result["total_errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
