"""Write the secrets deploy/compose.yaml mounts: database passwords and URLs (the owner's; the gateway's
reader role's), trail signing key, JWT keys, and a SCRAM password per Kafka user.

    uv run python deploy/secrets/generate.py [--dir deploy/secrets]

Existing files are kept (a lost signing key orphans every checkpoint it signed): delete one on purpose
to replace it, and read docs/operations.md ("Rotate the checkpoint signing key") before doing so for
the trail key.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from urllib.parse import quote

from fundtrail_verify.checkpoint import (
    generate_keypair,
    private_key_from_pem,
    private_key_to_pem,
    public_key_to_pem,
)
from fundtrail_verify.note import NoteVerifier

HERE = Path(__file__).resolve().parent
DB_USER = "fundtrail"
DB_NAME = "fundtrail"
DB_HOST = "postgres:5432"

# Compose (without swarm) bind-mounts secret files with their host mode and owner, and the services run
# as uid 10001: mounted files must be world-readable, so the directory is closed to other host users instead.
FILE_MODE = 0o644
DIR_MODE = 0o700
# Used on the host only (`fundtrail token`), never mounted: owner-only.
HOST_ONLY = frozenset({"jwt_private.pem"})
# The services' login roles (deploy/compose.yaml `db-roles`): the gateway's a member of fundtrail_reader,
# each worker's a member of fundtrail_writer; only `migrate` logs in as the owner (DB_USER).
GATEWAY_DB_USER = "fundtrail_gateway"
SERVICE_DB_USERS = {"gateway": GATEWAY_DB_USER, "tracker": "fundtrail_tracker", "compliance": "fundtrail_compliance"}
# Kafka SCRAM users (deploy/compose.yaml `kafka-format`): the broker itself, the operator, each service.
KAFKA_USERS = ("broker", "operator", "fund-tracker", "compliance", "gateway")


def _write(path: Path, data: bytes, written: list[str]) -> None:
    path.write_bytes(data)
    path.chmod(0o600 if path.name in HOST_ONLY else FILE_MODE)
    written.append(path.name)


def _keypair(directory: Path, private_name: str, public_name: str, written: list[str]) -> None:
    """Create an Ed25519 key pair unless the private key exists; (re)write the public key from it."""
    private_path = directory / private_name
    if private_path.exists():
        private_key = private_key_from_pem(private_path.read_bytes())
    else:
        private_key, _ = generate_keypair()
        _write(private_path, private_key_to_pem(private_key), written)
    public_path = directory / public_name
    public_pem = public_key_to_pem(private_key.public_key())
    if not public_path.exists() or public_path.read_bytes() != public_pem:
        _write(public_path, public_pem, written)


def _password(path: Path, written: list[str]) -> str:
    """The password in `path`, created first if missing."""
    if not path.exists():
        _write(path, secrets.token_urlsafe(32).encode(), written)
    return path.read_text(encoding="utf-8").strip()


def _keep_in_step(path: Path, data: bytes, written: list[str]) -> None:
    """Write a file derived from another secret when it is missing or differs."""
    if not path.exists() or path.read_bytes() != data:
        _write(path, data, written)


def generate(directory: Path) -> list[str]:
    """Create every missing secret file in `directory`; return the names written."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(DIR_MODE)
    written: list[str] = []
    logins = [(DB_USER, "postgres_password", "database_url")]
    logins += [(user, f"{svc}_db_password", f"{svc}_database_url") for svc, user in SERVICE_DB_USERS.items()]
    for user, password_name, url_name in logins:
        password = _password(directory / password_name, written)
        url = f"postgresql+psycopg://{user}:{quote(password, safe='')}@{DB_HOST}/{DB_NAME}".encode()
        _keep_in_step(directory / url_name, url, written)
    for user in KAFKA_USERS:
        password = _password(directory / f"kafka_{user.replace('-', '_')}_password", written)
        if user == "broker":  # read by the broker through Kafka's FileConfigProvider (key `password`)
            _keep_in_step(directory / "kafka_broker.properties", f"password={password}\n".encode(), written)
    _keypair(directory, "trail_signing_key.pem", "trail_signing_public.pem", written)
    _keypair(directory, "jwt_private.pem", "jwt_public.pem", written)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=HERE, help="where to write (default: this folder)")
    parser.add_argument("--origin", default="fundtrail.example/jiangmen/trail",
                        help="the trail's checkpoint origin (FUNDTRAIL_TRACKER_TRAIL_LOG_ID)")
    args = parser.parse_args(argv)
    written = generate(args.dir)
    signing = private_key_from_pem((args.dir / "trail_signing_key.pem").read_bytes())
    print(f"wrote {', '.join(written) if written else 'nothing (all present)'} in {args.dir}")
    vkey = NoteVerifier.ed25519(args.origin, signing.public_key()).vkey
    print(f"trail verifier key (set FUNDTRAIL_GATEWAY_TRAIL_VKEY, publish to auditors): {vkey}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
