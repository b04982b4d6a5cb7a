"""Annotated dependencies: settings, database session, the authenticated principal and role guards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from ..adapters.publisher import KafkaPublisher
from ..core.auth import Principal, Role
from ..core.problems import forbidden, unauthorized, unavailable
from ..core.tokens import TokenError, UnknownKeyError
from ..runtime import Runtime
from ..settings import GatewaySettings
from .guard import verified_principal

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="JWT with roles (bureau, compliance, auditor, admin), a region and a department claim: from "
    "the OpenID Connect provider when FUNDTRAIL_GATEWAY_OIDC_ISSUER is set, else issued by `fundtrail token`.",
)


async def get_runtime(request: Request) -> Runtime:
    """The running app's state."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> GatewaySettings:
    """The gateway settings."""
    return runtime.settings


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A read-only session for one request."""
    if runtime.sessions is None:
        raise unavailable("the database is not connected")
    async with runtime.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_publisher(runtime: RuntimeDep) -> KafkaPublisher:
    """The Kafka publisher."""
    return runtime.publisher


PublisherDep = Annotated[KafkaPublisher, Depends(get_publisher)]


async def authenticate(runtime: Runtime, request: Request) -> Principal:
    """The caller named by a valid bearer token (the rate limit was taken before, by `api.guard`)."""
    raw = request.headers.get("authorization")
    limit = runtime.settings.token_max_bytes
    # Before any parsing: a 64 KiB header is refused for its size, not for what a parser makes of it.
    if raw is not None and len(raw) > limit + len("Bearer "):
        raise unauthorized(f"the Authorization header is larger than {limit} bytes", reason="token-too-large")
    scheme, _, token = (raw or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("a bearer token is required", reason=None)
    token = token.strip()
    verified = verified_principal(request.scope)
    if verified is not None and verified[0] == token:
        return verified[1]  # the guard verified this very token for this request
    try:
        return runtime.codec.decode(token)
    except UnknownKeyError as exc:
        # The provider may have rotated its keys: refetch (rate-limited) and try once more.
        if runtime.key_source is None or not await runtime.key_source.refresh_for_unknown_kid(exc.kid):
            raise unauthorized(str(exc), reason=exc.reason) from exc
        try:
            return runtime.codec.decode(token)
        except TokenError as again:
            raise unauthorized(str(again), reason=again.reason) from again
    except TokenError as exc:
        raise unauthorized(str(exc), reason=exc.reason) from exc


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits principals holding any of `roles`."""
    names = " or ".join(r.value for r in roles)

    # One dependency (plus the bearer scheme, which documents the security in OpenAPI) rather than a
    # chain: FastAPI's per-request cost grows with every node of the dependency tree. async: a plain def
    # dependency would cost a thread-pool hop per request.
    async def guard(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
    ) -> Principal:
        # `credentials` only documents the scheme in OpenAPI: authenticate reads the raw header itself,
        # so that its size is checked before anything parses it.
        principal = await authenticate(request.app.state.runtime, request)
        if not principal.has_any(roles):
            raise forbidden(f"this operation needs the {names} role")
        return principal

    return guard


READER_ROLES = (Role.COMPLIANCE, Role.AUDITOR)

Reader = Annotated[Principal, Depends(require(*READER_ROLES))]
Bureau = Annotated[Principal, Depends(require(Role.BUREAU))]
CaseActor = Annotated[Principal, Depends(require(Role.COMPLIANCE))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
AnyRole = Annotated[Principal, Depends(require(*Role))]
