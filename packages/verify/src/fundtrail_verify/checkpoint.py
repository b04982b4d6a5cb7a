"""Signed tree heads (checkpoints), proof models and offline proof bundles.

A checkpoint is a C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint) signed as a C2SP signed note
with Ed25519 (``fundtrail_verify.note``). The signed bytes are exactly the note text::

    <origin>\\n
    <tree_size, decimal, no leading zeros>\\n
    <root hash, standard base64 with padding>\\n

followed in the note by a blank line and the log's signature line
``— <key name> <base64(4-byte key hash || 64-byte Ed25519 signature)>``; the key name is the
origin, the key hash SHA-256(key name || 0x0A || 0x01 || public key)[:4]. Witness cosignature
lines (c2sp.org/tlog-cosignature) may follow the log's line. ``timestamp`` is when the log
signed, as the log recorded it; it is not covered by the signature (cosignatures carry signed times).

A ``ProofBundle`` is the JSON an auditor takes away: checkpoint, leaf bytes, inclusion
proof, and optionally an earlier checkpoint plus the consistency proof linking the two.
``verify_bundle`` needs nothing but the bundle and the log's public key (or verifier key).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Final, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from fundtrail_verify import merkle
from fundtrail_verify.note import (
    CheckpointText,
    Note,
    NoteError,
    NoteSigner,
    NoteVerifier,
    open_note,
    sign_note,
)

__all__ = [
    "BUNDLE_FORMAT",
    "CheckResult",
    "Checkpoint",
    "ConsistencyProof",
    "InclusionProof",
    "LogKey",
    "ProofBundle",
    "VerificationReport",
    "build_proof_bundle",
    "checkpoint_body",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "log_verifier",
    "private_key_from_pem",
    "private_key_to_pem",
    "public_key_from_pem",
    "public_key_to_pem",
    "save_private_key",
    "save_public_key",
    "sign_checkpoint",
    "timestamp_ms",
    "verify_bundle",
    "verify_bundle_json",
    "verify_checkpoint",
]

BUNDLE_FORMAT: Final = "fundtrail-proof-bundle/v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_MAX_SIZE = 2**63 - 1  # fits a PostgreSQL BIGINT
_MAX_PROOF_LEN = 64  # a proof for a tree below 2**63 leaves has at most 63 (inclusion) / 64 elements
_MAX_NOTE_CHARS = 64 * 1024


# ----------------------------------------------------------------- value types


def _strict_b64decode(value: str) -> bytes:
    """Decode standard padded base64, refusing anything that does not re-encode identically."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError("not valid standard base64") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValueError("base64 is not in canonical form")
    return raw


def _check_b64(value: str) -> str:
    _strict_b64decode(value)
    return value


HexHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 hash as 64 lowercase hex digits."""
Base64Bytes = Annotated[str, AfterValidator(_check_b64)]
"""Arbitrary bytes as canonical standard base64 (with padding)."""
# The origin is the note's first line and the key name: no control characters, no spaces or '+'.
LogId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x20\x7f+]+$")]
TreeSize = Annotated[int, Field(strict=True, ge=0, le=_MAX_SIZE)]
LogKey = Ed25519PublicKey | NoteVerifier | str
"""How callers name the log's key: a bare public key (key name = origin), a verifier, or a vkey."""


