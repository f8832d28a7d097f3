"""The experiments list, an experiment's page and the model registry in a browser, against
real experiments and models made through the API: progress, the summary per grid cell
against GET /experiments/{id}, one chart trace per run, versions and aliases (moved
through the API, seen after a reload), the curl lines that call a model, and names
typed as HTML shown as text."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.waiting import wait_for

from .conftest import spec, submit

XSS = "<script>window.__pwned = 1</script><img src=x onerror=alert(1)>"
OPTIMIZERS = [
    {"type": "sgd", "learning_rate": 0.1},
    {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9},
    {"type": "adam", "learning_rate": 0.01},
]
TIMEOUT = 90.0


def experiment_body(name: str, epochs: int = 8) -> dict[str, Any]:
    """3 optimizers × 2 seeds on iris: six small runs, three grid cells."""
    return {
        "name": name,
        "base": spec("base", dataset="iris", epochs=epochs),
        "grid": {"optimizer": OPTIMIZERS, "training.seed": [0, 1]},
    }


def create_experiment(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.post("/experiments", json=experiment_body(name))
    assert response.status_code == 202, response.text
    return response.json()


def wait_experiment(api: httpx.Client, experiment_id: str) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def ended() -> dict[str, Any] | None:
        last.update(api.get(f"/experiments/{experiment_id}").json())
        return dict(last) if last["status"] in ("finished", "cancelled") else None

    return wait_for(
        ended, timeout=TIMEOUT, message=f"experiment {experiment_id} ended", describe=lambda: last
    )


@pytest.fixture(scope="module")
def experiment(api: httpx.Client) -> dict[str, Any]:
    made = create_experiment(api, f"optimizers on iris {XSS}")
    return wait_experiment(api, made["id"])


@pytest.fixture(scope="module")
def model(api: httpx.Client, experiment: dict[str, Any]) -> dict[str, Any]:
    """A model with two versions (from two of the experiment's runs) and two aliases."""
    first, second = experiment["runs"][0]["id"], experiment["runs"][3]["id"]
    response = api.post("/models", json={"name": "iris-clf", "description": f"iris {XSS}"})
    assert response.status_code == 201, response.text
    for run_id in (first, second):
        response = api.post("/models/iris-clf/versions", json={"run_id": run_id})
        assert response.status_code == 201, response.text
    for alias, version in (("champion", 1), ("staging", 2)):
        response = api.put(f"/models/iris-clf/aliases/{alias}", json={"version": version})
        assert response.status_code == 200, response.text
    return api.get("/models/iris-clf").json()


def answer_empty(page: Any, path: str) -> None:
    """The list endpoint answers "nothing yet" (this module's server does have some)."""
    page.route(
        f"**/api/v1/{path}?*",
        lambda route: route.fulfill(json={"items": [], "total": 0}),
    )


def test_no_experiments_yet_says_how_to_start_one(page: Any, base_url: str, shot: Any) -> None:
    answer_empty(page, "experiments")
    page.goto(f"{base_url}/experiments")
    empty = page.locator("#experiments [data-empty]")
    empty.wait_for()
    text = empty.text_content() or ""
    assert "No experiments yet" in text
    assert f"curl -X POST {base_url}/api/v1/experiments" in text and '"grid"' in text
    assert page.locator("#experiments table").count() == 0
    shot(page, "experiments-empty")
    page.watch.assert_clean()


def test_no_models_yet_says_how_to_register_one(page: Any, base_url: str, shot: Any) -> None:
    answer_empty(page, "models")
    page.goto(f"{base_url}/models")
    empty = page.locator("#models [data-empty]")
    empty.wait_for()
    text = empty.text_content() or ""
    assert "No models yet" in text
    for step in (
        "/api/v1/models -H",
        "/api/v1/models/iris-classifier/versions",
        "/aliases/champion",
    ):
        assert step in text, step
    shot(page, "models-empty")
    page.watch.assert_clean()


def test_the_list_shows_a_submitted_experiment_and_its_progress_live(
    page: Any, base_url: str, api: httpx.Client, shot: Any
) -> None:
    """Queued behind a long run (one worker), the experiment shows 0 / 6; once that run is
    cancelled the same page, never reloaded, counts up to 6 / 6 and "finished"."""
    blocker = submit(api, spec("blocker", epochs=1_000_000))
    wait_for(
        lambda: api.get(f"/runs/{blocker['id']}").json()["status"] == "running",
        timeout=TIMEOUT,
        message="the blocking run started",
    )
    try:
        made = create_experiment(api, "queued behind a long run")
        page.goto(f"{base_url}/experiments")
        row = page.locator(f"tr[data-experiment-id='{made['id']}']")
        row.wait_for()
        progress = row.locator("td.progress-cell")
        assert progress.get_attribute("data-total") == "6"
        assert progress.get_attribute("data-done") == "0"
        assert "0 / 6 runs done" in (progress.text_content() or "")
        assert row.locator("[data-status]").get_attribute("data-status") in ("queued", "running")
        assert "optimizer (3) × training.seed (2)" in (row.text_content() or "")
        shot(page, "experiments-queued")
    finally:  # never leave the one worker busy for the tests after this one
        cancelled = api.post(f"/runs/{blocker['id']}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    done = wait_experiment(api, made["id"])
    assert done["status"] == "finished"
    row.locator("[data-status='finished']").wait_for(timeout=TIMEOUT * 1000)
    assert progress.get_attribute("data-done") == "6"
    assert "6 / 6 runs done" in (progress.text_content() or "")
    best = row.locator(f"a[href='/runs/{done['best']['run_id']}']")
    assert best.count() == 1
    shot(page, "experiments")
    page.watch.assert_clean()


def test_the_summary_table_has_one_row_per_grid_cell_matching_the_api(
    page: Any, base_url: str, experiment: dict[str, Any], shot: Any
) -> None:
    page.goto(f"{base_url}/experiments/{experiment['id']}")
    rows = page.locator("#exp-summary tbody tr")
    rows.first.wait_for()
    summary = experiment["summary"]
    assert len(summary) == 3  # three optimizers, the seeds folded
    shown = page.evaluate(
        """() => [...document.querySelectorAll('#exp-summary tbody tr')].map((tr) => ({
             cell: JSON.parse(tr.dataset.cell),
             text: [...tr.cells].map((td) => td.textContent),
             mean: [...tr.querySelectorAll('td[data-mean]')].map((td) => Number(td.dataset.mean)),
             std: [...tr.querySelectorAll('td[data-mean]')].map((td) => Number(td.dataset.std)),
             runs: [...tr.querySelectorAll('a.run-chip')].map((a) => a.getAttribute('href')) }))"""
    )
    assert len(shown) == len(summary)
    for row, expected in zip(shown, summary, strict=True):
        loss, accuracy = expected["val_loss"], expected["val_accuracy"]
        assert dict(row["cell"]) == expected["params"]
        assert row["mean"] == [loss["mean"], accuracy["mean"]]
        assert row["std"] == [loss["std"], accuracy["std"]]
        assert row["text"][1] == str(expected["n"]) == "2"
        assert row["text"][2] == f"{loss['mean']:.4f} ± {loss['std']:.4f}"
        assert row["text"][3] == f"{100 * accuracy['mean']:.1f} ± {100 * accuracy['std']:.1f}"
        # the cell's runs are linked: exactly the runs with these params, whatever the seed
        members = {
            r["id"]
            for r in experiment["runs"]
            if {k: v for k, v in r["params"].items() if k != "training.seed"} == expected["params"]
        }
        assert {href.removeprefix("/runs/") for href in row["runs"]} == members
        assert len(members) == 2
    best_cell = min(summary, key=lambda s: s["val_loss"]["mean"])
    marked = page.locator("#exp-summary tr.best-row")
    assert marked.count() == 1
    assert dict(json.loads(marked.get_attribute("data-cell"))) == best_cell["params"]
    for run in experiment["runs"]:  # the runs table links every run
        assert (
            page.locator(
                f"#exp-runs tr[data-run-id='{run['id']}'] a[href='/runs/{run['id']}']"
            ).count()
            == 1
        )
    shot(page, "experiment", full_page=True)
    page.watch.assert_clean()


def test_the_chart_has_one_trace_per_run(
    page: Any, base_url: str, api: httpx.Client, experiment: dict[str, Any]
) -> None:
    page.goto(f"{base_url}/experiments/{experiment['id']}")
    page.wait_for_selector(
        "#chart-experiment[data-traces='6'] .scatterlayer .trace", state="attached"
    )
    traces = page.evaluate(
        """() => document.getElementById('chart-experiment').data.map(
             (t) => ({ run: t.meta, n: t.x.length, color: t.line.color, dash: t.line.dash, name: t.name }))"""
    )
    assert sorted(t["run"] for t in traces) == sorted(r["id"] for r in experiment["runs"])
    metrics = api.get(f"/experiments/{experiment['id']}/metrics").json()["runs"]
    for trace in traces:
        assert trace["n"] == len(metrics[trace["run"]]["epoch"]) == 8
    # colour names the grid cell, dash the seed: 3 colours, 2 dashes, 6 distinct pairs
    assert len({t["color"] for t in traces}) == 3
    assert len({t["dash"] for t in traces}) == 2
    assert len({(t["color"], t["dash"]) for t in traces}) == 6
    assert {t["name"] for t in traces} >= {
        "sgd(lr=0.1, momentum=0.9) · seed 1",
        "adam(lr=0.01) · seed 0",
    }
    page.watch.assert_clean()


def row_aliases(page: Any, version: int) -> set[str]:
    chips = page.locator(f"[data-model='iris-clf'] tr[data-version='{version}'] [data-alias]")
    return set(chips.evaluate_all("els => els.map(e => e.dataset.alias)"))


def test_the_models_page_lists_versions_and_aliases_and_follows_alias_changes(
    page: Any, base_url: str, api: httpx.Client, model: dict[str, Any], shot: Any
) -> None:
    page.goto(f"{base_url}/models")
    card = page.locator("[data-model='iris-clf']")
    card.locator("tr[data-version]").first.wait_for()
    assert card.locator("tr[data-version]").count() == 2
    for version in model["versions"]:
        row = card.locator(f"tr[data-version='{version['version']}']")
        assert row.locator(f"a[href='/runs/{version['run_id']}']").count() == 1
        assert "iris" in (row.text_content() or "")
    assert row_aliases(page, 1) == {"champion"} and row_aliases(page, 2) == {"staging"}
    shot(page, "models", full_page=True)

    assert api.put("/models/iris-clf/aliases/champion", json={"version": 2}).status_code == 200
    assert api.delete("/models/iris-clf/aliases/staging").status_code == 204
    page.reload()
    card.locator("tr[data-version]").first.wait_for()
    assert row_aliases(page, 1) == set()
    assert row_aliases(page, 2) == {"champion"}
    assert card.locator("option").all_text_contents()[0] == "@champion (v2)"
    page.watch.assert_clean()


def curl_call(text: str) -> tuple[str, Any]:
    """The URL and the -d body of a curl line as the page shows it."""
    url = text.split("curl -X POST ", 1)[1].split(" ", 1)[0]
    body = text.split("-d '", 1)[1].rsplit("'", 1)[0]
    return url, json.loads(body)


def test_the_curl_lines_on_the_models_page_call_the_model(
    page: Any, base_url: str, model: dict[str, Any]
) -> None:
    """What the page tells a user to paste works: the /serve and predict lines answer 200
    with a class name, and "Try it" shows the same prediction."""
    page.goto(f"{base_url}/models")
    card = page.locator("[data-model='iris-clf']")
    serve = card.locator("[data-call='serve'] pre")
    serve.wait_for()
    url, body = curl_call(serve.text_content() or "")
    assert url.startswith(f"{base_url}/serve/iris-clf/")
    assert body["dataframe_split"]["columns"] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    answer = httpx.post(url, json=body)
    assert answer.status_code == 200, answer.text
    [predicted] = answer.json()["predictions"]
    assert predicted in ("setosa", "versicolor", "virginica")
    url, body = curl_call(card.locator("[data-call='predict'] pre").text_content() or "")
    answer = httpx.post(url, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [predicted]
    card.get_by_role("button", name="Try it on the first row").click()
    output = card.locator(".call-output")
    output.wait_for()
    assert json.loads(output.text_content() or "{}")["predictions"] == [predicted]
    # another target: the page's lines follow the choice
    card.locator("select.call-target").select_option(label="version 1")
    page.wait_for_selector(
        "[data-model='iris-clf'] [data-call='predict'] pre:has-text('/versions/1/predict')"
    )
    page.watch.assert_clean()


def test_names_typed_as_html_stay_text(
    page: Any, base_url: str, experiment: dict[str, Any], model: dict[str, Any]
) -> None:
    name = experiment["name"]
    assert XSS in name
    page.goto(f"{base_url}/experiments")
    page.locator(f"tr[data-experiment-id='{experiment['id']}'] a").filter(has_text=XSS).wait_for()
    page.goto(f"{base_url}/experiments/{experiment['id']}")
    page.wait_for_selector("#exp-summary tbody tr")
    assert page.locator("#exp-name").text_content() == name
    assert page.title() == f"{name} · annlab"
    page.goto(f"{base_url}/models")
    description = page.locator("[data-model='iris-clf'] .description")
    description.wait_for()
    assert description.text_content() == f"iris {XSS}"
    # the run names (the experiment's name in them) in the versions table are text too
    assert page.locator("[data-model='iris-clf'] td.name-cell a").filter(has_text=XSS).count() == 2
    for path in ("/experiments", f"/experiments/{experiment['id']}", "/models"):
        page.goto(base_url + path)
        page.wait_for_load_state("networkidle")
        assert page.locator("img[src='x']").count() == 0, path
        assert page.evaluate("() => window.__pwned") is None, path
    page.watch.assert_clean()


def test_an_unknown_experiment_says_so(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/experiments/exp_nope")
    notice = page.locator("#exp-missing:not([hidden]) .notice")
    notice.wait_for()
    assert "no experiment with this id" in (notice.text_content() or "")
    assert notice.locator("a[href='/experiments']").count() == 1
    assert not page.watch.page_errors  # the 404 itself is logged by Chromium, nothing else
