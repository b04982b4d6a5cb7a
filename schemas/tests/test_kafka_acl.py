"""Invariants of the principals and their grants (the broker enforces them: deploy/devstack/tests/test_kafka_acl.py)."""

from __future__ import annotations

from fundtrail_schemas.kafka_acl import Operation, Pattern, Resource, Role, bureau_user, principal, principals
from fundtrail_schemas.regions import CITY, counties, towns
from fundtrail_schemas.topics import CASES, VIOLATIONS, department_topic, raw_topic, registry_topics
from fundtrail_schemas.types import Department


def _writers(topic: str) -> set[str]:
    return {
        p.name for p in principals() for g in p.grants
        if g.resource is Resource.TOPIC and Operation.WRITE in g.operations
        and (topic == g.name if g.pattern is Pattern.LITERAL else topic.startswith(g.name))
    }


def test_one_principal_per_service_bureau_region_department_and_an_operator() -> None:
    names = [p.name for p in principals()]
    assert len(names) == len(set(names))
    bureaus = {p.name for p in principals() if p.role is Role.BUREAU}
    assert bureaus == {bureau_user(r.code) for r in (CITY, *counties(), *towns())}
    assert {p.name for p in principals() if p.role is Role.AUDITOR} == {f"auditor-{d.value}" for d in Department}
    assert [p.name for p in principals() if p.super_user] == ["operator"]


def test_who_may_write_what() -> None:
    assert _writers(VIOLATIONS) == {"compliance"}
    assert all(_writers(department_topic(d)) == {"compliance"} for d in Department)
    assert _writers(CASES) == {"compliance", "gateway"}
    # A town's topic: its own bureau, its county's, and the gateway; never another county's.
    assert _writers(raw_topic("440705101")) == {"bureau-440705101", "bureau-440705", "gateway"}
    assert _writers(raw_topic("440700")) == {"bureau-440700", "gateway"}


def test_every_granted_topic_exists_in_the_registry() -> None:
    names = {t.name for t in registry_topics()}
    for p in principals():
        for g in p.grants:
            if g.resource is Resource.TOPIC:
                matches = {n for n in names if (n == g.name if g.pattern is Pattern.LITERAL else n.startswith(g.name))}
                assert matches, f"{p.name}: {g.name} matches no topic"


def test_an_auditor_reads_one_topic_only() -> None:
    reads = {g.name for g in principal("auditor-agriculture").grants
             if g.resource is Resource.TOPIC and Operation.READ in g.operations}
    assert reads == {department_topic("agriculture")}
