"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and verification.

Everything here is pure: bytes in, bytes out, no I/O.

Hashing (RFC 9162 §2.1.1, SHA-256):
    MTH({})       = SHA-256("")
    leaf hash     = SHA-256(0x00 || data)
    interior node = SHA-256(0x01 || left || right)

Node addressing. A *complete aligned subtree* is the half-open leaf range
``[start, end)`` with ``end - start == 2**level`` and ``start % 2**level == 0``. It is
also named ``(level, index)`` with ``start = index << level``. Every node of an RFC 9162
tree is either such a subtree or lies on the ragged right edge, and a complete subtree's
hash never changes once its last leaf is appended. That is what makes a
persistent log cheap: the writer stores each completed subtree hash once (``CompactRange``
emits them), and proof generation for any tree size fetches only O(log n) of them.

Three layers:

* reference functions straight from the RFC (``inclusion_proof``, ``consistency_proof``,
  recursive PATH / SUBPROOF, O(n) hashing): the executable specification;
* planners (``inclusion_proof_plan``, ``consistency_proof_plan``) that turn (index, size)
  into the list of aligned subtrees to fetch, and ``*_from_store`` that fetch them from a
  ``MerkleStore`` (one batch call when the store offers ``get_subtree_hashes``);
* verifiers (``verify_inclusion``, ``verify_consistency``): the iterative algorithms of
  §2.1.3.2 and §2.1.4.2, literally.

Verifier error policy: arguments that no proof could ever make valid (negative sizes,
``index >= tree_size``, ``old_size > new_size``) are the caller's question being wrong and
raise ``ValueError``; anything about the proof material itself (wrong hash lengths, non-bytes
elements, wrong number of elements, a proof that is not a list) returns ``False``.
Callers that verify untrusted *sizes* too (an offline auditor reading a bundle) must catch
``ValueError`` and report it as a failure; ``fundtrail_verify.checkpoint.verify_bundle`` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "InMemoryTree",
    "MerkleStore",
    "MultiGetMerkleStore",
    "NodeTuple",
    "ProofPlan",
    "Range",
    "consistency_proof",
    "consistency_proof_from_store",
    "consistency_proof_plan",
    "inclusion_proof",
    "inclusion_proof_from_store",
    "inclusion_proof_plan",
    "leaf_hash",
    "node_hash",
    "node_id",
    "node_range",
    "range_decomposition",
    "root_from_leaf_hashes",
    "root_from_store",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

Range = tuple[int, int]
"""A half-open leaf range ``(start, end)``."""

NodeTuple = tuple[int, int, bytes]
"""A completed subtree as emitted by ``CompactRange.append``: ``(level, index, hash)``."""

LeafSource = Sequence[bytes] | Callable[[int], bytes]


# --------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash SHA-256(0x00 || data)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return MTH of the tree whose leaf hashes are ``hashes`` (iterative, O(n))."""
    level = list(hashes)
    if not level:
        return EMPTY_ROOT
    sha = _sha256
    prefix = _NODE_PREFIX
    while len(level) > 1:
        # Pairing from the left and promoting an odd last node unchanged builds exactly
        # the RFC tree (split at the largest power of two below n), level by level.
        odd = level[-1] if len(level) & 1 else None
        level = [sha(prefix + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)]
        if odd is not None:
            level.append(odd)
    return level[0]


# ---------------------------------------------------------------- node addressing


def node_range(level: int, index: int) -> Range:
    """Return the leaf range ``[start, end)`` covered by node ``(level, index)``."""
    return index << level, (index + 1) << level


def node_id(start: int, end: int) -> tuple[int, int]:
    """Return ``(level, index)`` of the aligned complete subtree ``[start, end)``; ValueError if not aligned."""
    width = end - start
    if start < 0 or width <= 0 or width & (width - 1) or start % width:
        raise ValueError(f"[{start}, {end}) is not an aligned power-of-two subtree")
    level = width.bit_length() - 1
    return level, start >> level


def range_decomposition(start: int, end: int) -> list[Range]:
    """Split ``[start, end)`` into maximal aligned subtrees, left to right.

    For the ranges that occur in RFC 9162 proofs (``start`` a multiple of a power of two
    at least ``end - start``) the pieces shrink left to right and MTH(D[start:end]) is the
    right fold ``node(p0, node(p1, ... p_last))``.
    """
    pieces: list[Range] = []
    while start < end:
        # Largest power of two that both divides start and fits into the rest.
        width = 1 << ((end - start).bit_length() - 1)
        if start:
            width = min(width, start & -start)
        pieces.append((start, start + width))
        start += width
    return pieces


