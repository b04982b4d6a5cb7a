"""Write src/verify.vectors.json: inclusion proofs and signed checkpoints made by the project's Python code.

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

from fundtrail_schemas import merkle
from fundtrail_schemas.checkpoint import InclusionProof, sign_checkpoint

OUT = Path(__file__).resolve().parents[1] / "src" / "verify.vectors.json"
# A fixed key so the file does not change on every run (test material, never a real log key).
SEED = bytes(range(32))


def vectors() -> dict[str, object]:
    """The vectors, exactly as the file holds them."""
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    raw_public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    leaves = [f'{{"entry":{i},"text":"江门 {i}"}}'.encode() for i in range(13)]
    tree = merkle.InMemoryTree(leaves)
    cases = []
    for size in (1, 2, 5, 8, 13):
        cp = sign_checkpoint(key, "fundtrail-test-log", size, tree.root(size),
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
        "public_key": base64.b64encode(raw_public).decode("ascii"),
        "empty_root": merkle.EMPTY_ROOT.hex(),
        "cases": cases,
    }


def main() -> None:
    data = vectors()
    OUT.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(data['cases'])} cases to {OUT}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
