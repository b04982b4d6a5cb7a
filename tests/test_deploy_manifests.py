"""The deployment artefacts agree with the code: compose, Kubernetes, collector, Dockerfile.

Fast unit tests: files are parsed (PyYAML safe_load_all) and compared with the topic registry and the
services' pydantic-settings classes, imported, never run. No network, no Docker, no cluster.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices, AliasPath, BaseModel
from pydantic_settings import BaseSettings

from fundtrail_runtime.settings import CommonSettings
from fundtrail_schemas.kafka_acl import Role, principals
from fundtrail_schemas.kafka_security import KafkaSecurity
from fundtrail_schemas.topics import ENRICHED_EVENTS, RAW_EVENTS, TOPICS_BY_NAME, registry_topics

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "compose.yaml"
COLLECTOR_FILE = DEPLOY / "otel-collector.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"

# The image name every Kubernetes container uses; kustomization.yaml's `images` maps it to a registry.
K8S_IMAGE = "fundtrail"
COMPOSE_IMAGE = "fundtrail:local"
KAFKA_VERSION = "4.1.1"
# Folders under deploy/ that hold no manifests of ours (build output, downloaded jars).
NOT_MANIFESTS = {"lib", "target", "__pycache__", ".venv"}
SECRET_PLACEHOLDER = "placeholder-secret-value-long-enough-for-any-check-0123456789"
DATABASE_URL_PLACEHOLDER = "postgresql+psycopg://fundtrail:placeholder@postgres:5432/fundtrail"
# Names a container may set that belong to no settings class.
SDK_PREFIXES = ("OTEL_", "PYTHON")


@dataclass(frozen=True)
class Service:
    """One deployable service: where its settings live, how it starts, what it consumes."""

    name: str  # compose service and Kubernetes Deployment name
    package: str
    settings_module: str
    command: tuple[str, ...]
    prefix: str
    input_topic: str | None


SERVICES = {
    s.name: s
    for s in (
        Service("fund-tracker", "fundtrail_tracker", "fundtrail_tracker.settings",
                ("python", "-m", "fundtrail_tracker", "worker"), "FUNDTRAIL_TRACKER_", RAW_EVENTS),
        Service("compliance", "fundtrail_compliance", "fundtrail_compliance.settings",
                ("python", "-m", "fundtrail_compliance", "worker"), "FUNDTRAIL_COMPLIANCE_", ENRICHED_EVENTS),
        Service("gateway", "fundtrail_gateway", "fundtrail_gateway.settings",
                ("python", "-m", "fundtrail_gateway"), "FUNDTRAIL_GATEWAY_", None),
    )
}
WORKERS = [s for s in SERVICES.values() if s.input_topic is not None]
ONESHOTS = {"topics": ("fundtrail", "topics"), "kafka-acls": ("fundtrail", "acls"),
            "migrate": ("fundtrail", "db", "upgrade")}
# One-shots of the infrastructure images (not fundtrail commands): Kafka's storage with its SCRAM users,
# the gateway's reader login role.
INFRA_ONESHOTS = ("kafka-format", "db-roles")


# ---------------------------------------------------------------- loading


def _manifest_files() -> list[Path]:
    return sorted(
        p for p in DEPLOY.rglob("*")
        if p.suffix in {".yaml", ".yml"} and not NOT_MANIFESTS.intersection(p.relative_to(DEPLOY).parts)
    )


def _load_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def _compose() -> dict[str, Any]:
    (doc,) = _load_all(COMPOSE_FILE)
    return doc


def _k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in _manifest_files() if p.is_relative_to(K8S) for d in _load_all(p)]


def _kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in _k8s_docs() if d.get("kind") == kind]


def _named(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _kind(kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name}, found {len(found)}"
    return found[0]


def _dockerfile_text() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


def _dockerfile_uid() -> int:
    match = re.search(r"^ARG UID=(\d+)$", _dockerfile_text(), re.M)
    assert match, "deploy/Dockerfile must declare ARG UID=<number> for its non-root user"
    return int(match.group(1))


def _dockerfile_env() -> dict[str, str]:
    """Every variable the runtime image sets with ENV (continuation lines joined)."""
    text = _dockerfile_text().replace("\\\n", " ")
    runtime = text[text.index("AS runtime"):]
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _load_path_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- settings introspection


def _import_settings(service: Service) -> ModuleType:
    try:
        return importlib.import_module(service.settings_module)
    except ModuleNotFoundError as exc:
        pytest.fail(
            f"{service.settings_module} does not exist (services/*/src/{service.package}/settings.py): the "
            f"deploy manifests configure {service.name} through it, so it must be importable ({exc})"
        )


def settings_class(service: Service) -> type[BaseSettings]:
    """The service's own settings class: the one CommonSettings subclass its module defines and nothing extends."""
    module = _import_settings(service)
    defined = [
        c for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, CommonSettings) and c.__module__ == module.__name__
    ]
    leaves = [c for c in defined if not any(o is not c and issubclass(o, c) for o in defined)]
    assert len(leaves) == 1, (
        f"{service.settings_module} should define exactly one settings class for the running service "
        f"(a CommonSettings subclass), found {[c.__name__ for c in leaves]}"
    )
    return leaves[0]