def timestamp_ms(ts: datetime) -> int:
    """Return integer milliseconds since the Unix epoch of an aware datetime (floor)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return (ts - _EPOCH) // _MS


def checkpoint_body(log_id: str, tree_size: int, root: bytes) -> bytes:
    """Return the exact bytes a checkpoint signature covers (the tlog-checkpoint note text)."""
    try:
        return CheckpointText(log_id, tree_size, root).text().encode()
    except NoteError as exc:
        raise ValueError(str(exc)) from exc


def key_id(public_key: Ed25519PublicKey, name: str) -> str:
    """The signed-note key hash of ``public_key`` under ``name``, as 8 lowercase hex digits."""
    return f"{NoteVerifier.ed25519(name, public_key).key_hash:08x}"


def log_verifier(key: LogKey, origin: str) -> NoteVerifier:
    """The note verifier for ``key``; a bare public key is taken under the key name ``origin``."""
    if isinstance(key, NoteVerifier):
        return key
    if isinstance(key, str):
        return NoteVerifier.from_vkey(key)
    return NoteVerifier.ed25519(origin, key)


# ----------------------------------------------------------------- checkpoint


class Checkpoint(BaseModel):
    """A signed tree head: the log ``log_id`` had ``tree_size`` leaves with root ``root_hash``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    log_id: LogId = Field(description="The checkpoint origin (first note line); also the log's key name")
    tree_size: TreeSize
    root_hash: HexHash
    timestamp: AwareDatetime = Field(description="When the log signed, as it recorded it (not signed)")
    note: str = Field(
        min_length=1, max_length=_MAX_NOTE_CHARS,
        description="The C2SP signed note: checkpoint text, blank line, the log's signature line, cosignatures",
    )

    @field_validator("timestamp")
    @classmethod
    def _utc_millis(cls, v: datetime) -> datetime:
        v = v.astimezone(UTC)
        if v.microsecond % 1000:
            raise ValueError("timestamp must have at most millisecond precision")
        if v < _EPOCH:
            raise ValueError("timestamp must not be before 1970-01-01T00:00:00Z")
        return v

    @property
    def root(self) -> bytes:
        """The root hash as bytes."""
        return bytes.fromhex(self.root_hash)

    @property
    def timestamp_ms(self) -> int:
        """The timestamp as integer milliseconds since the Unix epoch."""
        return timestamp_ms(self.timestamp)

    def signed_bytes(self) -> bytes:
        """Return the canonical bytes the signature covers."""
        return checkpoint_body(self.log_id, self.tree_size, self.root)

    def parsed_note(self) -> Note:
        """The note split into text and signature lines; NoteError if malformed."""
        return Note.parse(self.note)


def sign_checkpoint(
    private_key: Ed25519PrivateKey, log_id: str, size: int, root: bytes, ts: datetime | None = None
) -> Checkpoint:
    """Sign a tree head as a C2SP note under key name ``log_id``; ``ts`` (default now) is only recorded."""
    if ts is None:
        ts = datetime.now(UTC)
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    ts = ts.astimezone(UTC)
    ts = ts.replace(microsecond=ts.microsecond - ts.microsecond % 1000)
    body = checkpoint_body(log_id, size, root).decode()
    return Checkpoint(
        log_id=log_id,
        tree_size=size,
        root_hash=root.hex(),
        timestamp=ts,
        note=sign_note(body, NoteSigner(log_id, private_key)),
    )


def _open_checkpoint(cp: Checkpoint, key: LogKey) -> str | None:
    """None if ``cp``'s note is signed by ``key`` and says what its fields say, else the reason it is not."""
    try:
        verifier = log_verifier(key, cp.log_id)
        note, _ = open_note(cp.note, [verifier])
        body = CheckpointText.parse(note.text)
    except (NoteError, ValueError) as exc:
        return str(exc)
    if (body.origin, body.size, body.root.hex()) != (cp.log_id, cp.tree_size, cp.root_hash):
        return "the signed note names another origin, size or root than the checkpoint fields"
    return None


def verify_checkpoint(cp: Checkpoint, public_key: LogKey) -> bool:
    """Return True iff ``cp``'s note verifies with the log key and matches its fields; never raises."""
    try:
        return _open_checkpoint(cp, public_key) is None
    except Exception:
        return False


# ------------------------------------------------------------------------ keys


def generate_keypair() -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
    """Generate a fresh Ed25519 key pair for signing checkpoints."""
    private_key = Ed25519PrivateKey.generate()
    return private_key, private_key.public_key()


def private_key_to_pem(private_key: Ed25519PrivateKey, password: bytes | None = None) -> bytes:
    """Serialize a private key as PKCS#8 PEM, encrypted when ``password`` is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def private_key_from_pem(data: bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    """Load a PKCS#8 PEM private key; ValueError unless it is Ed25519."""
    key = serialization.load_pem_private_key(data, password=password)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"expected an Ed25519 private key, got {type(key).__name__}")
    return key


