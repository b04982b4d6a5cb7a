"""A bounded, short-lived memory of ids (recently published events, pending case statuses)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringMap(Generic[K, V]):
    """Insertion-ordered map whose entries expire after `ttl` seconds; oldest dropped beyond `max_size`."""

    def __init__(self, ttl: float, max_size: int) -> None:
        self.ttl, self.max_size = ttl, max_size
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def _expire(self, now: float) -> None:
        items = self._items
        while items:
            _, (at, _) = next(iter(items.items()))
            if now - at < self.ttl and len(items) <= self.max_size:
                break
            items.popitem(last=False)

    def put(self, key: K, value: V, now: float) -> None:
        """Remember `key` from `now` on."""
        self._items.pop(key, None)
        self._items[key] = (now, value)
        self._expire(now)

    def get(self, key: K, now: float) -> V | None:
        """The live value of `key`, or None."""
        self._expire(now)
        item = self._items.get(key)
        return None if item is None else item[1]

    def __len__(self) -> int:
        return len(self._items)
