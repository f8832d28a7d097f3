"""What a worker spends around the engine: the timers of a run's overhead, and the
decoded dataset kept between runs (``app.jobs.worker`` uses both)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields

from sqlalchemy.orm import Session

from app.db import datasets as dataset_store
from app.services.datasets import find_dataset, is_builtin
from core.data import Dataset


@dataclass
class JobTimers:
    """Where a run's wall time on this worker went besides the engine: monotonic sums
    in seconds, kept in the job and written to its last log line (``annlab.worker``,
    INFO: ``run … timers: …``; ``bench.service`` reads it). Two clock reads per timed
    call: nothing next to the database write or serialisation being timed."""

    #: claim → ``train`` called: rewind, the run's row, checkpoint, dataset read + decode
    setup: float = 0.0
    #: the whole ``train`` call, callbacks included (engine = train − the callbacks)
    train: float = 0.0
    #: progress transactions (the finished epochs' metrics, heartbeats), without snapshots
    writes: float = 0.0
    #: cancel/stop polls (reads of the run's row)
    polls: float = 0.0
    #: serialising and writing checkpoints (with the metrics flushed alongside)
    checkpoints: float = 0.0
    #: serialising snapshots and the transactions that write them
    snapshots: float = 0.0
    #: after ``train``: the final weights serialised and the outcome's transaction
    finish: float = 0.0

    @contextlib.contextmanager
    def timing(self, part: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            setattr(self, part, getattr(self, part) + time.monotonic() - start)

    @property
    def callbacks(self) -> float:
        """The worker's time spent inside ``train`` (its callbacks)."""
        return self.writes + self.polls + self.checkpoints + self.snapshots

    def line(self) -> str:
        parts = [f"{f.name}={getattr(self, f.name):.4f}" for f in fields(self)]
        return " ".join(parts) + f" engine={max(0.0, self.train - self.callbacks):.4f}"


class DatasetCache:
    """The last uploaded dataset this worker decoded, kept for its next run.

    Reading a 20,000 × 64 upload from the database and decoding its ``.npz`` took
    longer than one of its epochs; runs of a grid or an experiment train on the same
    dataset one after the other. Uploads never change (no route edits one) and ids
    are never reused, so the id is the key; whether it still exists is asked every
    time (a cheap read without the blob). One entry: the arrays a run trains on, so a
    worker holds no second copy; dropped before a different dataset is loaded. The
    arrays are read-only, as for the built-in sets, so no run can change them.
    """

    def __init__(self) -> None:
        self.dataset_id: str | None = None
        self.dataset: Dataset | None = None

    def get(self, session: Session, dataset_id: str) -> Dataset | None:
        if is_builtin(dataset_id):
            return find_dataset(session=session, dataset_id=dataset_id, owner_id=None)
        if dataset_store.get_dataset(session=session, dataset_id=dataset_id, owner_id=None) is None:
            self.clear()
            return None
        if self.dataset_id == dataset_id and self.dataset is not None:
            return self.dataset
        self.clear()  # before the load: never two uploads in memory
        data = dataset_store.load_dataset_arrays(session=session, dataset_id=dataset_id, copy=False)
        if data is not None:
            data.features.flags.writeable = False
            data.targets.flags.writeable = False
            self.dataset_id, self.dataset = dataset_id, data
        return data

    def clear(self) -> None:
        self.dataset_id = self.dataset = None
