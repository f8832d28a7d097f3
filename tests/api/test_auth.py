"""API keys (ANNLAB_AUTH=on) and ownership: who may see and touch which dataset and run."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import cli
from app.db.engine import transaction
from app.db.users import create_user, revoke_user
from app.services import runs as run_service
from tests.support.waiting import wait_for

from .conftest import API, TERMINAL, sse_events

BUILTINS = ["iris", "xor", "blobs", "moons", "circles", "spiral", "sine"]

#: A run that trains in a few milliseconds.
TINY = {
    "dataset": "xor",
    "model": {
        "layers": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "softmax"}]
    },
    "optimizer": {"type": "sgd", "learning_rate": 0.1},
    "training": {"epochs": 3, "batch_size": None, "validation_split": 0.0},
}
AND_GATE = {
    "name": "and gate",
    "task": "classification",
    "features": [[0, 0], [0, 1], [1, 0], [1, 1]],
    "targets": ["no", "no", "no", "yes"],
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class As:
    """A TestClient that sends one user's key with every request."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client, self.key, self.headers = client, key, bearer(key)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def wait(self, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The run once it is finished."""

        def finished() -> dict[str, Any] | None:
            run = self.get(f"{API}/runs/{run_id}").json()
            return run if run["status"] in TERMINAL else None

        return wait_for(finished, timeout=timeout, message=f"run {run_id} never finished")


def add_user(client: TestClient, name: str, *, admin: bool = False) -> str:
    with transaction(client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        return create_user(session=session, name=name, is_admin=admin).key


@pytest.fixture
def auth_client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(auth=True)


@pytest.fixture
def users(auth_client: TestClient) -> dict[str, As]:
    """alice and bob (plain users) and root (an admin)."""
    return {
        name: As(auth_client, add_user(auth_client, name, admin=name == "root"))
        for name in ("alice", "bob", "root")
    }


@pytest.fixture
def alices(users: dict[str, As]) -> dict[str, str]:
    """alice's dataset and her succeeded run (its model warm in the predict cache)."""
    alice = users["alice"]
    dataset = alice.post(f"{API}/datasets", json=AND_GATE)
    assert dataset.status_code == 201, dataset.text
    run = alice.post(f"{API}/runs", json=TINY)
    assert run.status_code == 202, run.text
    run_id = run.json()["id"]
    assert alice.wait(run_id)["status"] == "succeeded"
    assert alice.post(f"{API}/runs/{run_id}/predict", json={"inputs": [[0, 1]]}).status_code == 200
    return {"dataset": dataset.json()["id"], "run": run_id}


# -------------------------------------------------------------------- 401


ANY_ROUTES = [
    ("GET", f"{API}/datasets"),
    ("GET", f"{API}/datasets/iris"),
    ("POST", f"{API}/datasets"),
    ("GET", f"{API}/runs"),
    ("POST", f"{API}/runs"),
    ("GET", f"{API}/runs/run_0/events"),
    ("POST", f"{API}/runs/run_0/predict"),
    ("POST", f"{API}/optimizers/trajectories"),
]


@pytest.mark.parametrize(("method", "path"), ANY_ROUTES, ids=[f"{m} {p}" for m, p in ANY_ROUTES])
def test_no_key_is_401_with_a_bearer_challenge(
    auth_client: TestClient, method: str, path: str
) -> None:
    response = auth_client.request(method, path, json={})
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in response.json()["detail"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer annlab_" + "A" * 43,
        "Bearer not-a-key",
        "Bearer ",
        "Basic YWxpY2U6c2VjcmV0",
        "annlab_" + "A" * 43,
    ],
)
def test_a_bad_key_is_401(auth_client: TestClient, users: Any, authorization: str) -> None:
    response = auth_client.get(f"{API}/runs", headers={"Authorization": authorization})
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_another_users_key_with_one_character_changed_is_401(users: dict[str, As]) -> None:
    key = users["alice"].key
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")  # same lookup prefix, other hash
    response = users["alice"].client.get(f"{API}/runs", headers=bearer(forged))
    assert response.status_code == 401


