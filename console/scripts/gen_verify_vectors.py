"""Write src/verify.vectors.json: inclusion proofs and C2SP checkpoint notes made by the project's Python code.

Run from the repository root: .tools/bin/uv run --frozen python console/scripts/gen_verify_vectors.py
The console's verifier (src/verify.ts) is tested against these, so the browser and `fundtrail verify`
agree on the same bytes.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_verify import merkle
from fundtrail_verify.checkpoint import InclusionProof, sign_checkpoint
from fundtrail_verify.note import CheckpointText, Note, NoteSigner, cosign, sign_note

OUT = Path(__file__).resolve().parents[1] / "src" / "verify.vectors.json"
# Fixed keys so the file does not change on every run (test material, never real log or witness keys).
SEED = bytes(range(32))
OTHER_SEED = bytes(range(32, 64))
WITNESS_SEED = bytes(range(64, 96))
ORIGIN = "fundtrail-test-log"


def _tamper(note: str, line: int, value: str) -> str:
    """The note with body line ``line`` replaced after signing (the signature lines kept)."""
    parsed = Note.parse(note)
    lines = parsed.text.split("\n")
    lines[line] = value
    return Note("\n".join(lines), parsed.signatures).render()


def _notes(key: Ed25519PrivateKey, size: int, root: bytes) -> dict[str, dict[str, object]]:
    """Notes of one tree head the verifier must accept (ok: true) or refuse, by name."""
    signer = NoteSigner(ORIGIN, key)
    text = CheckpointText(ORIGIN, size, root).text()
    genuine = sign_note(text, signer)
    other_root = bytes(b ^ 0xFF for b in root)
    witness = cosign("witness.example/w1", Ed25519PrivateKey.from_private_bytes(WITNESS_SEED), text, 1772353815)
    stranger = NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(OTHER_SEED))
    with_ext = CheckpointText(ORIGIN, size, root, ("fundtrail-extension 1",)).text()
    return {
        "genuine": {"note": genuine, "ok": True},
        "cosigned": {"note": Note.parse(genuine).with_signatures([witness]).render(), "ok": True},
        "extension": {"note": sign_note(with_ext, signer), "ok": True},
        "size_changed": {"note": _tamper(genuine, 1, str(size + 1)), "ok": False},
        "root_changed": {"note": _tamper(genuine, 2, base64.b64encode(other_root).decode("ascii")), "ok": False},
        "origin_changed": {"note": _tamper(genuine, 0, ORIGIN + "-2"), "ok": False},
        "other_key": {"note": sign_note(text, stranger), "ok": False},
        "unsigned_by_log": {"note": sign_note(text, NoteSigner("someone-else", key)), "ok": False},
    }


def vectors() -> dict[str, object]:
    """The vectors, exactly as the file holds them."""
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    raw_public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    leaves = [f'{{"entry":{i},"text":"江门 {i}"}}'.encode() for i in range(13)]
    tree = merkle.InMemoryTree(leaves)
    cases = []
    for size in (1, 2, 5, 8, 13):
        cp = sign_checkpoint(key, ORIGIN, size, tree.root(size),
                             datetime(2026, 3, 1, 8, 30, 15, 123000, tzinfo=UTC))
        for index in sorted({0, size // 2, size - 1}):
            proof = merkle.inclusion_proof(tree.leaf_hash_at, index, size)
            cases.append({
                "checkpoint": cp.model_dump(mode="json"),
                "leaf_index": index,
                "leaf_hash": merkle.leaf_hash(leaves[index]).hex(),
                "leaf_data": base64.b64encode(leaves[index]).decode("ascii"),
                "inclusion_proof": InclusionProof.from_hashes(index, size, proof).model_dump(mode="json"),
            })
    return {
        "vkey": NoteSigner(ORIGIN, key).verifier.vkey,
        "public_key": base64.b64encode(raw_public).decode("ascii"),
        "empty_root": merkle.EMPTY_ROOT.hex(),
        "cases": cases,
        # Notes of the tree head of size 8: which the console must accept and which refuse.
        "notes": {"tree_size": 8, "root_hash": tree.root(8).hex(), **_notes(key, 8, tree.root(8))},
    }


def main() -> None:
    data = vectors()
    OUT.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(data['cases'])} cases to {OUT}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
