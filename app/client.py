"""A typed Python client of annlab's HTTP API (API.md), for scripts and the CLI.

    from app.client import AnnlabClient
    with AnnlabClient() as api:                       # ANNLAB_URL, ANNLAB_API_KEY
        run = api.submit_run(spec)
        for event in api.events(run.id):              # resumes after a dropped connection
            ...
        api.predict(run.id, [[5.1, 3.5, 1.4, 0.2]]).predictions

Every non-2xx answer raises one exception, `ApiError`, whose ``str`` is the
server's own message (FastAPI's 422 list as "field.path: message" lines); a
server that cannot be reached is an `ApiError` with ``status`` None.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import httpx
from pydantic import ValidationError

from app.client_events import EventStream
from app.client_types import (
    ApiError,
    Dataset,
    Experiment,
    Metrics,
    Model,
    ModelVersion,
    Page,
    Prediction,
    ProgressEvent,
    Run,
    RunEvent,
    StatusEvent,
    error_from,
    render_detail,
)

DEFAULT_URL = "http://127.0.0.1:8000"
API = "/api/v1"

WeightsFormat = Literal["json", "npz", "onnx"]
PlotKind = Literal["loss", "decision-boundary"]
PlotFormat = Literal["png", "svg"]


class AnnlabClient:
    """One connection pool to one annlab server.

    ``base_url`` defaults to ``ANNLAB_URL`` (else http://127.0.0.1:8000), ``api_key``
    to ``ANNLAB_API_KEY`` (sent as ``Authorization: Bearer``). ``transport`` is
    httpx's hook, for tests (``httpx.MockTransport``)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("ANNLAB_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("ANNLAB_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    # -- plumbing

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request to ``/api/v1`` + ``path``; any non-2xx answer raises `ApiError`."""
        try:
            response = self._http.request(method, API + path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(None, f"cannot reach annlab at {self.base_url}: {exc}") from exc
        if response.is_error:
            raise error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def health(self) -> dict[str, Any]:
        try:
            response = self._http.get("/healthz")
        except httpx.TransportError as exc:
            raise ApiError(None, f"cannot reach annlab at {self.base_url}: {exc}") from exc
        if response.is_error:
            raise error_from(response)
        return dict(response.json())

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
        params = {
            key: value
            for key, value in {
                "status": status,
                "dataset": dataset,
                "experiment": experiment,
                "tag": tag,
                "sort": sort,
                "limit": limit,
                "offset": offset,
            }.items()
            if value is not None
        }
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
                json=_predict_body(inputs, records),
                params=_epoch(epoch),
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
                params=_epoch(epoch),
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
        params = {
            key: value
            for key, value in {"width": width, "height": height, "epoch": epoch}.items()
            if value is not None
        }
        return self.request("GET", f"/runs/{run_id}/plots/{kind}.{format}", params=params).content

    # -- experiments

    def create_experiment(
        self, *, name: str, base: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]
    ) -> Experiment:
        body = {"name": name, "base": dict(base), "grid": {k: list(v) for k, v in grid.items()}}
        return Experiment.model_validate(self._json("POST", "/experiments", json=body))

    def list_experiments(self) -> Page[Experiment]:
        return Page[Experiment].model_validate(self._json("GET", "/experiments"))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return Experiment.model_validate(self._json("GET", f"/experiments/{experiment_id}"))

    def experiment_metrics(self, experiment_id: str) -> dict[str, Metrics]:
        runs = self._json("GET", f"/experiments/{experiment_id}/metrics")["runs"]
        return {run_id: Metrics.model_validate(lists) for run_id, lists in runs.items()}

    def cancel_experiment(self, experiment_id: str) -> Experiment | None:
        response = self.request("POST", f"/experiments/{experiment_id}/cancel")
        return _maybe(Experiment, response)

    def delete_experiment(self, experiment_id: str) -> None:
        self.request("DELETE", f"/experiments/{experiment_id}")

    def experiment_plot(self, experiment_id: str, *, format: PlotFormat = "png") -> bytes:
        return self.request("GET", f"/experiments/{experiment_id}/plots/loss.{format}").content

    # -- the model registry

    def create_model(self, name: str, *, description: str | None = None) -> Model:
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        return Model.model_validate(self._json("POST", "/models", json=body))

    def list_models(self) -> Page[Model]:
        return Page[Model].model_validate(self._json("GET", "/models"))

    def get_model(self, name: str) -> Model:
        return Model.model_validate(self._json("GET", f"/models/{name}"))

    def delete_model(self, name: str) -> None:
        self.request("DELETE", f"/models/{name}")

    def create_version(self, name: str, *, run_id: str, epoch: int | None = None) -> ModelVersion:
        body: dict[str, Any] = {"run_id": run_id}
        if epoch is not None:
            body["epoch"] = epoch
        return ModelVersion.model_validate(
            self._json("POST", f"/models/{name}/versions", json=body)
        )

    def versions(self, name: str) -> list[ModelVersion]:
        return self.get_model(name).versions

    def set_alias(self, name: str, alias: str, *, version: int) -> None:
        self.request("PUT", f"/models/{name}/aliases/{alias}", json={"version": version})

    def delete_alias(self, name: str, alias: str) -> None:
        self.request("DELETE", f"/models/{name}/aliases/{alias}")

    def predict_model(
        self,
        name: str,
        inputs: Sequence[Sequence[float]] | None = None,
        *,
        version: int | None = None,
        alias: str | None = None,
        records: Sequence[Mapping[str, float]] | None = None,
    ) -> Prediction:
        """Predict with a model version, or the version an alias points to now."""
        if (version is None) == (alias is None):
            raise ValueError("give exactly one of version= or alias=")
        where = f"versions/{version}" if version is not None else f"aliases/{alias}"
        return Prediction.model_validate(
            self._json(
                "POST", f"/models/{name}/{where}/predict", json=_predict_body(inputs, records)
            )
        )

    def model_onnx(self, name: str, version: int) -> bytes:
        return self.request("GET", f"/models/{name}/versions/{version}/onnx").content


def _predict_body(
    inputs: Sequence[Sequence[float]] | None, records: Sequence[Mapping[str, float]] | None
) -> dict[str, Any]:
    if (inputs is None) == (records is None):
        raise ValueError("give exactly one of inputs or records=")
    if inputs is not None:
        return {"inputs": [list(row) for row in inputs]}
    return {"records": [dict(row) for row in records or []]}


def _epoch(epoch: int | None) -> dict[str, int] | None:
    return {"epoch": epoch} if epoch is not None else None


def _maybe(model: type[Experiment], response: httpx.Response) -> Experiment | None:
    """The body as ``model`` when there is one (a 202 may come without)."""
    if not response.content:
        return None
    try:
        return model.model_validate(response.json())
    except (ValueError, ValidationError):
        return None


__all__ = [
    "DEFAULT_URL",
    "AnnlabClient",
    "ApiError",
    "ProgressEvent",
    "StatusEvent",
    "render_detail",
]
