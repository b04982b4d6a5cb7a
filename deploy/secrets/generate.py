"""Write the secrets deploy/compose.yaml mounts: database passwords and URLs (the owner's; the gateway's
reader role's), trail signing key, JWT keys, a SCRAM password per Kafka user, and Kafka's TLS files
(a CA and the broker's certificate for the names `kafka`, `localhost`, 127.0.0.1).

    uv run python deploy/secrets/generate.py [--dir deploy/secrets]

Existing files are kept (a lost signing key orphans every checkpoint it signed): delete one on purpose
to replace it, and read docs/operations.md ("Rotate the checkpoint signing key") before doing so for
the trail key.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import secrets
import sys
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fundtrail_schemas.kafka_acl import Role, principals
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
# Used on the host only (`fundtrail token`, re-issuing the broker certificate), never mounted: owner-only.
HOST_ONLY = frozenset({"jwt_private.pem", "kafka_ca_key.pem"})
# The services' login roles (deploy/compose.yaml `db-roles`): the gateway's a member of fundtrail_reader,
# each worker's a member of fundtrail_writer; only `migrate` logs in as the owner (DB_USER).
GATEWAY_DB_USER = "fundtrail_gateway"
SERVICE_DB_USERS = {"gateway": GATEWAY_DB_USER, "tracker": "fundtrail_tracker", "compliance": "fundtrail_compliance"}
# Kafka SCRAM users (deploy/compose.yaml `kafka-format`): the broker itself, the operator, each service.
KAFKA_USERS = ("broker", "operator", "fund-tracker", "compliance", "gateway")
# The bureaus' and auditors' SCRAM passwords, one `<user>.password` file each (`fundtrail acls
# --credentials-dir`, the `kafka-acls` service): a folder, as there are as many as regions.
KAFKA_USERS_DIR = "kafka-users"
# Kafka's TLS (deploy/compose.yaml): clients trust KAFKA_CA; the broker reads KAFKA_KEYSTORE (its key,
# PKCS#8, then its certificate and the CA: Kafka's `ssl.keystore.type=PEM`). The names the broker is
# reached by: `kafka` on the compose network, localhost / 127.0.0.1 through the published port.
KAFKA_CA = "kafka_ca.pem"
KAFKA_CA_KEY = "kafka_ca_key.pem"
KAFKA_KEYSTORE = "kafka_broker_keystore.pem"
KAFKA_TLS_NAMES = ("kafka", "localhost", "127.0.0.1")
CA_DAYS = 3650
CERT_DAYS = 825


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


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def kafka_tls(directory: Path, written: list[str], names: tuple[str, ...] = KAFKA_TLS_NAMES) -> None:
    """A CA (kept unless deleted) and a broker certificate for `names` signed by it; the certificate is
    re-issued when missing or when the CA changed. EC P-256 keys, SHA-256 signatures."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key_path, ca_path = directory / KAFKA_CA_KEY, directory / KAFKA_CA
    if ca_key_path.exists() and ca_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder().subject_name(_name("fundtrail Kafka CA")).issuer_name(_name("fundtrail Kafka CA"))
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        _write(ca_key_path, ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()), written)
        _write(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM), written)
    keystore = directory / KAFKA_KEYSTORE
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    if keystore.exists() and keystore.read_bytes().endswith(ca_pem):
        return
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    cert = (
        x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(keystore, pem + cert.public_bytes(serialization.Encoding.PEM) + ca_pem, written)


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
    passwords = {u: _password(directory / f"kafka_{u.replace('-', '_')}_password", written) for u in KAFKA_USERS}
    # The controller listener's PLAIN login (not a SCRAM user): only the broker's config holds it.
    controller = _password(directory / "kafka_controller_password", written)
    # Read by the broker through Kafka's FileConfigProvider (keys `password`, `controller_password`).
    _keep_in_step(directory / "kafka_broker.properties",
                  f"password={passwords['broker']}\ncontroller_password={controller}\n".encode(), written)
    users_dir = directory / KAFKA_USERS_DIR
    users_dir.mkdir(exist_ok=True)
    users_dir.chmod(0o755)  # bind-mounted into `kafka-acls` (uid 10001); deploy/secrets itself stays 0700
    for p in principals():
        if p.role in (Role.BUREAU, Role.AUDITOR):
            _password(users_dir / f"{p.name}.password", written)
    kafka_tls(directory, written)
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
    users = [w for w in written if w.endswith(".password")]  # the bureaus' and auditors', in KAFKA_USERS_DIR
    shown = [w for w in written if w not in users] + ([f"{len(users)} files in {KAFKA_USERS_DIR}/"] if users else [])
    print(f"wrote {', '.join(shown) if shown else 'nothing (all present)'} in {args.dir}")
    vkey = NoteVerifier.ed25519(args.origin, signing.public_key()).vkey
    print(f"trail verifier key (set FUNDTRAIL_GATEWAY_TRAIL_VKEY, publish to auditors): {vkey}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
