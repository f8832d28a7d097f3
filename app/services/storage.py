"""``ANNLAB_MAX_STORAGE_BYTES_PER_USER``: the bytes one user's data may take.

Counted: the user's uploaded datasets and their runs' final weights, snapshots and
checkpoint, as stored (``app.db.usage``). Checked at the door, where a refusal costs
nothing: an upload, or a submission (a run, an experiment's runs), that would take
the user past the limit is a 422 naming the variable and the figures.

A run grows after its submission (snapshots, a checkpoint, its weights), so its
submission is checked with an *estimate* of what it will store (``estimate_run``,
an upper bound: the network's bytes for each planned snapshot and the final model,
a checkpoint with the optimizer's state and the best weights, plus each file's
fixed overhead), and that estimate stays *reserved* while the run is queued or
running (less what it has stored so far). So a run that was accepted is never
failed, thinned or stopped for the quota mid-training: what it may grow to was paid
for at submission, and uploads and later submissions see the reservation. Nothing
is enforced in the workers. With several API processes on PostgreSQL two
submissions checked at the same instant may both pass (no lock is taken); on
SQLite the write lock serialises them.
"""

from __future__ import annotations

import json

import numpy as np
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import datasets as dataset_store
from app.db.usage import usage
from app.errors import LimitExceeded
from app.services.auth import Caller
from core.datasets import BUILTIN_DATASETS, load_builtin
from core.specs import RunSpec

SETTING = "ANNLAB_MAX_STORAGE_BYTES_PER_USER"
#: The fixed part of a stored model (``.npz`` headers, spec, names): measured about
#: 5.9 KB for iris; with headroom.
MODEL_OVERHEAD = 8 * 1024
#: The fixed part of a checkpoint: measured about 24 KB for iris; with headroom.
CHECKPOINT_OVERHEAD = 32 * 1024
#: A checkpoint holds the weights, up to two optimizer states (Adam), the best
#: weights (early stopping) and the last boundary's weights: 6 copies at 8 bytes, headroom.
CHECKPOINT_COPIES = 6
#: Bytes per row of the split indices, the epoch's order and the standardisation.
CHECKPOINT_ROW_BYTES = 32
#: Rows assumed when a dataset's size is unknown.
DEFAULT_ROWS = 10_000


def dataset_names(*, session: Session, dataset_id: str, scope: str | None) -> list[str]:
    """The feature and class names a stored model of this dataset carries."""
    if dataset_id in BUILTIN_DATASETS:
        data = load_builtin(dataset_id)
        return list(data.feature_names) + list(data.class_names or [])
    row = dataset_store.get_dataset(session=session, dataset_id=dataset_id, owner_id=scope)
    if row is None:
        return []
    return list(row.feature_names) + list(row.class_names or [])


def estimate_run(
    spec: RunSpec, *, n_parameters: int, n_snapshots: int, n_samples: int | None, names: list[str]
) -> int:
    """An upper bound on the bytes a run of ``spec`` stores: ``n_snapshots`` + 1 models
    (its snapshots and final weights) and one checkpoint. Names are stored as fixed-width
    UTF-32 arrays (4 bytes a character, every one as wide as the longest)."""
    item = np.dtype(spec.dtype).itemsize
    text = len(spec.model_dump_json()) * 4 + 4 * len(names) * max(
        (len(n) for n in names), default=0
    )
    model = MODEL_OVERHEAD + text + n_parameters * item
    rows = n_samples if n_samples is not None else DEFAULT_ROWS
    checkpoint = (
        CHECKPOINT_OVERHEAD
        + text
        + CHECKPOINT_COPIES * n_parameters * 8
        + CHECKPOINT_ROW_BYTES * rows
        + len(json.dumps(spec.model_dump(mode="json")))
    )
    return (n_snapshots + 1) * model + checkpoint


def check(*, session: Session, owner: Caller, settings: Settings, what: str, adding: int) -> None:
    """422 when ``adding`` more bytes would take ``owner`` past the limit (0: no limit)."""
    limit = settings.max_storage_bytes_per_user
    if not limit:
        return
    current = usage(session=session, owner_id=owner.owner_id)
    total = current.used + current.reserved + adding
    if total > limit:
        raise LimitExceeded(
            f"{what} would take the storage of user {owner.name!r} to {total} bytes, over the "
            f"limit of {limit} bytes ({SETTING}): {current.used} bytes used (datasets "
            f"{current.datasets}, runs' weights, snapshots and checkpoints {current.runs}), "
            f"{current.reserved} reserved by queued and running runs, {adding} for this "
            "request. Delete runs or datasets, or ask an admin to raise the limit"
        )


def check_upload(*, session: Session, owner: Caller, settings: Settings, n_bytes: int) -> None:
    check(
        session=session,
        owner=owner,
        settings=settings,
        what=f"this dataset ({n_bytes} bytes stored)",
        adding=n_bytes,
    )


def check_submission(
    *, session: Session, owner: Caller, settings: Settings, runs: list[int]
) -> None:
    """``runs``: the estimate of each run submitted (one, or an experiment's)."""
    what = (
        f"this run (estimated {runs[0]} bytes)"
        if len(runs) == 1
        else f"these {len(runs)} runs (estimated {sum(runs)} bytes)"
    )
    check(session=session, owner=owner, settings=settings, what=what, adding=sum(runs))
