"""RFC 9162 Merkle tree: published CT vectors, exhaustive small trees, store-based proofs."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundtrail_verify.merkle import (
    EMPTY_ROOT,
    CompactRange,
    InMemoryTree,
    consistency_proof,
    consistency_proof_from_store,
    consistency_proof_plan,
    inclusion_proof,
    inclusion_proof_from_store,
    inclusion_proof_plan,
    leaf_hash,
    node_hash,
    node_id,
    node_range,
    range_decomposition,
    root_from_leaf_hashes,
    root_from_store,
    verify_consistency,
    verify_inclusion,
)

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "ct_vectors.json").read_text())
MAX_N = 64


def hx(values: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def mth(hashes: Sequence[bytes]) -> bytes:
    """MTH written the way RFC 9162 §2.1.1 states it (recursive), independent of the module."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


def flip(proof: list[bytes], i: int, mask: int = 0x08) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ mask]) + out[i][1:]
    return out


VECTOR_LEAVES = hx(VECTORS["leaves"])
VECTOR_LEAF_HASHES = [leaf_hash(d) for d in VECTOR_LEAVES]
VECTOR_ROOTS = hx(VECTORS["roots"])


@cache
def small_tree() -> tuple[InMemoryTree, list[bytes], list[bytes]]:
    """A 64-leaf store, its leaf hashes, and roots[n] for every n in 0..64."""
    leaves = [f"leaf-{i}".encode() for i in range(MAX_N)]
    tree = InMemoryTree(leaves)
    hashes = [leaf_hash(d) for d in leaves]
    roots = [mth(hashes[:n]) for n in range(MAX_N + 1)]
    return tree, hashes, roots


# ------------------------------------------------------------------ primitives


def test_hashing_primitives_match_rfc_definitions() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    a, b = b"\x11" * 32, b"\x22" * 32
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    # Domain separation: a leaf whose data is two child hashes is not the node over them.
    assert leaf_hash(a + b) != node_hash(a, b)


def test_node_addressing() -> None:
    assert node_range(0, 5) == (5, 6)
    assert node_range(3, 2) == (16, 24)
    assert node_id(16, 24) == (3, 2)
    for bad in [(1, 3), (2, 4 + 2), (3, 5), (0, 0), (4, 2), (-2, 0)]:
        with pytest.raises(ValueError):
            node_id(*bad)
    assert range_decomposition(0, 0) == []
    assert range_decomposition(0, 7) == [(0, 4), (4, 6), (6, 7)]
    assert range_decomposition(88, 95) == [(88, 92), (92, 94), (94, 95)]
    assert range_decomposition(0, 8) == [(0, 8)]


def test_reference_mth_is_itself_sane() -> None:
    # The test-local MTH against hand-built trees, so it can act as an independent oracle.
    h = [leaf_hash(bytes([i])) for i in range(5)]
    assert mth(h[:1]) == h[0]
    assert mth(h[:3]) == node_hash(node_hash(h[0], h[1]), h[2])
    assert mth(h[:5]) == node_hash(node_hash(node_hash(h[0], h[1]), node_hash(h[2], h[3])), h[4])


# ------------------------------------------------------------------- CT vectors


def test_vector_leaf_and_node_hashes() -> None:
    levels = [hx(level) for level in VECTORS["node_hashes"]]
    assert VECTOR_LEAF_HASHES == levels[0]
    tree = InMemoryTree(VECTOR_LEAVES)
    for level, hashes in enumerate(levels):
        for index, want in enumerate(hashes):
            assert tree.get_subtree_hash(*node_range(level, index)) == want, (level, index)
            assert mth(VECTOR_LEAF_HASHES[slice(*node_range(level, index))]) == want


@pytest.mark.parametrize("size", range(9))
def test_vector_roots(size: int) -> None:
    want = VECTOR_ROOTS[size]
    hashes = VECTOR_LEAF_HASHES[:size]
    assert root_from_leaf_hashes(hashes) == want
    assert mth(hashes) == want
    cr = CompactRange()
    for h in hashes:
        cr.append(h)
    assert cr.root() == want
    tree = InMemoryTree(VECTOR_LEAVES)
    assert tree.root(size) == want
    assert root_from_store(tree, size) == want


