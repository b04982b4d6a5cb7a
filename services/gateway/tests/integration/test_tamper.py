"""Tamper suite: change the log's tables directly in PostgreSQL, then `fundtrail verify --audit` must name
the change, and no endpoint may answer 500. Each case runs on its own copy of one seeded database."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from fundtrail_gateway.main import create_app
from fundtrail_gateway.seed import World, seed_world
from fundtrail_runtime.db import sync_engine
from fundtrail_schemas.leaf import canonical_json
from fundtrail_verify import merkle
from fundtrail_verify.checkpoint import sign_checkpoint
from fundtrail_verify.cli import audit_through

pytestmark = pytest.mark.integration

# Bypass the append-only triggers the way a superuser can.
BYPASS = "SET session_replication_role = replica; "
F = "F-440705-2026-01"  # the first county's fund (leaves 0-11)

# (name, SQL, the named check that must fail)
TAMPERS: list[tuple[str, str, str]] = [
    ("leaf_payload_amount", "UPDATE trail_entry SET leaf_data = convert_to(replace(convert_from(leaf_data, 'UTF8'),"
     " '\"amount_fen\":10000000', '\"amount_fen\":90000000'), 'UTF8') WHERE seq = 5", "leaf_hash"),
    ("leaf_garbage", "UPDATE trail_entry SET leaf_data = '\\xdeadbeef' WHERE seq = 2", "leaf_unparseable"),
    ("leaf_hash_column", "UPDATE trail_entry SET leaf_hash = sha256('x') WHERE seq = 3", "leaf_hash"),
    ("column_fund_doc_no", "UPDATE trail_entry SET fund_doc_no = 'F-OTHER' WHERE seq = 4", "column_mismatch"),
    ("column_region_code", "UPDATE trail_entry SET region_code = '440781' WHERE seq = 4", "column_mismatch"),
    ("column_event_type", "UPDATE trail_entry SET event_type = 'FundReturned' WHERE seq = 1", "column_mismatch"),
    ("column_occurred_at", "UPDATE trail_entry SET occurred_at = occurred_at - interval '30 days' WHERE seq = 3",
     "column_mismatch"),
    ("column_appended_at", "UPDATE trail_entry SET appended_at = appended_at + interval '1 day' WHERE seq = 3",
     "column_mismatch"),
    ("column_trace_id", "UPDATE trail_entry SET trace_id = repeat('0', 32) WHERE seq = 5", "column_mismatch"),
    ("column_entry_id", f"UPDATE trail_entry SET entry_id = '{uuid.uuid4()}' WHERE seq = 5", "column_mismatch"),
    ("column_project_id", "UPDATE trail_entry SET project_id = 'P-X' WHERE seq = 6", "column_mismatch"),
    ("column_payment_id", "UPDATE trail_entry SET payment_id = 'ZF-X' WHERE seq = 6", "column_mismatch"),
    ("column_contract_id", "UPDATE trail_entry SET contract_id = NULL WHERE seq = 6", "column_mismatch"),
    ("column_vendor_id", "UPDATE trail_entry SET vendor_id = 'V-X' WHERE seq = 6", "column_mismatch"),
    ("column_violation_id", f"UPDATE trail_entry SET violation_id = '{uuid.uuid4()}' WHERE seq = 8",
     "column_mismatch"),
    ("column_entry_kind", "UPDATE trail_entry SET entry_kind = 'case' WHERE seq = 0", "column_mismatch"),
    ("rows_reordered", "UPDATE trail_entry SET leaf_data = CASE seq WHEN 6 THEN (SELECT leaf_data FROM trail_entry"
     " WHERE seq = 7) ELSE (SELECT leaf_data FROM trail_entry WHERE seq = 6) END WHERE seq IN (6, 7)", "leaf_hash"),
    ("row_deleted_middle", "DELETE FROM trail_entry WHERE seq = 5", "missing_leaf"),
    ("row_deleted_tail_of_fund", "DELETE FROM trail_entry WHERE seq IN (10, 11)", "missing_leaf"),
    ("interior_node", "UPDATE trail_node SET hash = sha256('x') WHERE level = 2 AND idx = 1", "interior_node"),
    ("leaf_node", "UPDATE trail_node SET hash = sha256('y') WHERE level = 0 AND idx = 9", "leaf_hash"),
    ("node_deleted", "DELETE FROM trail_node WHERE level = 1 AND idx = 0", "interior_node"),
    ("checkpoint_rolled_back", "DELETE FROM trail_checkpoint WHERE tree_size = (SELECT max(tree_size) FROM"
     " trail_checkpoint)", "checkpoint_rollback"),
    # The latest note carries the first checkpoint's signature line (a signed note: text, blank line, signatures).
    ("checkpoint_signature", "UPDATE trail_checkpoint SET note = split_part(note, E'\\n\\n', 1) || E'\\n\\n' ||"
     " split_part((SELECT note FROM trail_checkpoint ORDER BY tree_size LIMIT 1), E'\\n\\n', 2)"
     " WHERE tree_size = (SELECT max(tree_size) FROM trail_checkpoint)", "checkpoint_signature"),
    ("fork", "FORK", "fork"),
    ("processed_event_payload", "UPDATE processed_event SET payload = jsonb_set(payload::jsonb, '{amount_fen}',"
     " '90000000')::json WHERE sequence = 5", "column_mismatch"),
    ("processed_event_state_after", "UPDATE processed_event SET state_after = '{\"position\": null}' WHERE"
     " sequence = 1", "column_mismatch"),
    ("violation_payload", "UPDATE violation SET payload = jsonb_set(payload, '{severity}', '\"low\"')"
     " WHERE violation_id = (SELECT violation_id FROM trail_entry WHERE seq = 8)", "column_mismatch"),
    ("violation_explanation", "UPDATE violation SET explanation_zh = '无问题' WHERE violation_id = (SELECT"
     " violation_id FROM trail_entry WHERE seq = 8)", "served_fact_mismatch"),
    ("violation_status", "UPDATE violation SET status = 'dismissed' WHERE violation_id = (SELECT violation_id"
     " FROM trail_entry WHERE seq = 7)", "case_status"),
    ("case_action_payload", "UPDATE case_action SET payload = jsonb_set(payload, '{actor}', '\"SOMEONE\"')",
     "column_mismatch"),
    ("fund_position_paid", f"UPDATE fund_position SET paid_fen = paid_fen - 1 WHERE fund_doc_no = '{F}'"
     " AND level = 'town'", "ledger_replay"),
    ("fund_position_invented", f"INSERT INTO fund_position (fund_doc_no, level, region_code, received_fen,"
     f" passed_down_fen, paid_fen, returned_fen, contracted_fen) VALUES ('{F}', 'village', '440705101299', 5, 0, 0,"
     " 0, 0)", "ledger_replay"),
]


def _admin(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="module")
def seeded_template(pg_node: Any, migrated_template: str, log_key: Ed25519PrivateKey) -> Iterator[tuple[str, World]]:
    name = f"tamper_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin(pg_node.url("postgres")), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
    engine = sync_engine(pg_node.url(name))
    try:
        world = seed_world(engine, log_key)
    finally:
        engine.dispose()
    yield name, world
    with contextlib.suppress(Exception):
        pg_node.drop_database(name, force=True)


@contextlib.contextmanager
def _copy(pg_node: Any, template: str) -> Iterator[str]:
    name = f"tamper_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin(pg_node.url("postgres")), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield pg_node.url(name)
    finally:
        with contextlib.suppress(Exception):
            pg_node.drop_database(name, force=True)


def _audit(url: str, settings_factory: Any, auditor: dict[str, str], key: Ed25519PrivateKey,
           state: Path) -> tuple[dict[str, bool], list[tuple[str, int]]]:
    """Run the full audit through a gateway over `url`, then call every reading endpoint."""
    app = create_app(settings_factory(database_url=url))
    with TestClient(app, base_url="http://gateway.test", headers=auditor, raise_server_exceptions=False) as client:
        report = audit_through(client, key.public_key(), state, None)
        answers = _call_everything(client)
    return {c.name: c.passed for c in report.checks}, answers


def _call_everything(client: TestClient) -> list[tuple[str, int]]:
    paths = ["/v1/funds", "/v1/violations", "/v1/proofs/checkpoint", "/v1/proofs/consistency?old_size=1"]
    for county, town in (("440705", "440705101"), ("440781", "440781101"), ("440783", "440783101")):
        fund, project = f"F-{county}-2026-01", f"P-{town}-2026-001"
        paths += [f"/v1/funds/{fund}", f"/v1/funds/{fund}/trail", f"/v1/funds/{fund}/trail?limit=3",
                  f"/v1/projects/{project}/trail", f"/v1/vendors/V-{county}-0001/trail",
                  f"/v1/payments/ZF-{town}-0000/trail"]
    paths += [f"/v1/proofs/entries/{i}" for i in range(0, 30, 4)] + ["/v1/proofs/entries/6/bundle"]
    leaves = client.get("/v1/audit/leaves").json()["items"]
    for item in leaves:
        cols = item["columns"]
        if cols["entry_kind"] == "event":
            paths.append(f"/v1/events/{cols['entry_id']}")
        elif cols["violation_id"]:
            paths.append(f"/v1/violations/{cols['violation_id']}")
    return [(p, client.get(p).status_code) for p in paths]


@pytest.fixture(scope="module")
def remembered(seeded_template: tuple[str, World], pg_node: Any, settings_factory: Any, auth: Any,
               log_key: Ed25519PrivateKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The untouched log passes every check; the auditor remembers its checkpoint."""
    state = tmp_path_factory.mktemp("verify") / "state.json"
    with _copy(pg_node, seeded_template[0]) as url:
        checks, answers = _audit(url, settings_factory, auth("auditor"), log_key, state)
    assert all(checks.values()), checks
    assert {"missing_leaf", "leaf_hash", "column_mismatch", "interior_node", "chain_gap", "ledger_replay",
            "state_transition", "served_fact_mismatch"} <= checks.keys()
    assert [a for a in answers if a[1] != 200] == []
    return state


