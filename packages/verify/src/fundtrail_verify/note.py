"""C2SP signed notes, tlog checkpoints and tlog cosignatures (Ed25519), with verifier keys.

Pure: bytes and text in and out, no I/O. Depends on the standard library and ``cryptography``
only, so an auditor's tools (``fundtrail_witness``) can use it without the workers' dependencies.

Specifications (c2sp.org):

* signed-note: a note is a text ending in ``\\n``, a blank line, then signature lines
  ``— <key name> <base64(4-byte key hash || signature)>``; the key hash is
  ``SHA-256(key name || 0x0A || signature type || public key)[:4]``, big-endian.
* tlog-checkpoint: the text is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` plus optional
  non-empty extension lines.
* tlog-cosignature (Ed25519, type 0x04): the signature is ``u64 timestamp || Ed25519 signature``
  over ``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint text.

Verifier keys use the ``golang.org/x/mod/sumdb/note`` vkey form
``<name>+<key hash, 8 hex digits>+<base64(signature type || public key)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "COSIGNATURE_HEADER",
    "SIG_COSIGNATURE_V1",
    "SIG_ED25519",
    "CheckpointText",
    "Cosignature",
    "Note",
    "NoteError",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "cosign",
    "cosigned_message",
    "key_hash",
    "open_note",
    "raw_public_key",
    "sign_note",
    "verify_cosignature",
]

SIG_ED25519: Final = 0x01
SIG_COSIGNATURE_V1: Final = 0x04
COSIGNATURE_HEADER: Final = "cosignature/v1"
EM_DASH: Final = "\u2014"
MAX_SIGNATURES: Final = 100  # the spec asks verifiers to accept at least 16
_MAX_U63: Final = 2**63 - 1
_DECIMAL = re.compile(r"^(0|[1-9][0-9]*)$")


class NoteError(ValueError):
    """A note, checkpoint, signature line or verifier key that is malformed or does not verify."""


def _b64decode(value: str) -> bytes:
    """Strict standard base64: padded, and re-encodes to the same text."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise NoteError(f"not standard base64: {value[:40]!r}") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise NoteError("base64 is not in canonical form")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    """The 32-byte RFC 8032 encoding of an Ed25519 public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _valid_name(name: str) -> bool:
    # Key names: non-empty, no Unicode spaces, no '+' (it separates vkey fields).
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and name.isprintable()


def key_hash(name: str, sig_type: int, public_key: bytes) -> int:
    """The signed-note key id: SHA-256(name || 0x0A || type || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


# --------------------------------------------------------------------------- signatures


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key hash and the signature bytes after it."""

    name: str
    key_hash: int
    signature: bytes

    @property
    def line(self) -> str:
        """The line as it appears in a note, without the final newline."""
        payload = self.key_hash.to_bytes(4, "big") + self.signature
        return f"{EM_DASH} {self.name} {_b64(payload)}"

    @classmethod
    def parse_line(cls, line: str) -> NoteSignature:
        """Parse ``— <name> <base64>`` (no newline); NoteError if malformed."""
        prefix = EM_DASH + " "
        if not line.startswith(prefix):
            raise NoteError(f"a signature line starts with an em dash and a space: {line[:40]!r}")
        name, sep, b64 = line[len(prefix):].partition(" ")
        if not sep or not _valid_name(name) or " " in b64:
            raise NoteError(f"malformed signature line: {line[:60]!r}")
        payload = _b64decode(b64)
        if len(payload) < 5:
            raise NoteError("a signature is a 4-byte key hash followed by at least one byte")
        return cls(name, int.from_bytes(payload[:4], "big"), payload[4:])


