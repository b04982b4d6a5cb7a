"""Rendered trail pages that can no longer change, kept in memory with their ETags.

The trail is append-only and one writer appends it in leaf order (fund-tracker holds the trail lock),
so once an entry after a page is visible, no entry can join the page any more. Such a page is final
unless it shows something mutable (a violation's current status) or an entry that failed its checks.
Final pages are cached; so is the last page of a trail when nothing on it can change but its end: it
stays right while no entry of its subject follows its last leaf, which one indexed query tells (far
less than rendering it again). The key carries the caller's region scope.

Append-only is enforced by the database (triggers refuse UPDATE, DELETE and TRUNCATE), but a
superuser can still bypass them: so the cache notices change. At most once per `probe_seconds` a hit
first reads PostgreSQL's count of updated and deleted trail rows (and the tables' file nodes, which
TRUNCATE renews); when it moved, every page is dropped and rendered again from the leaves.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TrailEnd:
    """A page that ends its trail: as rendered while no entry of `subject` `key` follows leaf `last_seq`."""

    subject: str
    key: str
    last_seq: int


@dataclass(frozen=True, slots=True)
class RenderedPage:
    body: bytes
    etag: str
    next_url: str | None = None
    end: TrailEnd | None = None  # None: a final page


def etag_of(body: bytes) -> str:
    """A strong ETag: a digest of the exact bytes."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison): `*` or any listed tag equal to `etag`."""
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == opaque:
            return True
    return False


class PageCache:
    """An LRU of rendered pages bounded by the bytes of their bodies (0 disables it)."""

    def __init__(self, max_bytes: int, probe_seconds: float = 1.0) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.probe_seconds = probe_seconds
        self._pages: OrderedDict[Hashable, RenderedPage] = OrderedDict()
        self._changes: int | None = None
        self._probed_at: float | None = None

    def probe_due(self, now: float) -> bool:
        """Whether a hit at monotonic time `now` must first probe the trail tables for change."""
        return self._probed_at is None or now - self._probed_at >= self.probe_seconds

    def claim_probe(self, now: float) -> bool:
        """True for the one caller that must probe now; the others keep using the cache meanwhile."""
        if not self.probe_due(now):
            return False
        self._probed_at = now
        return True

    def observe(self, changes: int | None, now: float) -> None:
        """Record a probe; drop every page when the change count moved (None: probe failed, drop too)."""
        self._probed_at = now
        if changes is None or (self._changes is not None and changes != self._changes):
            self.clear()
        self._changes = changes

    def clear(self) -> None:
        """Drop every page."""
        self._pages.clear()
        self.size = 0

    def __len__(self) -> int:
        return len(self._pages)

    def get(self, key: Hashable) -> RenderedPage | None:
        """The page under `key`, now the most recently used; None when absent."""
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
        return page

    def discard(self, key: Hashable, page: RenderedPage) -> None:
        """Drop `page` if it is still the one under `key` (a newer one may have replaced it meanwhile)."""
        if self._pages.get(key) is page:
            del self._pages[key]
            self.size -= len(page.body)

    def put(self, key: Hashable, page: RenderedPage) -> None:
        """Keep `page`, evicting the least recently used pages beyond the byte budget."""
        if len(page.body) > self.max_bytes:
            return
        old = self._pages.pop(key, None)
        if old is not None:
            self.size -= len(old.body)
        self._pages[key] = page
        self.size += len(page.body)
        while self.size > self.max_bytes:
            _, evicted = self._pages.popitem(last=False)
            self.size -= len(evicted.body)
