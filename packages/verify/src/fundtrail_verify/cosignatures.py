"""The registry record of a witness cosignature: what the gateway publishes and fund-tracker stores.

A witness POSTs its tlog-cosignature/v1 line to the gateway; the gateway verifies it against the
configured witness keys and the stored checkpoint, then publishes this record on
``fundtrail.trail.cosignatures`` (the gateway writes only through Kafka); fund-tracker stores it in
``trail_cosignature``. Readers verify the line again before serving it, so a record that was
altered in between is never shown as a cosignature.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .note import NoteError, NoteSignature

__all__ = ["COSIGNATURE_FORMAT", "CheckpointCosigned"]

COSIGNATURE_FORMAT: Final = "fundtrail.cosignature/v1"


class CheckpointCosigned(BaseModel):
    """A witness cosigned the checkpoint of ``tree_size`` leaves with root ``root_hash``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Annotated[str, StringConstraints(pattern=r"^fundtrail\.cosignature/v1$")] = COSIGNATURE_FORMAT
    origin: str = Field(min_length=1, max_length=256)
    tree_size: int = Field(ge=1, le=2**63 - 1)
    root_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    witness_name: str = Field(min_length=1, max_length=256)
    key_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8}$")]
    timestamp: int = Field(ge=0, le=2**63 - 1, description="The signed time, POSIX seconds")
    line: str = Field(min_length=1, max_length=1024, description="The signature line, without newline")

    def signature(self) -> NoteSignature:
        """The parsed line; NoteError if it does not name this record's witness and key hash."""
        sig = NoteSignature.parse_line(self.line)
        if sig.name != self.witness_name or f"{sig.key_hash:08x}" != self.key_hash:
            raise NoteError("the cosignature line names another witness or key")
        return sig

    @property
    def cosigned_at(self) -> datetime:
        """The signed time as an aware datetime."""
        return datetime.fromtimestamp(self.timestamp, UTC)

    @property
    def kafka_key(self) -> bytes:
        """Records of one log stay in order on one partition."""
        return self.origin.encode()


