"""The new-run form in a browser: a run submitted from it and watched to the end, its
curves growing while it trains, and the server's 422 errors shown at their fields."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import has_endpoint, submit, wait_finished


def test_submit_from_the_form_and_watch_it_finish(
    page: Any, base_url: str, api: httpx.Client, shot: Any
) -> None:
    page.goto(f"{base_url}/runs/new")
    page.wait_for_selector("#dataset option[value='moons']", state="attached")
    page.fill("#name", "form run on moons")
    page.select_option("#dataset", "moons")
    page.click("#fit-output")
    page.fill("#epochs", "60")
    preview = page.locator("#json-preview").text_content()
    assert '"dataset": "moons"' in preview and '"epochs": 60' in preview
    assert "curl -X POST" in page.locator("#curl-line").text_content()
    page.click("#submit")
    page.wait_for_url(f"{base_url}/runs/run_*")
    run_id = page.url.rsplit("/", 1)[-1]
    page.wait_for_selector("#run-status [data-status='succeeded']", timeout=60_000)
    page.wait_for_selector("#chart-loss[data-points='60']")
    assert page.locator("#run-name").text_content() == "form run on moons"
    assert api.get(f"/runs/{run_id}").json()["spec"]["model"]["layers"][-1]["units"] == 2
    page.wait_for_selector("#chart-network .scatterlayer")
    page.fill("#pf-0", "0.5")
    page.click("#predict-go")
    page.wait_for_selector("#prediction")
    shot(page, "run-finished", full_page=True)
    page.watch.assert_clean()


def test_the_curves_grow_while_it_trains(
    page: Any, base_url: str, api: httpx.Client, shot: Any
) -> None:
    long_run = submit(
        api,
        {
            "name": "a long run",
            "dataset": "iris",
            "model": {
                "layers": [
                    {"units": 16, "activation": "relu"},
                    {"units": 3, "activation": "softmax"},
                ]
            },
            "optimizer": {"type": "sgd", "learning_rate": 0.01},
            "training": {"epochs": 200_000, "batch_size": 4},
        },
    )
    page.goto(f"{base_url}/runs/{long_run['id']}")
    page.wait_for_selector("#run-status [data-status='running']", timeout=30_000)
    page.wait_for_function(
        "() => Number(document.getElementById('chart-loss').dataset.points || 0) > 0"
    )
    first = int(page.get_attribute("#chart-loss", "data-points"))
    page.wait_for_function(
        f"() => Number(document.getElementById('chart-loss').dataset.points) > {first + 5}"
    )
    assert page.locator("#run-status [data-status='running']").count() == 1
    shot(page, "run-live")
    page.click("#cancel")
    page.wait_for_selector("#run-status [data-status='cancelled']")
    assert wait_finished(api, long_run["id"])["status"] == "cancelled"
    page.watch.assert_clean()


def test_server_errors_are_shown_at_the_field_they_name(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/runs/new")
    page.wait_for_selector("#dataset option[value='iris']", state="attached")
    page.fill("#epochs", "0")
    page.fill("#opt-learning_rate", "-1")
    page.click("#submit")
    epochs_error = page.locator("#epochs ~ .field-error.server")
    epochs_error.wait_for()
    assert "greater than or equal to 1" in epochs_error.text_content()
    assert page.get_attribute("#epochs", "aria-invalid") == "true"
    assert page.locator("#opt-learning_rate ~ .field-error.server").count() == 1
    assert not page.locator("#form-errors").is_hidden()
    assert page.url.endswith("/runs/new")  # nothing was created
    # A spec error found against the dataset names a layer: 5 output units for 3 classes.
    page.fill("#epochs", "10")
    page.fill("#opt-learning_rate", "0.01")
    page.fill("[data-path='model.layers.1.units']", "5")
    page.click("#submit")
    layer_error = page.locator(".layer-row:nth-child(2) .field-error.server")
    layer_error.wait_for()
    assert layer_error.count() == 1
    assert page.locator("#epochs ~ .field-error.server").count() == 0  # old errors cleared


def test_the_boundary_slider_changes_the_picture(
    page: Any, base_url: str, api: httpx.Client
) -> None:
    if not (
        has_endpoint(api, "/runs/{run_id}/decision-boundary")
        and has_endpoint(api, "/runs/{run_id}/snapshots")
    ):
        pytest.skip(
            "this server has no /decision-boundary and /snapshots yet (the panel is hidden)"
        )
    run = submit(
        api,
        {
            "name": "boundary",
            "dataset": "moons",
            "model": {
                "layers": [
                    {"units": 8, "activation": "tanh"},
                    {"units": 2, "activation": "softmax"},
                ]
            },
            "optimizer": {"type": "adam", "learning_rate": 0.05},
            "training": {"epochs": 100},
        },
    )
    wait_finished(api, run["id"])
    page.goto(f"{base_url}/runs/{run['id']}")
    page.wait_for_selector("#chart-boundary[data-epoch]")
    last = page.get_attribute("#chart-boundary", "data-epoch")
    picture = page.evaluate("JSON.stringify(document.getElementById('chart-boundary').data[0].z)")
    page.locator("#boundary-slider").fill("0")
    page.wait_for_function(
        f"() => document.getElementById('chart-boundary').dataset.epoch !== '{last}'"
    )
    assert (
        page.evaluate("JSON.stringify(document.getElementById('chart-boundary').data[0].z)")
        != picture
    )
    page.watch.assert_clean()
