"""Features that overflow a run's dtype are a 422 at submission, not a failed run later.

The check needs the dataset's values (no summary is stored on the dataset row: that
would need a migration). Its cost is bounded: a dataset is at most
``ANNLAB_MAX_DATASET_BYTES``, datasets never change once uploaded and their ids are
never reused, so the verdict for (dataset, dtype, standardize) is computed once per
process and remembered (a small LRU). It runs after the dataset was found for the
caller, so a remembered verdict never reveals another user's data.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy.orm import Session

from app.services import datasets
from core.errors import DatasetError
from core.specs import RunSpec
from core.value_checks import check_fits_dtype

CACHE_SIZE = 512
_verdicts: OrderedDict[tuple[str, str, bool], DatasetError | None] = OrderedDict()
_lock = threading.Lock()


def check_numbers_fit(*, session: Session, spec: RunSpec, owner_id: str | None) -> None:
    """``DatasetError`` (422, naming row and column) when ``spec.dataset``'s features do
    not fit ``spec.dtype`` as the trainer will convert them."""
    key = (spec.dataset, spec.dtype, bool(spec.training.standardize))
    with _lock:
        if key in _verdicts:
            _verdicts.move_to_end(key)
            found = _verdicts[key]
            if found is not None:
                raise found
            return
    data = datasets.load_dataset(session=session, dataset_id=spec.dataset, owner_id=owner_id)
    verdict: DatasetError | None = None
    try:
        check_fits_dtype(data, dtype=spec.dtype, standardize=key[2])
    except DatasetError as exc:
        verdict = DatasetError(f"dataset {spec.dataset!r}: {exc.message}", exc.field or "dataset")
    with _lock:
        _verdicts[key] = verdict
        while len(_verdicts) > CACHE_SIZE:
            _verdicts.popitem(last=False)
    if verdict is not None:
        raise verdict
