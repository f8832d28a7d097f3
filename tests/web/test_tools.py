"""The compare page and the optimizer race, in a browser."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import spec, submit, wait_finished


def test_compare_overlays_curves_and_lists_what_differs(
    page: Any, base_url: str, api: httpx.Client, shot: Any
) -> None:
    a = submit(api, spec("adam", epochs=25))
    b = submit(api, {**spec("sgd", epochs=40), "optimizer": {"type": "sgd", "learning_rate": 0.1}})
    for run in (a, b):
        wait_finished(api, run["id"])
    page.goto(f"{base_url}/compare?runs={a['id']},{b['id']}")
    page.wait_for_selector("#compare-diff tr[data-field='optimizer.type']")
    traces = page.evaluate(
        "() => document.getElementById('chart-compare').data.map((t) => [t.name, t.x.length])"
    )
    assert traces == [["adam", 25], ["sgd", 40]]
    assert page.locator("#compare-metrics tbody tr").count() == 2
    assert page.locator("#compare-diff tr[data-field='training.epochs']").count() == 1
    assert page.locator("#compare-diff tr[data-field='dataset']").count() == 0  # the same in both
    page.select_option("#compare-metric", "val_accuracy")
    page.wait_for_function(
        "() => document.getElementById('chart-compare').layout.yaxis.title.text === 'validation accuracy'"
    )
    shot(page, "compare-two")
    page.watch.assert_clean()


def test_the_optimizer_race_animates_every_trajectory(page: Any, base_url: str, shot: Any) -> None:
    page.goto(f"{base_url}/optimizers")
    page.wait_for_selector(
        "#chart-race .contourlayer path, #chart-race .heatmaplayer image", state="attached"
    )
    page.select_option("#fn", "himmelblau")
    page.wait_for_function("() => document.getElementById('fn-formula').textContent.includes('11')")
    before = page.input_value("#start-x")
    box = page.locator("#chart-race .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
    page.wait_for_function(f"() => document.getElementById('start-x').value !== '{before}'")
    start = (float(page.input_value("#start-x")), float(page.input_value("#start-y")))
    assert -5 < start[0] < 0 and -5 < start[1] < 0  # lower left quarter of [-5, 5]²
    page.click("#add-optimizer")
    page.fill("#steps", "120")
    page.locator("#speed").fill("400")
    page.click("#race")
    page.wait_for_selector("#race-status[data-done]")
    paths = page.evaluate(
        "() => document.getElementById('chart-race').data.filter((t) => t.mode === 'lines').map((t) => t.x.length)"
    )
    assert paths == [121, 121, 121]
    assert page.locator("#race-results tbody tr").count() == 3
    shot(page, "optimizers-race")
    page.watch.assert_clean()


def test_a_refused_race_shows_the_server_error(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/optimizers")
    page.wait_for_selector(
        "#chart-race .contourlayer path, #chart-race .heatmaplayer image", state="attached"
    )
    page.fill(".opt-row input[data-name='learning_rate']", "-1")
    page.click("#race")
    page.wait_for_selector("#race-errors:not([hidden])")
    assert "learning_rate" in page.locator("#race-errors").text_content()


def test_a_csv_upload_is_previewed_then_listed(page: Any, base_url: str, tmp_path: Any) -> None:
    rows = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{'yes' if i % 2 else 'no'}" for i in range(20)]
    csv = tmp_path / "gate.csv"
    csv.write_text("\n".join(rows) + "\n")
    page.goto(f"{base_url}/datasets")
    page.wait_for_selector("tr[data-dataset-id='moons']")
    page.set_input_files("#up-file", str(csv))
    page.wait_for_selector("#up-table tbody tr")
    assert page.locator("#up-table tbody tr").count() == 8
    assert page.input_value("#up-target") == "label"
    page.wait_for_function(
        "() => (document.getElementById('chart-scatter').data || []).length === 2"
    )
    page.fill("#up-name", "<b>gate</b>")
    page.click("#up-go")
    page.wait_for_selector("#datasets-table td:text-is('<b>gate</b>')")
    assert page.locator("#datasets-table b").count() == 0
    page.watch.assert_clean()
