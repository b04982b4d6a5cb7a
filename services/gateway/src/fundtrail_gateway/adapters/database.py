"""Async SQLAlchemy engine and sessions (psycopg 3)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from fundtrail_runtime.db import normalize_url

from ..settings import GatewaySettings


def make_engine(settings: GatewaySettings) -> AsyncEngine:
    """The gateway's read engine; a read-only default transaction guards 'writes only through Kafka'."""
    # No pre-ping: it costs a round trip per request; stale connections are recycled instead.
    return create_async_engine(
        normalize_url(settings.database_url),
        pool_recycle=1800,
        # Every read is one statement: autocommit spares a BEGIN and a ROLLBACK round trip per request.
        isolation_level="AUTOCOMMIT",
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        connect_args={"options": "-c default_transaction_read_only=on", "application_name": "fundtrail-gateway"},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that never expire loaded rows (they are read, turned into JSON, and dropped)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