def public_key_to_pem(public_key: Ed25519PublicKey) -> bytes:
    """Serialize a public key as SubjectPublicKeyInfo PEM."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_from_pem(data: bytes) -> Ed25519PublicKey:
    """Load a SubjectPublicKeyInfo PEM public key; ValueError unless it is Ed25519."""
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"expected an Ed25519 public key, got {type(key).__name__}")
    return key


def save_private_key(
    path: str | os.PathLike[str], private_key: Ed25519PrivateKey, password: bytes | None = None
) -> None:
    """Write a private key PEM readable by the owner only; refuses to overwrite an existing file."""
    data = private_key_to_pem(private_key, password)
    # O_EXCL: losing the old signing key by accident would orphan every checkpoint it signed.
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def load_private_key(path: str | os.PathLike[str], password: bytes | None = None) -> Ed25519PrivateKey:
    """Read a private key PEM file."""
    return private_key_from_pem(Path(path).read_bytes(), password)


def save_public_key(path: str | os.PathLike[str], public_key: Ed25519PublicKey) -> None:
    """Write a public key PEM file."""
    Path(path).write_bytes(public_key_to_pem(public_key))


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Read a public key PEM file."""
    return public_key_from_pem(Path(path).read_bytes())


# ---------------------------------------------------------------------- proofs


class InclusionProof(BaseModel):
    """Audit path for leaf ``leaf_index`` in the tree of ``tree_size`` leaves (hex, leaf upward)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    leaf_index: TreeSize
    tree_size: TreeSize
    hashes: list[HexHash] = Field(max_length=_MAX_PROOF_LEN)

    @model_validator(mode="after")
    def _index_inside(self) -> InclusionProof:
        if self.leaf_index >= self.tree_size:
            raise ValueError(f"leaf_index {self.leaf_index} is not inside a tree of size {self.tree_size}")
        return self

    @classmethod
    def from_hashes(cls, leaf_index: int, tree_size: int, proof: Sequence[bytes]) -> InclusionProof:
        """Build from raw proof hashes."""
        return cls(leaf_index=leaf_index, tree_size=tree_size, hashes=[h.hex() for h in proof])

    def proof_bytes(self) -> list[bytes]:
        """The proof hashes as bytes."""
        return [bytes.fromhex(h) for h in self.hashes]

    def verify(self, leaf_hash: bytes, root: bytes) -> bool:
        """Return True iff the proof links ``leaf_hash`` to ``root``."""
        return merkle.verify_inclusion(leaf_hash, self.leaf_index, self.tree_size, self.proof_bytes(), root)

    def verify_leaf(self, leaf_data: bytes, checkpoint: Checkpoint) -> bool:
        """Return True iff ``leaf_data`` is in the tree ``checkpoint`` commits to (signature not checked)."""
        if checkpoint.tree_size != self.tree_size:
            return False
        return self.verify(merkle.leaf_hash(leaf_data), checkpoint.root)


class ConsistencyProof(BaseModel):
    """Proof that the tree of ``old_size`` leaves is a prefix of the tree of ``new_size`` leaves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    old_size: TreeSize
    new_size: TreeSize
    hashes: list[HexHash] = Field(max_length=_MAX_PROOF_LEN)

    @model_validator(mode="after")
    def _ordered(self) -> ConsistencyProof:
        if self.old_size > self.new_size:
            raise ValueError(f"old_size {self.old_size} is larger than new_size {self.new_size}")
        return self

    @classmethod
    def from_hashes(cls, old_size: int, new_size: int, proof: Sequence[bytes]) -> ConsistencyProof:
        """Build from raw proof hashes."""
        return cls(old_size=old_size, new_size=new_size, hashes=[h.hex() for h in proof])

    def proof_bytes(self) -> list[bytes]:
        """The proof hashes as bytes."""
        return [bytes.fromhex(h) for h in self.hashes]

    def verify(self, old_root: bytes, new_root: bytes) -> bool:
        """Return True iff the proof links ``old_root`` to ``new_root``."""
        return merkle.verify_consistency(self.old_size, self.new_size, old_root, new_root, self.proof_bytes())

    def verify_checkpoints(self, old: Checkpoint, new: Checkpoint) -> bool:
        """Return True iff the sizes match both checkpoints and the roots are linked (signatures not checked)."""
        if (old.tree_size, new.tree_size) != (self.old_size, self.new_size) or old.log_id != new.log_id:
            return False
        return self.verify(old.root, new.root)


