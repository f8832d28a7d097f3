"""Datasets, built-in or uploaded: the one place that resolves a dataset id.

A built-in id (``core.datasets``) never touches the database; any other id is an
upload, visible to its owner and to admins. An unknown id and another user's
upload get the same 404, so nothing leaks.
"""

from __future__ import annotations

from typing import BinaryIO

from sqlalchemy.orm import Session

from app.config import Settings
from app.db import datasets as dataset_store
from app.db import runs as run_store
from app.db import users as user_store
from app.db.datasets import DatasetSummary
from app.errors import Conflict, Forbidden, LimitExceeded, NotFound, limit_message
from app.schemas import DatasetOut
from app.services import audit, storage
from app.services.auth import Caller
from core.data import Dataset
from core.datasets import BUILTIN_DATASETS, load_builtin
from core.loaders import write_dataset_npz
from core.specs import DataShape

#: Added to the 404 of a spec naming an unknown dataset.
LIST_HINT = " (GET /api/v1/datasets lists yours)"


def is_builtin(dataset_id: str) -> bool:
    return dataset_id in BUILTIN_DATASETS


def _not_found(dataset_id: str, hint: str = "") -> NotFound:
    return NotFound(f"dataset {dataset_id!r} not found{hint}")


def list_datasets(*, session: Session, owner_id: str | None) -> list[DatasetOut]:
    """Built-ins first, then the uploads ``owner_id`` may see (None: all), newest first."""
    items = [DatasetOut.from_builtin(name, info) for name, info in BUILTIN_DATASETS.items()]
    rows = dataset_store.list_datasets(session=session, owner_id=owner_id)
    return items + [DatasetOut.from_row(row) for row in rows]


def get_dataset(*, session: Session, dataset_id: str, owner_id: str | None) -> DatasetOut:
    """One dataset's description; 404 unknown or another user's."""
    if is_builtin(dataset_id):
        return DatasetOut.from_builtin(dataset_id, BUILTIN_DATASETS[dataset_id])
    row = dataset_store.get_dataset(session=session, dataset_id=dataset_id, owner_id=owner_id)
    if row is None:
        raise _not_found(dataset_id)
    return DatasetOut.from_row(row)


def get_shape(
    *, session: Session, dataset_id: str, owner_id: str | None, hint: str = LIST_HINT
) -> DataShape:
    """What a spec is checked against, without loading any arrays; 404 as ``get_dataset``."""
    if is_builtin(dataset_id):
        return BUILTIN_DATASETS[dataset_id].shape()
    row = dataset_store.get_dataset(session=session, dataset_id=dataset_id, owner_id=owner_id)
    if row is None:
        raise _not_found(dataset_id, hint)
    return DataShape(
        task=dataset_store.task_of(row),
        n_features=row.n_features,
        n_outputs=row.n_outputs,
        n_classes=len(row.class_names) if row.class_names is not None else None,
        n_samples=row.n_samples,
    )


def find_dataset(*, session: Session, dataset_id: str, owner_id: str | None) -> Dataset | None:
    """The arrays of a dataset; None when it does not exist (or is not ``owner_id``'s)."""
    if is_builtin(dataset_id):
        return load_builtin(dataset_id)
    return dataset_store.load_dataset_arrays(
        session=session, dataset_id=dataset_id, owner_id=owner_id
    )


def load_dataset(*, session: Session, dataset_id: str, owner_id: str | None) -> Dataset:
    """``find_dataset``, with a 404 for a dataset that is not there."""
    dataset = find_dataset(session=session, dataset_id=dataset_id, owner_id=owner_id)
    if dataset is None:
        raise _not_found(dataset_id)
    return dataset


def check_row_limit(*, n_rows: int, settings: Settings) -> None:
    """422 for an upload over ``ANNLAB_MAX_DATASET_ROWS`` (checked before parsing it whole)."""
    if n_rows > settings.max_dataset_rows:
        raise LimitExceeded(
            limit_message(
                "the number of rows", n_rows, settings.max_dataset_rows, "max_dataset_rows"
            )
        )


