"""The checkpoint signing key's file permissions are checked before it is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from fundtrail_tracker.keys import SigningKeyExposed, load_signing_key
from fundtrail_verify.checkpoint import generate_keypair, save_private_key


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o440])
def test_a_key_only_its_owner_and_group_may_read_loads(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key.pem"
    private, _ = generate_keypair()
    save_private_key(path, private)
    path.chmod(mode)
    assert load_signing_key(path, dev_mode=False).public_key() == private.public_key()


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o660, 0o666])
def test_a_key_others_may_read_or_change_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key.pem"
    save_private_key(path, generate_keypair()[0])
    path.chmod(mode)
    with pytest.raises(SigningKeyExposed, match="chmod 600"):
        load_signing_key(path, dev_mode=True)
