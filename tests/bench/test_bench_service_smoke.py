"""Smoke tests of bench.service, bench.growth and bench.small_runs on toy inputs: the
specs they submit are valid, their tables render, their CSV parses. No timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import growth, service
from bench.common import WORKLOADS
from core.loaders import dataset_from_csv
from core.specs import RunSpec


def test_the_service_spec_is_the_engine_spec_on_the_upload() -> None:
    body = service.service_spec(WORKLOADS["W4"], "ds_x")
    spec = RunSpec.model_validate(body)
    assert spec.dataset == "ds_x" and spec.training.threads == 2
    assert spec.training.epochs == 1 + WORKLOADS["W4"].timed_epochs
    assert RunSpec.model_validate(service.service_spec(WORKLOADS["W1"], "d")).training.threads == 1


def test_a_workloads_threads_can_be_given() -> None:
    body = service.service_spec(WORKLOADS["W3"], "d", threads=2)
    assert RunSpec.model_validate(body).training.threads == 2
    assert service.THREADS == {"W4": 2}  # the defaults are left alone


@pytest.mark.parametrize("bad", ["W9=2", "W3=0", "W3=two", "W3"])
def test_a_bad_threads_option_is_refused(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        service.main(["--threads", bad])
    assert stopped.value.code == 2
    assert "--threads" in capsys.readouterr().err


def test_tables_and_verdicts_render() -> None:
    run = service.ServiceRun(
        "run_1",
        6,
        0.6,
        {"setup": 0.01, "train": 0.55, "finish": 0.02, "engine": 0.5, "writes": 0.01},
    )
    rep = service.Repeat("W2", run, 0.09, 0.08, {"torch-f32-1t+metrics": 0.3}, 0.25, {"s": 0.1})
    assert "W2" in service.results_table([rep])
    assert "16.7%" in service.overhead_table([rep])
    assert service.verdicts([rep])[0].startswith("W2: x best torch 3.00 (≥ 2.5) MET")


def test_timer_lines_are_read_from_the_log(tmp_path: Path) -> None:
    log = tmp_path / "annlab.log"
    log.write_text("INFO:     annlab.worker run run_9 timers: epochs=3 setup=0.5000 engine=1.0\n")
    assert service.read_timers(str(log), "run_9") == {"setup": 0.5, "engine": 1.0}
    assert service.read_timers(str(log), "run_8", timeout=0.01) == {}


def test_the_growth_csv_parses(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    growth.write_csv(str(path), 50)
    ds = dataset_from_csv(
        content=path.read_bytes(), target="label", task="classification", name="g"
    )
    assert ds.features.shape == (50, growth.N_FEATURES) and len(ds.class_names or []) == 10
    RunSpec.model_validate(growth.run_spec("ds_1"))


def test_the_growth_report_has_the_parse_beside_the_upload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "g.csv"
    growth.write_csv(str(path), 50)
    assert growth.parse_seconds(str(path)) > 0
    row = {
        "rows": 50, "csv_mb": 0.01, "dataset_mb": 0.01, "pandas_s": 0.01, "parse_s": 0.015,
        "upload_s": 0.05, "server_growth_mb": 0.02, "offload_peak_mb": 0.05, "setup_s": 0.01,
        "engine_s": 0.01, "run_s": 0.02, "worker_growth_mb": 0.01, "predict_s": 0.01,
    }  # fmt: skip
    growth.report([row])
    out = capsys.readouterr().out
    assert "parse x pandas" in out
    assert "parse 1.5× pandas (≤ 2) MET, the whole upload request 5.0× NOT MET" in out


@pytest.mark.slow
def test_small_runs_times_the_engine_on_both_sides_of_the_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bench import small_runs

    assert small_runs.main(["--runs", "4", "--port", "19741"]) == 0
    out = capsys.readouterr().out
    assert "engine alone, before:" in out and "engine alone, after:" in out
    assert "engine alone (loop, mean)     4" in out
    assert "failed 0" in out