def test_a_revoked_key_is_401_at_once(auth_client: TestClient, users: dict[str, As]) -> None:
    alice = users["alice"]
    assert alice.get(f"{API}/runs").status_code == 200
    with transaction(auth_client.app.state.session_factory) as session:  # type: ignore[attr-defined]
        revoke_user(session=session, name="alice")
    response = alice.get(f"{API}/runs")
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown or revoked API key"
    assert users["bob"].get(f"{API}/runs").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/docs", "/openapi.json"])
def test_health_and_docs_stay_open(auth_client: TestClient, path: str) -> None:
    assert auth_client.get(path).status_code == 200


def test_openapi_documents_the_bearer_scheme_and_401(auth_client: TestClient) -> None:
    document = auth_client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["HTTPBearer"]["description"],
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path.startswith((API, "/serve/")):  # MLflow's routes need the key too
                assert operation["security"] == [{"HTTPBearer": []}], f"{method} {path}"
                assert "401" in operation["responses"], f"{method} {path}"
            else:
                assert "security" not in operation and "401" not in operation["responses"]


def test_with_auth_off_nothing_asks_for_a_key(idle_client: TestClient) -> None:
    assert idle_client.get(f"{API}/runs").status_code == 200
    document = idle_client.get("/openapi.json").json()
    # the scheme is declared (an Authorize button in /docs), no operation requires it
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert not any(operation.get("security") for operation in operations)


# --------------------------------------------------------------- ownership

#: Every route of a dataset or run id, as (method, path template, body).
OWNED_ROUTES = [
    ("GET", "/datasets/{dataset}", None),
    ("DELETE", "/datasets/{dataset}", None),
    ("GET", "/runs/{run}", None),
    ("GET", "/runs/{run}/metrics", None),
    ("GET", "/runs/{run}/events", None),
    ("GET", "/runs/{run}/weights", None),
    ("GET", "/runs/{run}/weights?format=npz", None),
    ("POST", "/runs/{run}/predict", {"inputs": [[0, 1]]}),
    ("POST", "/runs/{run}/cancel", None),
    ("DELETE", "/runs/{run}", None),
]


def test_another_users_dataset_and_run_are_404_everywhere(
    users: dict[str, As], alices: dict[str, str]
) -> None:
    bob = users["bob"]
    for method, template, body in OWNED_ROUTES:
        path = API + template.format(**alices)
        response = bob.request(method, path, json=body)
        assert response.status_code == 404, f"{method} {path} -> {response.status_code}"
        assert "not found" in response.json()["detail"]
    # the predict above met a warm cache entry of alice's model: still 404
    submitted = bob.post(f"{API}/runs", json=TINY | {"dataset": alices["dataset"]})
    assert submitted.status_code == 404
    assert alices["dataset"] in submitted.json()["detail"]
    # nothing of alice's changed
    alice = users["alice"]
    assert alice.get(f"{API}/datasets/{alices['dataset']}").status_code == 200
    assert alice.get(f"{API}/runs/{alices['run']}").json()["status"] == "succeeded"


def test_another_users_data_is_absent_from_lists(
    users: dict[str, As], alices: dict[str, str]
) -> None:
    bob = users["bob"]
    datasets = bob.get(f"{API}/datasets").json()
    assert [item["id"] for item in datasets["items"]] == BUILTINS and datasets["total"] == 7
    assert bob.get(f"{API}/runs").json() == {"items": [], "total": 0}
    assert bob.get(f"{API}/runs", params={"dataset": "xor"}).json()["total"] == 0
    assert bob.get(f"{API}/runs", params={"status": "succeeded"}).json()["total"] == 0
    alice = users["alice"]
    assert alice.get(f"{API}/datasets").json()["total"] == 8
    assert [run["id"] for run in alice.get(f"{API}/runs").json()["items"]] == [alices["run"]]


