"""Trail items built from leaf bytes, checked against the copies the database keeps beside them.

What the API shows of a trail entry is parsed from its leaf (the bytes the Merkle log hashes), never
from the columns or tables that copy it. Each item carries the leaf bytes and the leaf hash computed
from them, so a client can verify the very bytes it shows; and each names what did not agree:

* `leaf_unparseable`: the stored bytes are not a leaf of the contract's format;
* `leaf_hash`: the hash of the bytes differs from the log's level-0 node (or the stored hash column);
* `column_mismatch`: a trail_entry column disagrees with the leaf;
* `chain_gap`: the entry's `prev` pointer in this subject's chain does not name the entry shown before
  it (an entry of the trail is missing or was moved).

A reader scoped to a region sees ledger states redacted (`core.scoping`). The leaf bytes are signed
data and cannot be redacted, so such a reader gets them only when they hold nothing it may not see
(redacting the leaf's states changes nothing); otherwise `leaf_data` is null and `leaf_withheld`
true, while the leaf index and hash stay (the hash's inclusion can still be proven).
"""

from __future__ import annotations

import base64
from typing import Any

from fundtrail_schemas.leaf import Leaf
from fundtrail_verify.entry import CHAIN_GAP, StoredEntry, check_entry

from .scoping import redact_state


def leaf_withheld(leaf: Leaf | None, region: str | None) -> bool:
    """Whether a reader of `region` (None: unrestricted) may not have the leaf bytes (module docstring)."""
    if region is None:
        return False
    if leaf is None:
        return True  # unparseable: what it holds cannot be told
    return redact_state(leaf.before, region) != leaf.before or redact_state(leaf.after, region) != leaf.after


def leaf_bytes_out(leaf_data: bytes, withheld: bool) -> dict[str, Any]:
    """The `leaf_data` and `leaf_withheld` fields of a response."""
    return {"leaf_data": None if withheld else base64.b64encode(leaf_data).decode("ascii"),
            "leaf_withheld": withheld}


def render_item(entry: StoredEntry, *, subject: str | None, previous: int | None,
                violation_status: str | None, proof_url: str, violation_url: str | None,
                region: str | None = None) -> dict[str, Any]:
    """One served trail item (TrailEntryOut), for a reader of `region` (None: unrestricted).

    `previous` is the leaf index of the subject's entry shown before this one (on this page, or the
    cursor's, or in a region-filtered view the last entry withheld since then), None for the first entry of
    the trail. `subject` names the chain to check; None checks none."""
    leaf, computed, problems = check_entry(entry)
    prev = leaf.prev if leaf is not None else {}
    if leaf is not None and subject is not None and prev.get(subject, -1) != previous:
        problems.append(CHAIN_GAP)
    item: dict[str, Any] = {
        "leaf_index": entry.seq,
        "leaf_hash": computed.hex(),
        **leaf_bytes_out(entry.leaf_data, leaf_withheld(leaf, region)),
        "verification": {"ok": not problems, "problems": problems},
        "prev": prev,
        "entry_kind": leaf.kind if leaf else None,
        "entry_id": leaf.entry_id if leaf else None,
        "event_type": leaf.event_type if leaf else None,
        "fund_doc_no": leaf.fund_doc_no if leaf else None,
        "project_id": leaf.project_id if leaf else None,
        "payment_id": leaf.payment_id if leaf else None,
        "contract_id": leaf.contract_id if leaf else None,
        "vendor_id": leaf.vendor_id if leaf else None,
        "violation_id": leaf.violation_id if leaf else None,
        "violation_status": violation_status,
        "region_code": leaf.region_code if leaf else None,
        "occurred_at": leaf.occurred_at if leaf else None,
        "appended_at": leaf.appended_at if leaf else None,
        "trace_id": leaf.trace_id if leaf else None,
        "publisher": leaf.publisher if leaf else None,
        "event": leaf.payload if leaf else None,
        "state_before": redact_state(leaf.before, region) if leaf else None,
        "state_after": redact_state(leaf.after, region) if leaf else None,
        "links": {"proof": proof_url, "violation": violation_url},
    }
    return item


def leaf_block(entry: StoredEntry, extra_problems: list[str] | None = None,
               region: str | None = None) -> tuple[Leaf | None, dict[str, Any]]:
    """The parsed leaf and the `leaf` object a detail response carries (index, hash, bytes, checks).

    The leaf is returned unredacted: callers showing its states to a reader of `region` redact them."""
    leaf, computed, problems = check_entry(entry)
    problems += extra_problems or []
    return leaf, {
        "leaf_index": entry.seq,
        "leaf_hash": computed.hex(),
        **leaf_bytes_out(entry.leaf_data, leaf_withheld(leaf, region)),
        "verification": {"ok": not problems, "problems": problems},
    }
