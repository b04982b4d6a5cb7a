"""Signed checkpoints, proof models and offline proof bundles."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fundtrail_verify.checkpoint import (
    BUNDLE_FORMAT,
    Checkpoint,
    ConsistencyProof,
    InclusionProof,
    ProofBundle,
    build_proof_bundle,
    checkpoint_body,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    private_key_from_pem,
    private_key_to_pem,
    public_key_from_pem,
    public_key_to_pem,
    save_private_key,
    save_public_key,
    sign_checkpoint,
    verify_bundle,
    verify_bundle_json,
    verify_checkpoint,
)
from fundtrail_verify.merkle import (
    EMPTY_ROOT,
    InMemoryTree,
    consistency_proof_from_store,
    inclusion_proof_from_store,
    leaf_hash,
)
from fundtrail_verify.note import Note, NoteSignature, NoteVerifier

VECTOR: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "checkpoint_vector.json").read_text())
LOG_ID = "fundtrail.example/trail"
TS = datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)


@cache
def keys() -> tuple[Ed25519PrivateKey, Ed25519PrivateKey]:
    """The log key and a stranger's key (fixed seeds: deterministic signatures)."""
    return (
        Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"log key").digest()),
        Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"other key").digest()),
    )


@cache
def tree() -> InMemoryTree:
    return InMemoryTree(entry(i) for i in range(300))


def entry(i: int) -> bytes:
    return json.dumps({"event_id": f"evt-{i:06d}", "amount_fen": 1000 + i}, sort_keys=True).encode()


def cp_at(size: int, ts: datetime = TS) -> Checkpoint:
    return sign_checkpoint(keys()[0], LOG_ID, size, tree().root(size), ts)


# ------------------------------------------------------------------ checkpoint


def test_golden_checkpoint_vector() -> None:
    sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR["private_key_hex"]))
    pk = sk.public_key()
    assert pk.public_bytes(Encoding.Raw, PublicFormat.Raw).hex() == VECTOR["public_key_hex"]
    want = Checkpoint.model_validate(VECTOR["checkpoint"])
    assert want.signed_bytes() == VECTOR["signed_bytes"].encode()
    assert NoteVerifier.ed25519(want.log_id, pk).vkey == VECTOR["vkey"]
    assert key_id(pk, want.log_id) == VECTOR["vkey"].split("+")[1]
    got = sign_checkpoint(
        sk,
        want.log_id,
        want.tree_size,
        bytes.fromhex(want.root_hash),
        datetime(2024, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC),
    )
    # Byte for byte what golang.org/x/mod/sumdb/note produced for the same key and text.
    assert got == want
    assert verify_checkpoint(want, pk)
    assert verify_checkpoint(want, VECTOR["vkey"])
    assert verify_checkpoint(want, NoteVerifier.from_vkey(VECTOR["vkey"]))
    assert json.loads(got.model_dump_json()) == VECTOR["checkpoint"]


def test_sign_and_verify() -> None:
    sk, other = keys()
    cp = cp_at(42)
    assert cp.tree_size == 42 and cp.root == tree().root(42)
    sig = cp.parsed_note().signatures[0]
    assert (sig.name, f"{sig.key_hash:08x}") == (LOG_ID, key_id(sk.public_key(), LOG_ID))
    assert verify_checkpoint(cp, sk.public_key())
    assert not verify_checkpoint(cp, other.public_key())
    # The same key under another name is another key.
    assert not verify_checkpoint(cp, NoteVerifier.ed25519("fundtrail.example/other", sk.public_key()))
    # JSON round trip keeps it valid.
    again = Checkpoint.model_validate_json(cp.model_dump_json())
    assert again == cp and verify_checkpoint(again, sk.public_key())


def test_signed_bytes_format() -> None:
    root = bytes(range(32))
    body = checkpoint_body("log-a", 10, root)
    assert body == b"log-a\n10\n" + base64.b64encode(root) + b"\n"
    cp = sign_checkpoint(keys()[0], "log-a", 10, root, datetime.fromtimestamp(1_700_000_000.123456, UTC))
    assert cp.timestamp_ms == 1_700_000_000_123
    assert cp.signed_bytes() == body
    assert cp.note.startswith(body.decode() + "\n\u2014 log-a ")
    for bad in [("", 1, root), ("a\nb", 1, root), ("a", 1, root[:31]), ("a", -1, root)]:
        with pytest.raises(ValueError):
            checkpoint_body(*bad)


