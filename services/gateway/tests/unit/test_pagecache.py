"""The page cache: a byte-bounded LRU, strong ETags and If-None-Match."""

from __future__ import annotations

import pytest

from fundtrail_gateway.core.pagecache import PageCache, RenderedPage, etag_matches, etag_of


def _page(n: int, size: int) -> RenderedPage:
    body = bytes([n]) * size
    return RenderedPage(body, etag_of(body))


def test_lru_bounded_by_body_bytes() -> None:
    cache = PageCache(max_bytes=300)
    for n in range(3):
        cache.put(n, _page(n, 100))
    assert len(cache) == 3 and cache.size == 300
    assert cache.get(0) is not None  # 0 is now the most recently used
    cache.put(3, _page(3, 100))
    assert cache.get(1) is None and cache.get(0) is not None and len(cache) == 3
    cache.put(4, _page(4, 250))  # evicts until it fits
    assert [k for k in range(5) if cache.get(k) is not None] == [4] and cache.size == 250


def test_replacing_a_key_and_pages_larger_than_the_budget() -> None:
    cache = PageCache(max_bytes=100)
    cache.put("k", _page(1, 60))
    cache.put("k", _page(2, 40))
    assert cache.size == 40 and cache.get("k") == _page(2, 40)
    cache.put("big", _page(3, 101))
    assert cache.get("big") is None and cache.size == 40
    off = PageCache(max_bytes=0)
    off.put("k", _page(1, 1))
    assert len(off) == 0


def test_etag_is_a_strong_digest_of_the_bytes() -> None:
    tag = etag_of(b"abc")
    assert tag.startswith('"') and tag.endswith('"') and len(tag) == 34
    assert tag == etag_of(b"abc") and tag != etag_of(b"abd")


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ('"x" ,W/"abc" ', True),
        ("*", True),
        ('"abcd"', False),
        ("abc", False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert etag_matches(header, '"abc"') is matches


def test_one_hit_probes_for_change_and_a_moved_count_drops_every_page() -> None:
    from fundtrail_gateway.core.pagecache import PageCache, RenderedPage

    cache = PageCache(1000, probe_seconds=1.0)
    cache.put("a", RenderedPage(b"x", '"e"'))
    assert cache.claim_probe(10.0) and not cache.claim_probe(10.5)  # the others use the cache meanwhile
    cache.observe(5, 10.0)
    assert cache.get("a") is not None and not cache.probe_due(10.9) and cache.claim_probe(11.0)
    cache.observe(5, 11.0)
    assert cache.get("a") is not None
    cache.observe(6, 12.0)
    assert cache.get("a") is None and cache.size == 0
    cache.put("a", RenderedPage(b"x", '"e"'))
    cache.observe(None, 13.0)  # the probe failed: nothing is trusted
    assert len(cache) == 0


def test_discard_drops_only_the_page_it_was_given() -> None:
    cache = PageCache(max_bytes=300)
    old, new = _page(1, 100), _page(2, 50)
    cache.put("end", old)
    cache.put("end", new)  # re-rendered meanwhile by another request
    cache.discard("end", old)
    assert cache.get("end") is new and cache.size == 50
    cache.discard("end", new)
    assert cache.get("end") is None and cache.size == 0 and len(cache) == 0
