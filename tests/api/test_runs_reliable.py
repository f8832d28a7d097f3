"""Runs a user can rely on (issue 9): best-epoch metrics, owner, tags, PATCH, sorting,
strict query strings, stop-and-keep, the time limit keeping the model, default names,
the 429 message."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.db.users import LOCAL_USER_NAME
from tests.api.conftest import API, get_run, submit, wait_for
from tests.support.specs import iris_spec, long_spec


def _metrics(client: TestClient, run_id: str) -> dict[str, list[Any]]:
    response = client.get(f"{API}/runs/{run_id}/metrics")
    assert response.status_code == 200, response.text
    return response.json()


def test_best_metrics_are_the_metrics_of_the_best_epoch_without_early_stopping(
    client: TestClient,
) -> None:
    # lr 0.5 overshoots: the last epoch is not the best, so metrics != best_metrics
    spec = iris_spec(epochs=40)
    spec["optimizer"] = {"type": "sgd", "learning_rate": 0.9, "momentum": 0.9}
    final = wait_for(client, submit(client, spec)["id"])
    assert final["status"] == "succeeded", final
    history = _metrics(client, final["id"])
    val = history["val_loss"]
    best = min(range(len(val)), key=lambda i: (val[i], i))
    assert final["best_epoch"] == history["epoch"][best]
    expected = {name: history[name][best] for name in final["metrics"]}
    assert final["best_metrics"] == expected
    assert final["metrics"]["val_loss"] == val[-1]


def test_a_run_has_owner_tags_and_experiment_id(client: TestClient) -> None:
    run = submit(client, {**iris_spec(epochs=1), "tags": {"group": "a"}})
    assert run["owner"] == LOCAL_USER_NAME
    assert run["tags"] == {"group": "a"}
    assert run["experiment_id"] is None
    assert run["best_metrics"] is None  # nothing recorded yet


def test_patch_renames_and_retags_and_tag_filters_follow(idle_client: TestClient) -> None:
    a = submit(idle_client, {**iris_spec(name="a"), "tags": {"group": "a"}})
    b = submit(idle_client, {**iris_spec(name="b"), "tags": {"group": "b", "k": "v"}})
    listed = idle_client.get(f"{API}/runs", params={"tag": "group:a"}).json()
    assert [item["id"] for item in listed["items"]] == [a["id"]] and listed["total"] == 1
    response = idle_client.patch(
        f"{API}/runs/{a['id']}", json={"name": "renamed", "tags": {"group": "b"}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "renamed" and response.json()["tags"] == {"group": "b"}
    assert get_run(idle_client, a["id"])["spec"]["tags"] == {"group": "b"}
    both = idle_client.get(f"{API}/runs", params={"tag": "group:b"}).json()
    assert {item["id"] for item in both["items"]} == {a["id"], b["id"]}
    one = idle_client.get(f"{API}/runs", params=[("tag", "group:b"), ("tag", "k:v")]).json()
    assert [item["id"] for item in one["items"]] == [b["id"]]
    bad = idle_client.patch(f"{API}/runs/{a['id']}", json={"tags": {"bad key!": "x"}})
    assert bad.status_code == 422
    unknown = idle_client.patch(f"{API}/runs/{a['id']}", json={"nmae": "typo"})
    assert unknown.status_code == 422 and "nmae" in unknown.text


def test_an_unknown_query_parameter_or_sort_key_is_a_422_listing_the_known_ones(
    idle_client: TestClient,
) -> None:
    response = idle_client.get(f"{API}/runs", params={"stauts": "running"})
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    assert "stauts" in message
    for known in ("status", "dataset", "tag", "sort", "limit", "offset"):
        assert known in message
    response = idle_client.get(f"{API}/runs", params={"sort": "val_loss"})
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    for known in ("created_at", "-created_at", "best_val_loss", "-best_val_accuracy", "duration"):
        assert known in message
    assert idle_client.get(f"{API}/runs", params={"tag": "no-colon"}).status_code == 422


def test_runs_sort_by_best_validation_loss_and_accuracy_page_by_page(client: TestClient) -> None:
    ids = []
    for lr in (0.001, 0.05, 0.01):
        spec = iris_spec(epochs=5, name=f"lr {lr}")
        spec["optimizer"]["learning_rate"] = lr
        ids.append(wait_for(client, submit(client, spec)["id"])["id"])
    runs = {run_id: get_run(client, run_id) for run_id in ids}
    by_loss = sorted(ids, key=lambda i: runs[i]["best_metrics"]["val_loss"])

    def page(sort: str) -> list[str]:
        seen = []
        for offset in range(3):
            body = client.get(
                f"{API}/runs", params={"sort": sort, "limit": 1, "offset": offset}
            ).json()
            seen += [item["id"] for item in body["items"]]
        return seen

    assert page("best_val_loss") == by_loss
    assert page("-best_val_loss") == by_loss[::-1]
    by_accuracy = sorted(ids, key=lambda i: -runs[i]["best_metrics"]["val_accuracy"])
    desc = page("-best_val_accuracy")
    assert [runs[i]["best_metrics"]["val_accuracy"] for i in desc] == [
        runs[i]["best_metrics"]["val_accuracy"] for i in by_accuracy
    ]
    assert client.get(f"{API}/runs", params={"sort": "duration"}).status_code == 200
    oldest = client.get(f"{API}/runs", params={"sort": "created_at"}).json()["items"][0]
    assert oldest["id"] == ids[0]


def test_a_run_without_best_metrics_sorts_last_both_ways(client: TestClient) -> None:
    done = wait_for(client, submit(client, iris_spec(epochs=2))["id"])
    client.app.state.executor.shutdown(graceful=True)  # type: ignore[attr-defined]
    pending = submit(client, iris_spec(epochs=2, name="pending"))
    for sort in ("best_val_loss", "-best_val_loss"):
        items = client.get(f"{API}/runs", params={"sort": sort}).json()["items"]
        assert [item["id"] for item in items] == [done["id"], pending["id"]]


def test_stop_keeps_the_model(client: TestClient) -> None:
    run = submit(client, long_spec())
    wait_for(client, run["id"], lambda r: r["progress"]["epoch"] >= 2)
    response = client.post(f"{API}/runs/{run['id']}/stop")
    assert response.status_code == 202, response.text
    final = wait_for(client, run["id"])
    assert (final["status"], final["stop_reason"]) == ("succeeded", "stopped"), final
    assert final["error"] is None and final["best_metrics"] is not None
    assert client.get(f"{API}/runs/{run['id']}/weights").status_code == 200
    predicted = client.post(f"{API}/runs/{run['id']}/predict", json={"inputs": [[5, 3, 1, 0.2]]})
    assert predicted.status_code == 200, predicted.text
    again = client.post(f"{API}/runs/{run['id']}/stop")
    assert again.status_code == 409 and "finished" in again.json()["detail"]


def test_stop_with_restore_best_keeps_the_best_epoch(client: TestClient) -> None:
    spec = long_spec(early_stopping={"patience": 10**6, "restore_best": True})
    run = submit(client, spec)
    wait_for(client, run["id"], lambda r: r["progress"]["epoch"] >= 3)
    assert client.post(f"{API}/runs/{run['id']}/stop").status_code == 202
    final = wait_for(client, run["id"])
    assert (final["status"], final["stop_reason"]) == ("succeeded", "stopped"), final
    history = _metrics(client, run["id"])
    assert final["best_metrics"]["val_loss"] == min(history["val_loss"])


def test_stopping_a_queued_run_cancels_it(idle_client: TestClient) -> None:
    run = submit(idle_client, iris_spec())
    response = idle_client.post(f"{API}/runs/{run['id']}/stop")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    assert idle_client.post(f"{API}/runs/{run['id']}/stop").status_code == 409


def test_default_names_tell_runs_apart(idle_client: TestClient) -> None:
    spec = {
        "dataset": "moons",
        "model": {"layers": [{"units": 2, "activation": "softmax"}]},
        "optimizer": {"type": "sgd", "momentum": 0.9, "learning_rate": 0.1},
    }
    assert submit(idle_client, spec)["name"] == "sgd(momentum=0.9, lr=0.1) on moons"
    plain = {key: value for key, value in spec.items() if key != "optimizer"}
    assert submit(idle_client, plain)["name"] == "sgd(lr=0.01) on moons"
    upload = idle_client.post(
        f"{API}/datasets",
        json={
            "name": "gates",
            "task": "classification",
            "features": [[0], [1], [0], [1]],
            "targets": [0, 1, 0, 1],
        },
    ).json()
    named = submit(idle_client, {**plain, "dataset": upload["id"], "optimizer": {"type": "adam"}})
    assert named["name"] == "adam(lr=0.001) on gates"


def test_a_full_queue_says_how_many_are_queued_the_limit_and_what_to_do(
    make_client: Any,
) -> None:
    client = make_client(executor="none", max_queued_runs=2)
    for _ in range(2):
        submit(client, iris_spec())
    response = client.post(f"{API}/runs", json=iris_spec())
    assert response.status_code == 429
    detail = response.json()["detail"]
    assert "2 runs queued" in detail and "limit is 2" in detail
    assert "wait" in detail and "admin" in detail