@pytest.mark.parametrize(
    "field,value",
    [
        ("log_id", "fundtrail.example/other"),
        ("tree_size", 43),
        ("tree_size", 41),
        ("root_hash", "00" * 32),
    ],
)
def test_tampered_checkpoint_fails(field: str, value: Any) -> None:
    cp = cp_at(42)
    tampered = Checkpoint.model_validate({**cp.model_dump(), field: value})
    assert not verify_checkpoint(tampered, keys()[0].public_key())


def test_tampered_note_fails() -> None:
    cp = cp_at(42)
    pk = keys()[0].public_key()
    other_root = base64.b64encode(tree().root(41)).decode()
    body = cp.signed_bytes().decode()
    forged_body = body.replace(base64.b64encode(cp.root).decode(), other_root)
    for note in [
        cp.note.replace(body, forged_body),  # another root under the old signature
        cp.note.replace("\n42\n", "\n43\n", 1),
        cp.note.replace("\n\n", "\n", 1),  # no blank line
        cp.note[:-1],  # no final newline
        "",
    ]:
        assert not verify_checkpoint(cp.model_copy(update={"note": note}), pk)
    # The signature of size 41, pasted under the fields of size 42.
    assert not verify_checkpoint(cp.model_copy(update={"note": cp_at(41).note}), pk)


def test_flipped_signature_bits_fail() -> None:
    cp = cp_at(7)
    note = Note.parse(cp.note)
    sig = note.signatures[0]
    for i in (0, 31, 32, 63):
        bad = bytearray(sig.signature)
        bad[i] ^= 0x01
        forged = Note(note.text, (NoteSignature(sig.name, sig.key_hash, bytes(bad)),)).render()
        assert not verify_checkpoint(cp.model_copy(update={"note": forged}), keys()[0].public_key())


def test_checkpoint_validation() -> None:
    good = cp_at(3).model_dump()
    bad_values: list[tuple[str, Any]] = [
        ("root_hash", good["root_hash"].upper()),
        ("root_hash", good["root_hash"][:62]),
        ("tree_size", -1),
        ("tree_size", "3"),
        ("log_id", ""),
        ("log_id", "two\nlines"),
        ("log_id", "with space"),
        ("log_id", "a+b"),
        ("timestamp", datetime(2025, 1, 1)),  # naive
        ("timestamp", datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),  # finer than a millisecond
        ("timestamp", datetime(1969, 12, 31, tzinfo=UTC)),
        ("note", ""),
    ]
    for field, value in bad_values:
        with pytest.raises(ValidationError):
            Checkpoint.model_validate({**good, field: value})
    with pytest.raises(ValidationError):
        Checkpoint.model_validate({**good, "extra": 1})


def test_timestamp_normalised_to_utc() -> None:
    cst = timezone(timedelta(hours=8))
    local = datetime(2025, 3, 4, 13, 6, 7, 890_000, tzinfo=cst)
    cp = sign_checkpoint(keys()[0], LOG_ID, 1, tree().root(1), local)
    assert cp.timestamp == TS and cp.timestamp.utcoffset() == timedelta(0)
    assert json.loads(cp.model_dump_json())["timestamp"] == "2025-03-04T05:06:07.890000Z"
    assert verify_checkpoint(cp, keys()[0].public_key())
    with pytest.raises(ValueError):
        sign_checkpoint(keys()[0], LOG_ID, 1, tree().root(1), datetime(2025, 1, 1))


def test_verify_checkpoint_never_raises_on_constructed_garbage() -> None:
    cp = cp_at(5)
    junk = Checkpoint.model_construct(**{**cp.model_dump(), "note": "%%%", "root_hash": "zz"})
    assert verify_checkpoint(junk, keys()[0].public_key()) is False
    assert verify_checkpoint(cp, "not a vkey") is False


# ------------------------------------------------------------------------ keys


def test_pem_round_trip(tmp_path: Path) -> None:
    sk, pk = generate_keypair()
    assert key_id(private_key_from_pem(private_key_to_pem(sk)).public_key(), LOG_ID) == key_id(pk, LOG_ID)
    enc = private_key_to_pem(sk, b"s3cret")
    assert b"ENCRYPTED" in enc
    assert key_id(private_key_from_pem(enc, b"s3cret").public_key(), LOG_ID) == key_id(pk, LOG_ID)
    with pytest.raises((TypeError, ValueError)):
        private_key_from_pem(enc, b"wrong")
    assert key_id(public_key_from_pem(public_key_to_pem(pk)), LOG_ID) == key_id(pk, LOG_ID)

    save_private_key(tmp_path / "log.key", sk)
    save_public_key(tmp_path / "log.pub", pk)
    if os.name == "posix":
        assert stat.S_IMODE((tmp_path / "log.key").stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        save_private_key(tmp_path / "log.key", generate_keypair()[0])
    loaded_sk = load_private_key(tmp_path / "log.key")
    loaded_pk = load_public_key(tmp_path / "log.pub")
    cp = sign_checkpoint(loaded_sk, LOG_ID, 3, tree().root(3), TS)
    assert verify_checkpoint(cp, pk) and verify_checkpoint(cp, loaded_pk)


def test_non_ed25519_keys_refused() -> None:
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ValueError):
        private_key_from_pem(rsa.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(ValueError):
        public_key_from_pem(rsa.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))


