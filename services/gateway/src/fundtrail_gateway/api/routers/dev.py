"""Development sign-in: the console's role picker over the devstack's demo identities.

Mounted only when `FUNDTRAIL_GATEWAY_DEV_SIGN_IN` is set, which the settings refuse outside
`ENVIRONMENT=development`: these endpoints hand a token to anyone who asks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from ...core.identities import DEMO_IDENTITIES, demo_identity
from ...core.problems import not_found
from ..openapi import problem_responses
from ..paging import json_response

router = APIRouter(prefix="/v1/dev", tags=["development"])

# Short-lived: a console session in the devstack, not a credential to keep.
SESSION_TTL = timedelta(hours=1)


class SessionRequest(BaseModel):
    subject: str = Field(min_length=1, max_length=128, description="A subject from GET /v1/dev/identities")


def _identity_out(identity: Any) -> dict[str, Any]:
    return {
        "subject": identity.subject,
        "role": identity.role.value,
        "region": identity.region,
        "department": identity.department,
        "label_zh": identity.label_zh,
        "label_en": identity.label_en,
    }


@router.get("/identities", summary="Demo identities (development only)")
async def identities() -> Response:
    """The identities the devstack's role picker offers."""
    return json_response({"items": [_identity_out(i) for i in DEMO_IDENTITIES]})


@router.post("/session", responses=problem_responses(404), summary="Sign in as a demo identity (development only)")
async def session(body: SessionRequest, request: Request) -> Response:
    """A short-lived token for one of the demo identities, signed with the gateway's development key."""
    identity = demo_identity(body.subject)
    if identity is None:
        raise not_found(f"no demo identity {body.subject!r}")
    now = datetime.now(UTC)
    token = request.app.state.dev_signer.issue(identity.subject, [identity.role], identity.region, now=now,
                                               ttl=SESSION_TTL)
    return json_response({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": int(SESSION_TTL.total_seconds()),
        "identity": _identity_out(identity),
    })