def check_file_size(*, n_bytes: int, settings: Settings) -> None:
    """422 for an uploaded file over ``ANNLAB_MAX_DATASET_BYTES`` (read one byte past it)."""
    if n_bytes > settings.max_dataset_bytes:
        raise LimitExceeded(
            limit_message(
                "the CSV file's size in bytes",
                f"over {settings.max_dataset_bytes}",
                settings.max_dataset_bytes,
                "max_dataset_bytes",
            )
        )


def encode_dataset(dataset: Dataset, settings: Settings, out_path: str) -> None:
    """A parsed upload as stored (``.npz``), written into ``out_path``; 422 over
    ``ANNLAB_MAX_DATASET_BYTES``. Slow for big uploads: run it before the write
    transaction, off the event loop. Written to the file as encoded: the encoding of a
    10⁶-row upload (72 MB) is never in memory beside its arrays."""
    with open(out_path, "wb") as out:
        write_dataset_npz(dataset, out)
        size = out.tell()
    if size > settings.max_dataset_bytes:
        raise LimitExceeded(
            limit_message(
                "the dataset's size in bytes",
                size,
                settings.max_dataset_bytes,
                "max_dataset_bytes",
            )
        )


def create_dataset(
    *,
    session: Session,
    owner: Caller,
    dataset: Dataset | DatasetSummary,
    data: bytes | BinaryIO,
    settings: Settings,
) -> DatasetOut:
    """Store an encoded upload (``encode_dataset``: its bytes, or a file holding them) for
    ``owner``: one short write; commits. 422 when it would take the owner past
    ``ANNLAB_MAX_STORAGE_BYTES_PER_USER``."""
    n_bytes = len(data) if isinstance(data, bytes) else dataset_store.file_size(data)
    storage.check_upload(session=session, owner=owner, settings=settings, n_bytes=n_bytes)
    row = dataset_store.create_dataset(
        session=session, owner_id=owner.owner_id, dataset=dataset, data=data
    )
    audit.record(
        session=session,
        actor=owner,
        action="dataset.uploaded",
        subject=owner.name,
        target=row.id,
        detail={"name": row.name, "bytes": n_bytes},
    )
    session.commit()
    return DatasetOut.from_row(row)


def delete_dataset(
    *, session: Session, dataset_id: str, actor: Caller, force: bool = False
) -> None:
    """Delete an upload: 403 built-in, 404 unknown, 409 while a queued or running run
    uses it, and 409 (naming how many) when finished runs refer to it unless ``force``
    (they keep their models: serving reads only the stored weights); commits."""
    if is_builtin(dataset_id):
        raise Forbidden(f"{dataset_id!r} is a built-in dataset and cannot be deleted")
    row = dataset_store.get_dataset(session=session, dataset_id=dataset_id, owner_id=actor.scope)
    if row is None:
        raise _not_found(dataset_id)
    if dataset_store.is_in_use(session=session, dataset_id=dataset_id):
        raise Conflict(f"dataset {dataset_id!r} is used by a queued or running run")
    used_by = run_store.count_using_dataset(session=session, dataset_id=dataset_id)
    if used_by and not force:
        raise Conflict(
            f"dataset {dataset_id!r} is used by {used_by} run(s): delete with ?force=true to "
            "delete it anyway (the runs keep their models; evaluating them on their own "
            "validation rows will no longer work)"
        )
    owner = user_store.get_user(session=session, user_id=row.owner_id)
    audit.record(
        session=session,
        actor=actor,
        action="dataset.deleted",
        subject=owner.name if owner is not None else row.owner_id,
        target=dataset_id,
        detail={"name": row.name, "runs_using_it": used_by},
    )
    dataset_store.delete_dataset(session=session, dataset_id=dataset_id)
    session.commit()