def test_key_ids_differ() -> None:
    a, b = keys()
    assert key_id(a.public_key(), LOG_ID) != key_id(b.public_key(), LOG_ID)
    assert key_id(a.public_key(), LOG_ID) != key_id(a.public_key(), "fundtrail.example/other")
    assert len(key_id(a.public_key(), LOG_ID)) == 8


# ---------------------------------------------------------------------- proofs


def test_proof_models() -> None:
    t = tree()
    ip = InclusionProof.from_hashes(17, 100, inclusion_proof_from_store(t, 17, 100))
    assert ip.verify(leaf_hash(entry(17)), t.root(100))
    assert not ip.verify(leaf_hash(entry(18)), t.root(100))
    assert ip.verify_leaf(entry(17), cp_at(100))
    assert not ip.verify_leaf(entry(17), cp_at(101))
    assert InclusionProof.model_validate_json(ip.model_dump_json()) == ip

    cons = ConsistencyProof.from_hashes(40, 100, consistency_proof_from_store(t, 40, 100))
    assert cons.verify(t.root(40), t.root(100))
    assert not cons.verify(t.root(41), t.root(100))
    assert cons.verify_checkpoints(cp_at(40), cp_at(100))
    assert not cons.verify_checkpoints(cp_at(40), cp_at(99))
    assert ConsistencyProof.from_hashes(0, 5, []).verify(EMPTY_ROOT, t.root(5))

    with pytest.raises(ValidationError):
        InclusionProof(leaf_index=5, tree_size=5, hashes=[])
    with pytest.raises(ValidationError):
        InclusionProof(leaf_index=0, tree_size=5, hashes=["AB" * 32])
    with pytest.raises(ValidationError):
        ConsistencyProof(old_size=6, new_size=5, hashes=[])
    with pytest.raises(ValidationError):
        ConsistencyProof(old_size=1, new_size=5, hashes=["00" * 32] * 65)


# --------------------------------------------------------------------- bundles


def full_bundle(index: int = 123, old: int = 100, new: int = 250) -> ProofBundle:
    t = tree()
    return build_proof_bundle(t, entry(index), index, cp_at(new, TS), cp_at(old, TS - timedelta(hours=1)))


def names_failed(report: Any) -> set[str]:
    return {c.name for c in report.failures()}


def test_bundle_verifies() -> None:
    bundle = full_bundle()
    report = verify_bundle(bundle, keys()[0].public_key(), expected_log_id=LOG_ID)
    assert report.ok, report.summary()
    assert {c.name for c in report.checks} >= {
        "checkpoint.signature",
        "inclusion.proof",
        "previous_checkpoint.signature",
        "consistency.proof",
    }
    assert "RESULT: all checks passed" in report.summary()
    # Offline round trip through JSON, as an auditor would receive it.
    text = bundle.model_dump_json(indent=2)
    assert json.loads(text)["format"] == BUNDLE_FORMAT
    again = verify_bundle_json(text, keys()[0].public_key())
    assert again.ok and again.checks[0].name == "bundle.parse"
    assert json.loads(again.model_dump_json())["ok"] is True


def test_bundle_without_consistency() -> None:
    b = build_proof_bundle(tree(), entry(0), 0, cp_at(1))
    assert b.consistency_proof is None
    assert verify_bundle(b, keys()[0].public_key()).ok


def test_build_bundle_refuses_wrong_leaf() -> None:
    with pytest.raises(ValueError):
        build_proof_bundle(tree(), entry(5), 6, cp_at(10))


def mutate(bundle: ProofBundle, **changes: Any) -> str:
    data = json.loads(bundle.model_dump_json())
    for path, value in changes.items():
        node = data
        keys_ = path.split("__")
        for k in keys_[:-1]:
            node = node[k]
        node[keys_[-1]] = value
    return json.dumps(data)