def _largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly less than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# ------------------------------------------------------------ reference (RFC text)


def _getter(source: LeafSource) -> Callable[[int], bytes]:
    if callable(source):
        return source
    return source.__getitem__


def _mth(get: Callable[[int], bytes], start: int, end: int) -> bytes:
    return root_from_leaf_hashes([get(i) for i in range(start, end)])


def inclusion_proof(leaf_hashes_or_getter: LeafSource, index: int, tree_size: int) -> list[bytes]:
    """Return PATH(index, D[0:tree_size]) per RFC 9162 §2.1.3.1 (reference, hashes O(n) leaves)."""
    if tree_size <= 0 or not 0 <= index < tree_size:
        raise ValueError(f"index {index} is not inside a tree of size {tree_size}")
    get = _getter(leaf_hashes_or_getter)
    proof: list[bytes] = []
    start, end, m = 0, tree_size, index
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            proof.append(_mth(get, start + k, end))
            end = start + k
        else:
            proof.append(_mth(get, start, start + k))
            start, m = start + k, m - k
    # The recursion emits the sibling nearest the root first; the proof lists leaf-up.
    proof.reverse()
    return proof


def consistency_proof(leaf_hashes_or_getter: LeafSource, old_size: int, new_size: int) -> list[bytes]:
    """Return PROOF(old_size, D[0:new_size]) per RFC 9162 §2.1.4.1 (reference, hashes O(n) leaves).

    Empty when ``old_size`` is 0 or equal to ``new_size``.
    """
    if old_size < 0 or new_size < old_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    get = _getter(leaf_hashes_or_getter)
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while True:
        size = end - start
        if m == size:
            if not complete:
                proof.append(_mth(get, start, end))
            break
        k = _largest_power_of_two_below(size)
        if m <= k:
            proof.append(_mth(get, start + k, end))
            end = start + k
        else:
            proof.append(_mth(get, start, start + k))
            start, m, complete = start + k, m - k, False
    proof.reverse()
    return proof


# ------------------------------------------------------------------- proof plans


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """Which aligned subtrees a proof needs.

    ``items[i]`` are the aligned pieces of proof element ``i``, left to right; an element
    with several pieces (the one sibling that reaches the ragged right edge of the tree)
    is their right fold.
    """

    items: tuple[tuple[Range, ...], ...]

    def ranges(self) -> list[Range]:
        """Return the distinct subtrees to fetch, in first-use order."""
        seen: dict[Range, None] = {}
        for item in self.items:
            for r in item:
                seen.setdefault(r, None)
        return list(seen)

    def assemble(self, hashes: dict[Range, bytes]) -> list[bytes]:
        """Build the proof from fetched subtree hashes."""
        proof: list[bytes] = []
        for item in self.items:
            acc = hashes[item[-1]]
            for r in reversed(item[:-1]):
                acc = node_hash(hashes[r], acc)
            proof.append(acc)
        return proof


def _element(start: int, end: int) -> tuple[Range, ...]:
    return tuple(range_decomposition(start, end))


def inclusion_proof_plan(index: int, tree_size: int) -> ProofPlan:
    """Plan the inclusion proof of leaf ``index`` in a tree of ``tree_size`` leaves."""
    if tree_size <= 0 or not 0 <= index < tree_size:
        raise ValueError(f"index {index} is not inside a tree of size {tree_size}")
    items: list[tuple[Range, ...]] = []
    start, end = 0, tree_size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            items.append(_element(start + k, end))
            end = start + k
        else:
            items.append(((start, start + k),))
            start += k
    items.reverse()
    return ProofPlan(tuple(items))


def consistency_proof_plan(old_size: int, new_size: int) -> ProofPlan:
    """Plan the consistency proof between tree sizes ``old_size`` and ``new_size``."""
    if old_size < 0 or new_size < old_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == 0 or old_size == new_size:
        return ProofPlan(())
    items: list[tuple[Range, ...]] = []
    start, end, complete = 0, new_size, True
    while True:
        size, m = end - start, old_size - start
        if m == size:
            if not complete:
                items.append(((start, end),))
            break
        k = _largest_power_of_two_below(size)
        if m <= k:
            items.append(_element(start + k, end))
            end = start + k
        else:
            items.append(((start, start + k),))
            start, complete = start + k, False
    items.reverse()
    return ProofPlan(tuple(items))