# ---------------------------------------------------------------------- bundles


class ProofBundle(BaseModel):
    """Everything an auditor needs to check one trail entry offline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["fundtrail-proof-bundle/v1"] = BUNDLE_FORMAT
    checkpoint: Checkpoint
    leaf_index: TreeSize
    leaf_data: Base64Bytes = Field(description="The exact bytes that were hashed into the log, base64")
    inclusion_proof: InclusionProof
    previous_checkpoint: Checkpoint | None = Field(
        default=None, description="An earlier checkpoint of the same log, e.g. one the auditor kept"
    )
    consistency_proof: ConsistencyProof | None = Field(
        default=None, description="Proof that previous_checkpoint's tree is a prefix of checkpoint's tree"
    )

    def leaf_bytes(self) -> bytes:
        """The leaf data as bytes."""
        return base64.b64decode(self.leaf_data)


class CheckResult(BaseModel):
    """One named check with its outcome and a plain-language reason."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    reason: str


class VerificationReport(BaseModel):
    """Outcome of verifying a proof bundle: every check, passed or not."""

    model_config = ConfigDict(frozen=True)

    checks: list[CheckResult]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """True iff there was at least one check and all passed."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failures(self) -> list[CheckResult]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        """Plain-text report, one line per check."""
        lines = [f"{'PASS' if c.passed else 'FAIL'}  {c.name}: {c.reason}" for c in self.checks]
        lines.append("RESULT: " + ("all checks passed" if self.ok else f"{len(self.failures())} check(s) failed"))
        return "\n".join(lines)


def _short(hex_hash: str) -> str:
    return hex_hash[:16] + "…"


def _check_signed(checks: list[CheckResult], label: str, cp: Checkpoint, key: LogKey) -> None:
    problem = _open_checkpoint(cp, key)
    if problem is None:
        reason = (f"valid Ed25519 note signature over origin {cp.log_id!r}, size {cp.tree_size}, "
                  f"root {_short(cp.root_hash)}")
    else:
        reason = (f"the signed note does not verify with the log key ({problem}): "
                  "it was altered or signed by another key")
    checks.append(CheckResult(name=f"{label}.signature", passed=problem is None, reason=reason))


def verify_bundle(
    bundle: ProofBundle, public_key: LogKey, *, expected_log_id: str | None = None
) -> VerificationReport:
    """Check every claim in ``bundle`` against the log key; never raises on bad bundle content."""
    checks: list[CheckResult] = []
    cp = bundle.checkpoint

    _check_signed(checks, "checkpoint", cp, public_key)
    if expected_log_id is not None:
        checks.append(
            CheckResult(
                name="checkpoint.log_id",
                passed=cp.log_id == expected_log_id,
                reason=f"log id is {cp.log_id!r}"
                + ("" if cp.log_id == expected_log_id else f", expected {expected_log_id!r}"),
            )
        )

    ip = bundle.inclusion_proof
    shape_ok = ip.leaf_index == bundle.leaf_index and ip.tree_size == cp.tree_size
    checks.append(
        CheckResult(
            name="inclusion.parameters",
            passed=shape_ok,
            reason=(
                f"proof is for leaf {ip.leaf_index} in a tree of size {ip.tree_size}; "
                f"bundle says leaf {bundle.leaf_index}, checkpoint says size {cp.tree_size}"
            ),
        )
    )
    if shape_ok:
        leaf = merkle.leaf_hash(bundle.leaf_bytes())
        included = ip.verify(leaf, cp.root)
        reason = (
            f"leaf {bundle.leaf_index} (leaf hash {_short(leaf.hex())}) is in the tree of size {cp.tree_size}"
            if included
            else "the proof does not lead from this leaf to the checkpoint root: "
            "the leaf data, the index or the proof hashes were altered"
        )
        checks.append(CheckResult(name="inclusion.proof", passed=included, reason=reason))
    else:
        checks.append(
            CheckResult(name="inclusion.proof", passed=False, reason="not checked: proof parameters do not match")
        )

    prev, cons = bundle.previous_checkpoint, bundle.consistency_proof
    if prev is None and cons is None:
        return VerificationReport(checks=checks)
    if prev is None or cons is None:
        missing = "previous_checkpoint" if prev is None else "consistency_proof"
        checks.append(
            CheckResult(name="consistency.present", passed=False, reason=f"{missing} is missing from the bundle")
        )
        return VerificationReport(checks=checks)

    _check_signed(checks, "previous_checkpoint", prev, public_key)
    checks.append(
        CheckResult(
            name="consistency.same_log",
            passed=prev.log_id == cp.log_id,
            reason=f"previous checkpoint is of log {prev.log_id!r}, checkpoint of {cp.log_id!r}",
        )
    )
    ordered = prev.tree_size <= cp.tree_size
    checks.append(
        CheckResult(
            name="consistency.order",
            passed=ordered,
            reason=(
                f"previous checkpoint size {prev.tree_size}, checkpoint size {cp.tree_size}"
                + ("" if ordered else ": the log cannot shrink")
            ),
        )
    )
    sizes_ok = cons.old_size == prev.tree_size and cons.new_size == cp.tree_size
    checks.append(
        CheckResult(
            name="consistency.parameters",
            passed=sizes_ok,
            reason=(
                f"proof is from size {cons.old_size} to {cons.new_size}; "
                f"checkpoints are sizes {prev.tree_size} and {cp.tree_size}"
            ),
        )
    )
    if sizes_ok:
        consistent = cons.verify(prev.root, cp.root)
        reason = (
            f"the tree of size {prev.tree_size} is a prefix of the tree of size {cp.tree_size}: "
            "nothing earlier was changed or removed"
            if consistent
            else "the proof does not link the two roots: the log was rewritten or the proof was altered"
        )
        checks.append(CheckResult(name="consistency.proof", passed=consistent, reason=reason))
    else:
        checks.append(
            CheckResult(name="consistency.proof", passed=False, reason="not checked: proof sizes do not match")
        )
    return VerificationReport(checks=checks)


def verify_bundle_json(
    data: str | bytes, public_key: LogKey, *, expected_log_id: str | None = None
) -> VerificationReport:
    """Parse and verify a bundle; a malformed bundle becomes a failed ``bundle.parse`` check."""
    try:
        bundle = ProofBundle.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        return VerificationReport(
            checks=[CheckResult(name="bundle.parse", passed=False, reason=f"not a valid proof bundle: {problems}")]
        )
    report = verify_bundle(bundle, public_key, expected_log_id=expected_log_id)
    parsed = CheckResult(name="bundle.parse", passed=True, reason=f"well-formed {BUNDLE_FORMAT}")
    return VerificationReport(checks=[parsed, *report.checks])


def build_proof_bundle(
    store: merkle.MerkleStore,
    leaf_data: bytes,
    index: int,
    checkpoint: Checkpoint,
    previous_checkpoint: Checkpoint | None = None,
) -> ProofBundle:
    """Assemble a bundle from a Merkle store; ValueError if ``leaf_data`` is not the stored leaf ``index``."""
    if merkle.leaf_hash(leaf_data) != store.get_subtree_hash(index, index + 1):
        raise ValueError(f"leaf_data does not hash to the stored leaf {index}")
    proof = merkle.inclusion_proof_from_store(store, index, checkpoint.tree_size)
    consistency = None
    if previous_checkpoint is not None:
        consistency = ConsistencyProof.from_hashes(
            previous_checkpoint.tree_size,
            checkpoint.tree_size,
            merkle.consistency_proof_from_store(store, previous_checkpoint.tree_size, checkpoint.tree_size),
        )
    return ProofBundle(
        checkpoint=checkpoint,
        leaf_index=index,
        leaf_data=base64.b64encode(leaf_data).decode("ascii"),
        inclusion_proof=InclusionProof.from_hashes(index, checkpoint.tree_size, proof),
        previous_checkpoint=previous_checkpoint,
        consistency_proof=consistency,
    )
