"""The running worker stores witness cosignature records from `fundtrail.trail.cosignatures`.

Real Kafka, real PostgreSQL, fund-tracker as its own process; the record is what the gateway
publishes after verifying a witness's submission (`fundtrail_verify.cosignatures`).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_verify.cosignatures import CheckpointCosigned
from fundtrail_verify.note import SIG_COSIGNATURE_V1, NoteVerifier, cosign

pytestmark = pytest.mark.integration

ORIGIN = "fundtrail.example/jiangmen/trail"


def test_the_worker_stores_cosignatures_and_skips_malformed_records(module_scenario: Any, kafka_tools: Any) -> None:
    s, worker = module_scenario
    key = Ed25519PrivateKey.generate()
    witness = NoteVerifier.ed25519("audit.example/witness", key.public_key(), SIG_COSIGNATURE_V1)
    text = f"{ORIGIN}\n3\n{base64.b64encode(bytes([0x11]) * 32).decode()}\n"
    sig = cosign(witness.name, key, text, 1_765_000_000)
    record = CheckpointCosigned(origin=ORIGIN, tree_size=3, root_hash="11" * 32, witness_name=witness.name,
                                key_hash=f"{witness.key_hash:08x}", timestamp=1_765_000_000, line=sig.line)
    prod = kafka_tools.producer(s.bootstrap)
    # A malformed record first: it must be skipped, not stall the agent.
    prod.send(s.topics.cosignatures, key=ORIGIN.encode(), value=b"{not a record")
    prod.send(s.topics.cosignatures, key=ORIGIN.encode(), value=record.model_dump_json().encode())
    prod.flush()
    prod.close()
    kafka_tools.wait_until(lambda: s.scalar("SELECT count(*) FROM trail_cosignature") == 1, 60,
                           what="the cosignature stored", alive=worker)
    with s.db() as conn:
        row = conn.execute("SELECT tree_size, witness_name, key_hash, line FROM trail_cosignature").fetchone()
    assert row == (3, witness.name, f"{witness.key_hash:08x}", sig.line)
