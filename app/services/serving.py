"""Serving trained models: the model cache, loading a model, predicting.

A warm prediction reads no database and deserialises nothing: loaded models stay
in a bounded LRU (``ModelCache``) keyed by ``ModelKey``, each entry keeping its
run's owner so that the ownership check needs no database either.

The key is ``(run_id, epoch)``: ``epoch`` None is the run's final model, an epoch
the snapshot taken after it (``app.db.snapshots``). Both never change once stored
(a resumed run writes a snapshot again with the same bits), so a snapshot is
cached even while its run still trains.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import runs as run_store
from app.db import snapshots as snapshot_store
from app.db.tables import RunRow
from app.errors import Conflict, LimitExceeded, NotFound, Unprocessable, limit_message
from core.serialize import TrainedModel
from core.stopping import RunStatus


class ModelKey(NamedTuple):
    run_id: str
    #: None: the run's final model.
    epoch: int | None = None


@dataclass(frozen=True)
class LoadedModel:
    owner_id: str
    model: TrainedModel
    #: The input width, checked before every prediction.
    n_features: int


class Prediction(NamedTuple):
    #: Raw network outputs (n, units) in the model's dtype.
    outputs: np.ndarray
    #: Class names (classification) or values (regression), one per row.
    predictions: list[Any]


class ModelCache:
    """A thread-safe LRU of ``capacity`` loaded models."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[ModelKey, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: ModelKey) -> LoadedModel | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: ModelKey, entry: LoadedModel) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def evict(self, run_id: str) -> None:
        """Forget every model of a run (it was deleted)."""
        with self._lock:
            for key in [key for key in self._entries if key.run_id == run_id]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


def cached_model(*, cache: ModelCache, key: ModelKey, scope: str | None) -> LoadedModel | None:
    """The loaded model if it is cached (no database); 404 when it is another user's
    (``scope``: the caller's owner filter, None for admins)."""
    entry = cache.get(key)
    if entry is not None and scope is not None and entry.owner_id != scope:
        raise NotFound(f"run {key.run_id!r} not found")  # another user's run: as if unknown
    return entry


def load_model(
    *, session: Session, cache: ModelCache, key: ModelKey, scope: str | None
) -> LoadedModel:
    """The model of ``key``, from the cache or the database (then cached): 404 for an
    unknown run or another user's, 409 for a run that has not succeeded."""
    entry = cached_model(cache=cache, key=key, scope=scope)
    if entry is not None:
        return entry
    run = run_store.get_run(session=session, run_id=key.run_id, owner_id=scope)
    if run is None:
        raise NotFound(f"run {key.run_id!r} not found")
    return model_of(session=session, cache=cache, run=run, epoch=key.epoch)


def model_of(
    *, session: Session, cache: ModelCache, run: RunRow, epoch: int | None = None
) -> LoadedModel:
    """The final model of a run the caller may see (409 until it has succeeded), or
    with ``epoch`` its snapshot there (any status; 404 listing the epochs there are)."""
    key = ModelKey(run.id, epoch)
    entry = cache.get(key)
    if entry is not None:
        return entry
    if epoch is None:
        _require_success(run, "no trained model until it has succeeded")
        blob = _model_blob(session=session, run=run)
    else:
        blob = snapshot_npz(session=session, run=run, epoch=epoch)
    model = TrainedModel.from_npz_bytes(blob)
    entry = LoadedModel(
        owner_id=run.owner_id, model=model, n_features=int(model.layers[0][0].shape[0])
    )
    cache.put(key, entry)
    return entry


def weights_npz(*, session: Session, run: RunRow, epoch: int | None = None) -> bytes:
    """The stored ``.npz`` of a run's final model (409 until it has succeeded), or of
    its snapshot at ``epoch`` (404 listing the epochs when there is none)."""
    if epoch is not None:
        return snapshot_npz(session=session, run=run, epoch=epoch)
    _require_success(run, WEIGHTS_NOT_READY)
    return _model_blob(session=session, run=run)


def weights_document(
    *, session: Session, cache: ModelCache, run: RunRow, epoch: int | None = None
) -> dict[str, Any]:
    """API.md's weights document of a run's final model (409 until it has succeeded),
    or of its snapshot at ``epoch``."""
    if epoch is None:
        _require_success(run, WEIGHTS_NOT_READY)
    return model_of(session=session, cache=cache, run=run, epoch=epoch).model.to_weights_document()


