"""C2SP signed notes, checkpoints and cosignatures, against the specifications' published examples."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_verify.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    CheckpointText,
    Note,
    NoteError,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    cosign,
    cosigned_message,
    key_hash,
    open_note,
    sign_note,
    verify_cosignature,
)

# golang.org/x/mod/sumdb/note's test vector (note_test.go): the reference implementation of the spec.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_NOTE = (
    PETER_TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

# c2sp.org/signed-note: the example note (its text contains a blank line of its own).
QUASIMODO = (
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n"
    "— quasimodo.example/salvatore "
    "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)

# c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature: the example checkpoint with a cosignature.
SOFA_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SOFA_NOTE = (
    SOFA_TEXT
    + "\n— example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— witness.example.com/w1 "
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
SOFA_COSIGNED_MESSAGE = (
    "cosignature/v1\ntime 1679315147\n"
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)


def peter_private_key() -> Ed25519PrivateKey:
    material = base64.b64decode(PETER_SKEY.split("+", 4)[4])  # PRIVATE+KEY+<name>+<hash>+<type||seed>
    assert material[0] == SIG_ED25519
    return Ed25519PrivateKey.from_private_bytes(material[1:])


def key(seed: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


# ------------------------------------------------------------------ published vectors


def test_go_reference_vector_verifies() -> None:
    verifier = NoteVerifier.from_vkey(PETER_VKEY)
    assert (verifier.name, verifier.key_hash, verifier.sig_type) == ("PeterNeumann", 0xC74F20A3, SIG_ED25519)
    assert verifier.vkey == PETER_VKEY
    note, verified = open_note(PETER_NOTE, [verifier])
    assert note.text == PETER_TEXT and verified == list(note.signatures)
    assert note.render() == PETER_NOTE


def test_go_reference_vector_signs_identically() -> None:
    signer = NoteSigner("PeterNeumann", peter_private_key())
    assert signer.verifier.vkey == PETER_VKEY
    # Ed25519 is deterministic: our signature is byte for byte the reference's.
    assert sign_note(PETER_TEXT, signer) == PETER_NOTE


def test_signed_note_spec_example_parses() -> None:
    note = Note.parse(QUASIMODO)
    # The text is separated from the signatures by the LAST blank line, and keeps its final newline.
    assert note.text == "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    (sig,) = note.signatures
    assert sig.name == "quasimodo.example/salvatore"
    raw = base64.b64decode(QUASIMODO.rsplit(" ", 1)[1])
    assert sig.key_hash == int.from_bytes(raw[:4], "big") and len(sig.signature) == 64
    assert note.render() == QUASIMODO
    # Its key is not published: with only unknown keys the note is rejected, never trusted.
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(QUASIMODO, [NoteVerifier.from_vkey(PETER_VKEY)])


def test_checkpoint_spec_example_parses() -> None:
    note = Note.parse(SOFA_NOTE)
    cp = CheckpointText.parse(note.text)
    assert (cp.origin, cp.size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.text() == SOFA_TEXT
    # The log's key name matches the origin; the witness line follows it.
    assert [s.name for s in note.signatures] == ["example.com/behind-the-sofa", "witness.example.com/w1"]


def test_cosignature_spec_example() -> None:
    witness = Note.parse(SOFA_NOTE).signatures[1]
    # timestamped_signature: u64 big-endian timestamp, then the 64-byte Ed25519 signature.
    assert len(witness.signature) == 8 + 64
    assert int.from_bytes(witness.signature[:8], "big") == 1679315147
    assert cosigned_message(SOFA_TEXT, 1679315147).decode() == SOFA_COSIGNED_MESSAGE


# ---------------------------------------------------------------------------- ours


def test_key_hash_is_the_spec_formula() -> None:
    pub = bytes(range(32))
    want = hashlib.sha256(b"example.com/log\n\x01" + pub).digest()[:4]
    assert key_hash("example.com/log", SIG_ED25519, pub) == int.from_bytes(want, "big")
    assert key_hash("example.com/log", SIG_COSIGNATURE_V1, pub) != key_hash("example.com/log", SIG_ED25519, pub)


def test_open_note_rules() -> None:
    log, stranger = NoteSigner("fundtrail.example/log", key("log")), NoteSigner("other.example/x", key("x"))
    msg = sign_note("hello\n", log, stranger)
    note, verified = open_note(msg, [log.verifier])
    assert [s.name for s in verified] == ["fundtrail.example/log"]  # the unknown key is ignored
    # A known key whose signature fails rejects the whole note.
    forged = msg.replace("hello", "hullo")
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(forged, [log.verifier])
    # Same name, another key: its line is not the known key's (the hash differs), so it is unknown.
    impostor = NoteSigner("fundtrail.example/log", key("impostor"))
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(sign_note("hello\n", impostor), [log.verifier])
    assert note.text == "hello\n"


@pytest.mark.parametrize(
    "msg",
    [
        "no blank line\n— a AAAAAAE=\n",
        "text\n\n— a AAAAAAE=",  # no final newline
        "text\n\n- a AAAAAAE=\n",  # hyphen, not em dash
        "text\n\n— a AAAAAA==\n",  # shorter than a key hash plus one byte
        "text\n\n— a not-base64\n",
        "text\n\n—  a AAAAAAE=\n",
        "text\n\n— a+b AAAAAAE=\n",  # '+' in the key name
        "te\x01xt\n\n— a AAAAAAE=\n",  # control character
        b"\xff\n\n\xe2\x80\x94 a AAAAAAE=\n",  # not UTF-8
    ],
)
def test_malformed_notes_are_refused(msg: str | bytes) -> None:
    with pytest.raises(NoteError):
        Note.parse(msg)


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong hash
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong length key
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown algorithm
        "PeterNeumann+c74f20a3",
        "",
    ],
)
def test_bad_verifier_keys(vkey: str) -> None:
    with pytest.raises(NoteError):
        NoteVerifier.from_vkey(vkey)


@pytest.mark.parametrize(
    "text",
    [
        "o\n",
        "o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",  # leading zero
        "o\n1\nAAAA\n",  # short root
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",  # empty extension line
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # no final newline
        "o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    ],
)
def test_malformed_checkpoints(text: str) -> None:
    with pytest.raises(NoteError):
        CheckpointText.parse(text)


def test_checkpoint_extension_lines_round_trip() -> None:
    cp = CheckpointText("o.example/l", 0, bytes(32), ("ext one",))
    assert CheckpointText.parse(cp.text()) == cp


def test_cosignature_round_trip_and_tampering() -> None:
    wkey = key("witness")
    name = "witness.example/w1"
    verifier = NoteVerifier.ed25519(name, wkey.public_key(), SIG_COSIGNATURE_V1)
    assert NoteVerifier.from_vkey(verifier.vkey) == verifier
    sig = cosign(name, wkey, SOFA_TEXT, 1_700_000_000)
    assert verify_cosignature(verifier, sig, SOFA_TEXT) == 1_700_000_000
    assert NoteSignature.parse_line(sig.line) == sig
    # Another checkpoint, another time, another key type or key name: not this cosignature.
    assert verify_cosignature(verifier, sig, SOFA_TEXT.replace("20852163", "20852164")) is None
    later = NoteSignature(sig.name, sig.key_hash, (1_700_000_001).to_bytes(8, "big") + sig.signature[8:])
    assert verify_cosignature(verifier, later, SOFA_TEXT) is None
    as_note_key = NoteVerifier.ed25519(name, wkey.public_key())
    assert verify_cosignature(as_note_key, sig, SOFA_TEXT) is None
    # A checkpoint note carrying the log's signature and the cosignature opens with either key.
    log = NoteSigner("example.com/behind-the-sofa", key("log"))
    note = Note.parse(sign_note(SOFA_TEXT, log)).with_signatures([sig])
    _, verified = open_note(note.render(), [log.verifier, verifier])
    assert [s.name for s in verified] == [log.name, name]
    with pytest.raises(NoteError):
        open_note(note.with_signatures([later]).render().replace(sig.line + "\n", ""), [verifier])
