"""JWT bearer tokens: issue (CLI) and verify (server) against a key set, each key pinned to one algorithm.

Verification order matters: the size check comes before any decoding, the key is chosen by `kid` (a token
without one, or naming an unknown one, is refused), the algorithm must be the one pinned to that key, the
signature is checked, and only then are the claims read, by this module's own rules (numeric dates only,
a bounded lifetime) rather than PyJWT's lenient ones (it accepts `"exp": "253402300799"`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import jwt
from jwt.algorithms import get_default_algorithms

from fundtrail_schemas.types import Department

from .auth import REGIONAL_ROLES, Principal, Role, parse_scopes

_CACHE_SIZE = 10_000
_REGION_RE = re.compile(r"^(\d{6}|\d{9}|\d{12})$")
_DEPARTMENTS = frozenset(d.value for d in Department)
DATE_CLAIMS = ("exp", "nbf", "iat")
# Asymmetric algorithms an identity provider's keys may use; HS* and "none" never come from a JWKS.
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                                   "ES512", "EdDSA"})
# Members of each key type's RFC 7638 thumbprint.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"),
                       "oct": ("k", "kty")}


class TokenError(ValueError):
    """The token is not acceptable; the message is safe to show the caller, `reason` is a stable code."""

    def __init__(self, message: str, reason: str = "invalid-token") -> None:
        super().__init__(message)
        self.reason = reason


class UnknownKeyError(TokenError):
    """The token names a key id the verifier does not hold (maybe the provider rotated its keys)."""

    def __init__(self, kid: str) -> None:
        super().__init__("token is signed with an unknown key (kid)", "unknown-kid")
        self.kid = kid


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One public (or HS256 shared) key, the only algorithm accepted with it, and its id."""

    kid: str
    algorithm: str
    key: Any


@dataclass(frozen=True, slots=True)
class TokenRules:
    """What every accepted token must satisfy besides its signature."""

    audience: str
    issuer: str
    leeway_seconds: int = 30
    max_lifetime_seconds: int = 12 * 3600
    max_token_bytes: int = 8192
    # Identity providers (Keycloak) do not put `nbf` in access tokens; locally issued tokens always have it.
    required_claims: tuple[str, ...] = ("exp", "iat", "nbf", "aud", "iss", "sub")


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """Where the roles, region and department are in the claims; dotted paths reach into objects."""

    role_claim: str = "scope"
    region_claim: str = "region"
    department_claim: str | None = "department"


class Verifier(Protocol):
    """Anything that turns a bearer token into a principal."""

    def decode(self, token: str, now: float | None = None) -> Principal:
        """The principal a valid token names; TokenError for anything else."""
        ...


def key_thumbprint(algorithm: str, key: Any) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): a key id both the CLI and the server derive alike."""
    public = key.public_key() if hasattr(key, "public_key") else key
    jwk: dict[str, Any] = get_default_algorithms()[algorithm].to_jwk(public, as_dict=True)
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def keys_from_jwks(jwks: Mapping[str, Any], allowed_algorithms: Iterable[str]) -> list[VerificationKey]:
    """The signature keys of a JWK Set usable with `allowed_algorithms`; others are left out, not fatal."""
    allowed = frozenset(allowed_algorithms) & ASYMMETRIC_ALGORITHMS
    raw = jwks.get("keys")
    if not isinstance(raw, list):
        raise TokenError("the JWK Set has no keys array", "bad-jwks")
    keys: list[VerificationKey] = []
    for item in raw:
        if not isinstance(item, dict) or item.get("use", "sig") != "sig":
            continue
        kid = item.get("kid")
        if not isinstance(kid, str) or not kid:
            continue  # a key without an id could never be chosen: tokens must name their key
        try:
            pyjwk = jwt.PyJWK(item, algorithm=item.get("alg"))
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, KeyError, TypeError):
            continue
        if pyjwk.algorithm_name in allowed:
            keys.append(VerificationKey(kid, pyjwk.algorithm_name, pyjwk.key))
    return keys


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`realm_access.roles`); a claim whose own name has the dots wins."""
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # bool is an int in Python; "1700000000" is what PyJWT would quietly accept.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenError(f"token claim {name!r} must be a number of seconds (NumericDate)", "non-numeric-date")
    return float(value)


