"""Shared PostgreSQL tables: written by the workers, read by the gateway.

One module per owning service; only the owner writes its tables.
"""

from sqlmodel import SQLModel

from . import compliance, tracker

metadata = SQLModel.metadata

__all__ = ["compliance", "metadata", "tracker"]
