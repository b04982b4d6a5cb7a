"""The witness against an in-process log: cosigns good extensions, refuses forks and rollbacks."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_verify.merkle import InMemoryTree, consistency_proof_from_store
from fundtrail_verify.note import (
    SIG_COSIGNATURE_V1,
    CheckpointText,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    sign_note,
    verify_cosignature,
)
from fundtrail_witness.core import Cosigned, Refusal, check_extension
from fundtrail_witness.witness import Witness, WitnessError

ORIGIN = "fundtrail.example/jiangmen/trail"
WITNESS = "audit.jiangmen.example/witness"


def key(seed: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


def leaves(n: int, variant: str = "") -> list[bytes]:
    return [f"{variant}entry-{i}".encode() for i in range(n)]


class FakeLog:
    """A log served over httpx's in-process transport: the latest note, consistency proofs, cosignature POSTs."""

    def __init__(self, tree: InMemoryTree, size: int, signer: NoteSigner | None = None) -> None:
        self.tree, self.size = tree, size
        self.signer = signer or NoteSigner(ORIGIN, key("log"))
        self.posted: list[tuple[int, str]] = []

    def note(self) -> str:
        text = CheckpointText(ORIGIN, self.size, self.tree.root(self.size)).text()
        return sign_note(text, self.signer)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path == "/v1/checkpoints/latest/note":
            return httpx.Response(200, text=self.note())
        if request.method == "GET" and path == "/v1/proofs/consistency":
            old, new = int(request.url.params["old_size"]), int(request.url.params["new_size"])
            hashes = [h.hex() for h in consistency_proof_from_store(self.tree, old, new)]
            return httpx.Response(200, json={"consistency_proof": {"old_size": old, "new_size": new, "hashes": hashes}})
        if request.method == "POST" and path.endswith("/cosignatures"):
            self.posted.append((int(path.split("/")[3]), request.content.decode()))
            return httpx.Response(202, json={})
        return httpx.Response(404, json={"detail": path})


def witness_for(log: FakeLog, state: Path, clock: float = 1_700_000_000.0) -> Witness:
    return Witness(
        "http://log.test", NoteVerifier.ed25519(ORIGIN, key("log").public_key()), WITNESS, key("witness"), state,
        transport=httpx.MockTransport(log.handle), clock=lambda: clock,
    )


def witness_vkey() -> NoteVerifier:
    return NoteVerifier.ed25519(WITNESS, key("witness").public_key(), SIG_COSIGNATURE_V1)


def test_good_extensions_are_cosigned_and_verify(tmp_path: Path) -> None:
    tree = InMemoryTree(leaves(40))
    log = FakeLog(tree, 5)
    state = tmp_path / "state.json"
    w = witness_for(log, state)
    first = w.step()
    assert (first.size, first.previous_size) == (5, None)
    log.size = 23
    second = w.step()
    assert (second.size, second.previous_size) == (23, 5)
    log.size = 23  # the same checkpoint again: cosigned again, still consistent
    assert w.step().size == 23
    assert [size for size, _ in log.posted] == [5, 23, 23]
    for size, body in log.posted:
        sig = NoteSignature.parse_line(body.rstrip("\n"))
        text = CheckpointText(ORIGIN, size, tree.root(size)).text()
        assert verify_cosignature(witness_vkey(), sig, text) == 1_700_000_000
    # A cosigned note, as the gateway serves it, verifies with the witness's vkey.
    note = Note.parse(sign_note(CheckpointText(ORIGIN, 23, tree.root(23)).text(), log.signer))
    cosigned = note.with_signatures([NoteSignature.parse_line(log.posted[-1][1].strip())])
    assert verify_cosignature(witness_vkey(), cosigned.signatures[1], cosigned.text) is not None
    assert json.loads(state.read_text())[ORIGIN]["size"] == 23


