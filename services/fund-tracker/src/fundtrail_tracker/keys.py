"""The checkpoint signing key: loaded at start-up, generated only in development mode."""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_schemas.checkpoint import generate_keypair, load_private_key, save_private_key, save_public_key

log = logging.getLogger(__name__)


class SigningKeyMissing(RuntimeError):
    """The configured signing key file does not exist and dev mode is off."""


def public_key_path(private_key_path: Path) -> Path:
    """Where the public half of a generated key is written (`<name>.pub`)."""
    return private_key_path.with_name(private_key_path.name + ".pub")


def load_signing_key(path: Path, *, dev_mode: bool) -> Ed25519PrivateKey:
    """Load the Ed25519 key; in dev mode create it (and its .pub) when the file is missing."""
    if path.exists():
        return load_private_key(path)
    if not dev_mode:
        raise SigningKeyMissing(
            f"signing key {path} does not exist; create one (openssl genpkey -algorithm ed25519 -out {path}) "
            "or set FUNDTRAIL_TRACKER_DEV_MODE=true for a throw-away development key"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    private_key, public_key = generate_keypair()
    save_private_key(path, private_key)
    save_public_key(public_key_path(path), public_key)
    log.warning("dev mode: generated a new checkpoint signing key at %s", path)
    return private_key