@dataclass(frozen=True, slots=True)
class Note:
    """A signed note: the text (ending in a newline) and its signature lines, in order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def render(self) -> str:
        """The note as bytes on the wire would spell it (text, blank line, signature lines)."""
        return self.text + "\n" + "".join(s.line + "\n" for s in self.signatures)

    def with_signatures(self, extra: Iterable[NoteSignature]) -> Note:
        """The same text with ``extra`` signature lines appended (duplicates of existing lines dropped)."""
        sigs = list(self.signatures)
        for s in extra:
            if s not in sigs:
                sigs.append(s)
        return Note(self.text, tuple(sigs))

    @classmethod
    def parse(cls, msg: str | bytes) -> Note:
        """Split a note into text and signature lines; NoteError if it is not a well-formed signed note."""
        if isinstance(msg, bytes):
            try:
                msg = msg.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise NoteError("a note must be valid UTF-8") from exc
        if any(ord(c) < 0x20 and c != "\n" for c in msg) or "\x7f" in msg:
            raise NoteError("a note must not contain control characters other than newline")
        # The text is separated from the signatures by the last blank line.
        split = msg.rfind("\n\n")
        if split < 0:
            raise NoteError("a signed note needs a blank line before its signatures")
        text, block = msg[: split + 1], msg[split + 2:]
        if not block.endswith("\n"):
            raise NoteError("the last signature line must end with a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise NoteError(f"more than {MAX_SIGNATURES} signatures")
        return cls(text, tuple(NoteSignature.parse_line(line) for line in lines))


# ------------------------------------------------------------------------ keys


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted key: name, signature type (0x01 note signer, 0x04 cosigner) and Ed25519 public key."""

    name: str
    sig_type: int
    public_key: bytes

    def __post_init__(self) -> None:
        if not _valid_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}: it must be non-empty, without spaces or '+'")
        if self.sig_type not in (SIG_ED25519, SIG_COSIGNATURE_V1):
            raise NoteError(f"unsupported signature type 0x{self.sig_type:02x}")
        if len(self.public_key) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes")

    @classmethod
    def ed25519(cls, name: str, public_key: Ed25519PublicKey, sig_type: int = SIG_ED25519) -> NoteVerifier:
        """The verifier of ``public_key`` under ``name``."""
        return cls(name, sig_type, raw_public_key(public_key))

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<hash hex>+<base64(type || key)>``; NoteError unless the hash matches."""
        # base64 may contain '+': the name and the hash end at the first two.
        name, _, rest = vkey.strip().partition("+")
        hash_hex, _, b64 = rest.partition("+")
        if not re.fullmatch(r"[0-9a-f]{8}", hash_hex) or not b64:
            raise NoteError(f"not a verifier key (name+hash+key): {vkey[:60]!r}")
        material = _b64decode(b64)
        if len(material) != 33:
            raise NoteError("a verifier key holds a type byte and a 32-byte Ed25519 key")
        verifier = cls(name, material[0], material[1:])
        if verifier.key_hash != int(hash_hex, 16):
            raise NoteError(f"verifier key hash {hash_hex} does not match its name and key")
        return verifier

    @property
    def key_hash(self) -> int:
        """The 4-byte key id signature lines carry."""
        return key_hash(self.name, self.sig_type, self.public_key)

    @property
    def vkey(self) -> str:
        """The verifier key text."""
        return f"{self.name}+{self.key_hash:08x}+{_b64(bytes([self.sig_type]) + self.public_key)}"

    def matches(self, sig: NoteSignature) -> bool:
        """True iff ``sig`` names this key (name and key hash)."""
        return sig.name == self.name and sig.key_hash == self.key_hash

    def verify_text(self, message: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class NoteSigner:
    """An Ed25519 note signer (type 0x01) under a key name."""

    name: str
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> NoteVerifier:
        """The matching verifier."""
        return NoteVerifier.ed25519(self.name, self.private_key.public_key())

    def sign(self, text: str) -> NoteSignature:
        """The signature line of ``text``."""
        return NoteSignature(self.name, self.verifier.key_hash, self.private_key.sign(text.encode()))


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text) or "\x7f" in text:
        raise NoteError("note text must not contain control characters other than newline")


def sign_note(text: str, *signers: NoteSigner) -> str:
    """The signed note of ``text`` with one signature line per signer."""
    _check_text(text)
    if not signers:
        raise NoteError("a signed note needs at least one signer")
    return Note(text, tuple(s.sign(text) for s in signers)).render()


def open_note(msg: str | bytes, verifiers: Sequence[NoteVerifier]) -> tuple[Note, list[NoteSignature]]:
    """Parse and verify a note; returns it and the signatures that verified.

    Per the spec: lines from unknown keys are ignored, a line from a known key that fails to
    verify rejects the whole note, and a note with no verified signature is rejected.
    Cosigner keys (0x04) verify the cosignature message, not the text itself.
    """
    note = Note.parse(msg)
    verified: list[NoteSignature] = []
    for sig in note.signatures:
        for v in verifiers:
            if not v.matches(sig):
                continue
            ok = (
                v.verify_text(note.text.encode(), sig.signature)
                if v.sig_type == SIG_ED25519
                else verify_cosignature(v, sig, note.text) is not None
            )
            if not ok:
                raise NoteError(f"invalid signature for key {v.name}+{v.key_hash:08x}")
            verified.append(sig)
    if not verified:
        raise NoteError("no signature from a known key")
    return note, verified


# ------------------------------------------------------------------------ checkpoints


@dataclass(frozen=True, slots=True)
class CheckpointText:
    """The body of a tlog checkpoint: origin, tree size, root hash and extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or not self.origin.isprintable() or any(c in self.origin for c in "\n\r"):
            raise NoteError("the origin must be a non-empty printable line")
        if not 0 <= self.size <= _MAX_U63:
            raise NoteError("tree size out of range")
        if len(self.root) != 32:
            raise NoteError("the root hash is 32 bytes")
        if any(not e or "\n" in e for e in self.extensions):
            raise NoteError("extension lines must be non-empty single lines")

    def text(self) -> str:
        """The note text."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> CheckpointText:
        """Parse a checkpoint note text; NoteError if it is not one."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("a checkpoint has at least three lines: origin, tree size, root hash")
        origin, size, root, *ext = lines
        if not _DECIMAL.fullmatch(size):
            raise NoteError(f"tree size {size[:30]!r} is not a decimal without leading zeros")
        return cls(origin, int(size), _b64decode(root), tuple(ext))


