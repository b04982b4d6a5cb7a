"""Load JWT keys named by the settings into a TokenCodec."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from ..core.tokens import TokenCodec, Verifier, VerifierChain
from ..settings import AuthSettings
from .oidc import OidcKeySource, oidc_verifier

_PUBLIC_TYPES: dict[str, type] = {"EdDSA": Ed25519PublicKey, "RS256": RSAPublicKey}
_PRIVATE_TYPES: dict[str, type] = {"EdDSA": Ed25519PrivateKey, "RS256": RSAPrivateKey}


def _load_private(settings: AuthSettings) -> Any:
    assert settings.jwt_private_key_file is not None
    key = serialization.load_pem_private_key(settings.jwt_private_key_file.read_bytes(), password=None)
    if not isinstance(key, _PRIVATE_TYPES[settings.jwt_algorithm]):
        raise ValueError(f"{settings.jwt_private_key_file} is not a {settings.jwt_algorithm} private key")
    return key


def _load_public(settings: AuthSettings) -> Any:
    assert settings.jwt_public_key_file is not None
    key = serialization.load_pem_public_key(settings.jwt_public_key_file.read_bytes())
    if not isinstance(key, _PUBLIC_TYPES[settings.jwt_algorithm]):
        raise ValueError(f"{settings.jwt_public_key_file} is not a {settings.jwt_algorithm} public key")
    return key


def token_codec(settings: AuthSettings, *, signing: bool = False) -> TokenCodec:
    """A codec that verifies (and, with `signing`, issues) tokens with the configured keys."""
    signing_key: Any = None
    if settings.jwt_algorithm == "HS256":
        assert settings.jwt_secret is not None
        secret = settings.jwt_secret.get_secret_value().encode()
        verify_key: Any = secret
        signing_key = secret if signing else None
    else:
        if signing:
            if settings.jwt_private_key_file is None:
                raise ValueError("issuing tokens needs FUNDTRAIL_GATEWAY_JWT_PRIVATE_KEY_FILE")
            signing_key = _load_private(settings)
        if settings.jwt_public_key_file is not None:
            verify_key = _load_public(settings)
        else:
            verify_key = _load_private(settings).public_key()
    return TokenCodec(
        settings.jwt_algorithm,
        verify_key,
        signing_key=signing_key,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway_seconds=settings.jwt_leeway_seconds,
        key_id=settings.jwt_key_id,
        max_lifetime_seconds=settings.token_max_lifetime_seconds,
        max_token_bytes=settings.token_max_bytes,
    )


def server_verifier(settings: AuthSettings) -> tuple[Verifier, OidcKeySource | None]:
    """What the server verifies tokens with, and the JWKS source to start in the lifespan (OIDC mode).

    OIDC mode accepts only the provider's tokens, unless development explicitly allows the local key too
    (settings refuse OIDC_ACCEPT_DEV_TOKENS elsewhere); the token's kid then picks the key set.
    """
    local = token_codec(settings) if settings.local_key_accepted else None
    if not settings.oidc_enabled:
        assert local is not None
        return local, None
    provider = oidc_verifier(settings)
    source = OidcKeySource(settings, provider)
    return (VerifierChain(provider, local) if local is not None else provider), source
