"""The auditor's verifier and the bureau's publisher each install alone into a clean virtual environment.

Each gets its own venv with only its package and the contract (built from this checkout; third-party
wheels from PyPI through uv's cache), then runs its command the way its user would: the auditor
verifies an exported proof bundle offline (and sees a tampered one fail); the bureau validates a file
and publishes it to a real Kafka broker. Neither environment may contain the services' stack.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaConsumer

from fundtrail_runtime.kafka_admin import ensure_topics
from fundtrail_schemas.topics import RAW_EVENTS, TOPICS_BY_NAME
from fundtrail_verify import merkle
from fundtrail_verify.checkpoint import build_proof_bundle, save_public_key, sign_checkpoint

REPO = Path(__file__).resolve().parents[1]
UV = REPO / ".tools" / "bin" / "uv"
# Distributions that make up the services' stack: none may come with the verifier or the publisher.
SERVICE_STACK = {"faust-streaming", "aiokafka", "sqlalchemy", "sqlmodel", "psycopg", "alembic", "fastapi",
                 "uvicorn", "starlette", "prometheus-client", "fundtrail-runtime", "fundtrail-tracker",
                 "fundtrail-compliance", "fundtrail-gateway", "fundtrail-demo"}

pytestmark = pytest.mark.integration


def make_venv(where: Path, *packages: str) -> Path:
    """A fresh venv holding `packages` (paths in this checkout) and what they depend on; its python."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(where)], check=True, env=env)
    python = where / "bin" / "python"
    subprocess.run([str(UV), "pip", "install", "-q", "--python", str(python), *(str(REPO / p) for p in packages)],
                   check=True, env=env, timeout=600)
    return python


def installed(python: Path) -> set[str]:
    out = subprocess.run([str(UV), "pip", "list", "--format", "json", "--python", str(python)],
                         check=True, capture_output=True, text=True).stdout
    return {d["name"].lower() for d in json.loads(out)}


def fundtrail(python: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python.parent / "fundtrail"), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_the_verifier_installs_alone_and_verifies_a_bundle(tmp_path: Path) -> None:
    python = make_venv(tmp_path / "venv", "schemas", "packages/verify")
    dists = installed(python)
    assert {"fundtrail-schemas", "fundtrail-verify", "cryptography", "httpx"} <= dists
    assert not dists & SERVICE_STACK, f"the verifier drags in {sorted(dists & SERVICE_STACK)}"
    assert "kafka-python" not in dists and "opentelemetry-sdk" not in dists, sorted(dists)

    # An exported bundle: a 40-leaf log, a signed checkpoint, entry 17 with its inclusion proof.
    key = Ed25519PrivateKey.generate()
    leaves = [json.dumps({"event_id": f"e-{i}", "amount_fen": 100 * i}).encode() for i in range(40)]
    tree = merkle.InMemoryTree(leaves)
    now = datetime.now(UTC).replace(microsecond=0)
    cp = sign_checkpoint(key, "fundtrail.example/clean-install", 40, tree.root(40), now)
    previous = sign_checkpoint(key, "fundtrail.example/clean-install", 25, tree.root(25), now - timedelta(hours=1))
    bundle = build_proof_bundle(tree, leaves[17], 17, cp, previous)
    save_public_key(tmp_path / "log.pub", key.public_key())
    good = tmp_path / "bundle.json"
    good.write_text(bundle.model_dump_json())
    args = ["verify", "--public-key", str(tmp_path / "log.pub"), "--log-id", "fundtrail.example/clean-install"]

    ok = fundtrail(python, *args, "--bundle", str(good), "--state", str(tmp_path / "state.json"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "all checks passed" in ok.stdout and "inclusion.proof" in ok.stdout

    # The same bundle with one amount changed in the leaf must fail, with the reason named.
    forged = json.loads(good.read_text())
    forged["leaf_data"] = base64.b64encode(leaves[17].replace(b"1700", b"9700")).decode()
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps(forged))
    fail = fundtrail(python, *args, "--bundle", str(bad), "--state", str(tmp_path / "state2.json"))
    assert fail.returncode == 1, fail.stdout + fail.stderr
    assert "FAIL" in fail.stdout and "verification failed" in fail.stdout


def test_the_publisher_installs_alone_and_publishes(tmp_path: Path, kafka_bootstrap: str) -> None:
    python = make_venv(tmp_path / "venv", "schemas", "packages/publish")
    dists = installed(python)
    assert {"fundtrail-schemas", "fundtrail-publish", "kafka-python"} <= dists
    assert not dists & SERVICE_STACK, f"the publisher drags in {sorted(dists & SERVICE_STACK)}"
    assert "fundtrail-verify" not in dists

    # A bureau's file: the contract's golden examples of the events bureaus publish, fresh ids.
    examples = sorted((REPO / "schemas" / "examples" / "v1").glob("*.json"))
    lines = []
    for path in examples:
        event = json.loads(path.read_text())
        event["event_id"] = str(uuid.uuid4())
        lines.append(json.dumps(event, ensure_ascii=False))
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")

    dry = fundtrail(python, "publish", "--dry-run", str(events))
    counted = re.search(r"(\d+) valid", dry.stdout + dry.stderr)
    assert counted, dry.stdout + dry.stderr
    valid = int(counted.group(1))
    assert valid >= 10, dry.stdout + dry.stderr  # the lifecycle events; case actions are not a bureau's to publish
    prefix = f"clean-{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka_bootstrap, [replace(TOPICS_BY_NAME[RAW_EVENTS], name=prefix + RAW_EVENTS)])
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "FUNDTRAIL_PUBLISH_TOPIC_PREFIX": prefix,
           "FUNDTRAIL_PUBLISH_STATE_DIR": str(tmp_path / "journal")}
    run = fundtrail(python, "publish", str(events), env=env)
    assert f"published {valid}" in run.stdout.replace("\n", " ") or f"published {valid}" in run.stderr, \
        run.stdout + run.stderr

    consumer = KafkaConsumer(prefix + RAW_EVENTS, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=30_000, enable_auto_commit=False)
    try:
        got = set()
        for record in consumer:
            got.add(json.loads(record.value)["event_id"])
            if len(got) >= valid:
                break
    finally:
        consumer.close()
    sent = {json.loads(line)["event_id"] for line in lines}
    assert len(got) == valid and got <= sent

    again = fundtrail(python, "publish", str(events), env=env)  # the journal makes a re-run publish nothing
    assert "published 0" in (again.stdout + again.stderr).replace("\n", " "), again.stdout + again.stderr
