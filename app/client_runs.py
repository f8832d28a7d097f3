"""Datasets, runs, their event streams and the trained model's outputs (API.md "Datasets",
"Runs", "Weights", "Predict", "Plots"), as methods of `app.client.AnnlabClient`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from app.client_base import API, ClientBase, epoch_param, not_none, predict_body
from app.client_events import EventStream
from app.client_types import ApiError, Dataset, Metrics, Page, Prediction, Run, RunEvent

WeightsFormat = Literal["json", "npz", "onnx"]
PlotKind = Literal["loss", "decision-boundary"]
PlotFormat = Literal["png", "svg"]


class RunsClient(ClientBase):
    """The run-centred half of the API: what a training script needs."""

    # -- datasets

    def list_datasets(self) -> Page[Dataset]:
        return Page[Dataset].model_validate(self._json("GET", "/datasets"))

    def get_dataset(self, dataset_id: str) -> Dataset:
        return Dataset.model_validate(self._json("GET", f"/datasets/{dataset_id}"))

    def upload_dataset(
        self,
        *,
        name: str,
        task: str,
        features: Sequence[Sequence[float]],
        targets: Sequence[Any],
        feature_names: Sequence[str] | None = None,
    ) -> Dataset:
        body: dict[str, Any] = {
            "name": name,
            "task": task,
            "features": features,
            "targets": targets,
        }
        if feature_names is not None:
            body["feature_names"] = list(feature_names)
        return Dataset.model_validate(self._json("POST", "/datasets", json=body))

    def upload_csv(
        self,
        csv: bytes | str | Path,
        *,
        target: str,
        task: str,
        name: str | None = None,
        delimiter: str | None = None,
    ) -> Dataset:
        """Upload a CSV file (a path, or its content) as a dataset: multipart, as API.md says."""
        filename = "data.csv"
        if isinstance(csv, Path):
            filename, content = csv.name, csv.read_bytes()
        else:
            content = csv.encode() if isinstance(csv, str) else csv
        form: dict[str, str] = {"target": target, "task": task}
        if name is not None:
            form["name"] = name
        if delimiter is not None:
            form["delimiter"] = delimiter
        files = {"file": (filename, content, "text/csv")}
        return Dataset.model_validate(self._json("POST", "/datasets", data=form, files=files))

    def delete_dataset(self, dataset_id: str, *, force: bool = False) -> None:
        self.request(
            "DELETE", f"/datasets/{dataset_id}", params={"force": "true"} if force else None
        )

    # -- runs

    def submit_run(
        self, spec: Mapping[str, Any], *, idempotency_key: str | None = None, retries: int = 2
    ) -> Run:
        """``POST /runs``. Always sends an ``Idempotency-Key`` (a fresh one unless given),
        so a retry after a dropped connection returns the run the first try created
        instead of a second run; transport errors are retried ``retries`` times."""
        key = idempotency_key or str(uuid.uuid4())
        for attempt in range(retries + 1):
            try:
                return Run.model_validate(
                    self._json("POST", "/runs", json=dict(spec), headers={"Idempotency-Key": key})
                )
            except ApiError as exc:
                if exc.status is not None or attempt == retries:
                    raise
                time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def list_runs(
        self,
        *,
        status: str | None = None,
        dataset: str | None = None,
        experiment: str | None = None,
        tag: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Page[Run]:
        """``GET /runs``; only the filters given are sent (an old server 422s unknown ones)."""
        params = not_none(
            status=status,
            dataset=dataset,
            experiment=experiment,
            tag=tag,
            sort=sort,
            limit=limit,
            offset=offset,
        )
        return Page[Run].model_validate(self._json("GET", "/runs", params=params))

    def get_run(self, run_id: str) -> Run:
        return Run.model_validate(self._json("GET", f"/runs/{run_id}"))

    def update_run(
        self, run_id: str, *, tags: Mapping[str, str] | None = None, name: str | None = None
    ) -> Run:
        body: dict[str, Any] = {}
        if tags is not None:
            body["tags"] = dict(tags)
        if name is not None:
            body["name"] = name
        return Run.model_validate(self._json("PATCH", f"/runs/{run_id}", json=body))

    def metrics(self, run_id: str) -> Metrics:
        return Metrics.model_validate(self._json("GET", f"/runs/{run_id}/metrics"))

    def snapshots(self, run_id: str) -> list[int]:
        return list(self._json("GET", f"/runs/{run_id}/snapshots")["epochs"])

    def stop_run(self, run_id: str) -> Run:
        """Stop at the next mini-batch and keep the model (``succeeded``, ``stopped``)."""
        return Run.model_validate(self._json("POST", f"/runs/{run_id}/stop"))

    def cancel_run(self, run_id: str) -> Run:
        """Cancel and throw the model away (409 if already finished)."""
        return Run.model_validate(self._json("POST", f"/runs/{run_id}/cancel"))

    def delete_run(self, run_id: str) -> None:
        self.request("DELETE", f"/runs/{run_id}")

    def events(
        self,
        run_id: str,
        *,
        last_event_id: str | None = None,
        max_reconnects: int = 10,
        backoff: float = 0.25,
        on_reconnect: Callable[[int, Exception | None], None] | None = None,
    ) -> Iterator[RunEvent]:
        """The run's event stream, to its end (after the terminal status).

        A dropped connection (or a stream that ends before a terminal status) is
        reopened with ``Last-Event-ID``; whatever the server resends anyway is
        skipped here — a progress event for an epoch already yielded, a status
        equal to the last one — so the caller sees every epoch once, in order,
        across reconnections. ``max_reconnects`` counts reconnections in a row
        without a new event; ``on_reconnect(attempt, error)`` is told of each."""
        stream = EventStream(self._http, f"{API}/runs/{run_id}/events", last_event_id)
        yield from stream.iterate(
            max_reconnects=max_reconnects, backoff=backoff, on_reconnect=on_reconnect
        )

    def wait(self, run_id: str, **events: Any) -> Run:
        """Follow the run's events until it finishes; the final `Run`."""
        for _ in self.events(run_id, **events):
            pass
        return self.get_run(run_id)

    # -- the trained model

    def weights(
        self, run_id: str, *, format: WeightsFormat = "json", epoch: int | None = None
    ) -> bytes:
        """The weights as a file's bytes: the JSON document, an ``.npz`` or an ONNX model."""
        params: dict[str, Any] = {} if format == "json" else {"format": format}
        if epoch is not None:
            params["epoch"] = epoch
        return self.request("GET", f"/runs/{run_id}/weights", params=params).content

    def weights_document(self, run_id: str, *, epoch: int | None = None) -> dict[str, Any]:
        params = {"epoch": epoch} if epoch is not None else None
        return dict(self._json("GET", f"/runs/{run_id}/weights", params=params))

    def predict(
        self,
        run_id: str,
        inputs: Sequence[Sequence[float]] | None = None,
        *,
        records: Sequence[Mapping[str, float]] | None = None,
        epoch: int | None = None,
    ) -> Prediction:
        """Predict rows (``inputs``, in the dataset's column order) or ``records``
        (feature name → value)."""
        return Prediction.model_validate(
            self._json(
                "POST",
                f"/runs/{run_id}/predict",
                json=predict_body(inputs, records),
                params=epoch_param(epoch),
            )
        )

    def predict_csv(
        self, run_id: str, csv: bytes | str | Path, *, epoch: int | None = None
    ) -> Prediction:
        """Predict the rows of a CSV (a header row of feature names), sent as ``text/csv``."""
        content = csv.read_bytes() if isinstance(csv, Path) else csv
        return Prediction.model_validate(
            self._json(
                "POST",
                f"/runs/{run_id}/predict",
                content=content.encode() if isinstance(content, str) else content,
                headers={"Content-Type": "text/csv"},
                params=epoch_param(epoch),
            )
        )

    def evaluate(
        self,
        run_id: str,
        *,
        dataset: str | None = None,
        inputs: Sequence[Sequence[float]] | None = None,
        targets: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] | None = None
        if dataset is not None:
            body = {"dataset": dataset}
        elif inputs is not None:
            body = {"inputs": inputs, "targets": targets}
        return dict(self._json("POST", f"/runs/{run_id}/evaluate", json=body))

    def plot(
        self,
        run_id: str,
        *,
        kind: PlotKind = "loss",
        format: PlotFormat = "png",
        width: int | None = None,
        height: int | None = None,
        epoch: int | None = None,
    ) -> bytes:
        """A server-rendered plot (PNG or SVG bytes)."""
        params = not_none(width=width, height=height, epoch=epoch)
        return self.request("GET", f"/runs/{run_id}/plots/{kind}.{format}", params=params).content
