"""JWT issuing and verification: every negative is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from pydantic import ValidationError

from fundtrail_gateway.core.auth import Role
from fundtrail_gateway.core.tokens import TokenCodec, TokenError
from fundtrail_gateway.settings import AuthSettings

NOW = datetime.now(UTC)
KEY = Ed25519PrivateKey.generate()
PUB_PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def codec(**kw: object) -> TokenCodec:
    args = {"audience": "fundtrail-gateway", "issuer": "fundtrail"}
    args.update(kw)
    return TokenCodec("EdDSA", KEY.public_key(), signing_key=KEY, **args)  # type: ignore[arg-type]


def claims(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"sub": "u1", "iss": "fundtrail", "aud": "fundtrail-gateway", "scope": "compliance",
                               "region": "440705", "iat": int(NOW.timestamp()), "nbf": int(NOW.timestamp()),
                               "exp": int((NOW + timedelta(hours=1)).timestamp())}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_round_trip() -> None:
    # Issued now, not at import: the suite can take longer than the token's five minutes.
    token = codec().issue("alice", [Role.COMPLIANCE], "440705", now=datetime.now(UTC), ttl=timedelta(minutes=5))
    p = codec().decode(token)
    assert p.subject == "alice" and p.roles == {Role.COMPLIANCE} and p.region == "440705"


def _b64(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


NEGATIVES = {
    "expired": lambda: jwt.encode(claims(exp=int((NOW - timedelta(hours=1)).timestamp()),
                                         iat=int((NOW - timedelta(hours=2)).timestamp())), KEY, algorithm="EdDSA"),
    "not_yet_valid": lambda: jwt.encode(claims(nbf=int((NOW + timedelta(hours=1)).timestamp())), KEY,
                                        algorithm="EdDSA"),
    "wrong_audience": lambda: jwt.encode(claims(aud="someone-else"), KEY, algorithm="EdDSA"),
    "wrong_issuer": lambda: jwt.encode(claims(iss="evil"), KEY, algorithm="EdDSA"),
    "missing_exp": lambda: jwt.encode(claims(exp=None), KEY, algorithm="EdDSA"),
    "missing_nbf": lambda: jwt.encode(claims(nbf=None), KEY, algorithm="EdDSA"),
    "missing_iat": lambda: jwt.encode(claims(iat=None), KEY, algorithm="EdDSA"),
    "alg_none": lambda: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims())}.",
    # Algorithm confusion: HS256 keyed with the (public) verification key's PEM bytes.
    "hs256_with_public_key": lambda: ".".join([
        _b64({"alg": "HS256", "typ": "JWT"}), _b64(claims()),
        base64.urlsafe_b64encode(
            __import__("hmac").new(PUB_PEM, f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims())}".encode(),
                                   "sha256").digest()
        ).rstrip(b"=").decode(),
    ]),
    "other_key": lambda: jwt.encode(claims(), Ed25519PrivateKey.generate(), algorithm="EdDSA"),
    "rs256_other_alg": lambda: jwt.encode(claims(), generate_private_key(65537, 2048), algorithm="RS256"),
    "tampered": lambda: (lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"))(
        jwt.encode(claims(), KEY, algorithm="EdDSA")),
    "compliance_without_region": lambda: jwt.encode(claims(region=None), KEY, algorithm="EdDSA"),
    "bad_region": lambda: jwt.encode(claims(region="44x705"), KEY, algorithm="EdDSA"),
    "garbage": lambda: "not.a.token",
}


@pytest.mark.parametrize("name", sorted(NEGATIVES))
def test_negative_tokens_refused(name: str) -> None:
    with pytest.raises(TokenError):
        codec().decode(NEGATIVES[name]())


def test_no_scope_means_no_roles() -> None:
    p = codec().decode(jwt.encode(claims(scope=None, region=None), KEY, algorithm="EdDSA"))
    assert p.roles == frozenset()


def test_issue_refuses_regional_role_without_region() -> None:
    with pytest.raises(ValueError):
        codec().issue("b", [Role.BUREAU], None, now=NOW, ttl=timedelta(minutes=1))
    with pytest.raises(ValueError):
        codec().issue("b", [], "440705", now=NOW, ttl=timedelta(minutes=1))


def test_settings_refuse_placeholder_secret_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNDTRAIL_GATEWAY_ENVIRONMENT", raising=False)
    with pytest.raises(ValidationError, match="placeholder"):
        AuthSettings(jwt_algorithm="HS256", jwt_secret="changethis")
    with pytest.raises(ValidationError, match="placeholder"):
        AuthSettings(jwt_algorithm="HS256", jwt_secret="short", environment="test")
    with pytest.warns(UserWarning):
        AuthSettings(jwt_algorithm="HS256", jwt_secret="changethis", environment="development")
    ok = AuthSettings(jwt_algorithm="HS256", jwt_secret="x" * 40, environment="production")
    assert ok.jwt_secret is not None
    with pytest.raises(ValidationError):
        AuthSettings(jwt_algorithm="EdDSA")


def test_hs256_codec_round_trip() -> None:
    secret = b"s" * 48
    c = TokenCodec("HS256", secret, signing_key=secret, audience="a", issuer="i")
    # Issued now: PyJWT checks expiry against the wall clock.
    issued = c.issue("x", [Role.AUDITOR], None, now=datetime.now(UTC), ttl=timedelta(minutes=1))
    assert c.decode(issued).roles == {Role.AUDITOR}
    # An EdDSA-pinned codec refuses an HS256 token whatever the key.
    with pytest.raises(TokenError):
        codec().decode(jwt.encode(claims(), secret, algorithm="HS256"))
