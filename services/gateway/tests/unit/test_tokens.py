"""JWT issuing and verification: every negative is refused."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from pydantic import ValidationError

from fundtrail_gateway.core.auth import Role
from fundtrail_gateway.core.tokens import (
    ClaimMapping,
    TokenCodec,
    TokenError,
    TokenRules,
    TokenVerifier,
    UnknownKeyError,
    VerifierChain,
    key_thumbprint,
    keys_from_jwks,
    principal_from_claims,
)
from fundtrail_gateway.settings import AuthSettings

NOW = datetime.now(UTC)
KEY = Ed25519PrivateKey.generate()
PUB_PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


KID = key_thumbprint("EdDSA", KEY.public_key())


def sign(payload: dict[str, object], key: object = KEY, algorithm: str = "EdDSA", kid: str | None = KID) -> str:
    """A token signed like `fundtrail token` does (header kid), or without a kid when kid is None."""
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid} if kid else None)  # type: ignore[arg-type]


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


HOUR = 3600
T = int(NOW.timestamp())
ALG_NONE = {"alg": "none", "typ": "JWT", "kid": KID}
HS256_HEADER = {"alg": "HS256", "typ": "JWT", "kid": KID}

# Each refused token and the reason code it must be refused with (the 401's `reason`).
NEGATIVES: dict[str, tuple[Callable[[], str], str]] = {
    "expired": (lambda: sign(claims(exp=T - HOUR, iat=T - 2 * HOUR)), "expired"),
    "not_yet_valid": (lambda: sign(claims(nbf=T + HOUR)), "not-yet-valid"),
    "issued_in_future": (lambda: sign(claims(iat=T + HOUR, exp=T + 2 * HOUR)), "issued-in-future"),
    "wrong_audience": (lambda: sign(claims(aud="someone-else")), "wrong-audience"),
    "wrong_audience_list": (lambda: sign(claims(aud=["a", "b"])), "wrong-audience"),
    "wrong_issuer": (lambda: sign(claims(iss="evil")), "wrong-issuer"),
    "missing_exp": (lambda: sign(claims(exp=None)), "missing-claim"),
    "missing_nbf": (lambda: sign(claims(nbf=None)), "missing-claim"),
    "missing_iat": (lambda: sign(claims(iat=None)), "missing-claim"),
    # The findings: a numeric-string exp in year 9999 used to pass, and so would a boolean.
    "exp_numeric_string_9999": (lambda: sign(claims(exp="253402300799")), "non-numeric-date"),
    "exp_bool": (lambda: sign(claims(exp=True)), "non-numeric-date"),
    "iat_string": (lambda: sign(claims(iat=str(T))), "non-numeric-date"),
    "nbf_string": (lambda: sign(claims(nbf=str(T))), "non-numeric-date"),
    "exp_year_9999": (lambda: sign(claims(exp=253402300799)), "lifetime-too-long"),
    "lifetime_13h": (lambda: sign(claims(exp=T + 13 * HOUR)), "lifetime-too-long"),
    "no_kid": (lambda: sign(claims(), kid=None), "missing-kid"),
    "unknown_kid": (lambda: sign(claims(), kid="someone-elses-key"), "unknown-kid"),
    "too_large": (lambda: sign(claims(padding="x" * 64 * 1024)), "token-too-large"),
    "alg_none": (lambda: f"{_b64(ALG_NONE)}.{_b64(claims())}.", "wrong-algorithm"),
    # Algorithm confusion: HS256 keyed with the (public) verification key's PEM bytes.
    "hs256_with_public_key": (lambda: ".".join([
        _b64(HS256_HEADER), _b64(claims()),
        base64.urlsafe_b64encode(
            hmac.new(PUB_PEM, f"{_b64(HS256_HEADER)}.{_b64(claims())}".encode(), "sha256").digest()
        ).rstrip(b"=").decode(),
    ]), "wrong-algorithm"),
    "other_key": (lambda: sign(claims(), Ed25519PrivateKey.generate()), "bad-signature"),
    "rs256_other_alg": (lambda: sign(claims(), generate_private_key(65537, 2048), "RS256"), "wrong-algorithm"),
    "tampered": (lambda: (lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"))(sign(claims())),
                 "bad-signature"),
    "compliance_without_region": (lambda: sign(claims(region=None)), "missing-region"),
    "bad_region": (lambda: sign(claims(region="44x705")), "bad-region"),
    "bad_department": (lambda: sign(claims(department="police")), "bad-department"),
    "garbage": (lambda: "not.a.token", "malformed"),
}


@pytest.mark.parametrize("name", sorted(NEGATIVES))
def test_negative_tokens_refused(name: str) -> None:
    make, reason = NEGATIVES[name]
    with pytest.raises(TokenError) as refused:
        codec().decode(make())
    assert refused.value.reason == reason, str(refused.value)


def test_lifetime_at_the_maximum_is_accepted() -> None:
    now = int(datetime.now(UTC).timestamp())
    p = codec(max_lifetime_seconds=12 * HOUR).decode(sign(claims(iat=now, nbf=now, exp=now + 12 * HOUR)))
    assert p.subject == "u1"
    with pytest.raises(TokenError, match="exceeds the maximum"):
        codec(max_lifetime_seconds=HOUR).decode(sign(claims(iat=now, nbf=now, exp=now + HOUR + 1)))


def test_size_is_checked_before_parsing() -> None:
    # Not even a JWT: refused for its size, never handed to a decoder.
    with pytest.raises(TokenError) as refused:
        codec(max_token_bytes=1024).decode("x" * 1025)
    assert refused.value.reason == "token-too-large"


def test_issued_tokens_carry_the_key_thumbprint_and_department() -> None:
    token = codec().issue("d", [Role.AUDITOR], None, now=datetime.now(UTC), ttl=timedelta(minutes=5),
                          department="inspection")
    assert jwt.get_unverified_header(token)["kid"] == KID
    assert codec().decode(token).department == "inspection"
    with pytest.raises(ValueError, match="maximum token lifetime"):
        codec().issue("d", [Role.AUDITOR], None, now=NOW, ttl=timedelta(hours=13))
    with pytest.raises(ValueError, match="department"):
        codec().issue("d", [Role.AUDITOR], None, now=NOW, ttl=timedelta(hours=1), department="police")


def test_key_thumbprint_is_rfc7638() -> None:
    # RFC 7638 section 3.1's example key and its thumbprint.
    rsa_jwk = {
        "kty": "RSA", "e": "AQAB", "alg": "RS256",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRX"
             "jBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSq"
             "zs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ"
             "-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    }
    key = jwt.PyJWK(rsa_jwk).key
    assert key_thumbprint("RS256", key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_jwks_keys_are_pinned_to_their_algorithm() -> None:
    rsa = generate_private_key(65537, 2048)
    rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa.public_key(), as_dict=True)
    jwks = {"keys": [
        {**rsa_jwk, "kid": "sig", "alg": "RS256", "use": "sig"},
        {**rsa_jwk, "kid": "enc", "alg": "RSA-OAEP", "use": "enc"},
        {**rsa_jwk, "alg": "RS256"},  # no kid: never selectable
        {**rsa_jwk, "kid": "rs512", "alg": "RS512"},  # not allowed
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},  # symmetric: never from a JWKS
    ]}
    keys = keys_from_jwks(jwks, ["RS256", "HS256"])
    assert [(k.kid, k.algorithm) for k in keys] == [("sig", "RS256")]
    verifier = TokenVerifier(keys, TokenRules("fundtrail-gateway", "fundtrail", required_claims=("exp", "iat")))
    assert verifier.decode(sign(claims(), rsa, "RS256", kid="sig")).subject == "u1"
    # The same key with another algorithm than the one pinned to it is refused.
    with pytest.raises(TokenError) as refused:
        verifier.decode(sign(claims(), rsa, "PS256", kid="sig"))
    assert refused.value.reason == "wrong-algorithm"


def test_claim_mapping_reads_nested_roles_region_and_department() -> None:
    mapping = ClaimMapping(role_claim="realm_access.roles", region_claim="fundtrail.region",
                           department_claim="dept")
    p = principal_from_claims({"sub": "k", "realm_access": {"roles": ["compliance", "offline_access"]},
                               "fundtrail": {"region": "440705"}, "dept": "audit"}, mapping)
    assert p.roles == {Role.COMPLIANCE} and p.region == "440705" and p.department == "audit"
    custom = ClaimMapping(role_claim="fundtrail_role", region_claim="region", department_claim=None)
    p = principal_from_claims({"sub": "k", "fundtrail_role": "auditor", "dept": "police"}, custom)
    assert p.roles == {Role.AUDITOR} and p.department is None


def test_replacing_keys_forgets_cached_tokens() -> None:
    c = codec()
    token = c.issue("r", [Role.AUDITOR], None, now=datetime.now(UTC), ttl=timedelta(minutes=5))
    assert c.decode(token).subject == "r"
    assert c.replace_keys([]) is True
    with pytest.raises(UnknownKeyError):
        c.decode(token)


def test_chain_picks_the_verifier_by_kid() -> None:
    other = Ed25519PrivateKey.generate()
    second = TokenCodec("EdDSA", other.public_key(), signing_key=other, audience="fundtrail-gateway", issuer="idp")
    chain = VerifierChain(second, codec())
    now = datetime.now(UTC)
    assert chain.decode(codec().issue("a", [Role.AUDITOR], None, now=now, ttl=timedelta(minutes=5))).subject == "a"
    assert chain.decode(second.issue("b", [Role.AUDITOR], None, now=now, ttl=timedelta(minutes=5))).subject == "b"
    with pytest.raises(UnknownKeyError):
        chain.decode(sign(claims(), kid="nobody"))


def test_no_scope_means_no_roles() -> None:
    p = codec().decode(sign(claims(scope=None, region=None)))
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
        codec().decode(sign(claims(), secret, "HS256"))


def test_token_cli_signs_with_kid_and_refuses_long_ttl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from fundtrail_gateway.cli import token

    pem = tmp_path / "jwt.pem"
    pem.write_bytes(KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    for name in ("FUNDTRAIL_GATEWAY_OIDC_ISSUER", "FUNDTRAIL_GATEWAY_JWT_KEY_ID", "FUNDTRAIL_GATEWAY_JWT_ALGORITHM"):
        monkeypatch.delenv(name, raising=False)
    app = typer.Typer()
    app.command()(token)
    ok = CliRunner().invoke(app, ["--role", "auditor", "--subject", "cli", "--department", "audit",
                                  "--private-key", str(pem)])
    assert ok.exit_code == 0, ok.output
    issued = ok.stdout.strip().splitlines()[-1]
    assert jwt.get_unverified_header(issued)["kid"] == KID
    assert codec().decode(issued).department == "audit"
    too_long = CliRunner().invoke(app, ["--role", "auditor", "--subject", "cli", "--ttl", str(13 * HOUR),
                                        "--private-key", str(pem)])
    assert too_long.exit_code == 2 and "maximum token lifetime" in too_long.output
