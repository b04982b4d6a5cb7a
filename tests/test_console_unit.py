"""The console's own unit tests (vitest) inside `make test`, and its verifier's vectors kept in step with
the Python side of the trail (checkpoint format, Merkle proofs), and its API types in step with the
gateway's OpenAPI document."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess

from fundtrail_devstack.stack import REPO_ROOT

CONSOLE = REPO_ROOT / "console"


def test_the_verifier_vectors_are_what_the_python_code_makes_today() -> None:
    generator = runpy.run_path(str(CONSOLE / "scripts" / "gen_verify_vectors.py"))
    stored = json.loads((CONSOLE / "src" / "verify.vectors.json").read_text(encoding="utf-8"))
    assert generator["vectors"]() == stored, (
        "the checkpoint or proof format changed: run `uv run python console/scripts/gen_verify_vectors.py` "
        "and adapt console/src/verify.ts until `npm test` passes"
    )


def test_console_unit_tests_pass() -> None:
    npx = shutil.which("npx")
    assert npx, "Node.js 20.19+ with npm is a prerequisite (console/README.md)"
    assert (CONSOLE / "node_modules").is_dir(), "make install runs npm ci in console/"
    out = subprocess.run([npx, "vitest", "run"], cwd=CONSOLE, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_the_consoles_api_types_are_what_the_gateways_openapi_makes_today() -> None:
    """console/src/api.schema.ts is generated (openapi-typescript) from the gateway's response models."""
    generator = runpy.run_path(str(CONSOLE / "scripts" / "gen_api_types.py"))
    stored = (CONSOLE / "src" / "api.schema.ts").read_text(encoding="utf-8")
    assert generator["generate"]() == stored, (
        "a gateway model the console reads changed: run `uv run python console/scripts/gen_api_types.py`, "
        "then `npm run typecheck` in console/ and adapt the pages"
    )
