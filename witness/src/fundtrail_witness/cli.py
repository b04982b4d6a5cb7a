"""`fundtrail witness keygen` and `fundtrail witness run` (also installed as `fundtrail-witness`)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_verify.note import SIG_COSIGNATURE_V1, NoteError, NoteVerifier

from .core import Refusal
from .witness import Witness, WitnessError

log = logging.getLogger("fundtrail_witness")
app = typer.Typer(help="A witness for the trail log: cosigns checkpoints consistent with what it cosigned before.",
                  no_args_is_help=True)

# Exit codes: 1 refused (fork, rollback, bad signature or proof: investigate), 2 usage, 3 log unreachable.
EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


def _load_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


@app.command()
def keygen(
    name: Annotated[str, typer.Option(help="The witness's key name, e.g. audit.jiangmen.example/witness")],
    out: Annotated[Path, typer.Option(help="Where to write the private key (PKCS#8 PEM, owner-only)")],
) -> None:
    """Create the witness key and print its cosigner verifier key (give that to the log operator and readers)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    typer.echo(NoteVerifier.ed25519(name, key.public_key(), SIG_COSIGNATURE_V1).vkey)


@app.command()
def vkey(
    name: Annotated[str, typer.Option(help="The witness's key name")],
    key: Annotated[Path, typer.Option(help="The witness private key (PEM)")],
) -> None:
    """Print the cosigner verifier key of an existing witness key."""
    typer.echo(NoteVerifier.ed25519(name, _load_key(key).public_key(), SIG_COSIGNATURE_V1).vkey)


@app.command()
def run(
    api: Annotated[str, typer.Option(envvar="FUNDTRAIL_API_URL", help="Gateway base URL")],
    log_key: Annotated[str, typer.Option(envvar="FUNDTRAIL_LOG_KEY", help="The log's verifier key (vkey)")],
    name: Annotated[str, typer.Option(help="The witness's key name")],
    key: Annotated[Path, typer.Option(help="The witness private key (PEM)")],
    state: Annotated[Path, typer.Option(help="State file: the last cosigned checkpoint per log")],
    token: Annotated[
        str | None, typer.Option(envvar="FUNDTRAIL_TOKEN", help="Bearer token for consistency proofs (auditor)")
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between checks")] = 30.0,
    once: Annotated[bool, typer.Option(help="Check and cosign once, then exit")] = False,
) -> None:
    """Follow the log; cosign each checkpoint consistent with the last cosigned one; stop on a fork or rollback."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        witness = Witness(api, NoteVerifier.from_vkey(log_key), name, _load_key(key), state, token=token)
    except (NoteError, ValueError, OSError) as exc:
        log.error("cannot start the witness: %s", exc)
        raise typer.Exit(EXIT_USAGE) from exc
    try:
        while True:
            try:
                result = witness.step()
            except Refusal as exc:
                # Loud by design: this is the event a witness exists for. No cosignature was made.
                log.error("REFUSED to cosign (%s): %s", exc.kind, exc.message)
                raise typer.Exit(EXIT_REFUSED) from exc
            except WitnessError as exc:
                log.warning("%s", exc)
                if once:
                    raise typer.Exit(EXIT_UNREACHABLE) from exc
            else:
                log.info("cosigned %s size %d (previously %s)", result.origin, result.size, result.previous_size)
                typer.echo(result.signature.line)
            if once:
                return
            time.sleep(interval)
    finally:
        witness.close()


def main() -> None:
    """Console-script entry point."""
    app()
