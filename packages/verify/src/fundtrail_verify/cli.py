"""`fundtrail verify`: what an auditor runs, against the gateway's API or an exported bundle."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from fundtrail_verify.checkpoint import (
    Checkpoint,
    CheckResult,
    ConsistencyProof,
    ProofBundle,
    VerificationReport,
    load_public_key,
    verify_bundle,
    verify_bundle_json,
    verify_checkpoint,
)
from fundtrail_verify.note import SIG_COSIGNATURE_V1, Note, NoteError, NoteVerifier, verify_cosignature

console = Console()
err = Console(stderr=True)

DEFAULT_STATE = Path(os.environ.get("FUNDTRAIL_VERIFY_STATE", Path.home() / ".fundtrail" / "verify-state.json"))


def load_state(path: Path) -> dict[str, Any]:
    """The last verified checkpoint per log id."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def check_growth(
    previous: Checkpoint, current: Checkpoint, proof: ConsistencyProof | None, public_key: Any
) -> list[CheckResult]:
    """Checks that the log only grew from the remembered checkpoint to the current one."""
    checks = [
        CheckResult(
            name="state.signature",
            passed=verify_checkpoint(previous, public_key),
            reason=f"remembered checkpoint of size {previous.tree_size} from {previous.timestamp.isoformat()}",
        )
    ]
    if current.tree_size < previous.tree_size:
        checks.append(CheckResult(name="growth.size", passed=False,
                                  reason=f"the log shrank from {previous.tree_size} to {current.tree_size} leaves"))
        return checks
    if proof is None:
        checks.append(CheckResult(name="growth.proof", passed=False, reason="no consistency proof was obtained"))
        return checks
    ok = proof.verify_checkpoints(previous, current)
    checks.append(CheckResult(
        name="growth.proof",
        passed=ok,
        reason=(f"the log of {previous.tree_size} leaves is a prefix of the log of {current.tree_size} leaves"
                if ok else "the consistency proof does not link the remembered root to the current root: "
                "the log was rewritten"),
    ))
    return checks


def _get(client: Any, path: str, **params: Any) -> Any:
    response = client.get(path, params={k: v for k, v in params.items() if v is not None})
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:200]
        raise RuntimeError(f"GET {path} answered {response.status_code}: {detail}")
    return response.json()


def check_witnesses(client: Any, current: Checkpoint, witnesses: list[NoteVerifier]) -> list[CheckResult]:
    """One check per required witness: a valid cosignature/v1 of exactly this checkpoint."""
    response = client.get(f"/v1/checkpoints/{current.tree_size}/note")
    if response.status_code != 200:
        raise RuntimeError(f"GET /v1/checkpoints/{current.tree_size}/note answered {response.status_code}")
    try:
        note = Note.parse(response.text)
    except NoteError as exc:
        return [CheckResult(name="witness.note", passed=False, reason=f"the cosigned note is malformed: {exc}")]
    same = note.text.encode() == current.signed_bytes()
    checks = [CheckResult(name="witness.note", passed=same,
                          reason="the cosigned note is the verified checkpoint" if same
                          else "the cosigned note is of another checkpoint")]
    for w in witnesses:
        times = [t for s in note.signatures if (t := verify_cosignature(w, s, note.text)) is not None]
        checks.append(CheckResult(
            name=f"witness.{w.name}", passed=same and bool(times),
            reason=(f"cosigned by {w.name} at {datetime.fromtimestamp(max(times), UTC).isoformat()}" if times
                    else f"no valid cosignature from {w.name}+{w.key_hash:08x}: this checkpoint was not witnessed"),
        ))
    return checks


