"""SASL/SCRAM and ACLs for the local broker: its security settings, the project's users and ACLs
(``fundtrail_schemas.kafka_acl``) applied through the Admin API, and a client configuration per user.

Passwords are generated once per user and kept in ``<credentials_dir>/<user>.password`` (0600); a
client reads its own file (``KAFKA_SASL_PASSWORD_FILE``). The broker listens with SASL_PLAINTEXT on
loopback only: TLS belongs to deployments that leave the machine (deploy/compose.yaml, deploy/k8s).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fundtrail_schemas.kafka_acl import (
    BROKER_USER,
    CONTROLLER_USER,
    OPERATOR_USER,
    SUPER_USERS,
    KafkaPrincipal,
    Resource,
    principals,
)
from fundtrail_schemas.kafka_security import SCRAM_SHA_512, KafkaSecurity

__all__ = ["BrokerSecurity", "apply_principals", "write_client_configs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerSecurity:
    """A broker with SCRAM-SHA-512 clients, the KRaft StandardAuthorizer and no access without an ACL."""

    credentials_dir: Path

    def password_file(self, user: str) -> Path:
        """The file holding `user`'s password, created (random, mode 0600) on first use."""
        path = Path(self.credentials_dir).absolute() / f"{user}.password"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(20) + "\n")
        return path

    def password(self, user: str) -> str:
        return self.password_file(user).read_text().strip()

    def client(self, user: str | None = None) -> KafkaSecurity:
        """Client settings of `user` (default: the operator) for this loopback broker."""
        user = user or OPERATOR_USER
        return KafkaSecurity(security_protocol="SASL_PLAINTEXT", sasl_mechanism=SCRAM_SHA_512,
                             sasl_username=user, sasl_password_file=self.password_file(user))

    def env(self, user: str) -> dict[str, str]:
        """The environment a process authenticating as `user` needs (password by file, not by value)."""
        return {
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": SCRAM_SHA_512,
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD_FILE": str(self.password_file(user)),
        }

    def server_properties(self) -> str:
        """The broker's security settings (substituted into server.properties.template)."""
        controller = self.password(CONTROLLER_USER)
        return "\n".join((
            "# SASL: SCRAM-SHA-512 for clients and between brokers; PLAIN on the controller listener",
            "# (KRaft controllers cannot check SCRAM: the credentials live in the metadata they serve).",
            f"sasl.enabled.mechanisms={SCRAM_SHA_512}",
            f"sasl.mechanism.inter.broker.protocol={SCRAM_SHA_512}",
            "sasl.mechanism.controller.protocol=PLAIN",
            f"listener.name.sasl_plaintext.sasl.enabled.mechanisms={SCRAM_SHA_512}",
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{BROKER_USER}" password="{self.password(BROKER_USER)}";',
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            "listener.name.controller.plain.sasl.jaas.config="
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{CONTROLLER_USER}" password="{controller}" user_{CONTROLLER_USER}="{controller}";',
            "# Authorization: nothing is allowed without an ACL, except to the super users.",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            "super.users=" + ";".join(f"User:{u}" for u in SUPER_USERS),
        )) + "\n"

    def scram_bootstrap_args(self) -> list[str]:
        """`kafka-storage format` arguments that create the broker's and the operator's SCRAM users."""
        args: list[str] = []
        for user in (BROKER_USER, OPERATOR_USER):
            args += ["--add-scram", f"{SCRAM_SHA_512}=[name={user},password={self.password(user)}]"]
        return args


def apply_principals(
    bootstrap: str, security: BrokerSecurity, users: Iterable[KafkaPrincipal] | None = None
) -> list[str]:
    """Create (or reset to the stored password) each user's SCRAM credential and its ACLs, as the operator
    (``fundtrail_runtime.kafka_acls``, the code path deploy/compose.yaml's ``kafka-acls`` runs too).

    Idempotent: an ACL that exists is not duplicated. Returns the user names.
    """
    from fundtrail_runtime.kafka_acls import apply_principals as apply

    users = list(principals() if users is None else users)
    passwords = {u.name: security.password(u.name) for u in users if u.name != OPERATOR_USER}
    return apply(bootstrap, security.client(OPERATOR_USER), passwords, users)


def write_client_configs(directory: Path, bootstrap: str, security: BrokerSecurity,
                         users: Iterable[str]) -> dict[str, tuple[Path, Path]]:
    """Per user, a Java client properties file and a kcat (librdkafka) config file (mode 0600).

    Returns {user: (java properties, kcat config)}; `kcat -F <kcat config> -L` lists what the user may see.
    """
    from fundtrail_schemas.kafka_acl import principal

    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, Path]] = {}
    for user in users:
        password = security.password(user)
        # A user may join only the consumer groups its ACLs name (a prefix): give its tools one.
        prefixes = [g.name for g in principal(user).grants if g.resource is Resource.GROUP]
        group = f"group.id={prefixes[0].rstrip('-')}-console\n" if prefixes else ""
        java = directory / f"{user}.properties"
        kcat = directory / f"{user}.kcat.conf"
        _write_private(java, (
            f"# Kafka client configuration of User:{user} (generated by fundtrail-devstack)\n"
            f"bootstrap.servers={bootstrap}\n"
            "security.protocol=SASL_PLAINTEXT\n"
            f"sasl.mechanism={SCRAM_SHA_512}\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{password}";\n'
            + group
        ))
        _write_private(kcat, (
            f"# kcat -F {kcat} ... (User:{user}, generated by fundtrail-devstack)\n"
            f"bootstrap.servers={bootstrap}\n"
            "security.protocol=SASL_PLAINTEXT\n"
            f"sasl.mechanisms={SCRAM_SHA_512}\n"
            f"sasl.username={user}\n"
            f"sasl.password={password}\n"
            + group
        ))
        out[user] = (java, kcat)
    return out


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
