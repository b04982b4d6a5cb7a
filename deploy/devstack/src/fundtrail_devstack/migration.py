"""Generate the next alembic revision from the SQLModel tables.

Autogenerate compares the models with a database at the current head, so the existing revisions
are applied to a throw-away PostgreSQL first; the new revision must then apply cleanly on top.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from alembic import command

from .testing import remove_tree, start_test_postgres, world_traversable_tmpdir


def next_revision_id(versions: Path) -> str:
    """Revisions are numbered 0001, 0002, ... (the file names start with the number)."""
    numbers = [int(m.group(1)) for p in versions.glob("*.py") if (m := re.match(r"(\d{4})_", p.name))]
    return f"{max(numbers, default=0) + 1:04d}"


def new_revision(message: str) -> Path:
    """Write migrations/versions/NNNN_<message>.py for what the models add; return its path."""
    from fundtrail_runtime.db import MIGRATIONS_DIR, alembic_config, upgrade

    versions = MIGRATIONS_DIR / "versions"
    versions.mkdir(exist_ok=True)
    rev = next_revision_id(versions)
    home = world_traversable_tmpdir("fundtrail-migration-")
    try:
        node = start_test_postgres(home)
        try:
            url = node.create_database(f"m_{uuid.uuid4().hex[:12]}")
            upgrade(url)
            command.revision(alembic_config(url), message=message, autogenerate=True, rev_id=rev)
            upgrade(url)  # the new revision must apply cleanly
        finally:
            node.stop()
    finally:
        remove_tree(home)
    (path,) = versions.glob(f"{rev}_*.py")
    return path
