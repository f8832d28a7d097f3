"""Every page loads in a real browser without console errors or outside requests, and a
run named like HTML is shown as text on every page that shows names."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import has_endpoint, spec, submit, wait_finished

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def runs(api: httpx.Client) -> list[dict[str, Any]]:
    made = [
        submit(api, spec("adam on moons", epochs=80)),
        submit(
            api,
            {
                **spec("sgd on moons", epochs=80),
                "optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9},
            },
        ),
        submit(api, spec(XSS, dataset="iris", epochs=40)),
    ]
    return [wait_finished(api, run["id"]) for run in made]


@pytest.fixture(scope="module")
def experiment_id(api: httpx.Client) -> str:
    """A real experiment once the server has them; else an id the page reports as missing."""
    if not has_endpoint(api, "/experiments"):
        return "exp_none"
    response = api.post(
        "/experiments",
        json={"name": "seeds", "base": spec("base", epochs=5), "grid": {"training.seed": [0, 1]}},
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def pages(runs: list[dict[str, Any]], experiment_id: str) -> list[tuple[str, str, str]]:
    """(name, path, a selector that shows the page has drawn its data)"""
    a, b, xss = (run["id"] for run in runs)
    return [
        ("runs", "/", f"tr[data-run-id='{a}']"),
        ("new-run", "/runs/new", "#json-preview:has-text('\"dataset\"')"),
        ("run", f"/runs/{a}", "#chart-loss[data-points='80']"),
        ("run-xss", f"/runs/{xss}", "#chart-loss[data-points='40']"),
        (
            "compare",
            f"/compare?runs={a},{b},{xss}",
            "#compare-diff tr[data-field='optimizer.type']",
        ),
        ("experiments", "/experiments", "#experiments :is(table, [data-unavailable], .empty)"),
        (
            "experiment",
            f"/experiments/{experiment_id}",
            "#exp-missing:not([hidden]), #exp-body:not([hidden])",
        ),
        ("models", "/models", "#models :is(section, [data-unavailable])"),
        ("datasets", "/datasets", "tr[data-dataset-id='moons']"),
        ("optimizers", "/optimizers", "#chart-race .contour, #chart-race .heatmaplayer"),
    ]


def test_every_page_loads_clean_and_is_screenshotted(
    page: Any, base_url: str, runs: list[dict[str, Any]], experiment_id: str, shot: Any
) -> None:
    for name, path, ready in pages(runs, experiment_id):
        page.goto(base_url + path)
        page.wait_for_selector(ready, state="attached")
        page.wait_for_load_state("networkidle")
        shot(page, name)
        assert page.locator("header.topbar nav a[aria-current='page']").count() == 1, name
    page.watch.assert_clean()


def test_a_name_typed_as_html_stays_text(
    page: Any, base_url: str, runs: list[dict[str, Any]]
) -> None:
    xss = runs[2]
    for path in ("/", f"/runs/{xss['id']}", f"/compare?runs={runs[0]['id']},{xss['id']}"):
        page.goto(base_url + path)
        page.wait_for_selector(f"text={XSS}")
        assert page.locator("img[src='x']").count() == 0, path
    legend = page.locator("#chart-compare .legendtext").nth(1)  # Plotly's own label, too
    legend.wait_for()
    assert legend.text_content() == XSS
    page.goto(f"{base_url}/runs/{xss['id']}")
    page.wait_for_selector(f"#run-name:text-is('{XSS}')")
    assert page.title() == f"{XSS} · annlab"
    page.watch.assert_clean()


def test_long_series_are_down_sampled_keeping_extremes(
    page: Any, base_url: str, runs: list[dict[str, Any]]
) -> None:
    """100,000 epochs draw as at most a few thousand points, the spike and the minimum kept."""
    page.goto(f"{base_url}/runs/{runs[0]['id']}")
    page.wait_for_selector("#chart-loss[data-points='80']")
    drawn = page.evaluate(
        """async () => {
          const { Curves } = await import('/static/js/run_curves.js');
          const n = 100000, epoch = [], loss = [], lr = [];
          for (let i = 1; i <= n; i++) { epoch.push(i); loss.push(1 / i + (i === 54321 ? 5 : 0)); lr.push(0.01); }
          const curves = new Curves();
          curves.metrics = { epoch, train_loss: loss, val_loss: loss.map((v) => v * 1.1), train_accuracy: [], val_accuracy: [], learning_rate: lr };
          curves.draw();
          const gd = document.getElementById('chart-loss');
          const raw = gd.data.find((t) => t.meta === 'train_loss');
          return { points: gd.dataset.points, drawn: Number(gd.dataset.drawn), max: Math.max(...raw.y), min: Math.min(...raw.y) };
        }"""
    )
    assert drawn["points"] == "100000"
    assert drawn["drawn"] <= 4 * 1500
    assert drawn["max"] > 5  # the one-epoch spike survived
    assert drawn["min"] == pytest.approx(1 / 100000)
    page.watch.assert_clean()


def test_plotly_comes_from_the_plotly_package_with_long_caching(base_url: str) -> None:
    html = httpx.get(base_url + "/").text
    assert "cdn" not in html.lower()
    page_html = httpx.get(base_url + "/optimizers").text
    src = page_html.split('<script src="', 1)[1].split('"', 1)[0]
    response = httpx.get(base_url + src)
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    assert "plotly.js" in response.text[:200]
    assert httpx.get(base_url + "/vendor/plotly-0.0.0.min.js").status_code == 404
    csp = httpx.get(base_url + "/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
