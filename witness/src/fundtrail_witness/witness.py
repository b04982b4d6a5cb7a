"""The witness loop's one step over HTTP: fetch, verify, check consistency, remember, cosign, publish.

The state (last cosigned checkpoint per log) is written *before* the cosignature leaves the
process, so a crash can never let the witness cosign two inconsistent checkpoints.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_verify.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    CheckpointText,
    NoteError,
    NoteSignature,
    NoteVerifier,
    cosign,
    open_note,
)

from .core import Cosigned, Refusal, check_extension, dump_state, load_state

log = logging.getLogger(__name__)


class WitnessError(RuntimeError):
    """The log could not be read or answered something unusable (not a refusal: retry later)."""


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did."""

    origin: str
    size: int
    previous_size: int | None
    signature: NoteSignature


class Witness:
    """Follows one log and cosigns each consistent checkpoint with the witness's own key."""

    def __init__(
        self,
        api: str,
        log_key: NoteVerifier,
        name: str,
        private_key: Ed25519PrivateKey,
        state_path: Path,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if log_key.sig_type != SIG_ED25519:
            raise ValueError("the log key must be an Ed25519 note key (type 0x01)")
        self.log_key = log_key
        self.name = name
        self.verifier = NoteVerifier.ed25519(name, private_key.public_key(), SIG_COSIGNATURE_V1)
        self._key = private_key
        self._state_path = state_path
        self._clock = clock
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=api, headers=headers, timeout=30, transport=transport)

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, **params: Any) -> httpx.Response:
        try:
            response = self._http.get(path, params=params or None)
        except httpx.HTTPError as exc:
            raise WitnessError(f"GET {path}: {exc}") from exc
        if response.status_code != 200:
            raise WitnessError(f"GET {path} answered {response.status_code}: {response.text[:200]}")
        return response

    def state(self) -> dict[str, Cosigned]:
        """The last cosigned checkpoint per origin, from the state file."""
        if not self._state_path.exists():
            return {}
        return load_state(self._state_path.read_text(encoding="utf-8"))

    def _save(self, state: dict[str, Cosigned]) -> None:
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(dump_state(state))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self._state_path)

    def fetch_latest(self) -> tuple[str, CheckpointText]:
        """The latest checkpoint's note text, verified with the log key."""
        raw = self._get("/v1/checkpoints/latest/note").text
        try:
            note, _ = open_note(raw, [self.log_key])
            checkpoint = CheckpointText.parse(note.text)
        except NoteError as exc:
            raise Refusal("signature", f"the latest checkpoint does not verify with the log key: {exc}") from exc
        if checkpoint.origin != self.log_key.name:
            raise Refusal("origin", f"checkpoint origin {checkpoint.origin!r} is not the log key's name")
        return note.text, checkpoint

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The log's consistency proof between two sizes (checked by the caller, never trusted)."""
        doc = self._get("/v1/proofs/consistency", old_size=old_size, new_size=new_size).json()
        proof = doc.get("consistency_proof") or {}
        if (proof.get("old_size"), proof.get("new_size")) != (old_size, new_size):
            raise Refusal("proof", f"the log answered a proof for other sizes than {old_size} -> {new_size}")
        try:
            return [bytes.fromhex(h) for h in proof.get("hashes", [])]
        except (TypeError, ValueError) as exc:
            raise Refusal("proof", "the consistency proof is not hex hashes") from exc

    def step(self) -> StepResult:
        """Cosign the latest checkpoint if it is consistent with the last cosigned one; Refusal otherwise."""
        text, checkpoint = self.fetch_latest()
        state = self.state()
        last = state.get(checkpoint.origin)
        proof = None
        if last is not None and checkpoint.size > last.size > 0:
            proof = self.consistency_proof(last.size, checkpoint.size)
        check_extension(last, checkpoint, proof)
        timestamp = max(int(self._clock()), last.timestamp if last else 0)
        state[checkpoint.origin] = Cosigned(checkpoint.origin, checkpoint.size, checkpoint.root, timestamp)
        self._save(state)
        signature = cosign(self.name, self._key, text, timestamp)
        self.publish(checkpoint.size, signature)
        return StepResult(checkpoint.origin, checkpoint.size, last.size if last else None, signature)

    def publish(self, size: int, signature: NoteSignature) -> None:
        """POST the cosignature line to the gateway, which verifies and records it."""
        try:
            response = self._http.post(
                f"/v1/checkpoints/{size}/cosignatures",
                content=(signature.line + "\n").encode(),
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        except httpx.HTTPError as exc:
            raise WitnessError(f"publishing the cosignature of size {size}: {exc}") from exc
        if response.status_code != 202:
            raise WitnessError(
                f"the gateway refused the cosignature of size {size}: {response.status_code} {response.text[:300]}"
            )