def _field_env_names(cls: type[BaseSettings], prefix: str, delimiter: str | None) -> set[str]:
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        own: set[str]
        if isinstance(alias, AliasChoices):
            own = {c for c in alias.choices if isinstance(c, str)}
        elif isinstance(alias, str):
            own = {alias}
        elif isinstance(alias, AliasPath):
            own = {str(alias.path[0])}
        else:
            own = {prefix + (field.alias or field_name)}
        names |= own
        annotation = field.annotation
        if delimiter and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for base in own:
                names |= {base + delimiter + sub for sub in annotation.model_fields}
    return names


def env_names(cls: type[BaseSettings]) -> set[str]:
    """Every environment variable name the class reads (upper-cased: settings are case-insensitive)."""
    config = cls.model_config
    assert not config.get("case_sensitive"), f"{cls.__name__} is case sensitive; this test assumes it is not"
    names = _field_env_names(cls, config.get("env_prefix", ""), config.get("env_nested_delimiter"))
    return {n.upper() for n in names}


def _assert_names_known(where: str, names: set[str], known: set[str]) -> None:
    unknown = sorted(n for n in names if n.upper() not in known and not n.startswith(SDK_PREFIXES))
    assert not unknown, f"{where} sets {unknown}, which no settings class reads (known: {sorted(known)})"


def _assert_settings_accept(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], env: dict[str, str], where: str
) -> BaseSettings:
    """Build the settings object from exactly `env`, as the container would."""
    import os

    for name in list(os.environ):
        if name.upper() in env_names(cls) or name.upper().startswith(("FUNDTRAIL_", "OTEL_")):
            monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        return cls(_env_file=None)  # type: ignore[call-arg]
    except Exception as exc:
        pytest.fail(f"{cls.__name__} refuses the environment of {where}: {exc}")


# ---------------------------------------------------------------- every YAML parses


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_under_deploy_parses(path: Path) -> None:
    docs = _load_all(path)
    assert docs, f"{path} holds no YAML document"


def test_the_manifests_we_own_exist() -> None:
    for path in (COMPOSE_FILE, COLLECTOR_FILE, DOCKERFILE, K8S / "kustomization.yaml", K8S / "kafka" / "topics.yaml"):
        assert path.is_file(), f"{path} is missing"


# ---------------------------------------------------------------- settings classes


