"""`fundtrail token` and `fundtrail token-keys` (entry-point group fundtrail.cli).

`fundtrail verify` is the auditor's, in fundtrail_verify (installable without the gateway).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .core.auth import Role

console = Console()
err = Console(stderr=True)


def token(
    role: Annotated[list[Role], typer.Option("--role", "-r", help="Role (repeat for several)")],
    subject: Annotated[str, typer.Option(help="Who the token names (user id)")],
    region: Annotated[str | None, typer.Option(help="Region code the token is scoped to")] = None,
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds (default from settings)")] = None,
    department: Annotated[str | None, typer.Option(help="Department claim (inspection, finance, ...)")] = None,
    private_key: Annotated[
        Path | None, typer.Option(help="PEM private key (default FUNDTRAIL_GATEWAY_JWT_PRIVATE_KEY_FILE)")
    ] = None,
) -> None:
    """Issue a development/demo bearer token signed with the gateway's key from settings (header kid included)."""
    from .adapters.keys import token_codec
    from .settings import AuthSettings

    overrides: dict[str, Any] = {"jwt_private_key_file": private_key} if private_key else {}
    try:
        settings = AuthSettings(**overrides)
        codec = token_codec(settings, signing=True)
        issued = codec.issue(
            subject, role, region, now=datetime.now(UTC), ttl=timedelta(seconds=ttl or settings.token_ttl_seconds),
            department=department,
        )
    except ValueError as exc:
        err.print(f"[red]cannot issue a token:[/] {exc}")
        raise typer.Exit(2) from exc
    if not settings.local_key_accepted:
        err.print("[yellow]note:[/] FUNDTRAIL_GATEWAY_OIDC_ISSUER is set: a gateway with these settings accepts "
                  "only the identity provider's tokens, not this one")
    typer.echo(issued)


def token_keys(
    out: Annotated[Path, typer.Option(help="Directory for jwt.pem and jwt.pub.pem")] = Path("."),
    algorithm: Annotated[str, typer.Option(help="EdDSA or RS256")] = "EdDSA",
) -> None:
    """Generate a JWT signing key pair (private key readable by the owner only)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if algorithm == "EdDSA":
        key: Any = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        err.print("[red]algorithm must be EdDSA or RS256[/]")
        raise typer.Exit(2)
    out.mkdir(parents=True, exist_ok=True)
    priv, pub = out / "jwt.pem", out / "jwt.pub.pem"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    console.print(f"wrote {priv} and {pub}; set FUNDTRAIL_GATEWAY_JWT_ALGORITHM={algorithm}, "
                  f"FUNDTRAIL_GATEWAY_JWT_PUBLIC_KEY_FILE={pub} (server), "
                  f"FUNDTRAIL_GATEWAY_JWT_PRIVATE_KEY_FILE={priv} (token CLI)")


# --- verify ------------------------------------------------------------------------------------