def verify_online(
    api: str, token_value: str | None, public_key: Any, entry: int | None, state_path: Path,
    expected_log_id: str | None, transport: Any = None, witnesses: list[NoteVerifier] | None = None,
) -> VerificationReport:
    """Fetch the latest checkpoint, prove growth since the remembered one, prove an entry; remember on success."""
    import httpx

    headers = {"Authorization": f"Bearer {token_value}"} if token_value else {}
    checks: list[CheckResult] = []
    with httpx.Client(base_url=api, headers=headers, timeout=30, transport=transport) as client:
        current = Checkpoint.model_validate(_get(client, "/v1/proofs/checkpoint"))
        checks.append(CheckResult(
            name="checkpoint.signature", passed=verify_checkpoint(current, public_key),
            reason=f"origin {current.log_id!r} size {current.tree_size} root {current.root_hash[:16]}… "
            f"(recorded {current.timestamp.isoformat()})",
        ))
        if witnesses:
            checks.extend(check_witnesses(client, current, witnesses))
        if expected_log_id is not None:
            checks.append(CheckResult(name="checkpoint.log_id", passed=current.log_id == expected_log_id,
                                      reason=f"log id is {current.log_id!r}"))
        state = load_state(state_path)
        remembered = state.get(current.log_id)
        if remembered is not None:
            previous = Checkpoint.model_validate(remembered)
            proof = None
            if previous.tree_size <= current.tree_size:
                doc = _get(client, "/v1/proofs/consistency", old_size=previous.tree_size, new_size=current.tree_size)
                proof = ConsistencyProof.model_validate(doc["consistency_proof"])
            checks.extend(check_growth(previous, current, proof, public_key))
        else:
            checks.append(CheckResult(name="growth.first_use", passed=True,
                                      reason=f"no remembered checkpoint in {state_path}; trusting this one now"))
        if entry is not None:
            bundle = ProofBundle.model_validate(
                _get(client, f"/v1/proofs/entries/{entry}/bundle", tree_size=current.tree_size)
            )
            same = bundle.checkpoint == current
            checks.append(CheckResult(name="bundle.checkpoint", passed=same,
                                      reason="the bundle is against the checkpoint just verified" if same
                                      else "the bundle names another checkpoint"))
            checks.extend(c for c in verify_bundle(bundle, public_key).checks if not c.name.startswith("checkpoint."))
    report = VerificationReport(checks=checks)
    if report.ok:
        state[current.log_id] = current.model_dump(mode="json")
        save_state(state_path, state)
    return report


def verify_offline(
    bundle_path: Path, public_key: Any, state_path: Path, expected_log_id: str | None
) -> VerificationReport:
    """Verify an exported bundle; relate it to the remembered checkpoint when the bundle allows it."""
    raw = bundle_path.read_bytes()
    report = verify_bundle_json(raw, public_key, expected_log_id=expected_log_id)
    if not report.ok:
        return report
    bundle = ProofBundle.model_validate_json(raw)
    cp = bundle.checkpoint
    state = load_state(state_path)
    remembered = state.get(cp.log_id)
    checks = list(report.checks)
    if remembered is None:
        checks.append(CheckResult(name="growth.first_use", passed=True,
                                  reason=f"no remembered checkpoint in {state_path}; trusting this one from now on"))
    else:
        previous = Checkpoint.model_validate(remembered)
        if previous == cp:
            checks.append(CheckResult(name="growth.same", passed=True,
                                      reason="the bundle's checkpoint is the remembered one"))
        elif bundle.previous_checkpoint == previous and bundle.consistency_proof is not None:
            checks.extend(check_growth(previous, cp, bundle.consistency_proof, public_key))
        elif previous.tree_size > cp.tree_size:
            checks.append(CheckResult(
                name="growth.older", passed=True,
                reason=f"the bundle is against an older checkpoint (size {cp.tree_size} < remembered "
                f"{previous.tree_size}); its inclusion proof holds for that checkpoint",
            ))
        else:
            checks.append(CheckResult(
                name="growth.unlinked", passed=False,
                reason=f"the bundle carries no consistency proof from the remembered size {previous.tree_size}; "
                f"export it with previous_size={previous.tree_size}",
            ))
    final = VerificationReport(checks=checks)
    if final.ok and (remembered is None or Checkpoint.model_validate(remembered).tree_size <= cp.tree_size):
        state[cp.log_id] = cp.model_dump(mode="json")
        save_state(state_path, state)
    return final