def test_bundle_tampering_is_reported() -> None:
    b = full_bundle()
    pk = keys()[0].public_key()

    def check(text: str, expected: set[str]) -> None:
        report = verify_bundle_json(text, pk)
        assert not report.ok
        assert expected <= names_failed(report), report.summary()
        for failure in report.failures():
            assert failure.reason

    other_leaf = base64.b64encode(entry(124)).decode()
    check(mutate(b, leaf_data=other_leaf), {"inclusion.proof"})
    check(mutate(b, leaf_index=124, inclusion_proof__leaf_index=124), {"inclusion.proof"})
    check(mutate(b, leaf_index=124), {"inclusion.parameters"})
    hashes = list(b.inclusion_proof.hashes)
    hashes[2] = ("1" if hashes[2][0] != "1" else "2") + hashes[2][1:]
    check(mutate(b, inclusion_proof__hashes=hashes), {"inclusion.proof"})
    check(mutate(b, inclusion_proof__hashes=b.inclusion_proof.hashes[:-1]), {"inclusion.proof"})
    # A checkpoint with a different root but the old signed note.
    check(mutate(b, checkpoint__root_hash=tree().root(251).hex()), {"checkpoint.signature"})
    check(mutate(b, checkpoint__tree_size=251, inclusion_proof__tree_size=251), {"checkpoint.signature"})
    check(mutate(b, checkpoint__note=cp_at(251).note), {"checkpoint.signature"})
    cons = list(b.consistency_proof.hashes) if b.consistency_proof else []
    cons[0] = "0" * 64
    check(mutate(b, consistency_proof__hashes=cons), {"consistency.proof"})
    check(mutate(b, previous_checkpoint__tree_size=101), {"previous_checkpoint.signature"})
    check(mutate(b, consistency_proof__old_size=99), {"consistency.parameters"})
    check(mutate(b, consistency_proof=None), {"consistency.present"})
    check(mutate(b, previous_checkpoint=None), {"consistency.present"})


def test_bundle_wrong_key_and_log() -> None:
    b = full_bundle()
    report = verify_bundle(b, keys()[1].public_key())
    assert {"checkpoint.signature", "previous_checkpoint.signature"} <= names_failed(report)
    # The proofs themselves still check out: the report says exactly what is wrong.
    assert "inclusion.proof" not in names_failed(report)
    report = verify_bundle(b, keys()[0].public_key(), expected_log_id="someone-else")
    assert names_failed(report) == {"checkpoint.log_id"}


def test_bundle_from_other_log_or_rewound_history() -> None:
    sk = keys()[0]
    t = tree()
    cp = cp_at(200)
    # A "previous" checkpoint that is newer than the current one.
    newer = sign_checkpoint(sk, LOG_ID, 250, t.root(250), TS + timedelta(hours=1))
    b = ProofBundle(
        checkpoint=cp,
        leaf_index=3,
        leaf_data=base64.b64encode(entry(3)).decode(),
        inclusion_proof=InclusionProof.from_hashes(3, 200, inclusion_proof_from_store(t, 3, 200)),
        previous_checkpoint=newer,
        consistency_proof=ConsistencyProof.from_hashes(200, 200, []),
    )
    report = verify_bundle(b, sk.public_key())
    assert {"consistency.order", "consistency.parameters", "consistency.proof"} <= names_failed(report)

    foreign = sign_checkpoint(sk, "another-log", 100, t.root(100), TS - timedelta(hours=1))
    b2 = full_bundle().model_copy(update={"previous_checkpoint": foreign})
    assert "consistency.same_log" in names_failed(verify_bundle(b2, sk.public_key()))

    # A rewritten log: same size as before but one early entry changed.
    forged = InMemoryTree([b"forged", *(entry(i) for i in range(1, 300))])
    forged_cp = sign_checkpoint(sk, LOG_ID, 250, forged.root(250), TS)
    b3 = build_proof_bundle(forged, entry(123), 123, forged_cp).model_copy(
        update={
            "previous_checkpoint": cp_at(100, TS - timedelta(hours=1)),
            "consistency_proof": ConsistencyProof.from_hashes(100, 250, consistency_proof_from_store(forged, 100, 250)),
        }
    )
    report = verify_bundle(b3, sk.public_key())
    assert names_failed(report) == {"consistency.proof"}, report.summary()


def test_malformed_bundle_json_is_a_report_not_an_exception() -> None:
    pk = keys()[0].public_key()
    for text in ["", "{}", "[1,2]", '{"format": "other"}', mutate(full_bundle(), leaf_data="@@@")]:
        report = verify_bundle_json(text, pk)
        assert not report.ok
        assert report.checks[0].name == "bundle.parse" and not report.checks[0].passed


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_random_bundles_verify(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    b = build_proof_bundle(tree(), entry(index), index, cp_at(size), cp_at(old, TS - timedelta(minutes=1)))
    assert verify_bundle_json(b.model_dump_json(), keys()[0].public_key()).ok