def test_an_admin_sees_and_manages_everything(users: dict[str, As], alices: dict[str, str]) -> None:
    bob, root = users["bob"], users["root"]
    bobs = bob.post(f"{API}/runs", json=TINY).json()["id"]
    runs = root.get(f"{API}/runs").json()
    assert runs["total"] == 2 and {run["id"] for run in runs["items"]} == {alices["run"], bobs}
    assert alices["dataset"] in [item["id"] for item in root.get(f"{API}/datasets").json()["items"]]
    for method, template, body in OWNED_ROUTES[:-2]:
        if method == "DELETE":
            continue
        path = API + template.format(**alices)
        assert root.request(method, path, json=body).status_code == 200, f"{method} {path}"
    # an admin may train on anyone's dataset and delete anyone's run and dataset
    on_alices = root.post(f"{API}/runs", json=TINY | {"dataset": alices["dataset"]})
    assert on_alices.status_code == 202, on_alices.text
    assert root.wait(on_alices.json()["id"])["status"] == "succeeded"
    assert root.delete(f"{API}/runs/{alices['run']}").status_code == 204
    assert users["alice"].get(f"{API}/runs/{alices['run']}").status_code == 404
    # root's run on it finished: it refers to the dataset, so only with force
    assert root.delete(f"{API}/datasets/{alices['dataset']}").status_code == 409
    assert root.delete(f"{API}/datasets/{alices['dataset']}?force=true").status_code == 204


def test_built_ins_are_everyones_and_never_deletable(users: dict[str, As]) -> None:
    for user in users.values():
        assert user.get(f"{API}/datasets/iris").json()["builtin"] is True
        response = user.delete(f"{API}/datasets/iris")
        assert response.status_code == 403, response.text
    assert users["bob"].post(f"{API}/runs", json=TINY).status_code == 202


def test_a_user_deletes_their_own_dataset_and_run(
    users: dict[str, As], alices: dict[str, str]
) -> None:
    alice = users["alice"]
    assert alice.delete(f"{API}/runs/{alices['run']}").status_code == 204
    assert alice.delete(f"{API}/datasets/{alices['dataset']}").status_code == 204
    assert alice.get(f"{API}/datasets").json()["total"] == 7


def test_idempotency_keys_belong_to_each_user(users: dict[str, As]) -> None:
    key = {"Idempotency-Key": "same-key-1"}
    alices = users["alice"].post(f"{API}/runs", json=TINY, headers=key)
    bobs = users["bob"].post(f"{API}/runs", json=TINY, headers=key)
    assert alices.status_code == bobs.status_code == 202
    assert alices.json()["id"] != bobs.json()["id"]
    replay = users["bob"].post(f"{API}/runs", json=TINY, headers=key)
    assert replay.status_code == 200 and replay.json()["id"] == bobs.json()["id"]


