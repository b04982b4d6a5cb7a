"""What the web console needs to start: how to sign in, the region names, the log's public key."""

from __future__ import annotations

import base64
import functools
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from fundtrail_schemas.regions import CITY, counties, full_name, is_known, region, towns
from fundtrail_verify.note import NoteVerifier

from ...core.problems import not_found
from ..deps import AnyRole, SettingsDep
from ..openapi import problem_responses
from ..paging import json_response

router = APIRouter(tags=["console"])


@router.get("/v1/auth/config", summary="How the console signs in")
async def auth_config(settings: SettingsDep) -> Response:
    """`dev` (role picker over demo identities) or `oidc` (Authorization Code + PKCE at `issuer`)."""
    if settings.dev_sign_in:
        return json_response({"mode": "dev"})
    # Read with defaults: the OIDC settings belong to the identity-provider integration.
    issuer = getattr(settings, "oidc_issuer", None)
    client_id = getattr(settings, "oidc_console_client_id", None)
    if issuer and client_id:
        return json_response({"mode": "oidc", "issuer": str(issuer), "client_id": str(client_id)})
    return json_response({"mode": "none"})


@functools.cache
def _region_tree() -> dict[str, Any]:
    return {
        "code": CITY.code,
        "name": CITY.name,
        "children": [
            {"code": c.code, "name": c.name, "children": [{"code": t.code, "name": t.name} for t in towns(c.code)]}
            for c in counties()
        ],
    }


@router.get("/v1/regions", responses=problem_responses(), summary="City, counties and towns with their names")
async def regions(principal: AnyRole) -> Response:
    """The region tree down to towns (villages are named in the fund pages)."""
    return json_response(_region_tree())


@router.get("/v1/regions/names", responses=problem_responses(), summary="Names of region codes (villages included)")
async def region_names(
    principal: AnyRole,
    code: Annotated[list[str], Query(max_length=500, description="Region codes (6, 9 or 12 digits)")],
) -> Response:
    """Short and full names of the known codes among `code`; unknown codes are left out."""
    known = [c for c in dict.fromkeys(code) if is_known(c)]
    return json_response({c: {"name": region(c).name, "full_name": full_name(c)} for c in known})


def _log_key(vkey: str) -> dict[str, str]:
    verifier = NoteVerifier.from_vkey(vkey)
    return {"algorithm": "Ed25519", "public_key": base64.b64encode(verifier.public_key).decode("ascii"),
            "key_id": f"{verifier.key_hash:08x}", "key_name": verifier.name, "vkey": vkey}


@router.get("/v1/console/log-key", responses=problem_responses(404), summary="The trail log's public key")
async def log_key(principal: AnyRole, settings: SettingsDep) -> Response:
    """The Ed25519 key checkpoints are signed with (raw 32 bytes, base64) and its signed-note key hash.

    A browser that takes the key from the server it checks only detects a log altered behind the
    gateway's back; an auditor pins the key out of band (`fundtrail verify --log-key`).
    """
    if settings.trail_vkey is None:
        raise not_found("this gateway is not configured with the log's verifier key (TRAIL_VKEY)")
    return json_response(_log_key(settings.trail_vkey))
