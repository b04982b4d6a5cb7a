"""Regenerate the single initial alembic revision from the SQLModel tables (pre-release only).

Until the first release the schema has one revision; it is rebuilt from the models against a
throw-away PostgreSQL so that autogenerate sees an empty database.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from alembic import command

from .testing import remove_tree, start_test_postgres, world_traversable_tmpdir

INITIAL_REV = "0001"


def regenerate_initial_revision() -> Path:
    """Rewrite migrations/versions/0001_initial.py from the current models; return its path."""
    from fundtrail_schemas.db import MIGRATIONS_DIR, alembic_config, upgrade

    versions = MIGRATIONS_DIR / "versions"
    versions.mkdir(exist_ok=True)
    for old in versions.glob(f"{INITIAL_REV}_*.py"):
        old.unlink()
    home = world_traversable_tmpdir("fundtrail-migration-")
    try:
        node = start_test_postgres(home)
        try:
            url = node.create_database(f"m_{uuid.uuid4().hex[:12]}")
            cfg = alembic_config(url)
            command.revision(cfg, message="initial", autogenerate=True, rev_id=INITIAL_REV)
            upgrade(url)  # the new revision must apply cleanly
        finally:
            node.stop()
    finally:
        remove_tree(home)
    (path,) = versions.glob(f"{INITIAL_REV}_*.py")
    return path
