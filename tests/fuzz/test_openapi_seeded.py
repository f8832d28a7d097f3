"""Schemathesis on the operations of things that exist (issue 15, item 9).

``test_openapi_schemathesis.py`` fuzzes every operation on an empty database, where
a generated id is a 404 before any body is read. Here the database holds a trained
run (xor: two features, so decision boundaries and their plots answer), a model with
two versions and an alias, and an experiment; every generated request to an
operation with such ids in its path is sent *to them*, so that bodies and queries
reach predict, evaluate, backprop, weights, snapshots, plots, the registry and MLflow
serving. Checked: no 5xx, and statuses, content types, headers and bodies as
documented (``positive_data_acceptance`` and ``negative_data_rejection`` are left
out: a generated id swapped for a real one changes what the request is). Operations
that would destroy the seeds (DELETE, cancel, stop) are left to the other test.

Bounded: ``EXAMPLES`` per operation and mode, deterministic; about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.api.conftest import make_settings
from tests.support.waiting import wait_for

from .conftest import build_app

pytestmark = pytest.mark.timeout(300)

API = "/api/v1"
EXAMPLES = 5
SEEDED = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=True,
)
#: Path parameters that name a seeded thing → its value (filled in by ``seeds``).
SEEDS: dict[str, Any] = {}
#: Requests sent, per operation and mode (printed by the last test, for the record).
SENT: dict[str, int] = {}
DESTRUCTIVE = ("DELETE",)
DESTRUCTIVE_SUFFIXES = ("/cancel", "/stop")


def _xor(seed: int) -> dict[str, Any]:
    return {
        "dataset": "xor",
        "model": {
            "layers": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "softmax"}]
        },
        "optimizer": {"type": "sgd", "learning_rate": 0.1},
        "training": {"epochs": 5, "batch_size": None, "seed": seed, "validation_split": 0.0},
    }


def _seed(data_dir: Path) -> dict[str, Any]:
    """Train two runs and register them, with a worker thread; the fuzzed app then
    opens the same database without workers."""
    with TestClient(create_app_with_workers(data_dir)) as client:
        runs = [client.post(f"{API}/runs", json=_xor(seed)).json()["id"] for seed in (0, 1)]
        for run_id in runs:
            wait_for(
                lambda run_id=run_id: (
                    client.get(f"{API}/runs/{run_id}").json()["status"] == "succeeded"
                ),
                timeout=60,
                message=f"seed run {run_id} did not succeed",
            )
        assert client.post(f"{API}/models", json={"name": "seeded"}).status_code == 201
        for run_id in runs:
            answer = client.post(f"{API}/models/seeded/versions", json={"run_id": run_id})
            assert answer.status_code == 201, answer.text
        assert (
            client.put(f"{API}/models/seeded/aliases/prod", json={"version": 2}).status_code == 200
        )
        experiment = client.post(
            f"{API}/experiments",
            json={"name": "seeded", "base": _xor(0), "grid": {"training.seed": [0, 1]}},
        ).json()["id"]
        for run in client.get(f"{API}/experiments/{experiment}").json()["runs"]:
            wait_for(
                lambda run=run: (
                    client.get(f"{API}/runs/{run['id']}").json()["status"]
                    in ("succeeded", "failed", "cancelled")
                ),
                timeout=60,
                message="seed experiment did not finish",
            )
    return {
        "run_id": runs[0],
        "dataset_id": "xor",
        "experiment_id": experiment,
        "name": "seeded",
        "version": 1,
        "alias": "prod",
        "reference": "prod",
    }


def create_app_with_workers(data_dir: Path):  # -> FastAPI
    from app.main import create_app

    return create_app(make_settings(data_dir, executor="thread", workers=1))


@pytest.fixture(scope="module")
def seeded_schema(fuzz_data_dir: Path) -> Iterator[schemathesis.BaseSchema]:
    data_dir = fuzz_data_dir / "seeded"
    data_dir.mkdir(exist_ok=True)
    SEEDS.update(_seed(data_dir))
    schema = schemathesis.openapi.from_asgi("/openapi.json", build_app(data_dir))
    yield schema
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()


def _seeded_operations() -> list[tuple[str, str]]:
    """Every documented operation whose path names seeded things (not destructive)."""
    from app.config import Settings
    from app.main import create_app

    spec = create_app(Settings(executor="none")).openapi()
    found = []
    for path, methods in spec["paths"].items():
        for method in methods:
            if method.upper() in DESTRUCTIVE or path.endswith(DESTRUCTIVE_SUFFIXES):
                continue
            if "{" in path:
                found.append((method.upper(), path))
    return sorted(found)


OPERATIONS = _seeded_operations()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_an_operation_on_seeded_things_conforms(
    seeded_schema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = seeded_schema[path][method]
    excluded = [positive_data_acceptance, negative_data_rejection]

    @SEEDED
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case) -> None:
        case.path_parameters = {
            name: SEEDS.get(name, value) for name, value in (case.path_parameters or {}).items()
        }
        case.call_and_validate(excluded_checks=excluded)
        SENT[f"{method} {path} {mode.value}"] = SENT.get(f"{method} {path} {mode.value}", 0) + 1

    try:
        check()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE


def test_the_seeded_operations_cover_predict_evaluate_backprop_plots_and_serving() -> None:
    paths = {path for _, path in OPERATIONS}
    for needed in (
        "/api/v1/runs/{run_id}/predict",
        "/api/v1/runs/{run_id}/evaluate",
        "/api/v1/runs/{run_id}/backprop",
        "/api/v1/runs/{run_id}/plots/decision-boundary.png",
        "/api/v1/experiments/{experiment_id}/plots/loss.png",
        "/api/v1/models/{name}/aliases/{alias}/predict",
        "/serve/{name}/{reference}/invocations",
    ):
        assert needed in paths, needed
    if SENT:
        print(f"seeded schemathesis: {sum(SENT.values())} cases over {len(SENT)} operation-modes")
