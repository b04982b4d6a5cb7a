"""The checkpoint signing key: loaded at start-up, generated only in development mode.

The key file must not be readable by others nor writable by its group (mode 0600, 0400, or 0440 for a
Kubernetes secret shared with the pod's fsGroup): a key others on the host can read lets them sign a
rewritten log. Mount it as a secret readable by the
worker's OS user alone; it never lives in PostgreSQL, so no database role can read it. A KMS or HSM
signer replaces it with any object offering `sign(message) -> 64-byte Ed25519 signature` and
`public_key()` (the two methods checkpoint signing calls; see docs/verifying.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_verify.checkpoint import generate_keypair, load_private_key, save_private_key, save_public_key

log = logging.getLogger(__name__)


class SigningKeyMissing(RuntimeError):
    """The configured signing key file does not exist and dev mode is off."""


class SigningKeyExposed(RuntimeError):
    """The signing key file can be read (or written) by others than its owner."""


def check_key_permissions(path: Path) -> None:
    """SigningKeyExposed when others may read `path`, or others than its owner may change it."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o027:
        raise SigningKeyExposed(
            f"signing key {path} has mode {mode:o}: others may read or change it; run chmod 600 {path} "
            "(or mount the secret with defaultMode 0400)"
        )


def public_key_path(private_key_path: Path) -> Path:
    """Where the public half of a generated key is written (`<name>.pub`)."""
    return private_key_path.with_name(private_key_path.name + ".pub")


def load_signing_key(path: Path, *, dev_mode: bool) -> Ed25519PrivateKey:
    """Load the Ed25519 key; in dev mode create it (and its .pub) when the file is missing."""
    if path.exists():
        check_key_permissions(path)
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