# ------------------------------------------------------------------------- stores


class MerkleStore(Protocol):
    """What proof generation needs from a persistent log.

    ``get_subtree_hash(start, end)`` is only ever called for aligned complete subtrees
    (``end - start == 2**k``, ``start % 2**k == 0``) that lie inside the tree size asked
    about; ``end - start == 1`` is a leaf hash. A PostgreSQL store keeps one row per
    ``(level, index)`` as ``CompactRange.append`` emits them.
    """

    def get_subtree_hash(self, start: int, end: int) -> bytes:
        """Return the hash of the aligned complete subtree ``[start, end)``."""
        ...


@runtime_checkable
class MultiGetMerkleStore(Protocol):
    """Optional batch interface: one round trip for a whole proof."""

    def get_subtree_hash(self, start: int, end: int) -> bytes:
        """Return the hash of the aligned complete subtree ``[start, end)``."""
        ...

    def get_subtree_hashes(self, ranges: Sequence[Range]) -> Sequence[bytes]:
        """Return the hashes of ``ranges``, in the same order."""
        ...


def _fetch(store: MerkleStore, ranges: list[Range]) -> dict[Range, bytes]:
    if isinstance(store, MultiGetMerkleStore):
        values = list(store.get_subtree_hashes(ranges))
        if len(values) != len(ranges):
            raise ValueError(f"store returned {len(values)} hashes for {len(ranges)} ranges")
        return dict(zip(ranges, values, strict=True))
    return {r: store.get_subtree_hash(*r) for r in ranges}


def inclusion_proof_from_store(store: MerkleStore, index: int, size: int) -> list[bytes]:
    """Return the inclusion proof of leaf ``index`` in tree ``size``, fetching O(log n) subtrees."""
    plan = inclusion_proof_plan(index, size)
    return plan.assemble(_fetch(store, plan.ranges()))


def consistency_proof_from_store(store: MerkleStore, m: int, n: int) -> list[bytes]:
    """Return the consistency proof from size ``m`` to size ``n``, fetching O(log n) subtrees."""
    plan = consistency_proof_plan(m, n)
    return plan.assemble(_fetch(store, plan.ranges()))


def root_from_store(store: MerkleStore, size: int) -> bytes:
    """Return MTH of the first ``size`` leaves, fetching at most log2(size)+1 subtrees."""
    if size < 0:
        raise ValueError(f"negative tree size {size}")
    if size == 0:
        return EMPTY_ROOT
    plan = ProofPlan((_element(0, size),))
    return plan.assemble(_fetch(store, plan.ranges()))[0]


class CompactRange:
    """Incremental appender holding the O(log n) frontier of a growing log.

    The frontier is the list of complete subtree hashes of the binary decomposition of
    ``size``, largest (leftmost) first. ``append`` returns every subtree it completes so a
    writer can persist them in the same transaction as the leaf.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_frontier(cls, size: int, hashes: Iterable[bytes]) -> CompactRange:
        """Resume from a saved frontier (the hashes of ``range_decomposition(0, size)``)."""
        frontier = list(hashes)
        if size < 0 or len(frontier) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {max(size, 0).bit_count()} frontier hashes")
        if any(len(h) != HASH_SIZE for h in frontier):
            raise ValueError("frontier hashes must be 32 bytes")
        cr = cls()
        cr._size = size
        cr._hashes = frontier
        return cr

    @classmethod
    def from_store(cls, store: MerkleStore, size: int) -> CompactRange:
        """Resume a writer after restart: fetch the frontier of ``size`` from the store."""
        ranges = range_decomposition(0, size)
        fetched = _fetch(store, ranges)
        return cls.from_frontier(size, (fetched[r] for r in ranges))

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def frontier(self) -> list[bytes]:
        """Copy of the frontier hashes, largest subtree first."""
        return list(self._hashes)

    def append(self, leaf: bytes) -> list[NodeTuple]:
        """Append a leaf hash; return the completed subtrees ``(level, index, hash)``, leaf first."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        n = self._size
        completed: list[NodeTuple] = [(0, n, leaf)]
        hashes = self._hashes
        h = leaf
        level = 0
        sha = _sha256
        # Each trailing 1 bit of the old size is a left sibling waiting for this subtree.
        while n & 1:
            h = sha(_NODE_PREFIX + hashes.pop() + h).digest()
            level += 1
            n >>= 1
            completed.append((level, n, h))
        hashes.append(h)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """Return MTH of everything appended so far, O(log n)."""
        hashes = self._hashes
        if not hashes:
            return EMPTY_ROOT
        acc = hashes[-1]
        for h in reversed(hashes[:-1]):
            acc = node_hash(h, acc)
        return acc


