"""Checkpoints as C2SP signed notes on a real PostgreSQL: signing, re-signing old-format rows, cosignatures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_tracker.adapters.kafka import AiokafkaSink
from fundtrail_tracker.adapters.postgres import conninfo
from fundtrail_tracker.service import Tracker, TrackerConfig
from fundtrail_verify import merkle
from fundtrail_verify.checkpoint import Checkpoint, verify_checkpoint
from fundtrail_verify.cosignatures import CheckpointCosigned
from fundtrail_verify.note import SIG_COSIGNATURE_V1, NoteVerifier, cosign

pytestmark = pytest.mark.integration

ORIGIN = "fundtrail.example/jiangmen/trail"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def write_nodes(url: str, n: int) -> merkle.CompactRange:
    """Store the Merkle nodes of `n` leaves as fund-tracker does (trail_node only)."""
    cr = merkle.CompactRange()
    rows = []
    for i in range(n):
        rows += cr.append(merkle.leaf_hash(f"leaf-{i}".encode()))
    with psycopg.connect(conninfo(url)) as conn:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO trail_node (level, idx, hash) VALUES (%s, %s, %s)", rows)
    return cr


async def test_old_format_checkpoints_are_re_signed_as_notes(migrated_database_url: str) -> None:
    url = migrated_database_url
    roots = {}
    cr = merkle.CompactRange()
    for i in range(12):
        cr.append(merkle.leaf_hash(f"leaf-{i}".encode()))
        roots[cr.size] = cr.root()
    write_nodes(url, 12)
    with psycopg.connect(conninfo(url)) as conn:
        # Rows as they were before migration 0006: old log id, old signature, no note.
        for size, root in ((5, roots[5].hex()), (9, "00" * 32), (12, roots[12].hex())):
            conn.execute(
                "INSERT INTO trail_checkpoint (tree_size, root_hash, signed_at, log_id, key_id, signature)"
                " VALUES (%s, %s, %s, 'fundtrail/trail', '0123456789abcdef', 'c2lnbmF0dXJl')", (size, root, T0),
            )
    key = Ed25519PrivateKey.generate()
    tracker = Tracker(url, AiokafkaSink(None), config=TrackerConfig(log_id=ORIGIN), signing_key=key)
    try:
        assert await tracker.resign_legacy_checkpoints() == 2
        assert await tracker.resign_legacy_checkpoints() == 0  # idempotent
    finally:
        await tracker.close()
    with psycopg.connect(conninfo(url)) as conn:
        rows = conn.execute("SELECT tree_size, root_hash, signed_at, log_id, key_id, note FROM trail_checkpoint"
                            " ORDER BY tree_size").fetchall()
    by_size = {r[0]: r for r in rows}
    # The row whose stored root the nodes contradict is left unsigned (and so never served).
    assert by_size[9][5] is None
    vkey = NoteVerifier.ed25519(ORIGIN, key.public_key())
    for size in (5, 12):
        _, root_hash, signed_at, log_id, key_id, note = by_size[size]
        cp = Checkpoint(log_id=log_id, tree_size=size, root_hash=root_hash, timestamp=signed_at, note=note)
        assert log_id == ORIGIN and key_id == f"{vkey.key_hash:08x}"
        assert verify_checkpoint(cp, vkey) and verify_checkpoint(cp, key.public_key())


async def test_cosignature_records_are_stored_once_and_newest_wins(migrated_database_url: str) -> None:
    url = migrated_database_url
    wkey = Ed25519PrivateKey.generate()
    witness = NoteVerifier.ed25519("audit.example/w", wkey.public_key(), SIG_COSIGNATURE_V1)
    text = f"{ORIGIN}\n7\n{'A' * 43}=\n"

    def record(ts: int) -> bytes:
        sig = cosign(witness.name, wkey, text, ts)
        return CheckpointCosigned(origin=ORIGIN, tree_size=7, root_hash="00" * 32, witness_name=witness.name,
                                  key_hash=f"{witness.key_hash:08x}", timestamp=ts, line=sig.line).model_dump_json(
        ).encode()

    tracker = Tracker(url, AiokafkaSink(None), config=TrackerConfig(log_id=ORIGIN))
    try:
        assert await tracker.store_cosignatures([record(1_700_000_100)]) == 1
        assert await tracker.store_cosignatures([record(1_700_000_000)]) == 0  # older: kept the newer one
        assert await tracker.store_cosignatures([record(1_700_000_200)]) == 1
        bad = json.loads(record(1_700_000_300))
        bad["witness_name"] = "someone.else/w"  # the line names another witness
        assert await tracker.store_cosignatures([json.dumps(bad).encode(), b"[]"]) == 0
    finally:
        await tracker.close()
    with psycopg.connect(conninfo(url)) as conn:
        rows = conn.execute("SELECT witness_name, cosigned_at FROM trail_cosignature").fetchall()
    assert rows == [(witness.name, datetime.fromtimestamp(1_700_000_200, UTC))]
