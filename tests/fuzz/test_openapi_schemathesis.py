"""Schemathesis against the app's own OpenAPI document, in process (ASGI).

Every operation gets a bounded, seeded number of generated requests, both valid
per the schema (positive) and invalid (negative). Checked: no 5xx, status codes,
content types, headers and bodies as documented; invalid data rejected.

`positive_data_acceptance` is left out on purpose: a request can be valid for
the schema and still be refused for a documented reason the schema cannot say
(an output width that does not match the dataset's classes: 422; an unknown id:
404). Schemathesis's lazy pytest loader (`from_fixture`) does not work with
pytest 9, so each operation is looked up in a module-scoped schema and fuzzed
with Hypothesis' `@given` on `operation.as_strategy(...)`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from .conftest import build_app

pytestmark = pytest.mark.timeout(240)

EXAMPLES = 25
SCHEMATHESIS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=True,
)


@pytest.fixture(scope="module")
def api_schema(fuzz_data_dir) -> Iterator[schemathesis.BaseSchema]:
    data_dir = fuzz_data_dir / "schemathesis"
    data_dir.mkdir(exist_ok=True)
    app = build_app(data_dir)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the app's lifespan
    yield schema
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()  # the lifespan would otherwise run until interpreter exit


#: Every operation of the API. A new route must be added here (the completeness test
#: below fails until it is), so that it is fuzzed too.
OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/datasets"),
    ("POST", "/api/v1/datasets"),
    ("GET", "/api/v1/datasets/{dataset_id}"),
    ("DELETE", "/api/v1/datasets/{dataset_id}"),
    ("POST", "/api/v1/runs"),
    ("GET", "/api/v1/runs"),
    ("GET", "/api/v1/runs/{run_id}"),
    ("DELETE", "/api/v1/runs/{run_id}"),
    ("GET", "/api/v1/runs/{run_id}/metrics"),
    ("GET", "/api/v1/runs/{run_id}/events"),
    ("POST", "/api/v1/runs/{run_id}/cancel"),
    ("GET", "/api/v1/runs/{run_id}/weights"),
    ("POST", "/api/v1/runs/{run_id}/predict"),
    ("GET", "/api/v1/runs/{run_id}/snapshots"),
    ("GET", "/api/v1/runs/{run_id}/decision-boundary"),
    ("POST", "/api/v1/runs/{run_id}/backprop"),
    ("GET", "/api/v1/runs/{run_id}/plots/loss.png"),
    ("GET", "/api/v1/runs/{run_id}/plots/loss.svg"),
    ("GET", "/api/v1/runs/{run_id}/plots/decision-boundary.png"),
    ("GET", "/api/v1/runs/{run_id}/plots/decision-boundary.svg"),
    ("POST", "/api/v1/optimizers/trajectories.png"),
    ("POST", "/api/v1/optimizers/trajectories.svg"),
    ("POST", "/api/v1/optimizers/trajectories"),
    ("GET", "/api/v1/optimizers/functions"),
    # experiments, the model registry, MLflow serving (issue 12)
    ("POST", "/api/v1/experiments"),
    ("GET", "/api/v1/experiments"),
    ("GET", "/api/v1/experiments/{experiment_id}"),
    ("DELETE", "/api/v1/experiments/{experiment_id}"),
    ("GET", "/api/v1/experiments/{experiment_id}/metrics"),
    ("POST", "/api/v1/experiments/{experiment_id}/cancel"),
    ("GET", "/api/v1/experiments/{experiment_id}/plots/loss.png"),
    ("GET", "/api/v1/experiments/{experiment_id}/plots/loss.svg"),
    ("POST", "/api/v1/models"),
    ("GET", "/api/v1/models"),
    ("GET", "/api/v1/models/{name}"),
    ("DELETE", "/api/v1/models/{name}"),
    ("POST", "/api/v1/models/{name}/versions"),
    ("GET", "/api/v1/models/{name}/versions/{version}"),
    ("GET", "/api/v1/models/{name}/versions/{version}/onnx"),
    ("POST", "/api/v1/models/{name}/versions/{version}/predict"),
    ("PUT", "/api/v1/models/{name}/aliases/{alias}"),
    ("DELETE", "/api/v1/models/{name}/aliases/{alias}"),
    ("POST", "/api/v1/models/{name}/aliases/{alias}/predict"),
    ("GET", "/serve/{name}/{reference}/ping"),
    ("GET", "/serve/{name}/{reference}/health"),
    ("GET", "/serve/{name}/{reference}/version"),
    ("POST", "/serve/{name}/{reference}/invocations"),
    # the routes of issues 9, 10 and 6 (runs, snapshots and plots, /metrics)
    ("GET", "/api/v1/datasets/{dataset_id}/data"),
    ("PATCH", "/api/v1/runs/{run_id}"),
    ("POST", "/api/v1/runs/{run_id}/stop"),
    ("POST", "/api/v1/runs/{run_id}/evaluate"),
    ("GET", "/api/v1/runs/{run_id}/split"),
]

#: Service bugs found by this test, kept visible as strict xfails until fixed.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def cases():
    for method, path in OPERATIONS:
        for mode in MODES:
            reason = KNOWN_BUGS.get((method, path, mode.value))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(
                method, path, mode, id=f"{method} {path} [{mode.value}]", marks=marks
            )


def test_every_operation_of_the_schema_is_fuzzed(api_schema) -> None:
    documented = {
        (result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()
    }
    assert documented == set(OPERATIONS), (
        f"new: {sorted(documented - set(OPERATIONS))}, gone: {sorted(set(OPERATIONS) - documented)}"
    )


@pytest.mark.parametrize(("method", "path", "mode"), list(cases()))
def test_operation_conforms_to_the_openapi_document(
    api_schema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @SCHEMATHESIS
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case) -> None:
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    try:
        check()
    except Unsatisfiable:
        # nothing in this operation can be made invalid (no parameters, no body)
        assert mode is GenerationMode.NEGATIVE


#: The config of the CLI run below: which 422s are expected for schema-valid requests.
CLI_CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.mark.timeout(480)
def test_schemathesis_cli_with_every_check_and_the_stateful_phase(tmp_path: Path) -> None:
    """`st run --checks all` with the examples, coverage, fuzzing and stateful phases
    against a real server (one worker, SQLite): 0 failures. The stateful phase chains
    operations (a created run's id into GET/cancel/predict/DELETE) as schemathesis
    infers the links from the document."""
    from tests.e2e.server import Server

    server = Server(name="schemathesis", data_dir=tmp_path / "data", log_dir=tmp_path)
    server.data_dir.mkdir()
    # trajectories bounded lower than the default (which takes 10-25 s a request on a
    # loaded 2-core machine): the run stays near a minute
    server.start(ANNLAB_WORKERS="1", ANNLAB_MAX_TRAJECTORY_WORK="20000")
    try:
        st = Path(sys.executable).with_name("st")
        result = subprocess.run(
            [
                str(st),
                "--config-file",
                str(CLI_CONFIG),
                "run",
                f"{server.base_url}/openapi.json",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                "3",
                "--generation-deterministic",
                "--request-timeout",
                "30",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=420,  # about 135 s on a quiet 2-core machine, 3 times that when loaded
        )
    finally:
        server.stop()
        server.cleanup()
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert ("Stateful" in summary and "0 failures" not in summary) or "failure" not in summary
