"""Alembic environment: online migrations against the URL given by fundtrail_runtime.db."""

from alembic import context
from sqlalchemy import create_engine, pool

from fundtrail_runtime.store import metadata

config = context.config


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Concurrent start-ups (three services at once) must not race on DDL.
        connection.exec_driver_sql("SELECT pg_advisory_lock(727274)")
        try:
            context.configure(connection=connection, target_metadata=metadata, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; give a database URL")
run_migrations_online()