@pytest.mark.parametrize(("name", "sql", "check"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_tamper_is_named_by_verify_and_never_a_500(
    name: str, sql: str, check: str, seeded_template: tuple[str, World], pg_node: Any, settings_factory: Any,
    auth: Any, log_key: Ed25519PrivateKey, remembered: Path, tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    state.write_text(remembered.read_text())
    with _copy(pg_node, seeded_template[0]) as url, psycopg.connect(_admin(url), autocommit=True) as conn:
        if sql == "FORK":
            # An insider with the key signs another tree of the same size: the remembered root is not its prefix.
            size, at = conn.execute("SELECT tree_size, signed_at FROM trail_checkpoint ORDER BY tree_size DESC"
                                    " LIMIT 1").fetchone()  # type: ignore[misc]
            cp = sign_checkpoint(log_key, seeded_template[1].log_id, size, bytes(32), at)
            conn.execute(BYPASS)
            conn.execute("UPDATE trail_checkpoint SET root_hash = %s, note = %s WHERE tree_size = %s",
                         (cp.root_hash, cp.note, size))
        else:
            conn.execute(BYPASS + sql)  # type: ignore[arg-type]
        checks, answers = _audit(url, settings_factory, auth("auditor"), log_key, state)
    assert checks.get(check) is False, (name, checks)
    assert not [a for a in answers if a[1] >= 500], answers
    assert json.loads(state.read_text()) == json.loads(remembered.read_text())  # a failed audit remembers nothing


def _states(leaf: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in (leaf["after"] or {}).values() if isinstance(p, dict) and "received_fen" in p]


def _key(position: dict[str, Any]) -> tuple[str, str, str]:
    return position["fund_doc_no"], position["level"], position["region_code"]


def _rewrite_log(conn: psycopg.Connection[Any], key: Ed25519PrivateKey, edits: dict[int, Any]) -> None:
    """An insider holding the signing key rewrites leaves (`edits[seq](leaf object)`), then makes every hash agree:
    leaf hashes, every stored node, every checkpoint re-signed, and the tables that copy a leaf's payload and
    state after (and the fund positions the last states describe)."""
    conn.execute(BYPASS)
    rows = conn.execute("SELECT seq, leaf_data FROM trail_entry ORDER BY seq").fetchall()
    tree = merkle.CompactRange()
    touched: set[tuple[str, str, str]] = set()
    last_paid: dict[tuple[str, str, str], int] = {}
    conn.execute("DELETE FROM trail_node")
    for seq, data in rows:
        if seq in edits:
            leaf = json.loads(bytes(data))
            edits[seq](leaf)
            data = canonical_json(leaf)
            conn.execute("UPDATE trail_entry SET leaf_data = %s, leaf_hash = %s WHERE seq = %s",
                         (data, merkle.leaf_hash(data), seq))
            conn.execute("UPDATE processed_event SET payload = %s, state_after = %s WHERE sequence = %s",
                         (json.dumps(leaf["payload"]), json.dumps(leaf["after"]), seq))
            touched |= {_key(p) for p in _states(leaf)}
        for p in _states(json.loads(bytes(data))):
            last_paid[_key(p)] = p["paid_fen"]
        for level, idx, h in tree.append(merkle.leaf_hash(bytes(data))):
            conn.execute("INSERT INTO trail_node (level, idx, hash) VALUES (%s, %s, %s)", (level, idx, h))
    for position in touched:  # the positions shown are the last states the log commits
        conn.execute("UPDATE fund_position SET paid_fen = %s WHERE (fund_doc_no, level, region_code) = (%s, %s, %s)",
                     (last_paid[position], *position))
    roots = {}
    replay = merkle.InMemoryTree()
    for _, data in conn.execute("SELECT seq, leaf_data FROM trail_entry ORDER BY seq").fetchall():
        replay.append(bytes(data))
    for size, at, log_id in conn.execute("SELECT tree_size, signed_at, log_id FROM trail_checkpoint").fetchall():
        roots[size] = sign_checkpoint(key, log_id, size, replay.root(size), at)
    for size, cp in roots.items():
        sig = cp.parsed_note().signatures[0]
        conn.execute("UPDATE trail_checkpoint SET root_hash = %s, note = %s, signature = %s WHERE tree_size = %s",
                     (cp.root_hash, cp.note, base64.b64encode(sig.signature).decode(), size))


def _paid(part: str, delta: int) -> Any:
    def edit(leaf: dict[str, Any]) -> None:
        leaf[part]["position"]["paid_fen"] += delta
    return edit


# (name, leaf edits) a key-holding insider makes consistent with every hash; only `state_transition` (the
# ledger core replaying the leaves) names them. Leaves 5 and 6 are the first county's two payments by its town.
REWRITES: list[tuple[str, dict[int, Any]]] = [
    # The last payment's state after says one fen more was paid than its amount adds (the town position
    # shows it too, so the served positions agree with the log).
    ("state_after_rewritten", {6: _paid("after", 1)}),
    # A payment's amount lowered in its payload, its states left: the event no longer explains them.
    ("payload_amount_rewritten", {5: lambda leaf: leaf["payload"].update(amount_fen=1)}),
    # 50 fen more paid from leaf 5 on, the next state before shifted to match: each before continues the
    # previous after (ledger_replay passes), but no event paid those 50.
    ("states_shifted", {5: _paid("after", 50), 6: lambda leaf: (_paid("before", 50)(leaf), _paid("after", 50)(leaf))}),
]


@pytest.mark.parametrize(("name", "edits"), REWRITES, ids=[r[0] for r in REWRITES])
def test_a_rewritten_and_resigned_state_is_named_only_by_the_ledger_replay(
    name: str, edits: dict[int, Any], seeded_template: tuple[str, World], pg_node: Any, settings_factory: Any,
    auth: Any, log_key: Ed25519PrivateKey, tmp_path: Path,
) -> None:
    # A first audit (nothing remembered), so neither `fork` nor `checkpoint_rollback` can help.
    with _copy(pg_node, seeded_template[0]) as url, psycopg.connect(_admin(url), autocommit=True) as conn:
        assert conn.execute("SELECT event_type FROM trail_entry WHERE seq IN (5, 6)").fetchall() == [
            ("PaymentDisbursed",), ("PaymentDisbursed",)]
        _rewrite_log(conn, log_key, edits)
        checks, answers = _audit(url, settings_factory, auth("auditor"), log_key, tmp_path / "state.json")
    assert {c for c, ok in checks.items() if not ok} == {"state_transition"}, (name, checks)
    assert not [a for a in answers if a[1] >= 500], answers


def test_trail_tables_refuse_update_and_delete(seeded_template: tuple[str, World], pg_node: Any) -> None:
    with _copy(pg_node, seeded_template[0]) as url, psycopg.connect(_admin(url), autocommit=True) as conn:
        for statement in ("UPDATE trail_entry SET region_code = '440781' WHERE seq = 0",
                          "DELETE FROM trail_node WHERE level = 0 AND idx = 0",
                          "DELETE FROM trail_checkpoint", "UPDATE processed_event SET level = 'city'",
                          "TRUNCATE trail_entry"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)  # type: ignore[arg-type]
        # The service roles: the writer may insert but not update (on trail_checkpoint it may only attach a
        # note to a checkpoint without one, which the trigger checks); the reader only select.
        conn.execute("CREATE ROLE tamper_writer LOGIN IN ROLE fundtrail_writer")
        try:
            conn.execute("SET ROLE tamper_writer")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute("UPDATE trail_entry SET region_code = '440781'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute("UPDATE trail_checkpoint SET note = 'x'")
            conn.execute("SELECT count(*) FROM trail_entry")
            conn.execute("RESET ROLE")
        finally:
            conn.execute("RESET ROLE")
            conn.execute("DROP OWNED BY tamper_writer")
            conn.execute("DROP ROLE tamper_writer")
