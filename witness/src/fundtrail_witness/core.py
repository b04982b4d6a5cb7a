"""The witness's decision, pure: may this checkpoint be cosigned after the last one we cosigned?

A witness cosigns a checkpoint only if it is consistent with every checkpoint it cosigned before:
never a smaller tree (rollback), never another root for a size it has seen (fork), never a larger
tree without a consistency proof from the last cosigned one (c2sp.org/tlog-witness semantics).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from fundtrail_verify.merkle import verify_consistency
from fundtrail_verify.note import CheckpointText


class Refusal(Exception):
    """The witness will not cosign: ``kind`` is rollback, fork, origin or proof."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class Cosigned:
    """The last checkpoint this witness cosigned for one log."""

    origin: str
    size: int
    root: bytes
    timestamp: int

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "root": base64.b64encode(self.root).decode("ascii"), "timestamp": self.timestamp}

    @classmethod
    def from_json(cls, origin: str, data: dict[str, Any]) -> Cosigned:
        return cls(origin, int(data["size"]), base64.b64decode(data["root"], validate=True), int(data["timestamp"]))


def check_extension(last: Cosigned | None, new: CheckpointText, proof: list[bytes] | None) -> None:
    """Return if ``new`` may be cosigned after ``last``; raise Refusal saying why not."""
    if last is None:
        return  # first use: trust on first sight, as every witness must
    if new.origin != last.origin:
        raise Refusal("origin", f"checkpoint of log {new.origin!r}, this state is for {last.origin!r}")
    if new.size < last.size:
        raise Refusal(
            "rollback", f"the log shows {new.size} leaves but {last.size} were already cosigned: it went back"
        )
    if new.size == last.size:
        if new.root != last.root:
            raise Refusal(
                "fork",
                f"size {new.size} now has root {base64.b64encode(new.root).decode()}, "
                f"but root {base64.b64encode(last.root).decode()} was cosigned: two histories",
            )
        return
    if last.size == 0:
        return
    if proof is None:
        raise Refusal("proof", f"no consistency proof from size {last.size} to {new.size}")
    try:
        ok = verify_consistency(last.size, new.size, last.root, new.root, proof)
    except ValueError:
        ok = False
    if not ok:
        raise Refusal(
            "fork",
            f"the checkpoint of size {new.size} does not extend the cosigned one of size {last.size}: "
            "the consistency proof fails (the log was rewritten)",
        )


def load_state(text: str) -> dict[str, Cosigned]:
    """Parse the state file: the last cosigned checkpoint per origin."""
    data = json.loads(text) if text.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("the witness state file is not a JSON object")
    return {origin: Cosigned.from_json(origin, v) for origin, v in data.items()}


def dump_state(state: dict[str, Cosigned]) -> str:
    """The state file's text."""
    return json.dumps({o: c.to_json() for o, c in sorted(state.items())}, indent=2) + "\n"
