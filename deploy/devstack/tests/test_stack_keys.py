"""The devstack's trail identity: one origin for the writer, the matching verifier key for the gateway."""

from __future__ import annotations

from pathlib import Path

from fundtrail_devstack.stack import TRAIL_ORIGIN, Stack
from fundtrail_verify.checkpoint import load_private_key, sign_checkpoint, verify_checkpoint
from fundtrail_verify.note import NoteVerifier


def test_gateway_serves_the_vkey_of_the_key_the_tracker_signs_with(tmp_path: Path) -> None:
    stack = Stack(home=tmp_path, bootstrap="127.0.0.1:9", database_url="postgresql+psycopg://x@127.0.0.1:1/x")
    stack.ensure_keys()
    tracker, gateway = stack.service_env("fund-tracker"), stack.service_env("gateway")
    assert tracker["FUNDTRAIL_TRACKER_TRAIL_LOG_ID"] == TRAIL_ORIGIN
    vkey = NoteVerifier.from_vkey(gateway["FUNDTRAIL_GATEWAY_TRAIL_VKEY"])
    assert vkey.name == TRAIL_ORIGIN and vkey.vkey == stack.trail_vkey
    signing_key = load_private_key(tracker["FUNDTRAIL_TRACKER_SIGNING_KEY_PATH"])
    cp = sign_checkpoint(signing_key, TRAIL_ORIGIN, 1, bytes(32))
    assert verify_checkpoint(cp, vkey)
