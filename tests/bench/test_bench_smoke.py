"""Smoke tests of the benchmark code on toy sizes: it runs, and its checks check.

No timing is asserted here: numbers from a shared CI machine mean nothing.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from bench import common
from bench.common import Workload

TOY = Workload("toy", 96, 4, 3, (8,), 16, timed_epochs=2)
TOY2 = Workload("toy2", 64, 6, 4, (8, 8), 32, timed_epochs=2)


def test_workloads_and_data() -> None:
    w4 = common.WORKLOADS["W4"]
    assert w4.sizes == [64, 512, 512, 10]
    assert w4.n_parameters == 64 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
    x1, y1 = common.make_data(50, 3, 4, seed=5)
    x2, y2 = common.make_data(50, 3, 4, seed=5)
    assert x1.shape == (50, 3) and x1.dtype == np.float64 and y1.dtype == np.int64
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert sorted(set(y1.tolist())) == [0, 1, 2, 3]


def test_percentile_and_table() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert common.percentile(values, 50) == 50.0
    assert common.percentile(values, 99) == 99.0
    text = common.format_table(["a", "b"], [["x", 1.5], ["y", None]])
    assert "1.50" in text and "-" in text.splitlines()[-1]


def test_engine_contender_runs_on_a_toy() -> None:
    pytest.importorskip("core.training")
    from bench import train

    x, y = common.workload_data(TOY)
    m = train.run_engine(TOY, x, y, timed_epochs=2)
    assert m.contender == "annlab-f32"
    assert len(m.epoch_seconds) == 2 and all(t > 0 for t in m.epoch_seconds)
    assert 0.0 <= m.accuracy <= 1.0
    assert m.extra["should_stop_polls"] >= 1


def test_one_step_check_agrees_and_catches_a_mismatch() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("core.training")
    from bench import train

    for wl in (TOY, TOY2):
        for dtype in ("float32", "float64"):
            check = train.check_one_step(wl, n_rows=40, dtype=dtype)
            assert check.ok, check
            assert check.max_update > 0
    wrong = train.check_one_step(TOY, n_rows=40, torch_learning_rate=2 * common.LEARNING_RATE)
    assert not wrong.ok


def test_all_contenders_and_summary_on_a_toy() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("core.training")
    from bench import train

    chosen = train.contenders(dtypes=["float32"], torch=True, sklearn=True)
    results = train.run_workload(TOY, chosen, repeats=1, timed_epochs=1, log=lambda s: None)
    assert {"annlab-f32", "torch-f32-1t", "sklearn-f32"} <= set(results)
    rows = train.summarise(TOY, results, gemm_gflops=100.0)
    text = train.table(rows)
    assert "annlab-f32" in text and "sklearn-f32" in text
    engine = next(r for r in rows if r.contender == "annlab-f32")
    assert engine.vs_torch is not None and engine.vs_sklearn is not None


SERVER = textwrap.dedent(
    """
    import json, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def _send(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        def do_GET(self):
            self._send({"status": "ok"})
        def do_POST(self):
            n = int(self.headers["Content-Length"])
            self._send({"rows": len(json.loads(self.rfile.read(n))["inputs"])})
        def log_message(self, *a):
            pass

    s = ThreadingHTTPServer(("127.0.0.1", 0), H)
    print(s.server_address[1], flush=True)
    s.serve_forever()
    """
)


def test_python_load_generator_against_a_toy_server() -> None:
    from bench import serve

    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        get = serve.run_python_clients(url, "/healthz", None, clients=2, requests=20)
        post = serve.run_python_clients(
            url, "/p", {"inputs": serve.hundred_rows()}, clients=3, requests=31
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert get.requests == 20 and get.failures == 0
    assert post.requests == 31 and post.failures == 0
    assert 0 < post.p50_ms <= post.p99_ms
    assert post.rps > 0
    text = serve.load_table([get, post])
    assert "req/s" in text


def test_serve_verdicts() -> None:
    from bench.serve import LoadResult, serve_verdicts

    def r(case, p50, p99, n):
        return LoadResult(case, 8, n, 1.0, p50, p99, 0, "x")

    idle = [r("healthz", 1.0, 2.0, 1000), r("predict 1 row", 1.2, 2.5, 800)]
    busy = [r("predict 1 row (training)", 1.5, 6.0, 700)]
    lines = serve_verdicts(idle, busy, 50.0)
    assert "MET" in lines[0] and "NOT MET" not in lines[0]
    assert "NOT MET" in lines[1]
    assert lines[2].endswith("MET")
    assert time.monotonic() > 0


def test_the_soak_report_measures_growth_after_the_warm_up() -> None:
    import os

    from bench import soak

    assert soak.rss_kib(os.getpid()) > 0
    tally = soak.Tally()
    tally.record("predict", True)
    tally.record("predict", False, "500 boom")
    samples = [(0.0, 100 * 1024, 300 * 1024), (30.0, 110 * 1024, 320 * 1024)]
    samples += [(60.0, 112 * 1024, 330 * 1024), (120.0, 113 * 1024, 331 * 1024)]
    result = soak.report(samples, tally, duration=120.0)
    assert result["total_requests"] == 2 and result["total_errors"] == 1
    assert result["error_examples"] == ["predict: 500 boom"]
    assert result["server_rss_mib"]["growth_after_warmup"] == 3.0  # from 30 s (warm-up 20 s)
    assert result["server_rss_mib"]["growth_second_half"] == 1.0  # from 60 s
    assert result["group_rss_mib"]["growth_after_warmup"] == 11.0


def test_sweep_interleaves_the_servers_cases_and_ports_stay_in_range() -> None:
    from bench import serve

    procs = [
        subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        urls = [f"http://127.0.0.1:{int(p.stdout.readline())}" for p in procs]
        cases = [
            serve.Case("a 1", urls[0], "/p", {"inputs": [[1.0]]}),
            serve.Case("b 1", urls[1], "/p", {"inputs": [[1.0]]}),
            serve.Case("a get", urls[0], "/healthz"),
        ]
        results = serve.sweep(cases, [1, 2], workdir="", use_wrk=False, seconds=1.0, requests=10)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
    assert [(r.case, r.clients) for r in results] == [
        ("a 1", 1),
        ("b 1", 1),
        ("a get", 1),
        ("a 1", 2),
        ("b 1", 2),
        ("a get", 2),
    ]
    assert all(r.requests == 10 and r.failures == 0 for r in results)
    assert serve.port_range("19650-19659") == range(19650, 19660)
    assert serve.port_range(None) is None
    assert serve.free_port(range(19650, 19660)) in range(19650, 19660)


def test_main_runs_end_to_end_on_w1(capsys: pytest.CaptureFixture[str]) -> None:
    """The command itself, not only its parts: an import it makes at run time broke once."""
    pytest.importorskip("core.training")
    from bench import train

    code = train.main(["-w", "W1", "--quick", "--no-torch", "--no-sklearn", "--no-f64"])
    assert code == 0
    assert "annlab-f32" in capsys.readouterr().out


def test_w4_engine_contenders_are_judged_with_the_cores_and_timed_on_one() -> None:
    from bench import train

    chosen = train.contenders(dtypes=["float32"], torch=False, sklearn=False, engine_threads=2)
    assert [kwargs for _, _, kwargs in chosen] == [
        {"dtype": "float32", "threads": 2},
        {"dtype": "float32", "suffix": "-1t"},
    ]
    x, y = common.workload_data(TOY)
    m = train.run_engine(TOY, x, y, timed_epochs=1, threads=2, suffix="-2t")
    assert m.contender == "annlab-f32-2t"