def check_claims(claims: Mapping[str, Any], rules: TokenRules, now: float) -> float:
    """Validate the registered claims of a signature-checked token; the expiry time when they pass."""
    for name in rules.required_claims:
        if name not in claims:
            raise TokenError(f"token lacks the {name!r} claim", "missing-claim")
    exp, nbf, iat = (_numeric_date(claims, n) for n in DATE_CLAIMS)
    if claims.get("iss") != rules.issuer:
        raise TokenError("token is from another issuer", "wrong-issuer")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if rules.audience not in audiences:
        raise TokenError("token is for another audience", "wrong-audience")
    if exp is None or iat is None:
        raise TokenError("token must carry 'exp' and 'iat'", "missing-claim")
    if exp - iat > rules.max_lifetime_seconds:
        raise TokenError(
            f"token lifetime (exp - iat = {int(exp - iat)} s) exceeds the maximum of {rules.max_lifetime_seconds} s",
            "lifetime-too-long",
        )
    if now > exp + rules.leeway_seconds:
        raise TokenError("token has expired", "expired")
    if iat > now + rules.leeway_seconds:
        raise TokenError("token is issued in the future", "issued-in-future")
    if nbf is not None and nbf > now + rules.leeway_seconds:
        raise TokenError("token is not valid yet", "not-yet-valid")
    return exp


class TokenVerifier:
    """Verifies tokens against a replaceable key set; a key set change forgets every cached verdict."""

    def __init__(self, keys: Iterable[VerificationKey], rules: TokenRules, mapping: ClaimMapping | None = None) -> None:
        self.rules = rules
        self.mapping = mapping or ClaimMapping()
        self._keys: dict[str, VerificationKey] = {k.kid: k for k in keys}
        # Verified tokens by their exact text: a client reuses its token for many requests, and a
        # signature check costs more than the rest of a cached read. Expiry is still checked on every hit.
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    @property
    def kids(self) -> frozenset[str]:
        """The key ids currently accepted."""
        return frozenset(self._keys)

    def replace_keys(self, keys: Iterable[VerificationKey]) -> bool:
        """Install a new key set (after a JWKS fetch); True if it differs from the old one."""
        new = {k.kid: k for k in keys}
        changed = {k: (v.algorithm, v.key) for k, v in new.items()} != {
            k: (v.algorithm, v.key) for k, v in self._keys.items()
        }
        self._keys = new
        if changed:
            # A token of a removed key must not live on in the cache.
            self._cache.clear()
        return changed

    def decode(self, token: str, now: float | None = None) -> Principal:
        """The principal a valid token names; TokenError for anything else."""
        at = time.time() if now is None else now
        if len(token) > self.rules.max_token_bytes:
            raise TokenError(f"token is larger than {self.rules.max_token_bytes} bytes", "token-too-large")
        cached = self._cache.get(token)
        if cached is not None:
            principal, expires = cached
            if at <= expires + self.rules.leeway_seconds:
                return principal
            del self._cache[token]
        principal, expires = self._verify(token, at)
        self._cache[token] = (principal, expires)
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    def header_kid(self, token: str) -> str:
        """The `kid` of a token's header (required); TokenError if there is none."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("token is malformed", "malformed") from exc
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("token header lacks a key id (kid)", "missing-kid")
        return kid

    def _verify(self, token: str, now: float) -> tuple[Principal, float]:
        kid = self.header_kid(token)
        key = self._keys.get(kid)
        if key is None:
            raise UnknownKeyError(kid)
        try:
            payload = jwt.api_jws.decode(token, key.key, algorithms=[key.algorithm])
        except jwt.InvalidAlgorithmError as exc:
            raise TokenError(
                f"token algorithm is not accepted; only {key.algorithm} is for this key", "wrong-algorithm"
            ) from exc
        except jwt.PyJWTError as exc:
            raise TokenError("token is malformed or its signature does not verify", "bad-signature") from exc
        try:
            claims = json.loads(payload)
        except ValueError as exc:
            raise TokenError("token payload is not JSON", "malformed") from exc
        if not isinstance(claims, dict):
            raise TokenError("token payload is not a JSON object", "malformed")
        expires = check_claims(claims, self.rules, now)
        return principal_from_claims(claims, self.mapping), expires


class TokenCodec(TokenVerifier):
    """A verifier of one local key that can also issue tokens (the `fundtrail token` CLI, tests)."""

    def __init__(
        self,
        algorithm: str,
        verify_key: Any,
        *,
        signing_key: Any | None = None,
        audience: str,
        issuer: str,
        leeway_seconds: int = 30,
        key_id: str | None = None,
        max_lifetime_seconds: int = 12 * 3600,
        max_token_bytes: int = 8192,
    ) -> None:
        if algorithm not in ("EdDSA", "RS256", "HS256"):
            raise ValueError(f"unsupported algorithm {algorithm}")
        self.algorithm = algorithm
        self.key_id = key_id or key_thumbprint(algorithm, verify_key)
        self._signing_key = signing_key
        super().__init__(
            [VerificationKey(self.key_id, algorithm, verify_key)],
            TokenRules(audience, issuer, leeway_seconds, max_lifetime_seconds, max_token_bytes),
        )
        self.audience, self.issuer, self.leeway = audience, issuer, leeway_seconds

    def issue(
        self,
        subject: str,
        roles: Iterable[Role],
        region: str | None,
        *,
        now: datetime,
        ttl: timedelta,
        department: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A signed token for `subject` with `roles` as scopes and optional region and department claims."""
        if self._signing_key is None:
            raise ValueError("no signing key configured")
        role_set = sorted({Role(r) for r in roles})
        if not role_set:
            raise ValueError("a token needs at least one role")
        if region is not None and not _REGION_RE.fullmatch(region):
            raise ValueError("region must be a 6, 9 or 12 digit region code")
        if region is None and REGIONAL_ROLES.intersection(role_set):
            raise ValueError("bureau and compliance tokens need a region")
        if department is not None and department not in _DEPARTMENTS:
            raise ValueError(f"department must be one of {', '.join(sorted(_DEPARTMENTS))}")
        if ttl.total_seconds() > self.rules.max_lifetime_seconds:
            raise ValueError(f"ttl exceeds the maximum token lifetime of {self.rules.max_lifetime_seconds} s")
        claims: dict[str, Any] = {
            "sub": subject,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": uuid.uuid4().hex,
            "scope": " ".join(r.value for r in role_set),
        }
        if region is not None:
            claims["region"] = region
        if department is not None:
            claims["department"] = department
        claims.update(extra or {})
        return jwt.encode(claims, self._signing_key, algorithm=self.algorithm, headers={"kid": self.key_id})


