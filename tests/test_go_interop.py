"""An independent implementation checks the log: the Go verifier in interop/go-verifier.

The gateway runs behind a real uvicorn server over a seeded PostgreSQL database (three counties, a
checkpoint after each); `go build` compiles interop/go-verifier (golang.org/x/mod/sumdb/note and
github.com/transparency-dev/merkle), which fetches every checkpoint, consistency proof and the
inclusion proof of every entry of three funds over HTTP. A tampering proxy in front of the gateway
then stands in for a compromised server: a forged signature, root, proof or leaf must fail.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_gateway.seed import COUNTIES, LOG_ID, World
from fundtrail_gateway.testing import seeded_gateway
from fundtrail_verify.note import SIG_COSIGNATURE_V1, NoteVerifier, cosign

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

GO_DIR = Path(__file__).resolve().parents[1] / "interop" / "go-verifier"
Transform = Callable[[str, bytes], bytes]


@pytest.fixture(scope="module")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go verifier, built from the committed go.mod / go.sum (modules from the Go module proxy)."""
    go = shutil.which("go")
    assert go is not None, "the Go toolchain is required (go 1.26): `make test` runs the Go interop test"
    out = tmp_path_factory.mktemp("go") / "go-verifier"
    env = {**os.environ, "GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=readonly".strip()}
    subprocess.run([go, "build", "-o", str(out), "."], cwd=GO_DIR, env=env, check=True, timeout=600)
    return out


@pytest.fixture(scope="module")
def gateway(
    pg_node: Any, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, World, str, str]]:
    """(base URL, seeded world, auditor token, log vkey) of a gateway serving a seeded database."""
    with seeded_gateway(pg_node, migrated_template, Ed25519PrivateKey.generate(), tmp_path_factory.mktemp("gw")) as gw:
        yield gw.base_url, gw.world, gw.auditor_token, gw.log_vkey