def snapshot_npz(*, session: Session, run: RunRow, epoch: int) -> bytes:
    """The ``.npz`` of the run's snapshot at ``epoch``; 404 whose detail lists the
    epochs that have one."""
    blob = snapshot_store.get_snapshot(session=session, run_id=run.id, epoch=epoch)
    if blob is None:
        raise NotFound(
            no_snapshot(run.id, epoch, snapshot_store.epochs(session=session, run_id=run.id))
        )
    return blob


def no_snapshot(run_id: str, epoch: int, epochs: list[int]) -> str:
    there = f"the epochs with one are {epochs}" if epochs else "it has none (yet)"
    return f"run {run_id!r} has no snapshot at epoch {epoch}: {there}"


class ModelAt(NamedTuple):
    """A model of a run and the epoch whose weights it holds."""

    epoch: int
    model: LoadedModel


def model_at(*, session: Session, cache: ModelCache, run: RunRow, epoch: int | None) -> ModelAt:
    """The model an inspection (decision boundary, backward pass, plots) looks at:
    the snapshot at ``epoch`` when given; else the final model of a run that has
    succeeded, or the latest snapshot of one that has not (running, cancelled,
    failed); 409 when there is neither."""
    if epoch is not None:
        return ModelAt(epoch, model_of(session=session, cache=cache, run=run, epoch=epoch))
    if run.status == RunStatus.SUCCEEDED:
        return ModelAt(final_epoch(run), model_of(session=session, cache=cache, run=run))
    latest = snapshot_store.latest_epoch(session=session, run_id=run.id)
    if latest is None:
        raise Conflict(
            f"run {run.id!r} is {run.status} and has no snapshot yet: there is no model to "
            "look at until its first snapshot or its end"
        )
    return ModelAt(latest, model_of(session=session, cache=cache, run=run, epoch=latest))


def final_epoch(run: RunRow) -> int:
    """The epoch whose weights a finished run's final model holds: the best one when
    early stopping restored it, else the last epoch run."""
    stopping = (run.spec.get("training") or {}).get("early_stopping") or {}
    if stopping.get("restore_best") and run.best_epoch is not None:
        return int(run.best_epoch)
    return int(run.epoch)


WEIGHTS_NOT_READY = "weights exist once it has succeeded"


def _require_success(run: RunRow, why: str) -> None:
    if run.status != RunStatus.SUCCEEDED:
        raise Conflict(f"run {run.id!r} is {run.status}: {why}")


def _model_blob(*, session: Session, run: RunRow) -> bytes:
    blob = run_store.get_weights(session=session, run_id=run.id)
    if blob is None:
        raise Conflict(f"run {run.id!r} has no stored weights")
    return blob


def check_predict_rows(*, n_rows: int, settings: Settings) -> None:
    """422 over ``ANNLAB_MAX_PREDICT_ROWS``."""
    if n_rows > settings.max_predict_rows:
        raise LimitExceeded(
            "inputs: "
            + limit_message(
                "the number of rows", n_rows, settings.max_predict_rows, "max_predict_rows"
            )
        )


def input_matrix(
    *, model: LoadedModel, matrix: np.ndarray | None, rows: list[list[float]] | None
) -> np.ndarray:
    """The float64 inputs, ``matrix`` or ``rows`` (checked finite already), as wide as the
    model's input; else a 422 naming the widths seen."""
    if matrix is None:
        widths = {len(row) for row in rows or []}
        if widths == {model.n_features}:
            matrix = np.asarray(rows, dtype=np.float64)
    else:
        widths = {matrix.shape[1]}
    if matrix is None or matrix.shape[1] != model.n_features:
        raise Unprocessable(
            f"inputs: each row must have {model.n_features} numbers (the model's input width); "
            f"got rows of {sorted(widths)}"
        )
    return matrix


def predict(*, model: LoadedModel, inputs: np.ndarray) -> Prediction:
    """The model's answer for each row (waits for the model if another thread uses it)."""
    return _checked(model, *model.model.predict(inputs))


def try_predict(*, model: LoadedModel, inputs: np.ndarray) -> Prediction | None:
    """``predict``, or None at once when the model is busy in another thread (for an
    event loop, which must never wait)."""
    result = model.model.try_predict(inputs)
    return _checked(model, *result) if result is not None else None


def _checked(model: LoadedModel, outputs: np.ndarray, predictions: list[Any]) -> Prediction:
    if not np.isfinite(outputs).all():  # JSON has no NaN/Inf: never answer null for them
        row = int(np.argwhere(~np.isfinite(outputs))[0][0])
        raise Unprocessable(
            f"inputs[{row}]: the model's outputs are not finite for this row (the inputs are "
            f"too large for {model.model.spec.dtype}: the computation overflows)"
        )
    return Prediction(outputs, predictions)
