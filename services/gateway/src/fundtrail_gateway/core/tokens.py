"""JWT bearer tokens: issue (CLI) and verify (server) with one pinned algorithm."""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import jwt

from .auth import REGIONAL_ROLES, Principal, Role, parse_scopes

REQUIRED_CLAIMS = ("exp", "iat", "nbf", "aud", "iss", "sub")
_CACHE_SIZE = 10_000
_REGION_RE = re.compile(r"^(\d{6}|\d{9}|\d{12})$")


class TokenError(ValueError):
    """The token is not acceptable; the message is safe to show the caller."""


class TokenCodec:
    """Signs and verifies tokens; `algorithm` is the only one accepted, whatever a token's header says."""

    def __init__(
        self,
        algorithm: str,
        verify_key: Any,
        *,
        signing_key: Any | None = None,
        audience: str,
        issuer: str,
        leeway_seconds: int = 30,
    ) -> None:
        if algorithm not in ("EdDSA", "RS256", "HS256"):
            raise ValueError(f"unsupported algorithm {algorithm}")
        self.algorithm = algorithm
        self._verify_key = verify_key
        self._signing_key = signing_key
        self.audience, self.issuer, self.leeway = audience, issuer, leeway_seconds
        # Verified tokens by their exact text: a client reuses its token for many requests, and a
        # signature check costs more than the rest of a cached read. Expiry is still checked on every hit.
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def issue(
        self,
        subject: str,
        roles: Iterable[Role],
        region: str | None,
        *,
        now: datetime,
        ttl: timedelta,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A signed token for `subject` with `roles` as scopes and an optional region claim."""
        if self._signing_key is None:
            raise ValueError("no signing key configured")
        role_set = sorted({Role(r) for r in roles})
        if not role_set:
            raise ValueError("a token needs at least one role")
        if region is not None and not _REGION_RE.fullmatch(region):
            raise ValueError("region must be a 6, 9 or 12 digit region code")
        if region is None and REGIONAL_ROLES.intersection(role_set):
            raise ValueError("bureau and compliance tokens need a region")
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
        claims.update(extra or {})
        return jwt.encode(claims, self._signing_key, algorithm=self.algorithm)

    def decode(self, token: str, now: float | None = None) -> Principal:
        """The principal a valid token names; TokenError for anything else."""
        at = time.time() if now is None else now
        cached = self._cache.get(token)
        if cached is not None:
            principal, expires = cached
            if at < expires + self.leeway:
                return principal
            del self._cache[token]
        principal, expires = self._verify(token)
        self._cache[token] = (principal, expires)
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._verify_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_signature": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError("token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError("token is for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError("token is from another issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise TokenError(f"token algorithm is not accepted; only {self.algorithm} is") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("token is malformed or its signature does not verify") from exc
        return principal_from_claims(claims), float(claims["exp"])


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Map verified claims to a principal; TokenError if they are inconsistent."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 128:
        raise TokenError("token subject must be a non-empty string")
    roles = parse_scopes(claims.get("scope"))
    region = claims.get("region")
    if region is not None and (not isinstance(region, str) or not _REGION_RE.fullmatch(region)):
        raise TokenError("token region must be a 6, 9 or 12 digit region code")
    if region is None and REGIONAL_ROLES.intersection(roles):
        raise TokenError("bureau and compliance tokens must carry a region claim")
    jti = claims.get("jti")
    return Principal(subject=subject, roles=roles, region=region, token_id=jti if isinstance(jti, str) else None)
