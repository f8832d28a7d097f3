"""A bounded LRU of loaded models: a warm prediction reads no database and
deserialises nothing. Entries keep the run's owner so that an ownership check
needs no database either."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CachedModel:
    owner_id: str
    model: Any  # core.serialize.TrainedModel
    n_features: int


class PredictCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, CachedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str) -> CachedModel | None:
        with self._lock:
            entry = self._entries.get(run_id)
            if entry is not None:
                self._entries.move_to_end(run_id)
            return entry

    def put(self, run_id: str, entry: CachedModel) -> None:
        with self._lock:
            self._entries[run_id] = entry
            self._entries.move_to_end(run_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def evict(self, run_id: str) -> None:
        with self._lock:
            self._entries.pop(run_id, None)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._entries