@contextlib.contextmanager
def tampering_proxy(upstream: str, transform: Transform) -> Iterator[str]:
    """A loopback HTTP proxy that passes GETs to `upstream` and rewrites bodies with `transform(path, body)`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            req = urllib.request.Request(upstream + self.path, headers=dict(self.headers))
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    status, ctype, body = resp.status, resp.headers.get("content-type", ""), resp.read()
            except urllib.error.HTTPError as exc:
                status, ctype, body = exc.code, exc.headers.get("content-type", ""), exc.read()
            body = transform(self.path, body)
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def run_go(binary: Path, api: str, vkey: str, token: str, funds: list[str],
           witnesses: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    argv = [str(binary), "-api", api, "-log-key", vkey, "-token", token]
    for fund in funds:
        argv += ["-fund", fund]
    for witness in witnesses:
        argv += ["-witness", witness]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def test_go_verifier_accepts_the_log(go_verifier: Path, gateway: tuple[str, World, str, str]) -> None:
    base, world, token, vkey = gateway
    funds = [world.counties[c].fund_doc_no for c in COUNTIES]
    result = run_go(go_verifier, base, vkey, token, funds)
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    n = len(world.checkpoints)
    assert last.startswith(f"OK origin={LOG_ID} checkpoints={n} consistency={n - 1} inclusion="), last
    assert "cosignatures=0" in last
    # Every leaf of the three funds under the latest checkpoint was proved.
    assert int(last.split("inclusion=")[1].split()[0]) >= sum(len(world.counties[c].leaf_indexes) for c in COUNTIES)
    assert f"latest_size={world.checkpoints[-1]}" in last


def _flip_last_signature_byte(body: bytes) -> bytes:
    text = body.decode()
    head, _, line = text.rstrip("\n").rpartition("\n")
    name_part, _, b64 = line.rpartition(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 0x01
    return f"{head}\n{name_part} {base64.b64encode(bytes(raw)).decode()}\n".encode()


def _replace_root(body: bytes) -> bytes:
    lines = body.decode().split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()
    return "\n".join(lines).encode()


def _zero_first_proof_hash(body: bytes) -> bytes:
    text = body.decode()
    start = text.index('"hashes":["') + len('"hashes":["')
    return (text[:start] + "0" * 64 + text[start + 64:]).encode()


def _other_leaf(body: bytes) -> bytes:
    text = body.decode()
    start = text.index('"leaf_data":"') + len('"leaf_data":"')
    end = text.index('"', start)
    data = base64.b64decode(text[start:end]).replace(b'"', b"'", 1)
    return (text[:start] + base64.b64encode(data).decode() + text[end:]).encode()


@pytest.mark.parametrize(
    "case,transform,expect",
    [
        ("forged signature on the first checkpoint's note",
         lambda p, b: _flip_last_signature_byte(b) if p.endswith("/note") and "/checkpoints/" in p
         and p.split("/")[3] == "FIRST" else b, "signed note does not verify: invalid signature"),
        ("another root under the latest checkpoint's signature",
         lambda p, b: _replace_root(b) if p.endswith("/note") and p.split("/")[3] == "LAST" else b,
         "signed note does not verify: invalid signature"),
        ("an altered consistency proof", lambda p, b: _zero_first_proof_hash(b) if "/proofs/consistency" in p else b,
         "FAIL: consistency"),
        ("altered leaf bytes", lambda p, b: _other_leaf(b) if "/proofs/entries/" in p else b,
         "SHA-256(0x00 || leaf data) is"),
        ("trail item bytes other than the proven ones", lambda p, b: _other_leaf(b) if p.endswith("/trail") else b,
         "the trail item's leaf data differs from the proof's"),
    ],
)
def test_go_verifier_refuses_a_tampering_server(
    go_verifier: Path, gateway: tuple[str, World, str, str], case: str, transform: Transform, expect: str
) -> None:
    base, world, token, vkey = gateway
    first, last = str(world.checkpoints[0]), str(world.checkpoints[-1])

    def concrete(path: str, body: bytes) -> bytes:
        # Name the first / latest checkpoint's path segment for the lambdas above.
        p = path.split("?")[0]
        parts = p.split("/")
        if len(parts) > 3 and parts[3] in (first, last):
            parts[3] = "FIRST" if parts[3] == first else "LAST"
        return transform("/".join(parts), body)

    with tampering_proxy(base, concrete) as proxy:
        result = run_go(go_verifier, proxy, vkey, token, [world.counties[COUNTIES[0]].fund_doc_no])
    assert result.returncode == 1, (case, result.stdout, result.stderr)
    assert "FAIL:" in result.stdout and "FAILED:" in result.stdout, result.stdout
    assert "OK " not in result.stdout
    assert expect in result.stdout, result.stdout


WITNESS = "audit.jiangmen.example/witness"


@pytest.fixture(scope="module")
def witnessed(
    pg_node: Any, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, World, str, str, str]]:
    """(base URL, world, auditor token, log vkey, witness vkey) of a gateway whose latest checkpoint a witness
    cosigned (the row fund-tracker writes from the cosignature topic, inserted directly)."""
    key = Ed25519PrivateKey.generate()
    witness_vkey = NoteVerifier.ed25519(WITNESS, key.public_key(), SIG_COSIGNATURE_V1).vkey
    with seeded_gateway(pg_node, migrated_template, Ed25519PrivateKey.generate(), tmp_path_factory.mktemp("gw"),
                        witness_vkeys=[witness_vkey]) as gw:
        size = gw.world.checkpoints[-1]
        with urllib.request.urlopen(f"{gw.base_url}/v1/checkpoints/{size}/note", timeout=30) as resp:
            text = resp.read().decode().split("\n\n", 1)[0] + "\n"
        at = 1_765_130_400
        sig = cosign(WITNESS, key, text, at)
        with psycopg.connect(gw.database_url.replace("postgresql+psycopg://", "postgresql://"),
                             autocommit=True) as conn:
            conn.execute("INSERT INTO trail_cosignature (tree_size, witness_name, key_hash, cosigned_at, line,"
                         " recorded_at) VALUES (%s, %s, %s, to_timestamp(%s), %s, now())",
                         (size, WITNESS, f"{sig.key_hash:08x}", at, sig.line))
        yield gw.base_url, gw.world, gw.auditor_token, gw.log_vkey, witness_vkey


def test_go_verifier_checks_witness_cosignatures(
    go_verifier: Path, witnessed: tuple[str, World, str, str, str]
) -> None:
    base, world, token, vkey, witness_vkey = witnessed
    fund = [world.counties[COUNTIES[0]].fund_doc_no]
    ok = run_go(go_verifier, base, vkey, token, fund, (witness_vkey,))
    assert ok.returncode == 0 and "cosignatures=1 " in ok.stdout, ok.stdout + ok.stderr
    # A witness the log has no cosignature from: the latest checkpoint was not witnessed.
    other = NoteVerifier.ed25519("other.example/witness", Ed25519PrivateKey.generate().public_key(),
                                 SIG_COSIGNATURE_V1).vkey
    missing = run_go(go_verifier, base, vkey, token, fund, (witness_vkey, other))
    assert missing.returncode == 1 and "not cosigned by witness other.example/witness" in missing.stdout, \
        missing.stdout
    # A forged cosignature (the note's last line is the witness's): the note fails as a whole.
    last = str(world.checkpoints[-1])

    def forge(path: str, body: bytes) -> bytes:
        return _flip_last_signature_byte(body) if path.split("?")[0] == f"/v1/checkpoints/{last}/note" else body

    with tampering_proxy(base, forge) as proxy:
        forged = run_go(go_verifier, proxy, vkey, token, fund, (witness_vkey,))
    assert forged.returncode == 1 and f"checkpoint {last}: signed note does not verify: invalid signature" \
        in forged.stdout, forged.stdout
    # A key of another type (the log's own, 0x01) is refused as a witness before anything is fetched.
    bad = run_go(go_verifier, base, vkey, token, fund, (vkey,))
    assert bad.returncode == 2 and "bad -witness" in bad.stderr
