"""The witness against the real gateway: cosign over HTTP, the gateway verifies and publishes to Kafka,
fund-tracker's store keeps it, the gateway serves the cosigned note and `fundtrail verify --witness` needs it.

Real PostgreSQL and Kafka; the witness runs as its own process (`fundtrail-witness run --once`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaConsumer

from fundtrail_gateway.seed import LOG_ID
from fundtrail_gateway.testing import SeededGateway, seeded_gateway
from fundtrail_runtime.kafka_sink import AiokafkaSink
from fundtrail_schemas.topics import TRAIL_COSIGNATURES
from fundtrail_tracker.service import Tracker, TrackerConfig
from fundtrail_verify.cli import verify_online
from fundtrail_verify.cosignatures import CheckpointCosigned
from fundtrail_verify.note import SIG_COSIGNATURE_V1, NoteVerifier, cosign

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

WITNESS = "audit.jiangmen.example/witness"


@pytest.fixture(scope="module")
def witness_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ed25519PrivateKey, Path, str]:
    key = Ed25519PrivateKey.generate()
    path = tmp_path_factory.mktemp("witness") / "witness.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key, path, NoteVerifier.ed25519(WITNESS, key.public_key(), SIG_COSIGNATURE_V1).vkey


@pytest.fixture(scope="module")
def gateway(
    pg_node: Any, migrated_template: str, kafka_bootstrap: str, witness_key: tuple[Ed25519PrivateKey, Path, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SeededGateway]:
    with seeded_gateway(
        pg_node, migrated_template, Ed25519PrivateKey.generate(), tmp_path_factory.mktemp("gw"),
        kafka_bootstrap_servers=kafka_bootstrap, ensure_topics=True, witness_vkeys=[witness_key[2]],
    ) as gw:
        yield gw


def run_witness(gw: SeededGateway, key_path: Path, state: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("fundtrail-witness")
    argv = [str(script), "run", "--api", gw.base_url, "--log-key", gw.log_vkey, "--name", WITNESS,
            "--key", str(key_path), "--state", str(state), "--token", gw.auditor_token, "--once"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def published(bootstrap: str, size: int, timeout: float = 60.0) -> list[bytes]:
    """Cosignature records of this test's log and size, read back from the real topic."""
    consumer = KafkaConsumer(TRAIL_COSIGNATURES, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=2000)
    found: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while not found and time.monotonic() < deadline:
            for msg in consumer:
                record = CheckpointCosigned.model_validate_json(msg.value)
                if record.origin == LOG_ID and record.tree_size == size and record.witness_name == WITNESS:
                    found.append(msg.value)
    finally:
        consumer.close()
    return found


def test_witness_cosigns_and_readers_require_it(
    gateway: SeededGateway, kafka_bootstrap: str, witness_key: tuple[Ed25519PrivateKey, Path, str], tmp_path: Path
) -> None:
    gw, (_, key_path, wvkey) = gateway, witness_key
    latest = gw.world.checkpoints[-1]
    witness_state = tmp_path / "witness.json"
    result = run_witness(gw, key_path, witness_state)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().startswith(f"— {WITNESS} ")
    assert json.loads(witness_state.read_text())[LOG_ID]["size"] == latest

    # The gateway verified it and published it; fund-tracker's store keeps it.
    records = published(kafka_bootstrap, latest)
    assert records, "no cosignature record reached the topic"
    tracker = Tracker(gw.database_url, AiokafkaSink(None), config=TrackerConfig(log_id=LOG_ID))
    try:
        assert asyncio.run(tracker.store_cosignatures(records[:1])) == 1
        # A malformed record is skipped, not stored and not fatal.
        assert asyncio.run(tracker.store_cosignatures([b"{not json"])) == 0
    finally:
        asyncio.run(tracker.close())

    # The cosigned note: the log's line first, then the witness's.
    note = httpx.get(f"{gw.base_url}/v1/checkpoints/latest/note").text
    assert note.splitlines()[-1].startswith(f"— {WITNESS} ") and note.splitlines()[-2].startswith(f"— {LOG_ID} ")
    entry = httpx.get(f"{gw.base_url}/v1/checkpoints/{latest}").json()
    assert [c["witness"] for c in entry["cosignatures"]] == [WITNESS]

    witness = NoteVerifier.from_vkey(wvkey)
    log_key = NoteVerifier.from_vkey(gw.log_vkey)
    ok = verify_online(gw.base_url, gw.auditor_token, log_key, None, tmp_path / "v1.json", None, witnesses=[witness])
    assert ok.ok, ok.model_dump_json(indent=1)
    stranger = NoteVerifier.ed25519("other.example/witness", Ed25519PrivateKey.generate().public_key(),
                                    SIG_COSIGNATURE_V1)
    missing = verify_online(gw.base_url, gw.auditor_token, log_key, None, tmp_path / "v2.json", None,
                            witnesses=[witness, stranger])
    assert not missing.ok and {c.name for c in missing.failures()} == {"witness.other.example/witness"}


@pytest.mark.parametrize("kind", ["fork", "rollback"])
def test_witness_refuses_a_fork_or_rollback_loudly(
    gateway: SeededGateway, witness_key: tuple[Ed25519PrivateKey, Path, str], tmp_path: Path, kind: str
) -> None:
    latest = gateway.world.checkpoints[-1]
    # What this witness cosigned before: the same size with another root, or a larger tree.
    remembered = {"size": latest, "root": base64.b64encode(bytes(32)).decode(), "timestamp": 1} if kind == "fork" \
        else {"size": latest + 100, "root": base64.b64encode(bytes(32)).decode(), "timestamp": 1}
    state = tmp_path / "witness.json"
    state.write_text(json.dumps({LOG_ID: remembered}))
    result = run_witness(gateway, witness_key[1], state)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"REFUSED to cosign ({kind})" in result.stderr
    assert result.stdout == ""  # no cosignature printed, none posted
    assert json.loads(state.read_text())[LOG_ID] == remembered


def test_gateway_refuses_bad_cosignatures(gateway: SeededGateway) -> None:
    latest = gateway.world.checkpoints[-1]
    url = f"{gateway.base_url}/v1/checkpoints/{latest}/cosignatures"
    text = httpx.get(f"{gateway.base_url}/v1/checkpoints/{latest}/note").text.split("\n\n")[0] + "\n"
    stranger = cosign("other.example/witness", Ed25519PrivateKey.generate(), text, int(time.time()))
    cases = [
        (stranger.line, "text/plain", 422),  # not a configured witness
        ("— audit.jiangmen.example/witness AAAA", "text/plain", 422),  # malformed
        (stranger.line, "application/json", 415),
    ]
    for body, ctype, status in cases:
        r = httpx.post(url, content=body.encode(), headers={"content-type": ctype})
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert httpx.post(f"{gateway.base_url}/v1/checkpoints/999999/cosignatures", content=b"x",
                      headers={"content-type": "text/plain"}).status_code == 404
