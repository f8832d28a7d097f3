"""Datasets a user can rely on (issue 9): CSV delimiters, a likely-regression target
refused, downloads, deleting a dataset that runs use, and the model documents that
outlive it."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from core.errors import DatasetError
from core.loaders import dataset_from_csv, sniff_delimiter
from tests.api.conftest import API, submit, wait_for

ROWS = [(0.5, 1.0, "a"), (1.5, 2.0, "b"), (2.5, 3.5, "a"), (3.0, 0.25, "b"), (4.0, 1.0, "a")]


def _csv(delimiter: str) -> bytes:
    lines = [delimiter.join(["x 1", "x2", "label"])]
    lines += [delimiter.join(str(cell) for cell in row) for row in ROWS]
    return ("\n".join(lines) + "\n").encode()


def _upload(client: TestClient, content: bytes, **form: str) -> Any:
    fields = {"target": "label", "task": "classification", "name": "toy", **form}
    return client.post(
        f"{API}/datasets", data=fields, files={"file": ("toy.csv", io.BytesIO(content))}
    )


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_detected(idle_client: TestClient, delimiter: str) -> None:
    assert sniff_delimiter(_csv(delimiter).decode()) == delimiter
    response = _upload(idle_client, _csv(delimiter))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["feature_names"] == ["x 1", "x2"] and body["class_names"] == ["a", "b"]


def test_a_delimiter_field_overrides_detection(idle_client: TestClient) -> None:
    # column names with commas: detection (a tie) takes the comma, the field says ;
    content = b"x,1;x,2;label\n1;2;x\n3;4;y\n5;6;x\n7;8;y\n"
    assert _upload(idle_client, content).status_code == 422
    given = _upload(idle_client, content, delimiter=";")
    assert given.status_code == 201 and given.json()["feature_names"] == ["x,1", "x,2"]
    tab = _upload(idle_client, _csv("\t"), delimiter="\\t")
    assert tab.status_code == 201, tab.text
    bad = _upload(idle_client, _csv(","), delimiter="|")
    assert bad.status_code == 422 and "delimiter" in bad.text


def test_more_classes_than_half_the_rows_suggests_regression(idle_client: TestClient) -> None:
    content = b"x,y\n1,0.5\n2,1.5\n3,2.5\n4,3.5\n5,2.5\n"
    response = _upload(idle_client, content, target="y")
    assert response.status_code == 422
    assert "task=regression" in response.json()["detail"][0]["msg"]
    assert _upload(idle_client, content, target="y", task="regression").status_code == 201
    as_json = idle_client.post(
        f"{API}/datasets",
        json={
            "name": "n",
            "task": "classification",
            "features": [[1], [2], [3]],
            "targets": [1, 2, 3],
        },
    )
    assert as_json.status_code == 422 and "task=regression" in as_json.text
    with pytest.raises(DatasetError, match="regression"):
        dataset_from_csv(content=content, target="y", task="classification", name="n")


def test_downloads_upload_again_to_the_same_data(idle_client: TestClient) -> None:
    created = _upload(idle_client, _csv(";")).json()
    as_csv = idle_client.get(f"{API}/datasets/{created['id']}/data", params={"format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines()[0] == "x 1,x2,target"
    again = _upload(idle_client, as_csv.content, target="target").json()
    as_json = idle_client.get(f"{API}/datasets/{created['id']}/data?format=json").json()
    assert as_json["features"] == [[row[0], row[1]] for row in ROWS]
    assert as_json["targets"] == [row[2] for row in ROWS]
    reposted = idle_client.post(f"{API}/datasets", json=as_json).json()
    for copy in (again, reposted):
        back = idle_client.get(f"{API}/datasets/{copy['id']}/data?format=json").json()
        assert (back["features"], back["targets"]) == (as_json["features"], as_json["targets"])
    sine = idle_client.get(f"{API}/datasets/sine/data?format=json").json()
    assert isinstance(sine["targets"][0], float) and len(sine["features"]) == 400
    assert idle_client.get(f"{API}/datasets/{created['id']}/data?format=xml").status_code == 422
    assert idle_client.get(f"{API}/datasets/nope/data").status_code == 404


def test_deleting_a_dataset_runs_use_needs_force_and_the_runs_keep_their_models(
    client: TestClient,
) -> None:
    created = _upload(client, _csv(",")).json()
    spec = {
        "dataset": created["id"],
        "model": {"layers": [{"units": 2, "activation": "softmax"}]},
        "training": {"epochs": 3, "validation_split": 0.4},
        "dtype": "float64",
    }
    final = wait_for(client, submit(client, spec)["id"])
    assert final["status"] == "succeeded", final
    assert final["name"] == "sgd(lr=0.01) on toy"
    refused = client.delete(f"{API}/datasets/{created['id']}")
    assert refused.status_code == 409 and "1 run" in refused.json()["detail"]
    assert "force=true" in refused.json()["detail"]
    assert client.delete(f"{API}/datasets/{created['id']}?force=true").status_code == 204
    client.app.state.model_cache.evict(final["id"])  # type: ignore[attr-defined]  # from the database
    predicted = client.post(f"{API}/runs/{final['id']}/predict", json={"inputs": [[1.0, 2.0]]})
    assert predicted.status_code == 200 and predicted.json()["predictions"][0] in ("a", "b")
    document = client.get(f"{API}/runs/{final['id']}/weights").json()
    assert document["dataset_name"] == "toy" and document["feature_names"] == ["x 1", "x2"]
    assert document["task"] == "classification" and document["class_names"] == ["a", "b"]
    npz = client.get(f"{API}/runs/{final['id']}/weights?format=npz").content
    with np.load(io.BytesIO(npz), allow_pickle=False) as archive:
        assert archive["feature_names"].tolist() == ["x 1", "x2"]
    gone = client.post(f"{API}/runs/{final['id']}/evaluate")
    assert gone.status_code == 409 and "deleted" in gone.json()["detail"]
