"""`BoundedCache`: the one memo that every hot path in devicegate uses.

Hot paths (identification, parsing, replayed answers) memoise per distinct input, and a
distinct input is chosen by the client: left alone, a memo grows with every new User-Agent.
This one holds at most `size` entries and, when full, starts afresh. Clearing everything is
deliberately cruder than LRU: a hit stays one dict look-up with no bookkeeping, the common
case on every path measured here, and a miss after a clear costs one recomputation. `clears`
counts how often that happened, so a cache too small for its working set shows on /metrics
(docs/scale.md measures what it costs).
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A dict of at most `size` entries, emptied when a new key would exceed it."""

    __slots__ = ("_data", "clears", "get", "size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a cache holds at least one entry")
        self.size = size
        #: times the cache was emptied because a new key found it full
        self.clears = 0
        self._data: dict[K, V] = {}
        #: the dict's own `get`, bound once: a hit is one call
        self.get = self._data.get

    def put(self, key: K, value: V) -> V:
        """Keep `value` under `key` (emptying the cache first when it is full); return it."""
        data = self._data
        if len(data) >= self.size and key not in data:
            data.clear()
            self.clears += 1
        data[key] = value
        return value

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data