@pytest.mark.parametrize("service", SERVICES.values(), ids=lambda s: s.name)
def test_settings_classes_use_the_service_prefix_and_the_shared_names(service: Service) -> None:
    cls = settings_class(service)
    assert cls.model_config.get("env_prefix") == service.prefix
    names = env_names(cls)
    assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"} <= names
    assert all(n.startswith(service.prefix) or n in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"} for n in names)


@pytest.mark.parametrize("service", SERVICES.values(), ids=lambda s: s.name)
def test_the_image_can_start_each_service(service: Service) -> None:
    assert service.command[:2] == ("python", "-m")
    spec = importlib.util.find_spec(f"{service.package}.__main__")
    assert spec is not None, f"`python -m {service.package}` needs {service.package}/__main__.py"


# ---------------------------------------------------------------- compose


def _compose_service(name: str) -> dict[str, Any]:
    services = _compose()["services"]
    assert name in services, f"compose has no service {name}"
    return services[name]


def _compose_env(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _compose_secret_mounts(svc: dict[str, Any]) -> dict[str, str]:
    """target file name in /run/secrets -> secret name."""
    mounts = {}
    for item in svc.get("secrets") or []:
        if isinstance(item, str):
            mounts[item] = item
        else:
            mounts[item.get("target") or item["source"]] = item["source"]
    return mounts


def _exported_by_entrypoint(target: str) -> bool:
    """The image's entrypoint exports /run/secrets/NAME as NAME when NAME looks like a variable."""
    return re.fullmatch(r"[A-Z_][A-Z0-9_]*", target) is not None


def _image_env(prefix: str) -> dict[str, str]:
    """The image's ENV defaults meant for the service with this prefix (the image is shared)."""
    return {k: v for k, v in _dockerfile_env().items() if prefix and k.startswith(prefix)}


def _container_env(svc: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """What the process sees: image ENV, compose environment, secrets the entrypoint exports."""
    env = _image_env(prefix)
    env.update(_compose_env(svc))
    for target in _compose_secret_mounts(svc):
        if _exported_by_entrypoint(target):
            env[target] = DATABASE_URL_PLACEHOLDER if target == "DATABASE_URL" else SECRET_PLACEHOLDER
    return env


def test_compose_has_every_service() -> None:
    expected = {"kafka", "postgres", "topics", "migrate", "otel-collector", "jaeger", *SERVICES}
    assert expected <= set(_compose()["services"])


def test_compose_infrastructure_images() -> None:
    assert _compose_service("kafka")["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert _compose_service("postgres")["image"] == "postgres:17"
    assert _compose_service("jaeger")["image"].startswith("jaegertracing/jaeger:2.")
    collector = _compose_service("otel-collector")
    froms = re.findall(r"^FROM (\S+)", collector["build"]["dockerfile_inline"], re.M)
    assert any(f.startswith("otel/opentelemetry-collector-contrib:") for f in froms)


def test_compose_kafka_is_a_single_kraft_node() -> None:
    env = _compose_env(_compose_service("kafka"))
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_compose_kafka_clients_authenticate_with_scram() -> None:
    """Clients over TLS only; every Kafka client of compose is a SCRAM user the format step creates.
    (The rendered configuration runs on a real broker in tests/test_compose_kafka.py.)"""
    env = _compose_env(_compose_service("kafka"))
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert protocols == {"INTERNAL": "SASL_SSL", "HOST": "SASL_SSL", "CONTROLLER": "SASL_PLAINTEXT"}
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "SCRAM-SHA-512"
    assert "${file:/run/secrets/kafka_broker.properties:password}" in env[
        "KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG"]
    assert "kafka_broker.properties" in _compose_secret_mounts(_compose_service("kafka"))
    assert "--command-config" in " ".join(_compose_service("kafka")["healthcheck"]["test"])
    fmt = _compose_service("kafka-format")
    script = fmt["command"][-1]
    assert _compose_service("kafka")["depends_on"]["kafka-format"]["condition"] == "service_completed_successfully"
    assert fmt["environment"]["CLUSTER_ID"] == env["CLUSTER_ID"]
    users = {"broker"}
    for name in (*SERVICES, "topics", "kafka-acls"):
        svc = _compose_service(name)
        client = _compose_env(svc)
        assert client["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert _compose_secret_mounts(svc)[client["KAFKA_SSL_CAFILE"].removeprefix("/run/secrets/")] == "kafka_ca", name
        assert client["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        password = client["KAFKA_SASL_PASSWORD_FILE"].removeprefix("/run/secrets/")
        user = client["KAFKA_SASL_USERNAME"]
        assert _compose_secret_mounts(svc)[password] == f"kafka_{user.replace('-', '_')}_password", name
        users.add(user)
    for user in users:
        assert f"$$(scram {user})" in script, f"kafka-format does not create the SCRAM user {user}"
        assert f"kafka_{user.replace('-', '_')}_password" in fmt["secrets"]


def test_compose_applies_the_acl_plan_before_any_service_starts() -> None:
    env = _compose_env(_compose_service("kafka"))
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    acls = _compose_service("kafka-acls")
    assert acls["command"] == ["fundtrail", "acls"]
    assert _compose_env(acls)["KAFKA_SASL_USERNAME"] == "operator"
    assert acls["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in SERVICES:
        assert _compose_service(name)["depends_on"]["kafka-acls"]["condition"] == "service_completed_successfully"


def test_compose_gateway_reads_postgres_as_the_reader_role(tmp_path: Path) -> None:
    gateway = _compose_service("gateway")
    assert _compose_secret_mounts(gateway)["DATABASE_URL"] == "gateway_database_url"
    assert gateway["depends_on"]["db-roles"]["condition"] == "service_completed_successfully"
    assert _compose_env(gateway)["FUNDTRAIL_GATEWAY_RATE_LIMIT_BACKEND"] == "memory"  # cannot write its table
    roles = _compose_service("db-roles")
    assert roles["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "login fundtrail_gateway fundtrail_reader gateway_db_password" in roles["command"][-1]
    generator = _load_path_module(DEPLOY / "secrets" / "generate.py", "fundtrail_deploy_secrets_reader")
    generator.generate(tmp_path)
    password = (tmp_path / "gateway_db_password").read_text()
    assert (tmp_path / "gateway_database_url").read_text().startswith(f"postgresql+psycopg://fundtrail_gateway:{password}@")


# Each worker's own login role, a member of fundtrail_writer (migrations 0003 and 0011): never the owner,
# who could disable or drop the trail's append-only triggers (tests/test_writer_role.py).
WORKER_DB_LOGINS = {"fund-tracker": ("tracker", "fundtrail_tracker"),
                    "compliance": ("compliance", "fundtrail_compliance")}


def test_compose_workers_write_postgres_as_their_own_writer_roles(tmp_path: Path) -> None:
    roles = _compose_service("db-roles")
    generator = _load_path_module(DEPLOY / "secrets" / "generate.py", "fundtrail_deploy_secrets_writer")
    generator.generate(tmp_path)
    for name, (short, user) in WORKER_DB_LOGINS.items():
        svc = _compose_service(name)
        assert _compose_secret_mounts(svc)["DATABASE_URL"] == f"{short}_database_url", name
        assert svc["depends_on"]["db-roles"]["condition"] == "service_completed_successfully", name
        assert f"login {user} fundtrail_writer {short}_db_password" in roles["command"][-1], name
        assert f"{short}_db_password" in roles["secrets"], name
        password = (tmp_path / f"{short}_db_password").read_text()
        url = (tmp_path / f"{short}_database_url").read_text()
        assert url.startswith(f"postgresql+psycopg://{user}:{password}@"), name
    # Only the migrate one-shot logs in as the owner.
    owners = {n for n, svc in _compose()["services"].items()
              if _compose_secret_mounts(svc).get("DATABASE_URL") == "database_url"}
    assert owners == {"migrate"}


def test_k8s_workers_write_postgres_as_their_own_writer_roles() -> None:
    cluster = yaml.safe_load((K8S / "postgres" / "cluster.yaml").read_text())
    managed = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    for name, (short, user) in WORKER_DB_LOGINS.items():
        (container,) = _named("Deployment", name)["spec"]["template"]["spec"]["containers"]
        url = next(e for e in container["env"] if e["name"] == "DATABASE_URL")
        assert url["valueFrom"]["secretKeyRef"] == {"name": f"fundtrail-db-{short}", "key": "uri"}, name
        role = managed[user]
        assert role["login"] and role["inRoles"] == ["fundtrail_writer"], name
        assert role["passwordSecret"]["name"] == f"fundtrail-db-{short}", name


def test_k8s_gateway_reads_postgres_as_the_reader_role() -> None:
    (container,) = _named("Deployment", "gateway")["spec"]["template"]["spec"]["containers"]
    url = next(e for e in container["env"] if e["name"] == "DATABASE_URL")
    assert url["valueFrom"]["secretKeyRef"] == {"name": "fundtrail-db-gateway", "key": "uri"}
    cluster = yaml.safe_load((K8S / "postgres" / "cluster.yaml").read_text())
    (role,) = [r for r in cluster["spec"]["managed"]["roles"] if r["name"] == "fundtrail_gateway"]
    assert role["login"] and role["inRoles"] == ["fundtrail_reader"]
    assert role["passwordSecret"]["name"] == "fundtrail-db-gateway"


def test_compose_app_containers_share_one_image_built_from_the_dockerfile() -> None:
    for name in (*SERVICES, *ONESHOTS):
        svc = _compose_service(name)
        assert svc["image"] == COMPOSE_IMAGE, name
        build = svc["build"]
        assert (COMPOSE_FILE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE, name
        assert svc.get("read_only") is True and svc.get("cap_drop") == ["ALL"], name


def test_compose_commands() -> None:
    for service in SERVICES.values():
        assert tuple(_compose_service(service.name)["command"]) == service.command
    for name, command in ONESHOTS.items():
        assert tuple(_compose_service(name)["command"]) == command


def test_compose_healthchecks_everywhere_except_one_shot_jobs() -> None:
    for name, svc in _compose()["services"].items():
        if name in ONESHOTS or name in INFRA_ONESHOTS:
            # A job that exits has no health; dependants wait for its exit code instead.
            assert svc.get("restart") == "no", name
            assert "healthcheck" not in svc, name
            continue
        check = svc.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_compose_start_order() -> None:
    for name in SERVICES:
        deps = _compose_service(name)["depends_on"]
        assert deps["topics"]["condition"] == "service_completed_successfully", name
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["kafka"]["condition"] == "service_healthy", name
        assert deps["postgres"]["condition"] == "service_healthy", name
    assert _compose_service("topics")["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert _compose_service("migrate")["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_telemetry_goes_to_the_collector() -> None:
    for service in SERVICES.values():
        env = _compose_env(_compose_service(service.name))
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318", service.name
        assert env["OTEL_SERVICE_NAME"].startswith("fundtrail-"), service.name


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name, svc in _compose()["services"].items():
        for port in svc.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
    assert "127.0.0.1:16686:16686" in _compose_service("jaeger")["ports"]


@pytest.mark.parametrize("service", SERVICES.values(), ids=lambda s: s.name)
def test_compose_environment_names_exist_in_the_service_settings(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = settings_class(service)
    svc = _compose_service(service.name)
    env = _container_env(svc, service.prefix)
    _assert_names_known(f"compose service {service.name}", set(env), env_names(cls) | env_names(KafkaSecurity))
    settings = _assert_settings_accept(monkeypatch, cls, env, f"compose service {service.name}")
    assert settings.kafka_bootstrap_servers == "kafka:9092"  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(ONESHOTS))
def test_compose_one_shot_environment_names_are_shared_settings(name: str) -> None:
    import inspect

    from fundtrail_runtime.cli import acls

    env = _container_env(_compose_service(name))
    # `fundtrail acls` also reads its own option from the environment (a typer envvar).
    options = {p.default.envvar for p in inspect.signature(acls).parameters.values()} - {None}
    _assert_names_known(f"compose service {name}", set(env),
                        env_names(CommonSettings) | env_names(KafkaSecurity) | options)
    needed = {"topics": "KAFKA_BOOTSTRAP_SERVERS", "kafka-acls": "KAFKA_SASL_USERNAME", "migrate": "DATABASE_URL"}[name]
    assert needed in env


def test_the_one_shot_commands_exist_in_the_fundtrail_cli() -> None:
    from typer.testing import CliRunner

    from fundtrail_schemas import cli

    cli._register_plugins()  # what `fundtrail` does at start-up: the services' sub-commands
    for name, command in ONESHOTS.items():
        assert command[0] == "fundtrail"
        result = CliRunner().invoke(cli.app, [*command[1:], "--help"])
        assert result.exit_code == 0, f"`{' '.join(command)}` ({name}) is not a command: {result.output}"


def test_compose_secret_files_are_declared_mounted_and_referenced() -> None:
    compose = _compose()
    declared = compose["secrets"]
    for name, svc in compose["services"].items():
        mounts = _compose_secret_mounts(svc)
        for source in mounts.values():
            assert source in declared, f"{name} mounts undeclared secret {source}"
        for key, value in _compose_env(svc).items():
            if value.startswith("/run/secrets/"):
                assert value.removeprefix("/run/secrets/") in mounts, f"{name}: {key} names an unmounted secret"
    for secret in declared.values():
        assert secret["file"].startswith("./secrets/"), "compose secrets live in deploy/secrets (git-ignored)"


def test_the_secret_generator_writes_every_compose_secret(tmp_path: Path) -> None:
    generator = _load_path_module(DEPLOY / "secrets" / "generate.py", "fundtrail_deploy_secrets")
    written = set(generator.generate(tmp_path))
    for secret in _compose()["secrets"].values():
        name = Path(secret["file"]).name
        assert name in written and (tmp_path / name).stat().st_size > 0, name
    url = (tmp_path / "database_url").read_text()
    password = (tmp_path / "postgres_password").read_text()
    assert url.startswith("postgresql+psycopg://fundtrail:") and password in url
    # Folders bind-mounted from deploy/secrets (kafka-acls: a password per bureau and auditor).
    for svc in _compose()["services"].values():
        for volume in svc.get("volumes") or []:
            if volume.startswith("./secrets/"):
                assert (tmp_path / volume.split(":")[0].removeprefix("./secrets/")).is_dir(), volume
    assert {f.stem for f in (tmp_path / "kafka-users").glob("*.password")} == {
        p.name for p in principals() if p.role in (Role.BUREAU, Role.AUDITOR)}
    assert generator.generate(tmp_path) == [], "a second run must keep every existing secret"


def test_the_image_entrypoint_exports_variable_named_secrets(tmp_path: Path) -> None:
    text = _dockerfile_text()
    match = re.search(r"<<'EOF' /usr/local/bin/fundtrail-entrypoint\n(.*?)\nEOF\n", text, re.S)
    assert match, "deploy/Dockerfile must write /usr/local/bin/fundtrail-entrypoint from a heredoc"
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "DATABASE_URL").write_text("postgresql://u:p@h/db\n")
    (secrets_dir / "jwt_public.pem").write_text("not a variable name")
    script = tmp_path / "entrypoint.sh"
    script.write_text(match.group(1).replace("/run/secrets", str(secrets_dir)) + "\n")
    out = subprocess.run(["sh", str(script), "env"], capture_output=True, text=True, check=True, timeout=30)
    env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert env["DATABASE_URL"] == "postgresql://u:p@h/db"
    assert "jwt_public.pem" not in env


def test_compose_worker_healthchecks_read_the_configured_metrics_port() -> None:
    for service in WORKERS:
        svc = _compose_service(service.name)
        port = _compose_env(svc)[f"{service.prefix}METRICS_PORT"]
        assert f"127.0.0.1:{port}/metrics" in " ".join(svc["healthcheck"]["test"]), service.name


def test_compose_gateway_listens_where_its_healthcheck_and_port_point() -> None:
    svc = _compose_service("gateway")
    env = _compose_env(svc)
    assert env["FUNDTRAIL_GATEWAY_HOST"] == "0.0.0.0"
    port = env["FUNDTRAIL_GATEWAY_PORT"]
    assert f"127.0.0.1:{port}/ready" in " ".join(svc["healthcheck"]["test"])
    assert any(str(p).endswith(f":{port}") for p in svc["ports"])


# ---------------------------------------------------------------- collector


def test_collector_receives_otlp_and_exports_to_jaeger_and_debug() -> None:
    (cfg,) = _load_all(COLLECTOR_FILE)
    http = cfg["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert http.endswith(":4318")
    traces = cfg["service"]["pipelines"]["traces"]
    assert "otlp" in traces["receivers"]
    assert "debug" in traces["exporters"]
    jaeger = [e for e in traces["exporters"] if e.split("/")[0] == "otlp"]
    assert jaeger and cfg["exporters"][jaeger[0]]["endpoint"].startswith("jaeger:")
    for pipeline in cfg["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in cfg[kind], f"{component} is used but not defined"
    for extension in cfg["service"].get("extensions", []):
        assert extension in cfg["extensions"]
    health_port = cfg["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1]
    collector = _compose_service("otel-collector")
    assert f"127.0.0.1:{health_port}/" in " ".join(collector["healthcheck"]["test"])
    assert any(v.startswith("./otel-collector.yaml:") for v in collector["volumes"])


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_installs_from_the_workspace_lock_and_runs_as_non_root() -> None:
    text = _dockerfile_text()
    assert "uv sync" in text and "--frozen" in text, "the image must install exactly what uv.lock says"
    assert "--no-dev" in text
    for service in SERVICES.values():
        assert f"--package fundtrail-{service.name.removeprefix('fund-')}" in text or \
            f"--package {service.package.replace('_', '-')}" in text, service.name
    assert re.search(r"^USER \$\{UID\}", text, re.M)
    assert _dockerfile_uid() >= 1000


def test_dockerfile_copies_only_what_exists_and_the_build_context_allows() -> None:
    text = _dockerfile_text().replace("\\\n", " ")
    sources = re.findall(r"--mount=type=bind,source=(\S+?),", text)
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith(("--from", "<<")) for p in parts):
            sources += [p for p in parts[1:-1] if not p.startswith("--")]
    assert sources
    allowed = [
        line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")
    ]
    for src in sources:
        assert (ROOT / src).exists(), f"deploy/Dockerfile copies {src}, which does not exist"
        assert any(src == a or src.startswith(a + "/") for a in allowed), f"{src} is excluded from the build context"


def test_dockerfile_env_names_exist_in_the_service_settings() -> None:
    by_prefix = {s.prefix: s for s in SERVICES.values()}
    for name in _dockerfile_env():
        if name.startswith("FUNDTRAIL_"):
            service = next(s for p, s in by_prefix.items() if name.startswith(p))
            known = env_names(settings_class(service))
            assert name in known, f"deploy/Dockerfile sets {name}, unknown to {service.name}"


def test_the_rule_packs_the_image_ships_exist() -> None:
    env = _dockerfile_env()
    assert env["FUNDTRAIL_COMPLIANCE_RULEPACK_DIR"] == env["FUNDTRAIL_GATEWAY_RULEPACK_DIR"] == "/app/rulepacks"
    assert list((ROOT / "services" / "compliance" / "rulepacks").glob("*.yaml"))


# ---------------------------------------------------------------- Kubernetes: structure


def _kustomize_resources(directory: Path) -> Iterator[Path]:
    (kustomization,) = _load_all(directory / "kustomization.yaml")
    for entry in kustomization.get("resources", []):
        path = directory / entry
        assert path.exists(), f"{directory / 'kustomization.yaml'} lists {entry}, which does not exist"
        if path.is_dir():
            yield from _kustomize_resources(path)
        else:
            yield path


def test_every_k8s_manifest_is_in_the_kustomization() -> None:
    listed = set(_kustomize_resources(K8S))
    files = {p for p in _manifest_files() if p.is_relative_to(K8S) and p.name != "kustomization.yaml"}
    assert files == listed, f"not in any kustomization: {sorted(map(str, files - listed))}"
    for path in K8S.rglob("kustomization.yaml"):
        (kustomization,) = _load_all(path)
        assert kustomization.get("namespace") == "fundtrail", path


def test_k8s_containers_use_the_one_image_and_kustomize_sets_it() -> None:
    (root,) = _load_all(K8S / "kustomization.yaml")
    assert [i["name"] for i in root["images"]] == [K8S_IMAGE]
    assert root["images"][0]["newName"].endswith("/fundtrail") and root["images"][0]["newTag"]
    for pod in _pod_specs():
        for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            assert container["image"] == K8S_IMAGE, f"{pod['name']}/{container['name']}"


def _pod_specs() -> list[dict[str, Any]]:
    pods = []
    for kind in ("Deployment", "Job"):
        for doc in _kind(kind):
            template = doc["spec"]["template"]
            pods.append({"kind": kind, "name": doc["metadata"]["name"], "labels": template["metadata"]["labels"],
                         "spec": template["spec"]})
    return pods


def test_k8s_services_and_migration_are_all_there() -> None:
    assert {d["metadata"]["name"] for d in _kind("Deployment")} == set(SERVICES)
    job = _named("Job", "fundtrail-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert tuple(container["command"]) == ONESHOTS["migrate"]
    for service in SERVICES.values():
        (container,) = _named("Deployment", service.name)["spec"]["template"]["spec"]["containers"]
        assert tuple(container["command"]) == service.command


def test_k8s_pods_run_non_root_read_only_without_capabilities() -> None:
    uid = _dockerfile_uid()
    for pod in _pod_specs():
        spec, where = pod["spec"], f"{pod['kind']} {pod['name']}"
        ctx = spec["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == uid, where
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        for container in spec["containers"]:
            c = container["securityContext"]
            assert c["readOnlyRootFilesystem"] is True, where
            assert c["allowPrivilegeEscalation"] is False, where
            assert c["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in c["capabilities"], where
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: a read-only root filesystem needs a writable /tmp"


def test_k8s_containers_have_requests_and_limits() -> None:
    for pod in _pod_specs():
        for container in pod["spec"]["containers"]:
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), f"{pod['name']}: {bound}"


def test_k8s_deployments_have_probes() -> None:
    for service in SERVICES.values():
        (container,) = _named("Deployment", service.name)["spec"]["template"]["spec"]["containers"]
        assert container.get("livenessProbe") and container.get("readinessProbe"), service.name


def _configmap_data(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in (_named("ConfigMap", name).get("data") or {}).items()}


def _k8s_container_env(container: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(_configmap_data(source["configMapRef"]["name"]))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "secretKeyRef" in item.get("valueFrom", {}):
            env[item["name"]] = DATABASE_URL_PLACEHOLDER if item["name"] == "DATABASE_URL" else SECRET_PLACEHOLDER
        else:
            env[item["name"]] = "from-the-pod"
    return env


@pytest.mark.parametrize("service", SERVICES.values(), ids=lambda s: s.name)
def test_k8s_environment_names_exist_in_the_service_settings(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = settings_class(service)
    (container,) = _named("Deployment", service.name)["spec"]["template"]["spec"]["containers"]
    env = _image_env(service.prefix)
    env.update(_k8s_container_env(container))
    # Kafka client security settings are the shared KafkaSecurity's (fundtrail_schemas.kafka_security).
    _assert_names_known(f"Deployment {service.name}", set(env), env_names(cls) | env_names(KafkaSecurity))
    settings = _assert_settings_accept(monkeypatch, cls, env, f"Deployment {service.name}")
    assert settings.kafka_bootstrap_servers.startswith("fundtrail-kafka-bootstrap:")  # type: ignore[attr-defined]


def test_k8s_migration_job_environment_is_shared_settings() -> None:
    (container,) = _named("Job", "fundtrail-migrate")["spec"]["template"]["spec"]["containers"]
    env = _k8s_container_env(container)
    _assert_names_known("Job fundtrail-migrate", set(env), env_names(CommonSettings))
    assert "DATABASE_URL" in env


def test_k8s_file_settings_point_into_mounted_secrets() -> None:
    for service in SERVICES.values():
        spec = _named("Deployment", service.name)["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        files = set()
        for mount in container.get("volumeMounts", []):
            secret = volumes[mount["name"]].get("secret")
            if secret:
                files |= {f"{mount['mountPath']}/{item['path']}" for item in secret["items"]}
        for name, value in _k8s_container_env(container).items():
            if value.startswith("/etc/fundtrail/"):
                assert value in files, f"{service.name}: {name}={value} is not a mounted secret file"


def test_k8s_worker_probes_read_the_configured_metrics_port() -> None:
    for service in WORKERS:
        (container,) = _named("Deployment", service.name)["spec"]["template"]["spec"]["containers"]
        port = _k8s_container_env(container)[f"{service.prefix}METRICS_PORT"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            command = " ".join(container[probe]["exec"]["command"])
            assert f"127.0.0.1:{port}/metrics" in command, f"{service.name} {probe}"


def _gateway_routes() -> set[str]:
    package = importlib.import_module("fundtrail_gateway.api.routers")
    paths: set[str] = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if router is not None:
            paths |= {getattr(r, "path", "") for r in router.routes}
    return paths


def test_k8s_gateway_probes_service_and_disruption_budget() -> None:
    deployment = _named("Deployment", "gateway")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    assert str(port["containerPort"]) == _k8s_container_env(container)["FUNDTRAIL_GATEWAY_PORT"]
    assert _k8s_container_env(container)["FUNDTRAIL_GATEWAY_HOST"] == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": port["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port["name"]}
    routes = _gateway_routes()
    assert {"/health", "/ready"} <= routes, f"the gateway serves {sorted(routes)}; probes need /health and /ready"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = _named("Service", "gateway")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    pdb = _named("PodDisruptionBudget", "gateway")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_k8s_autoscalers_stay_within_the_input_partitions() -> None:
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in _kind("HorizontalPodAutoscaler")}
    assert set(hpas) == set(SERVICES)
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], name
    for service in WORKERS:
        assert service.input_topic is not None
        partitions = TOPICS_BY_NAME[service.input_topic].partitions
        hpa = hpas[service.name]
        deployment = _named("Deployment", service.name)
        assert hpa["metadata"]["annotations"]["fundtrail.io/input-topic"] == service.input_topic
        assert deployment["metadata"]["annotations"]["fundtrail.io/input-topic"] == service.input_topic
        assert hpa["spec"]["maxReplicas"] <= partitions, (
            f"{service.name} may scale to {hpa['spec']['maxReplicas']} replicas but {service.input_topic} has "
            f"{partitions} partitions: the extra consumers would idle"
        )
        assert deployment["spec"]["replicas"] <= partitions


# ---------------------------------------------------------------- Kubernetes: Kafka and topics


def test_kafka_is_kraft_with_three_dual_role_nodes() -> None:
    (kafka,) = _kind("Kafka")
    pools = _kind("KafkaNodePool")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert str(kafka["spec"]["kafka"]["version"]) == KAFKA_VERSION
    assert "zookeeper" not in kafka["spec"]
    assert all(p["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"] for p in pools)
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    controllers = sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"])
    assert brokers == 3 and controllers == 3
    common = _configmap_data("fundtrail-common")
    # One listener, TLS with SCRAM-SHA-512, and the clients configured for exactly that.
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True and listener["authentication"] == {"type": "scram-sha-512"}
    assert common["KAFKA_BOOTSTRAP_SERVERS"] == f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"
    assert (common["KAFKA_SECURITY_PROTOCOL"], common["KAFKA_SASL_MECHANISM"]) == ("SASL_SSL", "SCRAM-SHA-512")


def test_kafka_topics_match_the_registry_exactly() -> None:
    (kafka,) = _kind("Kafka")
    gen = _load_path_module(K8S / "gen_topics.py", "fundtrail_deploy_gen_topics")
    resources = _kind("KafkaTopic")
    by_name = {t["spec"]["topicName"]: t for t in resources}
    assert len(by_name) == len(resources), "two KafkaTopic resources name the same topic"
    assert set(by_name) == {t.name for t in registry_topics()}
    brokers = sum(p["spec"]["replicas"] for p in _kind("KafkaNodePool") if "broker" in p["spec"]["roles"])
    for spec in registry_topics():
        resource = by_name[spec.name]
        assert resource["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert resource["spec"]["partitions"] == spec.partitions, spec.name
        config = {k: str(v) for k, v in resource["spec"]["config"].items()}
        assert config == {**spec.topic_config(), "min.insync.replicas": gen.MIN_INSYNC_REPLICAS}, spec.name
        assert config["cleanup.policy"] == spec.cleanup.value and config["retention.ms"] == str(spec.retention_ms)
        assert int(config["min.insync.replicas"]) < resource["spec"]["replicas"] <= brokers
        assert re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", resource["metadata"]["name"]), spec.name


def test_committed_topics_yaml_is_the_generator_output() -> None:
    gen = _load_path_module(K8S / "gen_topics.py", "fundtrail_deploy_gen_topics")
    committed = (K8S / "kafka" / "topics.yaml").read_text(encoding="utf-8")
    assert committed == gen.render(), "deploy/k8s/kafka/topics.yaml is stale: run `make manifests`"
    assert gen.main(["--check"]) == 0


def test_kafka_authorizes_by_acl_with_only_the_operator_as_super_user() -> None:
    (kafka,) = _kind("Kafka")
    spec = kafka["spec"]["kafka"]
    assert spec["authorization"] == {"type": "simple", "superUsers": ["operator"]}
    assert spec["config"]["allow.everyone.if.no.acl.found"] is False
    assert "userOperator" in kafka["spec"]["entityOperator"]


def test_kafka_users_match_the_principals_and_their_acls_exactly() -> None:
    (kafka,) = _kind("Kafka")
    users = {u["metadata"]["name"]: u for u in _kind("KafkaUser")}
    assert set(users) == {p.name for p in principals()}
    for p in principals():
        user = users[p.name]
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        if p.super_user:
            assert "authorization" not in user["spec"]
            assert p.name in kafka["spec"]["kafka"]["authorization"]["superUsers"]
            continue
        acls = {(a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"], op)
                for a in user["spec"]["authorization"]["acls"] for op in a["operations"]}
        assert acls == {(g.resource.value, g.name, g.pattern.value, op.value) for g in p.grants for op in g.operations}


def test_kafka_user_acls_are_least_privilege() -> None:
    """Spot checks of the generated ACLs against the design (docs/architecture.md, Kafka identities)."""
    def acls(name: str) -> set[tuple[str, str, str, str]]:
        user = _named("KafkaUser", name)
        return {(a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"], op)
                for a in user["spec"]["authorization"]["acls"] for op in a["operations"]}

    assert acls("bureau-440705") == {("topic", "fundtrail.events.raw.440705", "prefixed", "Write")}
    assert acls("auditor-agriculture") == {
        ("topic", "fundtrail.violations.agriculture", "literal", "Read"),
        ("group", "auditor-agriculture-", "prefixed", "Read"),
        ("group", "auditor-agriculture-", "prefixed", "Describe"),
    }
    writers = {u["metadata"]["name"] for u in _kind("KafkaUser")
               for a in u["spec"].get("authorization", {}).get("acls", [])
               if "Write" in a["operations"] and a["resource"]["name"] in ("fundtrail.violations", "fundtrail.cases")}
    assert writers == {"compliance", "gateway"}


def test_each_service_authenticates_as_its_own_kafka_user_over_tls() -> None:
    users = {u["metadata"]["name"] for u in _kind("KafkaUser")}
    for service in SERVICES.values():
        spec = _named("Deployment", service.name)["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        env = {e["name"]: e for e in container.get("env", [])}
        user = env["KAFKA_SASL_USERNAME"]["value"]
        assert user == service.name and user in users
        # Strimzi writes the KafkaUser's password into a Secret of the user's name.
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": user, "key": "password"}
        ca = next(v for v in spec["volumes"] if v["name"] == "kafka-ca")
        assert ca["secret"]["secretName"] == "fundtrail-cluster-ca-cert"


# ---------------------------------------------------------------- Kubernetes: network policies


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value, op = labels.get(expr["key"]), expr["operator"]
        if (op == "In" and value not in expr["values"]) or (op == "NotIn" and value in expr["values"]) \
                or (op == "Exists" and value is None) or (op == "DoesNotExist" and value is not None):
            return False
    return True


def _policies_for(labels: dict[str, str]) -> list[dict[str, Any]]:
    return [p for p in _kind("NetworkPolicy") if _selects(p["spec"]["podSelector"], labels)]


def _allowed_ports(labels: dict[str, str], direction: str) -> set[int]:
    rules_key = "egress" if direction == "Egress" else "ingress"
    ports: set[int] = set()
    for policy in _policies_for(labels):
        if direction in policy["spec"]["policyTypes"]:
            for rule in policy["spec"].get(rules_key, []):
                assert rule.get("ports"), f"{policy['metadata']['name']} allows every port"
                ports |= {p["port"] for p in rule["ports"]}
    return ports


def test_network_policies_deny_by_default_and_allow_only_kafka_and_postgres() -> None:
    pods = {p["name"]: p["labels"] for p in _pod_specs()}
    for name, labels in pods.items():
        denied = [p for p in _policies_for(labels) if p["metadata"]["name"] == "fundtrail-default-deny"]
        assert denied and set(denied[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}, name
    dns, kafka, postgres, otlp = 53, 9093, 5432, 4318
    for service in WORKERS:
        assert _allowed_ports(pods[service.name], "Egress") == {dns, kafka, postgres, otlp}, service.name
        # Only Prometheus' scrapes of the metrics port (fundtrail-ingress-metrics, from namespace monitoring).
        assert _allowed_ports(pods[service.name], "Ingress") == {9464}, f"{service.name} accepts connections"
    gateway_port = _named("Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    assert _allowed_ports(pods["gateway"], "Egress") == {dns, kafka, postgres, otlp}
    assert _allowed_ports(pods["gateway"], "Ingress") == {gateway_port["containerPort"]}
    assert _allowed_ports(pods["fundtrail-migrate"], "Egress") == {dns, postgres}
    (kafka_resource,) = _kind("Kafka")
    for listener in kafka_resource["spec"]["kafka"]["listeners"]:
        peers = listener["networkPolicyPeers"]
        assert all(any(_selects(peer["podSelector"], pods[s.name]) for peer in peers) for s in SERVICES.values())


def test_postgres_cluster_provides_the_database_url_secret() -> None:
    (cluster,) = _kind("Cluster")
    secret_names = {
        item["valueFrom"]["secretKeyRef"]["name"]
        for pod in _pod_specs() for c in pod["spec"]["containers"] for item in c.get("env", [])
        if item["name"] == "DATABASE_URL"
    }
    # CloudNativePG writes the owner's credentials to `<cluster>-app`, key `uri` (the migration Job's);
    # the services log in as their own roles (test_k8s_*_reads/write_postgres_as_the_*_role*).
    assert secret_names == {f"{cluster['metadata']['name']}-app", "fundtrail-db-gateway", "fundtrail-db-tracker",
                            "fundtrail-db-compliance"}
    assert cluster["spec"]["imageName"].endswith(":17")
    postgres_policy = _named("NetworkPolicy", "fundtrail-egress-postgres")
    peer = postgres_policy["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"]
    assert peer == {"cnpg.io/cluster": cluster["metadata"]["name"]}