class InMemoryTree:
    """A ``MerkleStore`` kept in memory (tests, benchmarks, small tools).

    One ``bytearray`` per level with 32-byte slots, so a 1,000,000-leaf log costs about
    64 MB instead of two million Python ``bytes`` objects.
    """

    __slots__ = ("_levels", "_range")

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._range = CompactRange()
        self._levels: list[bytearray] = []
        for data in leaves:
            self.append(data)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._range.size

    def append(self, data: bytes) -> int:
        """Hash and append leaf ``data``; return its index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append an already computed leaf hash; return its index."""
        index = self._range.size
        levels = self._levels
        for level, _, h in self._range.append(leaf):
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += h
        return index

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the current tree, or of its first ``size`` leaves."""
        if size is None:
            return self._range.root()
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} outside 0..{self.size}")
        return root_from_store(self, size)

    def leaf_hash_at(self, index: int) -> bytes:
        """Return the leaf hash at ``index``."""
        return self.get_subtree_hash(index, index + 1)

    def get_subtree_hash(self, start: int, end: int) -> bytes:
        """Return the stored hash of the complete aligned subtree ``[start, end)``."""
        level, index = node_id(start, end)
        if end > self.size:
            raise KeyError(f"subtree [{start}, {end}) is not complete at size {self.size}")
        offset = index * HASH_SIZE
        return bytes(self._levels[level][offset : offset + HASH_SIZE])

    def get_subtree_hashes(self, ranges: Sequence[Range]) -> list[bytes]:
        """Batch form of ``get_subtree_hash``."""
        return [self.get_subtree_hash(s, e) for s, e in ranges]


# ---------------------------------------------------------------------- verifiers


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray | memoryview) and len(value) == HASH_SIZE


def _proof_hashes(proof: object) -> list[bytes] | None:
    if not isinstance(proof, list | tuple):
        return None
    if not all(_is_hash(p) for p in proof):
        return None
    return [bytes(p) for p in proof]


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Verify an inclusion proof per RFC 9162 §2.1.3.2; ValueError if ``index`` is outside the tree."""
    if tree_size < 0 or index < 0 or index >= tree_size:
        raise ValueError(f"index {index} is not inside a tree of size {tree_size}")
    path = _proof_hashes(proof)
    if path is None or not _is_hash(leaf_hash) or not _is_hash(root):
        return False
    fn, sn = index, tree_size - 1
    r = bytes(leaf_hash)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # b.ii: climb past the levels where this node has no right sibling.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == bytes(root)


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Verify a consistency proof per RFC 9162 §2.1.4.2; ValueError unless 0 <= old_size <= new_size.

    Edge cases the RFC algorithm does not cover: ``old_size == new_size`` needs an empty
    proof and equal roots; ``old_size == 0`` needs an empty proof and ``old_root`` equal to
    the empty-tree hash (the empty tree is a prefix of every tree).
    """
    if old_size < 0 or new_size < old_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    path = _proof_hashes(proof)
    if path is None or not _is_hash(old_root) or not _is_hash(new_root):
        return False
    first_hash, second_hash = bytes(old_root), bytes(new_root)
    if old_size == 0:
        return not path and first_hash == EMPTY_ROOT
    if old_size == new_size:
        return not path and first_hash == second_hash
    # 1. An empty proof cannot link two different sizes.
    if not path:
        return False
    # 2. A power-of-two old tree is a node of the new tree; its hash is implied.
    if old_size & (old_size - 1) == 0:
        path = [first_hash, *path]
    # 3.
    fn, sn = old_size - 1, new_size - 1
    # 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 7.
    return fr == first_hash and sr == second_hash and sn == 0
