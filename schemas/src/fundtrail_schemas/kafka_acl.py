"""Kafka identities and what each may do: one principal per service, bureau, department's auditors
and the operator, with the least ACLs it needs. Derived from the topic, region and department
registries, so a new department or town gets its principal and ACLs without an edit here.

Pure data: ``fundtrail_runtime.kafka_acls`` applies it through the Admin API (the devstack, and
deploy/compose.yaml's ``kafka-acls`` one-shot: ``fundtrail acls``), ``deploy/k8s/gen_topics.py``
renders it as Strimzi ``KafkaUser`` resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .regions import CITY, counties, towns
from .topics import (
    CASES,
    COMPLIANCE_WINDOWS,
    DEAD_LETTERS,
    ENRICHED_EVENTS,
    RAW_EVENTS,
    RULE_PACKS,
    TRAIL_COSIGNATURES,
    VIOLATIONS,
    VIOLATIONS_DLQ,
    department_topic,
    raw_topic,
)
from .types import Department

# Consumer groups of the workers: the faust app id and its hot-path group `<app id>-raw` /
# `<app id>-enriched` (the settings' defaults; a prefixed ACL covers both).
TRACKER_GROUP = "fundtrail-tracker"
COMPLIANCE_GROUP = "fundtrail-compliance"

# Principals the broker trusts with everything (super.users): the broker itself (inter-broker
# SCRAM), the controller (PLAIN on the controller listener: KRaft controllers cannot use SCRAM),
# and the operator who creates topics, users and ACLs.
BROKER_USER = "broker"
CONTROLLER_USER = "controller"
OPERATOR_USER = "operator"
SUPER_USERS = (BROKER_USER, CONTROLLER_USER, OPERATOR_USER)


class Resource(StrEnum):
    TOPIC = "topic"
    GROUP = "group"
    CLUSTER = "cluster"


class Pattern(StrEnum):
    LITERAL = "literal"
    PREFIXED = "prefixed"


class Operation(StrEnum):
    READ = "Read"
    WRITE = "Write"
    DESCRIBE = "Describe"


class Role(StrEnum):
    SERVICE = "service"
    BUREAU = "bureau"
    AUDITOR = "auditor"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Grant:
    """Allow `operations` on the resources named `name` (exactly, or every name starting with it)."""

    resource: Resource
    name: str
    pattern: Pattern
    operations: tuple[Operation, ...]


@dataclass(frozen=True)
class KafkaPrincipal:
    """A SCRAM user and its grants (everything not granted is refused: allow.everyone.if.no.acl.found=false)."""

    name: str
    role: Role
    description: str
    grants: tuple[Grant, ...] = ()
    super_user: bool = False

    @property
    def principal(self) -> str:
        return f"User:{self.name}"


def _topic(name: str, *ops: Operation, prefixed: bool = False) -> Grant:
    return Grant(Resource.TOPIC, name, Pattern.PREFIXED if prefixed else Pattern.LITERAL, ops)


def _group(prefix: str) -> Grant:
    # Read on a group lets a consumer join it and commit its offsets; Describe lets it look the group up.
    return Grant(Resource.GROUP, prefix, Pattern.PREFIXED, (Operation.READ, Operation.DESCRIBE))


R, W = Operation.READ, Operation.WRITE
# The unscoped raw topic and every region's: the prefix matches `fundtrail.events.raw` and
# `fundtrail.events.raw.<code>` (no other topic starts with it).
_RAW_FAMILY = _topic(RAW_EVENTS, R, prefixed=True)


def bureau_user(region_code: str) -> str:
    """The Kafka user of the finance bureau(s) of a region."""
    return f"bureau-{region_code}"


def auditor_user(department: Department | str) -> str:
    """The Kafka user of a department's auditors."""
    return f"auditor-{Department(department).value}"


def auditor_group(department: Department | str) -> str:
    """The consumer-group prefix a department's auditors may use."""
    return f"{auditor_user(department)}-"


def fund_tracker() -> KafkaPrincipal:
    return KafkaPrincipal("fund-tracker", Role.SERVICE, "fund-tracker: reads raw events and the trail inputs", (
        _RAW_FAMILY,
        _topic(VIOLATIONS, R),
        _topic(CASES, R),
        _topic(TRAIL_COSIGNATURES, R),
        _topic(ENRICHED_EVENTS, W),
        _topic(DEAD_LETTERS, W),
        _group(TRACKER_GROUP),
    ))


def compliance() -> KafkaPrincipal:
    return KafkaPrincipal("compliance", Role.SERVICE, "compliance: judges enriched events, writes violations", (
        _topic(ENRICHED_EVENTS, R),
        _topic(CASES, R, W),
        _topic(RULE_PACKS, R),
        _topic(VIOLATIONS, W),
        *(_topic(department_topic(d), W) for d in Department),
        _topic(VIOLATIONS_DLQ, W),
        _topic(COMPLIANCE_WINDOWS, R, W),  # its own repartition topic (window rules)
        _group(COMPLIANCE_GROUP),
    ))


def gateway() -> KafkaPrincipal:
    return KafkaPrincipal("gateway", Role.SERVICE, "gateway: publishes for bureaus it authenticated over HTTP", (
        Grant(Resource.TOPIC, RAW_EVENTS, Pattern.PREFIXED, (W,)),
        _topic(CASES, W),
        _topic(RULE_PACKS, W),
        _topic(TRAIL_COSIGNATURES, W),  # witnesses' cosignatures it verified
        _topic(VIOLATIONS, R),  # the SSE tail reads without a consumer group
    ))


def bureau(region_code: str, name: str = "") -> KafkaPrincipal:
    """A bureau writes raw events on its region's topic and those of the regions inside it, nothing else."""
    return KafkaPrincipal(bureau_user(region_code), Role.BUREAU, f"finance bureau of {name or region_code}", (
        Grant(Resource.TOPIC, raw_topic(region_code), Pattern.PREFIXED, (W,)),
    ))


def auditor(department: Department) -> KafkaPrincipal:
    """A department's auditors read that department's violations topic, nothing else."""
    return KafkaPrincipal(auditor_user(department), Role.AUDITOR, f"auditors of the {department.value} department", (
        _topic(department_topic(department), R),
        _group(auditor_group(department)),
    ))


def operator() -> KafkaPrincipal:
    return KafkaPrincipal(OPERATOR_USER, Role.OPERATOR, "operator: topics, users, ACLs, dead-letter redrive",
                          super_user=True)


def principals() -> tuple[KafkaPrincipal, ...]:
    """Every principal of an installation (the broker's and controller's own are not listed)."""
    return (
        fund_tracker(), compliance(), gateway(),
        *(bureau(r.code, r.name) for r in (CITY, *counties(), *towns())),
        *(auditor(d) for d in Department),
        operator(),
    )


def principal(name: str) -> KafkaPrincipal:
    """The principal called `name`; KeyError when there is none."""
    for p in principals():
        if p.name == name:
            return p
    raise KeyError(name)