class VerifierChain:
    """Several verifiers at once (identity provider plus development key); the token's `kid` picks one."""

    def __init__(self, *verifiers: TokenVerifier) -> None:
        self.verifiers = verifiers

    def decode(self, token: str, now: float | None = None) -> Principal:
        """The principal a valid token names, verified by the verifier holding its key."""
        first = self.verifiers[0]
        if len(token) > first.rules.max_token_bytes:
            raise TokenError(f"token is larger than {first.rules.max_token_bytes} bytes", "token-too-large")
        kid = first.header_kid(token)
        for verifier in self.verifiers:
            if kid in verifier.kids:
                return verifier.decode(token, now)
        raise UnknownKeyError(kid)


def principal_from_claims(claims: Mapping[str, Any], mapping: ClaimMapping | None = None) -> Principal:
    """Map verified claims to a principal; TokenError if they are inconsistent."""
    mapping = mapping or ClaimMapping()
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 128:
        raise TokenError("token subject must be a non-empty string", "bad-subject")
    roles = parse_scopes(claim_at(claims, mapping.role_claim))
    region = claim_at(claims, mapping.region_claim)
    if region is not None and (not isinstance(region, str) or not _REGION_RE.fullmatch(region)):
        raise TokenError("token region must be a 6, 9 or 12 digit region code", "bad-region")
    if region is None and REGIONAL_ROLES.intersection(roles):
        raise TokenError("bureau and compliance tokens must carry a region claim", "missing-region")
    department = claim_at(claims, mapping.department_claim) if mapping.department_claim else None
    if department is not None and department not in _DEPARTMENTS:
        raise TokenError("token department is not one of the nine departments", "bad-department")
    jti = claims.get("jti")
    return Principal(
        subject=subject,
        roles=roles,
        region=region,
        token_id=jti if isinstance(jti, str) else None,
        department=Department(department) if department is not None else None,
    )
