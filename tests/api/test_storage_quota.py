"""ANNLAB_MAX_STORAGE_BYTES_PER_USER: uploads and submissions that would pass it are a
422 naming the variable and the figures; queued runs reserve their estimate; a run's
estimate bounds what it really stores."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.tables import RunRow
from app.db.usage import usage

from .conftest import API, iris_spec, submit, wait_for

SETTING = "ANNLAB_MAX_STORAGE_BYTES_PER_USER"
XOR = {
    "dataset": "xor",
    "model": {
        "layers": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "softmax"}]
    },
    "optimizer": {"type": "sgd", "learning_rate": 0.1},
    "training": {"epochs": 3, "batch_size": None, "validation_split": 0.0},
}


def upload(rows: int) -> dict[str, Any]:
    return {
        "name": f"{rows} rows",
        "task": "regression",
        "features": [[float(i), float(i % 7), float(i % 3)] for i in range(rows)],
        "targets": [float(i) for i in range(rows)],
    }


def stored(client: TestClient, owner_id: str = "local") -> Any:
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        return usage(session=session, owner_id=owner_id)


def estimate_of(client: TestClient, run_id: str) -> int:
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        value = session.scalar(select(RunRow.storage_estimate).where(RunRow.id == run_id))
    assert value is not None and value > 0
    return int(value)


def figures(detail: str) -> dict[str, int]:
    """The numbers the 422 names: total, limit, used."""
    return {
        "total": int(re.search(r"to (\d+) bytes", detail).group(1)),  # type: ignore[union-attr]
        "limit": int(re.search(r"limit of (\d+) bytes", detail).group(1)),  # type: ignore[union-attr]
        "used": int(re.search(r"(\d+) bytes used", detail).group(1)),  # type: ignore[union-attr]
    }


def test_an_upload_past_the_limit_is_a_422_naming_it_with_used_and_limit(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(
        executor="none", max_storage_bytes_per_user=20_000, database_url=database_url
    )
    assert client.post(f"{API}/datasets", json=upload(20)).status_code == 201
    used = stored(client).used
    assert 0 < used < 20_000
    refused = client.post(f"{API}/datasets", json=upload(2000))
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert SETTING in detail and "datasets" in detail
    numbers = figures(detail)
    assert numbers["limit"] == 20_000 and numbers["used"] == used
    assert numbers["total"] > 20_000
    assert stored(client).used == used  # nothing was stored
    assert len([d for d in client.get(f"{API}/datasets").json()["items"] if not d["builtin"]]) == 1


def test_without_the_setting_there_is_no_limit(make_client: Callable[..., TestClient]) -> None:
    client = make_client(executor="none")
    assert client.post(f"{API}/datasets", json=upload(2000)).status_code == 201


def test_queued_runs_reserve_their_estimate_until_they_end(
    make_client: Callable[..., TestClient], database_url: str
) -> None:
    client = make_client(
        executor="none", max_storage_bytes_per_user=10**9, database_url=database_url
    )
    first = submit(client, XOR)["id"]
    estimate = estimate_of(client, first)
    assert stored(client).reserved == estimate  # nothing stored yet: all of it reserved
    # room for one more such run than is queued, not two
    client.app.state.settings.max_storage_bytes_per_user = int(estimate * 1.5)  # type: ignore[attr-defined]
    refused = client.post(f"{API}/runs", json=XOR)
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert SETTING in detail and f"{estimate} reserved by queued and running runs" in detail
    assert client.get(f"{API}/runs").json()["total"] == 1  # the refused run was not stored
    assert client.post(f"{API}/runs/{first}/cancel").status_code == 202
    assert stored(client).reserved == 0  # a cancelled run reserves nothing
    assert client.post(f"{API}/runs", json=XOR).status_code == 202


def test_a_run_whose_estimate_alone_passes_the_limit_is_refused_at_submission(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(executor="none", max_storage_bytes_per_user=30_000)
    big = iris_spec(epochs=1000)
    big["model"] = {
        "layers": [{"units": 256, "activation": "relu"}, {"units": 3, "activation": "softmax"}]
    }
    refused = client.post(f"{API}/runs", json=big)
    assert refused.status_code == 422, refused.text
    assert SETTING in refused.json()["detail"] and "this run (estimated" in refused.json()["detail"]
    assert client.get(f"{API}/runs").json()["total"] == 0


def test_an_experiment_is_checked_with_all_its_runs(make_client: Callable[..., TestClient]) -> None:
    client = make_client(executor="none", max_storage_bytes_per_user=10**9)
    one = estimate_of(client, submit(client, XOR)["id"])
    client.app.state.settings.max_storage_bytes_per_user = one * 3 + one // 2  # type: ignore[attr-defined]
    body = {"name": "seeds", "base": XOR, "grid": {"training.seed": [0, 1, 2]}}
    refused = client.post(f"{API}/experiments", json=body)
    assert refused.status_code == 422, refused.text
    assert SETTING in refused.json()["detail"] and "these 3 runs" in refused.json()["detail"]
    assert client.get(f"{API}/experiments").json()["total"] == 0
    body["grid"] = {"training.seed": [0, 1]}
    assert client.post(f"{API}/experiments", json=body).status_code == 202


@pytest.mark.parametrize(
    "spec",
    [
        XOR,
        {  # Adam keeps two states; early stopping keeps the best weights; log snapshots
            **iris_spec(epochs=60),
            "optimizer": {"type": "adam", "learning_rate": 0.01},
            "dtype": "float64",
            "training": {
                "epochs": 60,
                "early_stopping": {"patience": 100, "restore_best": True},
                "snapshots": "log",
            },
        },
        {  # every epoch a snapshot
            **iris_spec(epochs=12),
            "model": {
                "layers": [
                    {"units": 64, "activation": "relu"},
                    {"units": 3, "activation": "softmax"},
                ]
            },
            "training": {"epochs": 12, "snapshots": list(range(1, 13))},
        },
    ],
    ids=["xor-sgd", "iris-adam-early-stopping", "iris-every-epoch"],
)
def test_a_finished_run_stores_no_more_than_its_estimate(
    make_client: Callable[..., TestClient], spec: dict[str, Any]
) -> None:
    client = make_client(checkpoint_seconds=0.001)  # a checkpoint at every epoch boundary
    run_id = submit(client, spec)["id"]
    assert wait_for(client, run_id)["status"] == "succeeded"
    estimate = estimate_of(client, run_id)
    used = stored(client)
    assert used.reserved == 0 and 0 < used.runs <= estimate, (used, estimate)