def _fetch_all(client: Any, path: str, key: str, **params: Any) -> list[Any]:
    """Every item of an audit listing (paged by index)."""
    out: list[Any] = []
    after = -1
    while True:
        items = _get(client, path, after=after, **params)["items"]
        if not items:
            return out
        out += items
        after = items[-1][key]


def _trail_items(client: Any, subject_path: str) -> tuple[list[Any], str | None]:
    """Every item of a trail, following `next`; (items, problem) where problem names a non-200 answer."""
    items: list[Any] = []
    cursor = None
    while True:
        response = client.get(subject_path, params={"cursor": cursor} if cursor else {})
        if response.status_code != 200:
            return items, f"GET {subject_path} answered {response.status_code}"
        body = response.json()
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items, None


def verify_audit(
    api: str, token_value: str | None, public_key: Any, state_path: Path, expected_log_id: str | None,
    transport: Any = None, witnesses: list[NoteVerifier] | None = None,
) -> VerificationReport:
    """The full audit: recompute the log from every leaf, compare it with the signed checkpoint, the stored
    nodes, the remembered checkpoint, and with what the trail, fund, event and violation endpoints show."""
    import httpx

    headers = {"Authorization": f"Bearer {token_value}"} if token_value else {}
    with httpx.Client(base_url=api, headers=headers, timeout=60, transport=transport) as client:
        return audit_through(client, public_key, state_path, expected_log_id, witnesses)


