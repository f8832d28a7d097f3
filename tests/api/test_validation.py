"""Bad requests are 4xx that say what is wrong — never a 500, never a queued run."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import API, iris_spec


def with_changes(path: str, value: Any, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of the iris spec with the dotted ``path`` set to ``value`` (…=DELETE removes it)."""
    spec = copy.deepcopy(spec or iris_spec())
    *parents, last = path.split(".")
    node: Any = spec
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value == "DELETE":
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return spec


def assert_422_naming(response: Any, *words: str) -> None:
    assert response.status_code == 422, response.text
    text = response.text
    for word in words:
        assert word in text, f"{word!r} not named in {text}"


BAD_SPECS = {
    "unknown top-level field": (with_changes("learning_rte", 0.1), ["learning_rte"]),
    "unknown optimizer field": (with_changes("optimizer.momentum", 0.9), ["momentum"]),
    "unknown layer field": (with_changes("model.layers.0.unit", 3), ["unit"]),
    "wrong type": (with_changes("training.epochs", "many"), ["epochs"]),
    "float epochs": (with_changes("training.epochs", 1.5), ["epochs"]),
    "zero units": (with_changes("model.layers.0.units", 0), ["units"]),
    "negative learning rate": (with_changes("optimizer.learning_rate", -1), ["learning_rate"]),
    "validation split too large": (
        with_changes("training.validation_split", 0.95),
        ["validation_split"],
    ),
    "unknown activation": (with_changes("model.layers.0.activation", "swish"), ["activation"]),
    "unknown optimizer type": (with_changes("optimizer.type", "lbfgs"), ["optimizer"]),
    "missing model": (with_changes("model", "DELETE"), ["model"]),
    "no layers": (with_changes("model.layers", []), ["layers"]),
    "softmax in a hidden layer": (
        with_changes("model.layers.0.activation", "softmax"),
        ["softmax", "last layer"],
    ),
    "output width is not the class count": (
        with_changes("model.layers.1.units", 4),
        ["model.layers.1.units", "3 classes"],
    ),
    "cross entropy without softmax": (
        with_changes("model.layers.1.activation", "sigmoid"),
        ["loss", "softmax"],
    ),
    "softmax on a single unit": (
        {
            "dataset": "xor",
            "model": {"layers": [{"units": 1, "activation": "softmax"}]},
            "optimizer": {"type": "sgd"},
        },
        ["softmax"],
    ),
    "softmax for regression": (
        {
            "dataset": "sine",
            "model": {"layers": [{"units": 1, "activation": "softmax"}]},
            "optimizer": {"type": "sgd"},
        },
        ["softmax"],
    ),
    "initial weights with the wrong row count": (
        with_changes(
            "initial_weights",
            {
                "layers": [
                    {"weights": [[0.0] * 8] * 3, "biases": [0.0] * 8},
                    {"weights": [[0.0] * 3] * 8, "biases": [0.0] * 3},
                ]
            },
        ),
        ["initial_weights.layers.0.weights"],
    ),
    "initial weights with a missing layer": (
        with_changes(
            "initial_weights", {"layers": [{"weights": [[0.0] * 8] * 4, "biases": [0.0] * 8}]}
        ),
        ["initial_weights.layers"],
    ),
    "initial weights with wrong biases": (
        with_changes(
            "initial_weights",
            {
                "layers": [
                    {"weights": [[0.0] * 8] * 4, "biases": [0.0] * 7},
                    {"weights": [[0.0] * 3] * 8, "biases": [0.0] * 3},
                ]
            },
        ),
        ["initial_weights.layers.0.biases"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_SPECS), ids=list(BAD_SPECS))
def test_a_bad_spec_is_422_naming_the_problem_and_queues_nothing(
    idle_client: TestClient, case: str
) -> None:
    spec, words = BAD_SPECS[case]
    response = idle_client.post(f"{API}/runs", json=spec)
    assert_422_naming(response, *words)
    assert idle_client.get(f"{API}/runs").json()["total"] == 0


def test_a_spec_naming_an_unknown_dataset_is_404_naming_it(idle_client: TestClient) -> None:
    response = idle_client.post(f"{API}/runs", json=with_changes("dataset", "no-such-set"))
    assert response.status_code == 404, response.text
    assert "no-such-set" in response.json()["detail"]
    assert idle_client.get(f"{API}/runs").json()["total"] == 0


LIMITS = {
    "layers": ({"max_layers": 1}, with_changes("training.epochs", 1), "ANNLAB_MAX_LAYERS"),
    "units": ({"max_units": 4}, iris_spec(), "ANNLAB_MAX_UNITS"),
    "parameters": ({"max_parameters": 50}, iris_spec(), "ANNLAB_MAX_PARAMETERS"),
    "epochs": ({"max_epochs": 10}, iris_spec(), "ANNLAB_MAX_EPOCHS"),
}


@pytest.mark.parametrize("limit", list(LIMITS))
def test_a_spec_over_a_limit_is_422_naming_the_setting(make_client: Any, limit: str) -> None:
    settings, spec, variable = LIMITS[limit]
    client = make_client(executor="none", **settings)
    response = client.post(f"{API}/runs", json=spec)
    assert_422_naming(response, variable)


def test_too_many_queued_runs_is_429_with_retry_after(make_client: Any) -> None:
    client = make_client(executor="none", max_queued_runs=2)
    for _ in range(2):
        assert client.post(f"{API}/runs", json=iris_spec()).status_code == 202
    response = client.post(f"{API}/runs", json=iris_spec())
    assert response.status_code == 429, response.text
    assert "Retry-After" in response.headers
    assert "ANNLAB_MAX_QUEUED_RUNS" in response.text


# ------------------------------------------------------------------ malformed bodies


@pytest.mark.parametrize(
    "path", [f"{API}/runs", f"{API}/datasets", f"{API}/optimizers/trajectories"]
)
def test_malformed_json_is_400_not_422(idle_client: TestClient, path: str) -> None:
    """API.md: 400 for a malformed body, 422 for invalid values."""
    response = idle_client.post(
        path, content=b'{"dataset": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "JSON" in response.text


@pytest.mark.parametrize("depth", [100, 990, 5000, 100_000])
@pytest.mark.parametrize(
    "path",
    [f"{API}/runs", f"{API}/datasets", f"{API}/runs/x/predict", f"{API}/optimizers/trajectories"],
)
def test_deeply_nested_json_is_400(idle_client: TestClient, path: str, depth: int) -> None:
    body = "[" * depth + "]" * depth
    response = idle_client.post(path, content=body, headers={"content-type": "application/json"})
    # API.md: "a 400/422, never a 500". Predict counts rows ("[") before any scan, so a
    # deep list there is refused as too many rows (422) before its depth is looked at.
    expected = {400, 422} if path.endswith("/predict") else {400}
    assert response.status_code in expected, response.text
    nested_objects = '{"a":' * depth + "1" + "}" * depth
    response = idle_client.post(
        path, content=nested_objects, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text


def test_brackets_inside_strings_do_not_count_as_nesting(idle_client: TestClient) -> None:
    spec = iris_spec() | {"name": "[" * 500 + '\\"' + "{" * 500}
    response = idle_client.post(f"{API}/runs", json=spec)
    assert response.status_code == 422  # the name is too long, but it was parsed
    assert "name" in response.text


def test_wrong_content_type_is_a_client_error(idle_client: TestClient) -> None:
    response = idle_client.post(
        f"{API}/runs", content=b"dataset=iris", headers={"content-type": "text/plain"}
    )
    assert 400 <= response.status_code < 500, response.text
    response = idle_client.post(
        f"{API}/datasets", content=b"x,y\n1,2\n", headers={"content-type": "text/csv"}
    )
    assert response.status_code == 415, response.text


def test_nan_in_a_spec_is_422(idle_client: TestClient) -> None:
    body = b'{"dataset": "iris", "model": {"layers": [{"units": 3, "activation": "softmax"}]}, "optimizer": {"type": "sgd", "learning_rate": NaN}}'
    response = idle_client.post(
        f"{API}/runs", content=body, headers={"content-type": "application/json"}
    )
    assert_422_naming(response, "learning_rate")


# ----------------------------------------------------------------------- body size


def oversized(limit: int) -> bytes:
    return b'{"inputs": [[1.0]], "pad": "' + b"x" * (4 * limit) + b'"}'


def chunks(body: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("path", [f"{API}/runs", f"{API}/datasets", f"{API}/runs/x/predict"])
def test_an_oversized_body_with_content_length_is_413(make_client: Any, path: str) -> None:
    client = make_client(executor="none", max_body_bytes=10_000)
    body = oversized(10_000)
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.request.headers["content-length"] == str(len(body))
    assert response.status_code == 413, response.text
    assert "ANNLAB_MAX_BODY_BYTES" in response.json()["detail"]


@pytest.mark.parametrize("path", [f"{API}/runs", f"{API}/datasets"])
def test_an_oversized_chunked_body_is_413(make_client: Any, path: str) -> None:
    client = make_client(executor="none", max_body_bytes=10_000)
    response = client.post(
        path, content=chunks(oversized(10_000)), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text


def test_an_oversized_multipart_upload_is_413_naming_the_dataset_limit(make_client: Any) -> None:
    """A CSV form is bounded by ANNLAB_MAX_DATASET_BYTES plus the form's own bytes (the
    file streams to disk), not by the JSON body limit."""
    from app.http import UPLOAD_FORM_BYTES

    client = make_client(executor="none", max_body_bytes=10_000, max_dataset_bytes=20_000)
    csv = b"a,b,y\n" + b"1.0,2.0,0\n" * (UPLOAD_FORM_BYTES // 10 + 3000)
    response = client.post(
        f"{API}/datasets",
        files={"file": ("big.csv", csv)},
        data={"target": "y", "task": "classification"},
    )
    assert response.status_code == 413, response.text
    assert "ANNLAB_MAX_DATASET_BYTES" in response.json()["detail"]


def test_a_csv_upload_over_the_body_limit_but_within_the_dataset_limit_is_stored(
    make_client: Any,
) -> None:
    client = make_client(executor="none", max_body_bytes=10_000)
    csv = b"a,b,y\n" + b"".join(b"%d.5,2.0,%d\n" % (i, i % 2) for i in range(3000))
    assert len(csv) > 10_000
    response = client.post(
        f"{API}/datasets",
        files={"file": ("big.csv", csv)},
        data={"target": "y", "task": "classification"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["n_samples"] == 3000
    # the same size as JSON, or to another path, keeps the body limit
    rows = [[i + 0.5, 2.0] for i in range(3000)]
    as_json = {"name": "j", "task": "classification", "features": rows, "targets": [0, 1] * 1500}
    assert client.post(f"{API}/datasets", json=as_json).status_code == 413
    form = {"file": ("big.csv", csv)}
    assert client.post(f"{API}/runs", files=form).status_code == 413


def test_a_csv_file_over_the_dataset_limit_within_the_form_slack_is_422(make_client: Any) -> None:
    client = make_client(executor="none", max_dataset_bytes=5_000)
    csv = b"a,b,y\n" + b"1.0,2.0,0\n" * 1000
    response = client.post(
        f"{API}/datasets",
        files={"file": ("big.csv", csv)},
        data={"target": "y", "task": "classification"},
    )
    assert response.status_code == 422, response.text
    assert "ANNLAB_MAX_DATASET_BYTES" in response.text


def test_a_body_under_the_limit_is_accepted(make_client: Any) -> None:
    client = make_client(executor="none", max_body_bytes=10_000)
    response = client.post(f"{API}/runs", json=iris_spec() | {"name": "n" * 150})
    assert response.status_code == 202, response.text


# --------------------------------------------------------------------- idempotency


def test_the_same_key_and_body_twice_make_one_run(idle_client: TestClient) -> None:
    first = idle_client.post(f"{API}/runs", json=iris_spec(), headers={"Idempotency-Key": "k1"})
    second = idle_client.post(f"{API}/runs", json=iris_spec(), headers={"Idempotency-Key": "k1"})
    assert first.status_code == 202, first.text
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["location"] == first.headers["location"]
    assert idle_client.get(f"{API}/runs").json()["total"] == 1


def test_the_same_key_with_another_body_is_422(idle_client: TestClient) -> None:
    assert (
        idle_client.post(
            f"{API}/runs", json=iris_spec(), headers={"Idempotency-Key": "k2"}
        ).status_code
        == 202
    )
    other = idle_client.post(
        f"{API}/runs", json=iris_spec(epochs=3), headers={"Idempotency-Key": "k2"}
    )
    assert other.status_code == 422, other.text
    assert "Idempotency-Key" in other.text


def test_different_keys_make_different_runs(idle_client: TestClient) -> None:
    a = idle_client.post(f"{API}/runs", json=iris_spec(), headers={"Idempotency-Key": "a"}).json()
    b = idle_client.post(f"{API}/runs", json=iris_spec(), headers={"Idempotency-Key": "b"}).json()
    assert a["id"] != b["id"]


def test_a_key_over_255_characters_is_422(idle_client: TestClient) -> None:
    response = idle_client.post(
        f"{API}/runs", json=iris_spec(), headers={"Idempotency-Key": "k" * 256}
    )
    assert response.status_code == 422, response.text
    ok = idle_client.post(f"{API}/runs", json=iris_spec(), headers={"Idempotency-Key": "k" * 255})
    assert ok.status_code == 202, ok.text


def test_a_key_still_being_handled_is_409(idle_client: TestClient) -> None:
    in_flight = idle_client.app.state.in_flight  # type: ignore[attr-defined]
    with in_flight.hold(("local", "busy")):
        response = idle_client.post(
            f"{API}/runs", json=iris_spec(), headers={"Idempotency-Key": "busy"}
        )
        assert response.status_code == 409, response.text
    assert ("local", "busy") not in in_flight
    assert (
        idle_client.post(
            f"{API}/runs", json=iris_spec(), headers={"Idempotency-Key": "busy"}
        ).status_code
        == 202
    )