def test_rollback_is_refused(tmp_path: Path) -> None:
    log = FakeLog(InMemoryTree(leaves(40)), 30)
    state = tmp_path / "state.json"
    w = witness_for(log, state)
    w.step()
    before = state.read_text()
    log.size = 12  # validly signed, but smaller than what was cosigned
    with pytest.raises(Refusal) as refused:
        w.step()
    assert refused.value.kind == "rollback"
    assert [s for s, _ in log.posted] == [30] and state.read_text() == before


def test_fork_at_the_same_size_is_refused(tmp_path: Path) -> None:
    log = FakeLog(InMemoryTree(leaves(40)), 30)
    state = tmp_path / "state.json"
    w = witness_for(log, state)
    w.step()
    log.tree = InMemoryTree(leaves(40, "forged-"))  # another history, same size, signed by the log key
    with pytest.raises(Refusal) as refused:
        w.step()
    assert refused.value.kind == "fork"
    assert len(log.posted) == 1


def test_larger_checkpoint_not_extending_the_cosigned_one_is_refused(tmp_path: Path) -> None:
    log = FakeLog(InMemoryTree(leaves(40)), 10)
    state = tmp_path / "state.json"
    w = witness_for(log, state)
    w.step()
    forged = leaves(40)
    forged[3] = b"rewritten"
    log.tree, log.size = InMemoryTree(forged), 25  # grew, but an old entry changed
    with pytest.raises(Refusal) as refused:
        w.step()
    assert refused.value.kind == "fork" and "consistency proof fails" in refused.value.message
    assert len(log.posted) == 1 and json.loads(state.read_text())[ORIGIN]["size"] == 10


def test_checkpoint_not_signed_by_the_log_key_is_refused(tmp_path: Path) -> None:
    log = FakeLog(InMemoryTree(leaves(8)), 8, signer=NoteSigner(ORIGIN, key("impostor")))
    with pytest.raises(Refusal) as refused:
        witness_for(log, tmp_path / "state.json").step()
    assert refused.value.kind == "signature" and not log.posted


def test_unreachable_log_is_an_error_not_a_refusal(tmp_path: Path) -> None:
    w = Witness("http://log.test", NoteVerifier.ed25519(ORIGIN, key("log").public_key()), WITNESS, key("witness"),
                tmp_path / "s.json", transport=httpx.MockTransport(lambda r: httpx.Response(503, text="down")))
    with pytest.raises(WitnessError):
        w.step()


def test_check_extension_rules() -> None:
    tree = InMemoryTree(leaves(16))
    last = Cosigned(ORIGIN, 8, tree.root(8), 1)
    check_extension(None, CheckpointText(ORIGIN, 3, tree.root(3)), None)
    check_extension(last, CheckpointText(ORIGIN, 8, tree.root(8)), None)
    check_extension(last, CheckpointText(ORIGIN, 16, tree.root(16)), consistency_proof_from_store(tree, 8, 16))
    cases = [
        (CheckpointText(ORIGIN, 7, tree.root(7)), None, "rollback"),
        (CheckpointText(ORIGIN, 8, tree.root(7)), None, "fork"),
        (CheckpointText(ORIGIN, 16, tree.root(16)), None, "proof"),
        (CheckpointText(ORIGIN, 16, tree.root(16)), consistency_proof_from_store(tree, 7, 16), "fork"),
        (CheckpointText("other.example/log", 16, tree.root(16)), [], "origin"),
    ]
    for new, proof, kind in cases:
        with pytest.raises(Refusal) as refused:
            check_extension(last, new, proof)
        assert refused.value.kind == kind


def test_the_witness_imports_none_of_the_workers_dependencies() -> None:
    code = (
        "import sys, fundtrail_witness.cli, fundtrail_witness.witness\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pydantic', 'sqlalchemy', 'sqlmodel', 'psycopg', 'aiokafka', 'kafka', 'faust', 'fastapi', 'alembic'})\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
