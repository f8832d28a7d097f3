"""The README's `docker run` procedure, run for real against the built image.

One container for the module (its own name, volume and loopback port): health,
the healthcheck, a user's key, auth, a run trained and predicted, the user and
the read-only root, then `stop` with a run in progress and `start` again: the
run resumes from its checkpoint and ends with the weights of the same spec
trained straight through, bit for bit.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.container.conftest import FIGURES
from tests.container.engine import Engine
from tests.container.readme import Names, argv_for, lab_command

# The first test of the session also waits for the image build (cold: minutes).
pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]

KEY = re.compile(r"annlab_[A-Za-z0-9_-]{43}")
HEALTHY_SECONDS = 120
RUN_SECONDS = 300

QUICK_SPEC = {
    "name": "iris in the container",
    "dataset": "iris",
    "model": {
        "layers": [{"units": 8, "activation": "relu"}, {"units": 3, "activation": "softmax"}]
    },
    "optimizer": {"type": "adam", "learning_rate": 0.01},
    "training": {"epochs": 20, "batch_size": 16, "seed": 1},
}
# Long enough to be stopped mid-way on any machine (each epoch is 45 steps), short
# enough to train twice within the group's budget.
LONG_SPEC = {
    "name": "spiral, stopped and resumed",
    "dataset": "spiral",
    "model": {
        "layers": [
            {"units": 64, "activation": "tanh"},
            {"units": 64, "activation": "tanh"},
            {"units": 3, "activation": "softmax"},
        ]
    },
    "optimizer": {"type": "adam", "learning_rate": 0.003},
    "training": {"epochs": 300, "batch_size": 8, "seed": 7},
    "dtype": "float64",
}


@dataclass
class Lab:
    engine: Engine
    names: Names
    client: httpx.Client

    def readme(self, prefix: str, *, check: bool = True, timeout: float = 120):
        """Run the README command that starts with `prefix`."""
        argv = argv_for(lab_command(prefix), self.engine.name, self.names, self.engine.compose)
        return self.engine.run(argv, check=check, timeout=timeout)

    def exec(self, *argv: str, check: bool = True):
        return self.engine.run([self.engine.name, "exec", self.names.container, *argv], check=check)


def wait_healthy(
    client: httpx.Client,
    deadline_seconds: float = HEALTHY_SECONDS,
    logs: Callable[[], str] | None = None,
) -> float:
    """Seconds until /healthz answers 200; a failure shows the container's ``logs``."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_seconds:
        try:
            if client.get("/healthz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    shown = f"\nthe container's log:\n{logs()[-4000:]}" if logs else ""
    raise AssertionError(f"/healthz did not answer within {deadline_seconds} s{shown}")


def container_logs(engine: Engine, container: str) -> Callable[[], str]:
    def read() -> str:
        result = engine.run([engine.name, "logs", container], check=False)
        return result.stdout + result.stderr

    return read


def wait_run(client: httpx.Client, run_id: str, headers: dict, until) -> dict:
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        run = client.get(f"/api/v1/runs/{run_id}", headers=headers).json()
        if until(run):
            return run
        assert run["status"] not in ("failed", "cancelled"), run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not get there within {RUN_SECONDS} s: {run}")


def succeeded(run: dict) -> bool:
    return run["status"] == "succeeded"


@pytest.fixture(scope="module")
def lab(engine: Engine, image: str, tag: str) -> Iterator[Lab]:
    import uuid

    suffix = uuid.uuid4().hex[:8]
    names = Names(
        container=f"annlab-test-{suffix}",
        volume=f"annlab-test-data-{suffix}",
        image=tag,
        image_versioned=tag,
        port=18701,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{names.port}", timeout=30)
    lab = Lab(engine=engine, names=names, client=client)
    try:
        lab.readme("docker volume create")
        started = time.monotonic()
        lab.readme("docker run -d")
        wait_healthy(client, logs=container_logs(engine, names.container))
        FIGURES["start to healthy (docker run -d to /healthz 200)"] = (
            f"{time.monotonic() - started:.1f} s"
        )
        yield lab
    finally:
        client.close()
        engine.run([engine.name, "rm", "-f", "-t", "0", names.container], check=False)
        engine.run([engine.name, "volume", "rm", "-f", names.volume], check=False)


@pytest.fixture(scope="module")
def key(lab: Lab) -> str:
    result = lab.readme("docker exec annlab annlab users create carol")
    return result.stdout.strip()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_healthz_and_the_healthcheck_command(lab: Lab) -> None:
    answer = lab.client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    if lab.engine.name == "podman":
        lab.readme("docker inspect --format")  # podman healthcheck run: exit 0 = healthy
    else:
        deadline = time.monotonic() + 90  # docker's first check comes after 30 s
        while (status := lab.readme("docker inspect --format").stdout.strip()) != "healthy":
            assert time.monotonic() < deadline and status in ("starting", ""), status
            time.sleep(1)
    # The same command, told the server is on another port, fails: it follows ANNLAB_PORT.
    inspected = lab.engine.run(
        [
            lab.engine.name,
            "image",
            "inspect",
            "--format",
            "{{json .Config.Healthcheck.Test}}",
            lab.names.image,
        ]
    )
    test = __import__("json").loads(inspected.stdout)
    assert test[0] == "CMD", test
    assert lab.exec(*test[1:]).returncode == 0
    moved = lab.engine.run(
        [lab.engine.name, "exec", "-e", "ANNLAB_PORT=1", lab.names.container, *test[1:]],
        check=False,
    )
    assert moved.returncode != 0, "the healthcheck ignored ANNLAB_PORT"


def test_users_create_prints_the_key_alone(lab: Lab, key: str) -> None:
    assert KEY.fullmatch(key), f"stdout of users create is not the key alone: {key!r}"
    again = lab.readme("docker exec annlab annlab users create carol", check=False)
    assert again.returncode == 1 and again.stdout == "", again
    assert "carol" in again.stderr


def test_no_key_is_401_and_the_key_works(lab: Lab, key: str) -> None:
    anonymous = lab.client.get("/api/v1/runs")
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert lab.client.get("/api/v1/runs", headers=auth("annlab_" + "x" * 43)).status_code == 401
    assert lab.client.get("/api/v1/runs", headers=auth(key)).status_code == 200


def test_a_run_trained_and_predicted_with_the_key(lab: Lab, key: str) -> None:
    submitted = lab.client.post("/api/v1/runs", json=QUICK_SPEC, headers=auth(key))
    assert submitted.status_code == 202, submitted.text
    run = wait_run(lab.client, submitted.json()["id"], auth(key), succeeded)
    predicted = lab.client.post(
        f"/api/v1/runs/{run['id']}/predict",
        json={"inputs": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]},
        headers=auth(key),
    )
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["predictions"] == ["setosa", "virginica"]
    assert (
        lab.client.post(
            f"/api/v1/runs/{run['id']}/predict", json={"inputs": [[1, 2, 3, 4]]}
        ).status_code
        == 401
    )


def test_a_csv_upload_takes_arrows_reader_in_the_image(lab: Lab, key: str) -> None:
    """The image keeps of pyarrow what the CSV fast path needs (the Dockerfile drops
    Flight, the cloud filesystems, ORC, headers and sources): an upload parses, and
    the fast path itself runs there (a bare pyarrow import error would only send every
    upload down the slow path)."""
    rows = "".join(f"{i * 0.5},{-i},{'ab'[i % 2]}\n" for i in range(40))
    uploaded = lab.client.post(
        "/api/v1/datasets",
        files={"file": ("t.csv", "x,y,label\n" + rows, "text/csv")},
        data={"target": "label", "task": "classification"},
        headers=auth(key),
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["n_samples"] == 40 and uploaded.json()["class_names"] == ["a", "b"]
    probe = (
        "from core.csv_fast import fast_csv; import re; "
        "r = fast_csv(b'x,label\\n1,a\\n2,b\\n', 0, ',', 2, [0], [1], 'classification', "
        "re.compile('[0-9]+')); assert r is not None and r[2] == ['a', 'b'], r; print('ok')"
    )
    assert lab.exec("python", "-c", probe).stdout.strip() == "ok"


def test_non_root_on_a_read_only_root_filesystem(lab: Lab) -> None:
    assert lab.exec("id", "-u").stdout.strip() == "10001"
    denied = lab.exec("sh", "-c", "touch /opt/venv/written", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr, denied
    lab.exec("sh", "-c", "touch /data/written /tmp/written && rm /data/written /tmp/written")
    # matplotlib (the plots) works there: its caches go to /tmp; Plotly.js (the pages'
    # charts) is read from the plotly package, of which the image keeps just that file.
    lab.exec(
        "python",
        "-c",
        "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
        "plt.plot([1, 2]); plt.savefig('/tmp/plot.png'); "
        "from app.web.routes import plotly_bytes; assert len(plotly_bytes()) > 1_000_000",
    )
    assert (
        lab.exec(
            "sh", "-c", "ls /opt/venv/bin | grep -c -x -E 'pip|pip3|gcc|cc' || true"
        ).stdout.strip()
        == "0"
    )


def test_stop_with_a_run_in_progress_resumes_bit_for_bit(lab: Lab, key: str) -> None:
    headers = auth(key)
    submitted = lab.client.post("/api/v1/runs", json=LONG_SPEC, headers=headers)
    assert submitted.status_code == 202, submitted.text
    run_id = submitted.json()["id"]
    before = wait_run(
        lab.client,
        run_id,
        headers,
        lambda run: run["status"] == "running" and run["progress"]["epoch"] >= 1,
    )
    stopping = time.monotonic()
    lab.readme("docker stop annlab", timeout=60)
    stop_seconds = time.monotonic() - stopping
    logs = lab.readme("docker logs annlab")
    paused = re.search(
        rf"run {run_id} paused for shutdown at epoch (\d+) \+ (\d+) batches",
        logs.stdout + logs.stderr,
    )
    assert paused, (
        f"the run was not paused by the stop (it was at {before['progress']}):\n{logs.stderr[-2000:]}"
    )
    assert int(paused.group(1)) < LONG_SPEC["training"]["epochs"]

    lab.readme("docker start annlab")
    wait_healthy(lab.client, logs=container_logs(lab.engine, lab.names.container))
    resumed = wait_run(lab.client, run_id, headers, succeeded)
    assert resumed["stop_reason"] == "completed", resumed

    straight = lab.client.post(
        "/api/v1/runs", json={**LONG_SPEC, "name": "straight through"}, headers=headers
    )
    assert straight.status_code == 202, straight.text
    wait_run(lab.client, straight.json()["id"], headers, succeeded)
    weights = [
        lab.client.get(f"/api/v1/runs/{identifier}/weights", headers=headers).json()
        for identifier in (run_id, straight.json()["id"])
    ]
    assert weights[0] == weights[1], (
        "the stopped and resumed run differs from the run trained straight through"
    )
    FIGURES["stop with a run in progress"] = (
        f"stopped in {stop_seconds:.1f} s at epoch {paused.group(1)} + {paused.group(2)} batches "
        f"of {LONG_SPEC['training']['epochs']}; resumed after start: weights identical to the "
        "straight-through run, bit for bit"
    )


def test_the_dashboard_and_its_plotly_are_served_from_the_image(lab: Lab) -> None:
    """The pages, their static files and Plotly.js come from the installed package (the
    wheel's package data; the image keeps only plotly.min.js of the plotly package)."""
    scripts: list[str] = []
    for path in ("/", "/datasets"):
        page = lab.client.get(path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"], path
        scripts += re.findall(r'src="(/(?:vendor|static)/[^"]+)"', page.text)
    assert any(src.startswith("/vendor/plotly-") for src in scripts), scripts
    assert any(src.startswith("/static/js/") for src in scripts), scripts
    for src in scripts:
        answer = lab.client.get(src)
        assert answer.status_code == 200, (src, answer.status_code)
        assert answer.content, src
    plotly = lab.client.get(next(s for s in scripts if s.startswith("/vendor/plotly-")))
    assert len(plotly.content) > 1_000_000 and b"plotly" in plotly.content[:2000].lower()
