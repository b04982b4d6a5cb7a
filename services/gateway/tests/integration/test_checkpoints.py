"""The log's key and its checkpoints over HTTP: C2SP notes, listing with cursors, witness submissions."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_gateway.main import create_app
from fundtrail_gateway.seed import LOG_ID, World
from fundtrail_gateway.settings import GatewaySettings
from fundtrail_gateway.testing import running
from fundtrail_verify.checkpoint import Checkpoint, verify_checkpoint
from fundtrail_verify.note import SIG_COSIGNATURE_V1, NoteVerifier, cosign, open_note

pytestmark = pytest.mark.integration


async def test_key_listing_and_notes(
    settings_factory: Callable[..., GatewaySettings], log_key: Ed25519PrivateKey, world: World
) -> None:
    vkey = NoteVerifier.ed25519(LOG_ID, log_key.public_key())
    witness = NoteVerifier.ed25519("audit.example/w", Ed25519PrivateKey.generate().public_key(), SIG_COSIGNATURE_V1)
    app = create_app(settings_factory(trail_vkey=vkey.vkey, witness_vkeys=[witness.vkey]))
    async with running(app) as client:
        r = await client.get("/v1/log/key")  # no token: public
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert r.text == vkey.vkey + "\n"
        known = (await client.get("/.well-known/fundtrail/log.json")).json()
        assert (known["origin"], known["vkey"], known["witnesses"]) == (LOG_ID, vkey.vkey, [witness.vkey])

        # Every checkpoint, oldest first, one per page through the cursor.
        seen, url = [], "/v1/checkpoints?limit=1"
        while url:
            page = await client.get(url)
            assert page.status_code == 200, page.text
            body = page.json()
            seen += body["items"]
            url = body["next"]
            assert (page.headers.get("link") is not None) == (url is not None)
        assert [c["tree_size"] for c in seen] == list(world.checkpoints)
        for item in seen:
            cp = Checkpoint.model_validate({k: v for k, v in item.items() if k not in ("cosignatures", "links")})
            assert verify_checkpoint(cp, vkey) and item["cosignatures"] == []
            note = await client.get(item["links"]["note"])
            assert note.headers["content-type"].startswith("text/plain") and note.text == item["note"]
            open_note(note.text, [vkey])
        latest = await client.get("/v1/checkpoints/latest/note")
        assert latest.text == seen[-1]["note"]
        assert (await client.get(f"/v1/checkpoints/{world.checkpoints[0]}")).json()["tree_size"] == world.checkpoints[0]

        assert (await client.get("/v1/checkpoints/999999")).status_code == 404
        assert (await client.get("/v1/checkpoints/999999/note")).status_code == 404
        bad = await client.get("/v1/checkpoints?cursor=bm90LWEtY3Vyc29y")
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


async def test_without_a_configured_key_the_key_endpoint_says_so(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/log/key")
    assert r.status_code == 404 and "FUNDTRAIL_GATEWAY_TRAIL_VKEY" in r.json()["detail"]


async def test_a_valid_cosignature_needs_the_broker_and_a_configured_witness(
    settings_factory: Callable[..., GatewaySettings], world: World
) -> None:
    key = Ed25519PrivateKey.generate()
    witness = NoteVerifier.ed25519("audit.example/w", key.public_key(), SIG_COSIGNATURE_V1)
    size = world.checkpoints[-1]
    async with running(create_app(settings_factory(witness_vkeys=[witness.vkey]))) as client:
        text = (await client.get(f"/v1/checkpoints/{size}/note")).text.split("\n\n")[0] + "\n"
        line = cosign(witness.name, key, text, int(time.time())).line
        # Valid, but this gateway has no broker: 503 and nothing recorded, never a 500.
        r = await client.post(f"/v1/checkpoints/{size}/cosignatures", content=line.encode(),
                              headers={"content-type": "text/plain"})
        assert r.status_code == 503, r.text
        # The same line for another checkpoint does not verify.
        r = await client.post(f"/v1/checkpoints/{world.checkpoints[0]}/cosignatures", content=line.encode(),
                              headers={"content-type": "text/plain"})
        assert r.status_code == 422 and "does not verify" in r.json()["detail"]
    async with running(create_app(settings_factory())) as client:
        r = await client.post(f"/v1/checkpoints/{size}/cosignatures", content=line.encode(),
                              headers={"content-type": "text/plain"})
        assert r.status_code == 422 and "WITNESS_VKEYS" in r.json()["detail"]