# ----------------------------------------------------------------------- cosignatures


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified tlog-cosignature/v1: who, when (POSIX seconds) and the signature line."""

    signature: NoteSignature
    timestamp: int


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosignature/v1 signs."""
    if not 0 <= timestamp <= _MAX_U63:
        raise NoteError("timestamp out of range")
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{checkpoint_text}".encode()


def cosign(name: str, private_key: Ed25519PrivateKey, checkpoint_text: str, timestamp: int) -> NoteSignature:
    """A cosignature/v1 line over ``checkpoint_text`` at ``timestamp`` (POSIX seconds)."""
    CheckpointText.parse(checkpoint_text)
    verifier = NoteVerifier.ed25519(name, private_key.public_key(), SIG_COSIGNATURE_V1)
    signature = private_key.sign(cosigned_message(checkpoint_text, timestamp))
    return NoteSignature(name, verifier.key_hash, struct.pack(">Q", timestamp) + signature)


def verify_cosignature(verifier: NoteVerifier, sig: NoteSignature, checkpoint_text: str) -> int | None:
    """The timestamp of ``sig`` if it is ``verifier``'s valid cosignature of ``checkpoint_text``, else None."""
    if verifier.sig_type != SIG_COSIGNATURE_V1 or not verifier.matches(sig) or len(sig.signature) != 8 + 64:
        return None
    (timestamp,) = struct.unpack(">Q", sig.signature[:8])
    if timestamp > _MAX_U63:
        return None
    if not verifier.verify_text(cosigned_message(checkpoint_text, timestamp), sig.signature[8:]):
        return None
    return int(timestamp)
