"""GET /metrics: Prometheus text that parses, route templates (never raw paths), gauges
computed from the database, run events fed from it once each, ANNLAB_METRICS=off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import AppMetrics, route_template
from tests.api.conftest import API, iris_spec, long_spec, submit, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def requests_of(samples: Samples, route: str) -> dict[tuple[str, str], float]:
    """(method, status) → count for one route label of annlab_http_requests_total."""
    found = {}
    for (name, labels), count in samples.items():
        d = dict(labels)
        if name == "annlab_http_requests_total" and d["route"] == route:
            found[(d["method"], d["status"])] = count
    return found


def test_requests_are_labelled_by_route_template_not_path(idle_client: TestClient) -> None:
    for run_id in ("abc", "def", "ghi"):
        assert idle_client.get(f"{API}/runs/{run_id}").status_code == 404
    assert idle_client.get("/healthz").status_code == 200
    assert idle_client.get("/no/such/path").status_code == 404
    assert idle_client.get("/also/unknown").status_code == 404
    assert idle_client.delete("/healthz").status_code == 405
    assert idle_client.request("BREW", "/healthz").status_code == 405
    samples = scrape(idle_client)
    assert requests_of(samples, f"{API}/runs/{{run_id}}") == {("GET", "404"): 3}
    assert requests_of(samples, "/healthz") == {
        ("GET", "200"): 1,
        ("DELETE", "405"): 1,
        ("other", "405"): 1,  # a made-up method does not make a label of its own
    }
    assert requests_of(samples, "unmatched") == {("GET", "404"): 2}
    routes = {dict(labels)["route"] for (name, labels) in samples if name.startswith("annlab_http")}
    assert not any("abc" in r or "/no/" in r for r in routes)
    assert (
        value(
            samples,
            "annlab_http_request_duration_seconds_count",
            method="GET",
            route=f"{API}/runs/{{run_id}}",
        )
        == 3
    )
    # The process collectors are there too.
    assert value(samples, "process_resident_memory_bytes") > 0


def test_queue_gauges_come_from_the_database(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(executor="none", database_url=database_url)
    before = scrape(client)
    assert value(before, "annlab_queue_depth") == 0
    assert value(before, "annlab_runs", status="queued") == 0
    assert value(before, "annlab_queue_oldest_age_seconds") == 0
    assert not any(name == "annlab_workers_busy" for name, _ in before)  # no local workers
    for _ in range(3):
        submit(client, iris_spec())
    samples = scrape(client)
    assert value(samples, "annlab_queue_depth") == 3
    assert value(samples, "annlab_runs", status="queued") == 3
    assert value(samples, "annlab_runs", status="running") == 0
    assert value(samples, "annlab_runs_running") == 0
    for status in ("succeeded", "failed", "cancelled"):
        assert value(samples, "annlab_runs", status=status) == 0
    assert value(samples, "annlab_queue_oldest_age_seconds") >= 0
    assert value(samples, "annlab_runs_submitted_total") == 3
    # Fed once: a second scrape does not count them again.
    assert value(scrape(client), "annlab_runs_submitted_total") == 3


def test_a_finished_run_feeds_durations_epochs_queue_wait_and_predict_latency(
    client: TestClient,
) -> None:
    run = submit(client, iris_spec(epochs=7))
    assert wait_for(client, run["id"])["status"] == "succeeded"
    response = client.post(
        f"{API}/runs/{run['id']}/predict", json={"inputs": [[5.1, 3.5, 1.4, 0.2]]}
    )
    assert response.status_code == 200
    samples = scrape(client)
    assert value(samples, "annlab_runs", status="succeeded") == 1
    assert value(samples, "annlab_runs_finished_total", status="succeeded") == 1
    assert value(samples, "annlab_run_duration_seconds_count") == 1
    assert value(samples, "annlab_run_duration_seconds_bucket", le="86400.0") == 1
    assert value(samples, "annlab_epochs_trained_total") == 7
    assert value(samples, "annlab_run_queue_wait_seconds_count") == 1
    assert value(samples, "annlab_predict_latency_seconds_count") == 1
    assert requests_of(samples, f"{API}/runs/{{run_id}}/predict") == {("POST", "200"): 1}
    assert value(samples, "annlab_workers_busy") + value(samples, "annlab_workers_idle") == 1
    again = scrape(client)
    assert value(again, "annlab_run_duration_seconds_count") == 1
    assert value(again, "annlab_epochs_trained_total") == 7


def test_a_running_run_makes_a_worker_busy(client: TestClient) -> None:
    run = submit(client, long_spec())
    wait_for(client, run["id"], lambda r: r["status"] == "running")
    samples = scrape(client)
    assert value(samples, "annlab_runs_running") == 1
    assert value(samples, "annlab_workers_busy") == 1
    assert value(samples, "annlab_workers_idle") == 0
    assert value(samples, "annlab_run_queue_wait_seconds_count") == 1
    assert client.post(f"{API}/runs/{run['id']}/cancel").status_code == 202
    wait_for(client, run["id"])
    samples = scrape(client)
    assert value(samples, "annlab_workers_busy") == 0
    assert value(samples, "annlab_runs_finished_total", status="cancelled") == 1


def test_metrics_off_removes_the_route(make_client: Callable[..., TestClient]) -> None:
    client = make_client(executor="none", metrics=False)
    assert client.get("/metrics").status_code == 404
    assert not hasattr(client.app.state, "metrics")  # type: ignore[attr-defined]


def test_metrics_is_open_with_auth_on(make_client: Callable[..., TestClient]) -> None:
    client = make_client(executor="none", auth=True)
    assert client.get(f"{API}/runs").status_code == 401
    samples = scrape(client)
    assert requests_of(samples, f"{API}/runs") == {("GET", "401"): 1}


def test_two_apps_have_separate_registries() -> None:
    first, second = AppMetrics(process_metrics=False), AppMetrics(process_metrics=False)
    first.observe_predict(0.01)
    first.observe_run_finished(12.0, 5, "failed")
    first.observe_run_submitted()
    text = first.render().decode()
    assert "annlab_predict_latency_seconds_count 1.0" in text
    assert 'annlab_runs_finished_total{status="failed"} 1.0' in text
    assert "annlab_predict_latency_seconds_count 0.0" in second.render().decode()


@pytest.mark.parametrize(
    ("scope", "expected"),
    [({}, "unmatched"), ({"route": object()}, "unmatched")],
)
def test_route_template_without_a_route(scope: dict[str, Any], expected: str) -> None:
    assert route_template(scope) == expected
