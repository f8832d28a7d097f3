"""Experiments and the model registry (API.md "Experiments", "Models"), as methods of
`app.client.AnnlabClient`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.client_base import ClientBase, optional_model, predict_body
from app.client_runs import PlotFormat
from app.client_types import Experiment, Metrics, Model, ModelVersion, Page, Prediction


class RegistryClient(ClientBase):
    """Grids of runs and the named, versioned models served from them."""

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
        return optional_model(Experiment, response)

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
                "POST", f"/models/{name}/{where}/predict", json=predict_body(inputs, records)
            )
        )

    def model_onnx(self, name: str, version: int) -> bytes:
        return self.request("GET", f"/models/{name}/versions/{version}/onnx").content
