"""Gateway fixtures: JWT keys, a seeded database (3 counties), tokens per role, an app and a client."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fundtrail_gateway.core.auth import Role
from fundtrail_gateway.core.tokens import TokenCodec
from fundtrail_gateway.main import create_app
from fundtrail_gateway.seed import World, seed_world
from fundtrail_gateway.settings import GatewaySettings
from fundtrail_gateway.testing import SAMPLE_RULEPACK, running
from fundtrail_runtime.db import sync_engine


@pytest.fixture(scope="session")
def jwt_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ed25519PrivateKey, Path, Path]:
    """An Ed25519 key pair for tokens: (private key, private PEM path, public PEM path)."""
    key = Ed25519PrivateKey.generate()
    d = tmp_path_factory.mktemp("jwt")
    priv, pub = d / "jwt.pem", d / "jwt.pub.pem"
    priv.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key, priv, pub


@pytest.fixture(scope="session")
def log_key() -> Ed25519PrivateKey:
    """The trail log's checkpoint signing key."""
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def rulepack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("rulepacks")
    (d / "inspection.yaml").write_text(SAMPLE_RULEPACK, encoding="utf-8")
    return d


@contextlib.contextmanager
def _database_from_template(pg_node: Any, template: str) -> Iterator[str]:
    import psycopg

    name = f"gw_{uuid.uuid4().hex}"
    admin = pg_node.url("postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield pg_node.url(name)
    finally:
        with contextlib.suppress(Exception):
            pg_node.drop_database(name, force=True)


@pytest.fixture
def fresh_database(pg_node: Any, migrated_template: str) -> Iterator[str]:
    """A migrated database of this test's own (dropped afterwards), for tests that change it."""
    with _database_from_template(pg_node, migrated_template) as url:
        yield url


@pytest.fixture(scope="session")
def seeded(pg_node: Any, migrated_template: str, log_key: Ed25519PrivateKey) -> Iterator[tuple[str, World]]:
    """A migrated database holding three counties' funds, trails, violations and checkpoints (read-only use)."""
    with _database_from_template(pg_node, migrated_template) as url:
        engine = sync_engine(url)
        try:
            world = seed_world(engine, log_key)
        finally:
            engine.dispose()
        yield url, world


@pytest.fixture
def world(seeded: tuple[str, World]) -> World:
    return seeded[1]


def make_settings(database_url: str, jwt_pub: Path, rulepack_dir: Path, **overrides: Any) -> GatewaySettings:
    """Settings for an in-process app (no broker unless `kafka_bootstrap_servers` is given)."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": "127.0.0.1:9",
        "environment": "test",
        "jwt_algorithm": "EdDSA",
        "jwt_public_key_file": jwt_pub,
        "rulepack_dir": rulepack_dir,
        "ensure_topics": False,
        "enable_tracing": False,
        "rate_limit_per_second": 1000.0,
        "rate_limit_burst": 10_000,
        "rate_limit_anonymous_per_second": 1000.0,
    }
    values.update(overrides)
    return GatewaySettings(**values)


@pytest.fixture(scope="session")
def settings_factory(
    seeded: tuple[str, World], jwt_key: tuple[Ed25519PrivateKey, Path, Path], rulepack_dir: Path
) -> Callable[..., GatewaySettings]:
    def factory(**overrides: Any) -> GatewaySettings:
        url = overrides.pop("database_url", seeded[0])
        return make_settings(url, jwt_key[2], rulepack_dir, **overrides)

    return factory


@pytest.fixture(scope="session")
def codec(jwt_key: tuple[Ed25519PrivateKey, Path, Path]) -> TokenCodec:
    key = jwt_key[0]
    return TokenCodec("EdDSA", key.public_key(), signing_key=key, audience="fundtrail-gateway", issuer="fundtrail")


TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def token(codec: TokenCodec) -> TokenFactory:
    """token(role, region=None, subject=None) -> a valid bearer token."""

    def make(role: Role | str | list[Role], region: str | None = None, subject: str | None = None) -> str:
        roles = [Role(r) for r in role] if isinstance(role, list) else [Role(role)]
        sub = subject or f"user-{'-'.join(r.value for r in roles)}-{region or 'all'}"
        return codec.issue(sub, roles, region, now=datetime.now(UTC), ttl=timedelta(hours=1))

    return make


@pytest.fixture(scope="session")
def auth(token: TokenFactory) -> Callable[..., dict[str, str]]:
    """auth(role, region) -> Authorization header."""

    def make(role: Role | str, region: str | None = None, subject: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(role, region, subject)}"}

    return make


@pytest.fixture
async def client(settings_factory: Callable[..., GatewaySettings]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app over the seeded database, without a broker."""
    async with running(create_app(settings_factory())) as c:
        yield c


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of this suite's own: other suites publish to the same contract topics (e.g. broken packs)."""
    from fundtrail_devstack.testing import dedicated_test_kafka

    with dedicated_test_kafka(tmp_path_factory.mktemp("kafka-gateway")) as bootstrap:
        yield bootstrap
