"""Keycloak's distribution cache and the node's process handling (the server itself: gateway OIDC tests)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fundtrail_devstack.keycloak import KEYCLOAK_PROJECT_DIR, REALM_FILE, KeycloakNode, ensure_keycloak_dist


def test_dist_is_reused_and_a_changed_pom_invalidates_it(tmp_path: Path) -> None:
    home, _ = ensure_keycloak_dist()  # `make install` fetched it; a fresh checkout downloads here
    assert (home / "bin" / "kc.sh").is_file()
    again, downloaded = ensure_keycloak_dist()
    assert again == home and downloaded is False
    # A copy of the project whose pom differs from the stamp's is not "ready" (and would run Maven).
    project = tmp_path / "keycloak"
    (project / "dist").mkdir(parents=True)
    shutil.copy(KEYCLOAK_PROJECT_DIR / "dist" / ".fundtrail-dist.json", project / "dist")
    (project / "pom.xml").write_text((KEYCLOAK_PROJECT_DIR / "pom.xml").read_text() + "<!-- changed -->\n")
    from fundtrail_devstack.keycloak import _dist_home

    assert _dist_home(project) is None


def test_stop_ignores_a_stale_pid_file(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])  # stands for an unrelated process that got the old pid
    try:
        node = KeycloakNode(tmp_path, 1)
        node.home.mkdir(exist_ok=True)
        node.pid_file.write_text(f"{other.pid}\n")
        assert node.stop(timeout=1) is False
        assert other.poll() is None and not node.pid_file.exists()
    finally:
        other.kill()
        other.wait()


def test_realm_file_defines_what_the_gateway_maps() -> None:
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    assert {r["name"] for r in realm["roles"]["realm"]} == {"bureau", "compliance", "auditor", "admin"}
    console = next(c for c in realm["clients"] if c["clientId"] == "fundtrail-console")
    assert console["publicClient"] and console["attributes"]["pkce.code.challenge.method"] == "S256"
    assert not console["directAccessGrantsEnabled"] and not console.get("implicitFlowEnabled")
    mappers = {m["name"]: m["config"] for m in console["protocolMappers"]}
    assert mappers["gateway audience"]["included.custom.audience"] == "fundtrail-gateway"
    assert mappers["region"]["claim.name"] == "region" and mappers["department"]["claim.name"] == "department"


@pytest.mark.parametrize("name", ["bureau-xinhui", "compliance-xinhui"])
def test_regional_users_have_a_region(name: str) -> None:
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    groups = {f"/{g['name']}": g for g in realm["groups"]}
    user = next(u for u in realm["users"] if u["username"] == name)
    assert any("region" in groups[g].get("attributes", {}) for g in user["groups"])