def audit_through(client: Any, public_key: Any, state_path: Path, expected_log_id: str | None,
                  witnesses: list[NoteVerifier] | None = None) -> VerificationReport:
    """`verify_audit` over an open HTTP client (an httpx.Client with the auditor's token).

    `public_key` is the log's key: a NoteVerifier (`--log-key` vkey) or an Ed25519 public key (PEM)."""
    import base64
    from urllib.parse import quote

    from .audit import audit_log, case_statuses, served_item_problems, served_positions_problems
    from .entry import StoredEntry

    checks: list[CheckResult] = []
    current = Checkpoint.model_validate(_get(client, "/v1/proofs/checkpoint"))
    checks.append(CheckResult(name="checkpoint_signature", passed=verify_checkpoint(current, public_key),
                              reason=f"origin {current.log_id!r} size {current.tree_size} root "
                              f"{current.root_hash[:16]}… (signed note)"))
    if witnesses:
        checks.extend(check_witnesses(client, current, witnesses))
    if expected_log_id is not None and current.log_id != expected_log_id:
        checks.append(CheckResult(name="checkpoint_signature", passed=False,
                                  reason=f"log id is {current.log_id!r}, expected {expected_log_id!r}"))
    state = load_state(state_path)
    remembered = state.get(current.log_id)
    if remembered is not None:
        previous = Checkpoint.model_validate(remembered)
        rolled_back = current.tree_size < previous.tree_size
        checks.append(CheckResult(name="checkpoint_rollback", passed=not rolled_back, reason=(
            f"the log shrank from the remembered {previous.tree_size} leaves to {current.tree_size}"
            if rolled_back else f"the log grew from {previous.tree_size} to {current.tree_size} leaves")))
        if not rolled_back:
            response = client.get("/v1/proofs/consistency",
                                  params={"old_size": previous.tree_size, "new_size": current.tree_size})
            linked = response.status_code == 200 and ConsistencyProof.model_validate(
                response.json()["consistency_proof"]).verify_checkpoints(previous, current)
            checks.append(CheckResult(name="fork", passed=linked, reason=(
                "the remembered checkpoint is a prefix of the current one" if linked else
                f"no valid consistency proof from the remembered root (size {previous.tree_size}) to the "
                f"current one (HTTP {response.status_code}): the log was rewritten")))
    raw = _fetch_all(client, "/v1/audit/leaves", "leaf_index")
    entries = [StoredEntry(i["leaf_index"], base64.b64decode(i["leaf_data"]),
                           bytes.fromhex(i["stored_leaf_hash"]) if i["stored_leaf_hash"] else None, None,
                           _parse_columns(i["columns"])) for i in raw]
    nodes: dict[tuple[int, int], bytes] = {}
    for level in range(max(current.tree_size, 1).bit_length()):
        for n in _fetch_all(client, "/v1/audit/nodes", "index", level=level):
            nodes[(level, n["index"])] = bytes.fromhex(n["hash"])
    entries = [StoredEntry(e.seq, e.leaf_data, e.stored_hash, nodes.get((0, e.seq)), e.columns) for e in entries]
    copies = {i["leaf_index"]: i.get("copies") or {} for i in raw}
    log_checks, facts = audit_log(entries, nodes, current, copies)
    checks += log_checks
    ledger = [c for c in checks if c.name == "ledger_replay"]
    served: list[str] = []
    http: list[str] = []
    # Positions exist for funds with ledger events; a case action may name a fund that has none.
    funds = sorted({leaf.fund_doc_no for leaf in facts.leaves.values() if leaf.fund_doc_no and leaf.kind == "event"})
    for fund in funds:
        response = client.get(f"/v1/funds/{quote(fund, safe='')}")
        if response.status_code == 200:
            flat: list[Any] = []
            stack = list(response.json()["positions"])
            while stack:
                node = stack.pop()
                flat.append(node)
                stack += node.get("children", [])
            problems = served_positions_problems(fund, flat, facts)
            if problems:
                ledger.append(CheckResult(name="ledger_replay", passed=False, reason="; ".join(problems[:5])))
        else:
            http.append(f"GET /v1/funds/{fund} answered {response.status_code}")
    # Every fund's, project's, payment's and vendor's trail as served must be its chain in the log.
    for (kind, subject), chain in sorted(facts.chains.items()):
        items, problem = _trail_items(client, f"/v1/{kind}s/{quote(subject, safe='')}/trail")
        if problem:
            http.append(problem)
        shown = [i.get("leaf_index") for i in items]
        if shown != chain:
            served.append(f"the trail of {kind} {subject} shows leaves {shown}, its chain in the log is {chain}")
        for item in items:
            served += served_item_problems(item, facts)
    statuses = case_statuses(facts)
    case_problems: list[str] = []
    for index, leaf in sorted(facts.leaves.items()):
        if leaf.kind == "event":
            response = client.get(f"/v1/events/{leaf.entry_id}")
            if response.status_code != 200:
                http.append(f"GET /v1/events/{leaf.entry_id} answered {response.status_code}")
                continue
            body = response.json()
            if body.get("payload") != leaf.payload or body.get("state_after") != leaf.after:
                served.append(f"event {leaf.entry_id} (leaf {index}) is shown differently from its leaf")
        elif leaf.kind == "violation":
            response = client.get(f"/v1/violations/{leaf.entry_id}")
            if response.status_code != 200:
                http.append(f"GET /v1/violations/{leaf.entry_id} answered {response.status_code}")
                continue
            body = response.json()
            if body.get("status") != statuses.get(leaf.entry_id):
                case_problems.append(f"violation {leaf.entry_id} is shown {body.get('status')!r}, its case entries "
                                     f"in the log make it {statuses.get(leaf.entry_id)!r}")
            fields = ("rule_id", "explanation_zh", "explanation_en", "legal_basis", "evidence", "severity")
            if any(body.get(f) != leaf.payload.get(f) for f in fields) or not (body.get("leaf") or {}).get(
                    "verification", {}).get("ok", False):
                served.append(f"violation {leaf.entry_id} (leaf {index}) is shown differently from its leaf")
    checks = [c for c in checks if c.name != "ledger_replay"] + [
        CheckResult(name="ledger_replay", passed=all(c.passed for c in ledger),
                    reason="; ".join(c.reason for c in ledger if not c.passed)
                    or f"{len(facts.positions)} fund positions shown equal the states the log commits"),
    ]
    checks.append(CheckResult(name="served_fact_mismatch", passed=not served,
                              reason="; ".join(served[:5]) or "every trail, event and violation shown equals "
                              "its leaf"))
    checks.append(CheckResult(name="case_status", passed=not case_problems,
                              reason="; ".join(case_problems[:5]) or "every violation's status follows its case "
                              "entries (a case action of the last seconds may not be recorded by compliance yet)"))
    checks.append(CheckResult(name="http_error", passed=not http,
                              reason="; ".join(http[:5]) or "every endpoint answered"))
    report = VerificationReport(checks=checks)
    if report.ok:
        state[current.log_id] = current.model_dump(mode="json")
        save_state(state_path, state)
    return report