def test_the_queued_run_limit_counts_the_callers_runs_only(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(auth=True, executor="none", max_queued_runs=2)
    alice, bob = As(client, add_user(client, "alice")), As(client, add_user(client, "bob"))
    for _ in range(2):
        assert alice.post(f"{API}/runs", json=TINY).status_code == 202
    refused = alice.post(f"{API}/runs", json=TINY)
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert "ANNLAB_MAX_QUEUED_RUNS" in refused.json()["detail"]
    assert bob.post(f"{API}/runs", json=TINY).status_code == 202


# --------------------------------------------------------- the stored keys


def test_the_key_is_not_stored_in_clear(auth_client: TestClient, tmp_path: Path) -> None:
    key = add_user(auth_client, "alice")
    database = tmp_path / "data" / "annlab.db"
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        row = dict(connection.execute("SELECT * FROM users WHERE name = 'alice'").fetchone())
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {str(value) for value in row.values()}
    assert row["key_prefix"] is not None and len(row["key_prefix"]) < len(key) // 2
    for path in database.parent.iterdir():  # the database file, its WAL, anything else
        assert key.encode() not in path.read_bytes(), path.name


# --------------------------------------------------------------------- CLI


def run_cli(data_dir: Path, *args: str) -> Any:
    env = {"ANNLAB_DATA_DIR": str(data_dir), "ANNLAB_DATABASE_URL": None}
    return CliRunner().invoke(cli, ["users", *args], env=env)  # type: ignore[dict-item]


def test_the_cli_creates_lists_and_revokes_users(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli-data"
    created = run_cli(data_dir, "create", "alice", "--create")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("annlab_") and len(key) > 40 and "\n" not in key
    assert "only now" in created.stderr
    assert run_cli(data_dir, "create", "root", "--admin").exit_code == 0
    listing = run_cli(data_dir, "list")
    assert listing.exit_code == 0
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ADMIN", "CREATED", "REVOKED"]
    assert [line.split()[:2] for line in lines[1:]] == [["alice", "no"], ["root", "yes"]]
    assert key not in listing.output and "annlab_" not in listing.output
    assert run_cli(data_dir, "revoke", "alice").exit_code == 0
    alice = run_cli(data_dir, "list").stdout.splitlines()[1]
    assert alice.split()[-1] == "UTC" and alice.count("UTC") == 2  # created and revoked


def test_users_create_names_the_database_and_creates_one_only_with_create(
    tmp_path: Path, postgres_url: str
) -> None:
    data_dir = tmp_path / "typo"
    refused = run_cli(data_dir, "create", "alice")
    assert refused.exit_code == 1 and "--create" in refused.stderr
    assert str(data_dir) in refused.stderr and not data_dir.exists()
    created = run_cli(data_dir, "create", "alice", "--create")
    assert created.exit_code == 0 and str(data_dir / "annlab.db") in created.stderr
    again = run_cli(data_dir, "create", "bob")  # the database exists now: no flag needed
    assert again.exit_code == 0, again.output
    # a database server without annlab's tables: refused too
    env = {"ANNLAB_DATABASE_URL": postgres_url}
    empty = CliRunner().invoke(cli, ["users", "create", "carol"], env=env)
    assert empty.exit_code == 1 and "no annlab tables" in empty.stderr
    made = CliRunner().invoke(cli, ["users", "create", "carol", "--create"], env=env)
    assert made.exit_code == 0, made.output


def test_the_cli_refuses_a_duplicate_or_invalid_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli-data"
    assert run_cli(data_dir, "create", "alice", "--create").exit_code == 0
    duplicate = run_cli(data_dir, "create", "alice")
    assert duplicate.exit_code != 0
    assert "already exists" in duplicate.stderr and duplicate.stdout == ""
    for name in ("local", "two words", ""):
        assert run_cli(data_dir, "create", name).exit_code != 0, name
    unknown = run_cli(data_dir, "revoke", "nobody")
    assert unknown.exit_code != 0 and "no user named 'nobody'" in unknown.stderr


def test_a_key_from_the_cli_opens_the_api(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    key = run_cli(
        data_dir, "create", "alice", "--create"
    ).stdout.strip()  # before the server ever ran
    client = make_client(auth=True, executor="none", data_dir=data_dir)
    assert client.get(f"{API}/runs", headers=bearer(key)).status_code == 200
    assert run_cli(data_dir, "revoke", "alice").exit_code == 0  # while it runs
    assert client.get(f"{API}/runs", headers=bearer(key)).status_code == 401


# ------------------------------------------------------------ event stream


def test_the_events_of_a_run_deleted_mid_stream_end_without_a_made_up_status(
    idle_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = idle_client.post(f"{API}/runs", json=TINY).json()["id"]
    events: list[tuple[str, Any]] = []
    looks: list[object] = []
    snapshot = run_service.snapshot

    def counted(**kwargs: Any) -> object:
        result = snapshot(**kwargs)
        looks.append(result)
        return result

    monkeypatch.setattr(run_service, "snapshot", counted)
    # TestClient hands a response over once it is complete: read it in a thread
    reader = threading.Thread(
        target=lambda: events.extend(sse_events(idle_client, f"{API}/runs/{run_id}/events"))
    )
    reader.start()
    # The route's look (404 or not), then the stream's first, which reports "queued".
    wait_for(lambda: len(looks) >= 2, timeout=10, message="the stream never looked at the run")
    assert idle_client.delete(f"{API}/runs/{run_id}").status_code == 204
    reader.join(timeout=10)
    assert not reader.is_alive(), "the stream did not end after the run was deleted"
    assert events == [("status", {"status": "queued", "stop_reason": None, "error": None})]