@pytest.mark.parametrize("vec", VECTORS["inclusion"], ids=lambda v: f"{v['index']}of{v['tree_size']}")
def test_vector_inclusion(vec: dict[str, Any]) -> None:
    index, size, want = vec["index"], vec["tree_size"], hx(vec["proof"])
    tree = InMemoryTree(VECTOR_LEAVES)
    assert inclusion_proof(VECTOR_LEAF_HASHES[:size], index, size) == want
    assert inclusion_proof(lambda i: VECTOR_LEAF_HASHES[i], index, size) == want
    assert inclusion_proof_from_store(tree, index, size) == want
    root, leaf = VECTOR_ROOTS[size], VECTOR_LEAF_HASHES[index]
    assert verify_inclusion(leaf, index, size, want, root)
    # The corruptions of transparency-dev/merkle's verifierCheck that stay well-formed.
    some_hash = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (index, size, leaf_hash(b"WrongLeaf"), root, want),
        (index, size, leaf, EMPTY_ROOT, want),
        (index, size, leaf, some_hash, want),
        (index, size, leaf, root, [*want, root]),
        (index, size, leaf, root, [root, *want]),
        (index, size * 2, leaf, root, want),
    ]
    for other in (index - 1, index + 1, index ^ 2):
        if 0 <= other < size:
            probes.append((other, size, leaf, root, want))
    if size // 2 > index:
        probes.append((index, size // 2, leaf, root, want))
    probes += [(index, size, leaf, root, flip(want, i)) for i in range(len(want))]
    if want:
        probes.append((index, size, leaf, root, want[:-1]))
    if len(want) > 1:
        probes.append((index, size, leaf, root, [want[0], some_hash, *want[1:]]))
    for p in probes:
        assert not verify_inclusion(p[2], p[0], p[1], p[4], p[3]), p


@pytest.mark.parametrize("vec", VECTORS["consistency"], ids=lambda v: f"{v['old_size']}to{v['new_size']}")
def test_vector_consistency(vec: dict[str, Any]) -> None:
    m, n, want = vec["old_size"], vec["new_size"], hx(vec["proof"])
    tree = InMemoryTree(VECTOR_LEAVES)
    assert consistency_proof(VECTOR_LEAF_HASHES[:n], m, n) == want
    assert consistency_proof_from_store(tree, m, n) == want
    r1, r2 = VECTOR_ROOTS[m], VECTOR_ROOTS[n]
    assert verify_consistency(m, n, r1, r2, want)
    if not want:
        return
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (m, n, hashlib.sha256(b"WrongRoot").digest(), r2, want),
        (m, n, r1, hashlib.sha256(b"WrongRoot").digest(), want),
        (m, n, r2, r1, want),
        (m, n, r1, r2, []),
        (m, n, r1, r2, [*want, r1]),
        (m, n, r1, r2, [*want, r2]),
        (m, n, r1, r2, [r1, *want]),
        (m, n, r1, r2, [r2, *want]),
        (m, n, r1, r2, [want[0], *want]),
        (m, n, r1, r2, want[:-1]),
        (m, n * 2, r1, r2, want),
    ]
    for other in (m - 1, m + 1, m ^ 2):
        if 1 <= other <= n:
            probes.append((other, n, r1, r2, want))
    if n // 2 >= m:
        probes.append((m, n // 2, r1, r2, want))
    probes += [(m, n, r1, r2, flip(want, i, 0x10)) for i in range(len(want))]
    for p in probes:
        assert not verify_consistency(p[0], p[1], p[2], p[3], p[4]), p


@cache
def tree_128() -> InMemoryTree:
    return InMemoryTree(f"structural-{i}".encode() for i in range(128))


def proof_from_node_ids(tree: InMemoryTree, nodes: list[list[int]], rehash: list[int] | None) -> list[bytes]:
    """Expected proof from transparency-dev's node-id lists (see structural_comment in the JSON)."""
    hashes = [tree.get_subtree_hash(*node_range(level, index)) for level, index in nodes]
    if rehash is None:
        return hashes
    begin, end = rehash
    acc = hashes[begin]
    for h in hashes[begin + 1 : end]:
        acc = node_hash(h, acc)
    return [*hashes[:begin], acc, *hashes[end:]]


@pytest.mark.parametrize("vec", VECTORS["structural_inclusion"], ids=lambda v: f"{v['index']}of{v['tree_size']}")
def test_structural_inclusion(vec: dict[str, Any]) -> None:
    tree = tree_128()
    index, size = vec["index"], vec["tree_size"]
    want = proof_from_node_ids(tree, vec["nodes"], vec["rehash"])
    assert inclusion_proof_from_store(tree, index, size) == want
    assert inclusion_proof(tree.leaf_hash_at, index, size) == want
    # The store is asked for exactly the nodes the reference implementation reads.
    fetched = sorted(inclusion_proof_plan(index, size).ranges())
    assert fetched == sorted(node_range(lv, ix) for lv, ix in vec["nodes"])


@pytest.mark.parametrize("vec", VECTORS["structural_consistency"], ids=lambda v: f"{v['old_size']}to{v['new_size']}")
def test_structural_consistency(vec: dict[str, Any]) -> None:
    tree = tree_128()
    m, n = vec["old_size"], vec["new_size"]
    want = proof_from_node_ids(tree, vec["nodes"], vec["rehash"])
    assert consistency_proof_from_store(tree, m, n) == want
    assert consistency_proof(tree.leaf_hash_at, m, n) == want
    fetched = sorted(consistency_proof_plan(m, n).ranges())
    assert fetched == sorted(node_range(lv, ix) for lv, ix in vec["nodes"])


# ---------------------------------------------------------- exhaustive 1..64


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_exhaustive_inclusion(n: int) -> None:
    tree, hashes, roots = small_tree()
    root = roots[n]
    assert root_from_leaf_hashes(hashes[:n]) == root
    assert tree.root(n) == root
    for i in range(n):
        ref = inclusion_proof(hashes[:n], i, n)
        proof = inclusion_proof_from_store(tree, i, n)
        assert proof == ref
        assert len(proof) <= math.ceil(math.log2(n)) if n > 1 else proof == []
        leaf = hashes[i]
        assert verify_inclusion(leaf, i, n, proof, root)

        # Wrong leaf: every other leaf of the tree, and one that is not in it.
        assert not verify_inclusion(hashes[(i + 1) % MAX_N], i, n, proof, root)
        assert not verify_inclusion(leaf_hash(b"not in the log"), i, n, proof, root)
        # Wrong index: every other position in the same tree.
        for j in range(n):
            if j != i:
                assert not verify_inclusion(leaf, j, n, proof, root), (i, j, n)
        # Wrong tree: other sizes with their own true roots, and this size with other roots.
        for other in range(i + 1, MAX_N + 1):
            if other != n:
                assert not verify_inclusion(leaf, i, other, proof, roots[other]), (i, n, other)
                assert not verify_inclusion(leaf, i, n, proof, roots[other])
        # Truncated, extended, prepended, reordered.
        if proof:
            assert not verify_inclusion(leaf, i, n, proof[:-1], root)
            assert not verify_inclusion(leaf, i, n, proof[1:], root)
        assert not verify_inclusion(leaf, i, n, [*proof, root], root)
        assert not verify_inclusion(leaf, i, n, [*proof, bytes(32)], root)
        assert not verify_inclusion(leaf, i, n, [bytes(32), *proof], root)
        if len(proof) > 1:
            assert not verify_inclusion(leaf, i, n, proof[::-1], root)
        # Every single flipped bit, in the proof, the leaf and the root.
        for k in range(len(proof)):
            for bit in (0, 7, 255):
                bad = list(proof)
                b = bytearray(bad[k])
                b[bit // 8] ^= 1 << (bit % 8)
                bad[k] = bytes(b)
                assert not verify_inclusion(leaf, i, n, bad, root)
        assert not verify_inclusion(flip([leaf], 0)[0], i, n, proof, root)
        assert not verify_inclusion(leaf, i, n, proof, flip([root], 0)[0])


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_exhaustive_consistency(n: int) -> None:
    tree, hashes, roots = small_tree()
    for m in range(1, n + 1):
        ref = consistency_proof(hashes[:n], m, n)
        proof = consistency_proof_from_store(tree, m, n)
        assert proof == ref, (m, n)
        r1, r2 = roots[m], roots[n]
        assert verify_consistency(m, n, r1, r2, proof), (m, n)
        if m == n:
            assert proof == []
            assert not verify_consistency(m, n, r1, roots[n - 1], [])
            assert not verify_consistency(m, n, r1, r2, [r1])
            continue
        assert 1 <= len(proof) <= math.ceil(math.log2(n)) + 1

        # Wrong roots.
        for other in range(1, MAX_N + 1):
            if other != m:
                assert not verify_consistency(m, n, roots[other], r2, proof), (m, n, other)
            if other != n:
                assert not verify_consistency(m, n, r1, roots[other], proof), (m, n, other)
        assert not verify_consistency(m, n, r2, r1, proof)
        # Wrong sizes, each paired with that size's true root.
        for other in range(1, n + 1):
            if other != m:
                assert not verify_consistency(other, n, roots[other], r2, proof), (m, n, other)
        for other in range(m, MAX_N + 1):
            if other != n:
                assert not verify_consistency(m, other, r1, roots[other], proof), (m, n, other)
        # Truncated, extended, prepended, empty.
        assert not verify_consistency(m, n, r1, r2, [])
        assert not verify_consistency(m, n, r1, r2, proof[:-1])
        assert not verify_consistency(m, n, r1, r2, proof[1:])
        assert not verify_consistency(m, n, r1, r2, [*proof, r2])
        assert not verify_consistency(m, n, r1, r2, [r1, *proof])
        assert not verify_consistency(m, n, r1, r2, [proof[0], *proof])
        for k in range(len(proof)):
            assert not verify_consistency(m, n, r1, r2, flip(proof, k, 0x10))
            assert not verify_consistency(m, n, r1, r2, flip(proof, k, 0x01))


def test_consistency_with_empty_old_tree() -> None:
    _, hashes, roots = small_tree()
    assert consistency_proof(hashes, 0, 5) == []
    assert verify_consistency(0, 5, EMPTY_ROOT, roots[5], [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    # An old "empty" tree must have the empty-tree hash, and needs no proof.
    assert not verify_consistency(0, 5, roots[1], roots[5], [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, roots[5], [roots[5]])


# ---------------------------------------------------------- verifier robustness


def test_verifiers_reject_malformed_material_without_raising() -> None:
    tree, hashes, roots = small_tree()
    proof = inclusion_proof_from_store(tree, 3, 10)
    root = roots[10]
    bad_proofs: list[Any] = [
        None,
        "abc",
        b"".join(proof),
        [*proof[:-1], proof[-1][:31]],
        [*proof[:-1], proof[-1] + b"\x00"],
        [*proof[:-1], proof[-1].hex()],
        [*proof[:-1], None],
        [*proof[:-1], 7],
    ]
    for bad in bad_proofs:
        assert verify_inclusion(hashes[3], 3, 10, bad, root) is False
    assert verify_inclusion(hashes[3][:31], 3, 10, proof, root) is False
    assert verify_inclusion(hashes[3], 3, 10, proof, root[:31]) is False
    assert verify_inclusion(hashes[3], 3, 10, proof, root.hex()) is False  # type: ignore[arg-type]
    # bytearray / memoryview of the right content are accepted.
    views: list[Any] = [memoryview(p) for p in proof]
    assert verify_inclusion(bytearray(hashes[3]), 3, 10, views, root)  # type: ignore[arg-type]
    # An absurdly long proof is rejected as soon as it overruns the tree height.
    assert verify_inclusion(hashes[3], 3, 10, proof + [bytes(32)] * 100_000, root) is False

    cproof = consistency_proof_from_store(tree, 3, 10)
    for bad in [*bad_proofs[:2], [*cproof[:-1], cproof[-1][:5]], [*cproof[:-1], None]]:
        assert verify_consistency(3, 10, roots[3], roots[10], bad) is False
    assert verify_consistency(3, 10, roots[3][:8], roots[10], cproof) is False
    assert verify_consistency(3, 10, roots[3], b"", cproof) is False


def test_verifiers_raise_on_impossible_questions() -> None:
    h = leaf_hash(b"x")
    for index, size in [(0, 0), (1, 1), (5, 3), (-1, 4), (0, -1)]:
        with pytest.raises(ValueError):
            verify_inclusion(h, index, size, [], h)
        with pytest.raises(ValueError):
            inclusion_proof([h] * max(size, 0), index, size)
        with pytest.raises(ValueError):
            inclusion_proof_plan(index, size)
    for m, n in [(2, 1), (-1, 3), (9, 8)]:
        with pytest.raises(ValueError):
            verify_consistency(m, n, h, h, [])
        with pytest.raises(ValueError):
            consistency_proof([h] * 9, m, n)
        with pytest.raises(ValueError):
            consistency_proof_plan(m, n)


# ------------------------------------------------------------ store & appender


def test_compact_range_emits_every_complete_subtree_exactly_once() -> None:
    _, hashes, roots = small_tree()
    cr = CompactRange()
    seen: dict[tuple[int, int], bytes] = {}
    for n, h in enumerate(hashes, start=1):
        for level, index, value in cr.append(h):
            assert (level, index) not in seen
            seen[(level, index)] = value
        assert cr.size == n
        assert cr.root() == roots[n]
        assert len(cr.frontier) == n.bit_count()
        # Exactly the aligned subtrees that fit in [0, n) exist, with their true hashes.
        expected = {(lv, ix) for lv in range(7) for ix in range(n >> lv)}
        assert set(seen) == expected
    for (level, index), value in seen.items():
        assert value == mth(hashes[slice(*node_range(level, index))])


def test_compact_range_resume() -> None:
    tree, hashes, roots = small_tree()
    for size in range(MAX_N + 1):
        cr = CompactRange.from_store(tree, size)
        assert cr.size == size and cr.root() == roots[size]
        # Appending after a resume continues the same tree.
        extra = cr.append(hashes[size]) if size < MAX_N else []
        if extra:
            assert cr.root() == roots[size + 1]
    with pytest.raises(ValueError):
        CompactRange.from_frontier(3, [bytes(32)])
    with pytest.raises(ValueError):
        CompactRange().append(b"short")


def test_store_refuses_incomplete_or_unaligned_subtrees() -> None:
    tree = InMemoryTree(f"x{i}".encode() for i in range(6))
    assert tree.get_subtree_hash(4, 6) == node_hash(leaf_hash(b"x4"), leaf_hash(b"x5"))
    with pytest.raises(KeyError):
        tree.get_subtree_hash(4, 8)  # not complete at size 6
    with pytest.raises(ValueError):
        tree.get_subtree_hash(2, 6)  # not aligned
    with pytest.raises(ValueError):
        tree.root(7)


class CountingStore:
    """Wraps a store and records every subtree read (plain get interface, no batch)."""

    def __init__(self, inner: InMemoryTree) -> None:
        self.inner = inner
        self.reads: list[tuple[int, int]] = []

    def get_subtree_hash(self, start: int, end: int) -> bytes:
        self.reads.append((start, end))
        return self.inner.get_subtree_hash(start, end)


class BatchCountingStore(CountingStore):
    def __init__(self, inner: InMemoryTree) -> None:
        super().__init__(inner)
        self.batches = 0

    def get_subtree_hashes(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        self.batches += 1
        return [self.get_subtree_hash(s, e) for s, e in ranges]


@cache
def big_tree() -> tuple[InMemoryTree, list[bytes]]:
    n = 100_003
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree = InMemoryTree()
    for h in leaves:
        tree.append_leaf_hash(h)
    return tree, leaves


def test_big_log_roots_agree() -> None:
    tree, leaves = big_tree()
    want = root_from_leaf_hashes(leaves)
    assert tree.root() == want
    assert root_from_store(tree, len(leaves)) == want
    assert tree.root(65_536) == root_from_leaf_hashes(leaves[:65_536])
    assert tree.root(99_999) == root_from_leaf_hashes(leaves[:99_999])


def test_store_proofs_read_only_log_n_nodes() -> None:
    tree, leaves = big_tree()
    n = tree.size
    bound = 2 * math.ceil(math.log2(n)) + 2
    root = tree.root()
    for index in (0, 1, 12_345, 65_535, 65_536, 99_998, n - 1):
        store = CountingStore(tree)
        proof = inclusion_proof_from_store(store, index, n)
        assert len(store.reads) <= bound, (index, len(store.reads))
        assert verify_inclusion(leaves[index], index, n, proof, root)
    for m in (1, 777, 65_536, 70_001, n - 1):
        store = CountingStore(tree)
        proof = consistency_proof_from_store(store, m, n)
        assert len(store.reads) <= bound, (m, len(store.reads))
        assert verify_consistency(m, n, tree.root(m), root, proof)
    batch = BatchCountingStore(tree)
    inclusion_proof_from_store(batch, 4242, n)
    assert batch.batches == 1


def test_store_proof_matches_reference_on_big_log() -> None:
    tree, leaves = big_tree()
    for index, size in [(0, 100_003), (99_000, 100_003), (50_000, 65_537), (31, 70_000)]:
        assert inclusion_proof_from_store(tree, index, size) == inclusion_proof(leaves, index, size)
    for m, n in [(1, 100_003), (65_536, 100_003), (12_345, 54_321)]:
        assert consistency_proof_from_store(tree, m, n) == consistency_proof(leaves, m, n)


# ------------------------------------------------------------------ hypothesis


@cache
def tree_2048() -> tuple[InMemoryTree, list[bytes]]:
    leaves = [leaf_hash(b"h%d" % i) for i in range(2048)]
    tree = InMemoryTree()
    for h in leaves:
        tree.append_leaf_hash(h)
    return tree, leaves


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_inclusion(data: st.DataObject) -> None:
    tree, leaves = tree_2048()
    size = data.draw(st.integers(1, 2048))
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof_from_store(tree, index, size)
    assert proof == inclusion_proof(leaves, index, size)
    root = tree.root(size)
    assert verify_inclusion(leaves[index], index, size, proof, root)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(proof)
        b = bytearray(bad[k])
        b[bit // 8] ^= 1 << (bit % 8)
        bad[k] = bytes(b)
        assert not verify_inclusion(leaves[index], index, size, bad, root)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_consistency(data: st.DataObject) -> None:
    tree, leaves = tree_2048()
    n = data.draw(st.integers(1, 2048))
    m = data.draw(st.integers(1, n))
    proof = consistency_proof_from_store(tree, m, n)
    assert proof == consistency_proof(leaves, m, n)
    assert verify_consistency(m, n, tree.root(m), tree.root(n), proof)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        assert not verify_consistency(m, n, tree.root(m), tree.root(n), flip(proof, k, 0x80))


@settings(max_examples=50, deadline=None)
@given(leaves=st.lists(st.binary(max_size=40), max_size=200))
def test_random_roots_agree(leaves: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in leaves]
    want = mth(hashes)
    assert root_from_leaf_hashes(hashes) == want
    assert InMemoryTree(leaves).root() == want
