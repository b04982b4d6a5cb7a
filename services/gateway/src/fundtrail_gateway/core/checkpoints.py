"""Pure checkpoint helpers: the configured keys, cosigned notes, and checking a witness's submission."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fundtrail_verify.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    CheckpointText,
    Note,
    NoteError,
    NoteSignature,
    NoteVerifier,
    verify_cosignature,
)

MAX_SUBMITTED_LINES = 16


class CosignatureRejected(ValueError):
    """A submitted cosignature that is malformed, from an unknown witness, or does not verify."""


@dataclass(frozen=True, slots=True)
class LogKeys:
    """The log's note verifier and the witnesses whose cosignatures this gateway accepts and serves."""

    log: NoteVerifier | None
    witnesses: tuple[NoteVerifier, ...]

    @classmethod
    def parse(cls, log_vkey: str | None, witness_vkeys: Sequence[str]) -> LogKeys:
        """Parse the configured vkeys; ValueError names the one that is wrong."""
        log = NoteVerifier.from_vkey(log_vkey) if log_vkey else None
        if log is not None and log.sig_type != SIG_ED25519:
            raise ValueError("the trail verifier key must be an Ed25519 note key (type 0x01)")
        witnesses = []
        for vkey in witness_vkeys:
            w = NoteVerifier.from_vkey(vkey)
            if w.sig_type != SIG_COSIGNATURE_V1:
                raise ValueError(f"witness key {w.name} is not a cosignature/v1 key (type 0x04)")
            witnesses.append(w)
        return cls(log, tuple(witnesses))


@dataclass(frozen=True, slots=True)
class VerifiedCosignature:
    signature: NoteSignature
    timestamp: int


def valid_cosignatures(
    note_text: str, lines: Iterable[str], witnesses: Sequence[NoteVerifier]
) -> list[VerifiedCosignature]:
    """The stored lines that are valid cosignatures of ``note_text`` by configured witnesses, in order."""
    out: list[VerifiedCosignature] = []
    for line in lines:
        try:
            sig = NoteSignature.parse_line(line)
        except NoteError:
            continue
        for w in witnesses:
            ts = verify_cosignature(w, sig, note_text)
            if ts is not None:
                out.append(VerifiedCosignature(sig, ts))
                break
    return out


def cosigned_note(note: str, cosignatures: Sequence[VerifiedCosignature]) -> str:
    """The stored note with the witnesses' signature lines appended (the log's line stays first)."""
    return Note.parse(note).with_signatures(c.signature for c in cosignatures).render()


def check_submission(body: str, note: str, witnesses: Sequence[NoteVerifier]) -> list[VerifiedCosignature]:
    """The cosignatures in a witness's POST body (signature lines, or the whole cosigned note).

    Every line must be a valid cosignature of the stored checkpoint by a configured witness, except
    that a note's own text and the log's signature line may be sent back as they are.
    """
    stored = Note.parse(note)
    CheckpointText.parse(stored.text)
    text = body
    if body.startswith(stored.text):
        # A whole note was posted: it must be this checkpoint; keep its signature block.
        text = body[len(stored.text):]
        if not text.startswith("\n"):
            raise CosignatureRejected("the posted note is not the stored checkpoint")
        text = text[1:]
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        raise CosignatureRejected("no signature lines in the body")
    if len(lines) > MAX_SUBMITTED_LINES:
        raise CosignatureRejected(f"more than {MAX_SUBMITTED_LINES} signature lines")
    accepted: list[VerifiedCosignature] = []
    for line in lines:
        try:
            sig = NoteSignature.parse_line(line)
        except NoteError as exc:
            raise CosignatureRejected(str(exc)) from exc
        if sig in stored.signatures:
            continue
        known = [w for w in witnesses if w.matches(sig)]
        if not known:
            raise CosignatureRejected(f"{sig.name}+{sig.key_hash:08x} is not a configured witness key")
        ts = verify_cosignature(known[0], sig, stored.text)
        if ts is None:
            raise CosignatureRejected(f"the cosignature of {sig.name} does not verify for this checkpoint")
        accepted.append(VerifiedCosignature(sig, ts))
    if not accepted:
        raise CosignatureRejected("no witness cosignature in the body")
    return accepted