def _parse_columns(columns: dict[str, Any]) -> dict[str, Any]:
    """Audit columns as the database types them (datetimes and UUIDs parsed back)."""
    import uuid

    out = dict(columns)
    for name in ("occurred_at", "appended_at"):
        if isinstance(out.get(name), str):
            out[name] = datetime.fromisoformat(out[name])
    for name in ("entry_id", "violation_id"):
        if isinstance(out.get(name), str):
            out[name] = uuid.UUID(out[name])
    return out


def _log_key(public_key: Path | None, log_key: str | None) -> Any:
    if log_key:
        return NoteVerifier.from_vkey(log_key)
    if public_key is not None:
        return load_public_key(public_key)
    raise ValueError("give --log-key VKEY (from GET /v1/log/key) or --public-key PEM")


def _witness_keys(vkeys: list[str]) -> list[NoteVerifier]:
    keys = [NoteVerifier.from_vkey(v) for v in vkeys]
    for k in keys:
        if k.sig_type != SIG_COSIGNATURE_V1:
            raise ValueError(f"--witness {k.name}: not a cosignature/v1 key (type 0x04)")
    return keys


def verify(
    public_key: Annotated[
        Path | None, typer.Option(help="The log's Ed25519 public key (PEM); its key name is the origin")
    ] = None,
    log_key: Annotated[
        str | None, typer.Option(envvar="FUNDTRAIL_LOG_KEY", help="The log's note verifier key (vkey)")
    ] = None,
    witness: Annotated[
        list[str] | None, typer.Option(help="Require a valid cosignature from this witness vkey (repeatable)")
    ] = None,
    api: Annotated[str | None, typer.Option(envvar="FUNDTRAIL_API_URL", help="Gateway base URL")] = None,
    token_value: Annotated[
        str | None, typer.Option("--token", envvar="FUNDTRAIL_TOKEN", help="Bearer token (auditor)")
    ] = None,
    entry: Annotated[int | None, typer.Option(help="Leaf index of a trail entry to prove")] = None,
    bundle: Annotated[Path | None, typer.Option(help="Verify an exported proof bundle offline")] = None,
    state: Annotated[Path, typer.Option(help="Where the last verified checkpoint is kept")] = DEFAULT_STATE,
    log_id: Annotated[str | None, typer.Option(help="Expected log id")] = None,
    audit: Annotated[bool, typer.Option(help="Full audit: recompute the whole log and compare what the API shows")]
    = False,
) -> None:
    """Check that an entry is in the log and that the log only grew since the last check."""
    try:
        key = _log_key(public_key, log_key)
        witnesses = _witness_keys(witness or [])
    except (ValueError, OSError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    try:
        if bundle is not None:
            if witnesses:
                err.print("[red]--witness needs --api: cosignatures are fetched from the gateway[/]")
                raise typer.Exit(2)
            report = verify_offline(bundle, key, state, log_id)
        elif api is not None and audit:
            report = verify_audit(api, token_value, key, state, log_id, witnesses=witnesses)
        elif api is not None:
            report = verify_online(api, token_value, key, entry, state, log_id, witnesses=witnesses)
        else:
            err.print("[red]give --api URL (with --token) or --bundle FILE[/]")
            raise typer.Exit(2)
    except (RuntimeError, OSError, httpx.HTTPError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    for check in report.checks:
        mark = "[green]PASS[/]" if check.passed else "[red]FAIL[/]"
        console.print(f"{mark}  {check.name}: {check.reason}", highlight=False)
    console.print("RESULT: " + ("[green]all checks passed[/]" if report.ok else "[red]verification failed[/]"))
    if not report.ok:
        raise typer.Exit(1)
