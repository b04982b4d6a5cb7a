"""Apply the project's Kafka identities (``fundtrail_schemas.kafka_acl``) to a broker with the Admin API:
each principal's ACLs and, where a password is given, its SCRAM-SHA-512 credential.

One code path for every place that sets a broker up: the devstack (``fundtrail_devstack.kafka_auth``)
and deploy/compose.yaml's one-shot ``kafka-acls`` service (``fundtrail acls``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fundtrail_schemas.kafka_acl import OPERATOR_USER, KafkaPrincipal, Operation, Pattern, Resource, principals
from fundtrail_schemas.kafka_security import KafkaSecurity, client_security

__all__ = ["acl_bindings", "apply_principals", "passwords_from_dir"]

log = logging.getLogger(__name__)


def acl_bindings(p: KafkaPrincipal) -> list[Any]:
    """The kafka-python ACL objects that allow `p` its grants (one per operation and resource)."""
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    resource = {Resource.TOPIC: ResourceType.TOPIC, Resource.GROUP: ResourceType.GROUP,
                Resource.CLUSTER: ResourceType.CLUSTER}
    pattern = {Pattern.LITERAL: ACLResourcePatternType.LITERAL, Pattern.PREFIXED: ACLResourcePatternType.PREFIXED}
    operation = {Operation.READ: ACLOperation.READ, Operation.WRITE: ACLOperation.WRITE,
                 Operation.DESCRIBE: ACLOperation.DESCRIBE}
    return [
        ACL(p.principal, "*", operation[op], ACLPermissionType.ALLOW,
            ResourcePattern(resource[g.resource], g.name, pattern[g.pattern]))
        for g in p.grants
        for op in g.operations
    ]


def passwords_from_dir(directory: Path, users: Iterable[str]) -> dict[str, str]:
    """{user: password} for each user with a ``<user>.password`` file in `directory` (others are skipped)."""
    out: dict[str, str] = {}
    for user in users:
        path = Path(directory) / f"{user}.password"
        if path.is_file():
            out[user] = path.read_text().strip()
    return out


def apply_principals(
    bootstrap: str, operator: KafkaSecurity, passwords: Mapping[str, str],
    users: Iterable[KafkaPrincipal] | None = None,
) -> list[str]:
    """As the operator: set the SCRAM credential of each user in `passwords` (the operator's own is
    never touched) and create every user's ACLs. Idempotent: the broker keeps one copy of an ACL.

    Returns the names of the users whose ACLs were applied.
    """
    from kafka.admin import KafkaAdminClient, ScramMechanism, UserScramCredentialUpsertion

    users = list(principals() if users is None else users)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fundtrail-acls",
                             **client_security("kafka-python", operator))
    try:
        upserts = [UserScramCredentialUpsertion(name, ScramMechanism.SCRAM_SHA_512, password)
                   for name, password in passwords.items() if name != OPERATOR_USER]
        if upserts:
            errors = {k: v for k, v in admin.alter_user_scram_credentials(upserts).items() if v}
            if errors:
                raise RuntimeError(f"SCRAM credentials refused: {errors}")
        acls = [acl for u in users for acl in acl_bindings(u)]
        if acls:
            result = admin.create_acls(acls)
            if result.get("failed"):
                raise RuntimeError(f"ACLs refused: {result['failed']}")
    finally:
        admin.close()
    log.info("applied the ACLs of %d Kafka users (%d SCRAM credentials)", len(users), len(passwords))
    return [u.name for u in users]
