"""The publisher's local journal: which event ids it published, with which content, to which cluster."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

JOURNAL_FILE = "publish-journal.sqlite3"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    event_id: str
    content_hash: str
    record_key: str
    topic: str
    partition: int
    offset: int
    published_at: datetime


class Journal:
    """SQLite file in the state directory; one row per (cluster, event id)."""

    def __init__(self, state_dir: Path, cluster: str) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / JOURNAL_FILE
        self._cluster = cluster
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS published ("
            " cluster TEXT NOT NULL, event_id TEXT NOT NULL, content_hash TEXT NOT NULL, record_key TEXT NOT NULL,"
            " topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL, kafka_offset INTEGER NOT NULL,"
            " published_at TEXT NOT NULL,"
            " PRIMARY KEY (cluster, event_id))"
        )
        self._db.commit()

    def hashes(self, event_ids: Iterable[str]) -> dict[str, str]:
        """Content hashes of the given ids that were published to this cluster."""
        out: dict[str, str] = {}
        ids = list(event_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT event_id, content_hash FROM published WHERE cluster = ? AND event_id IN ({marks})",
                [self._cluster, *chunk],
            )
            out.update(dict(rows.fetchall()))
        return out

    def record(self, entries: Sequence[JournalEntry]) -> None:
        """Remember published events (one transaction)."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO published (cluster, event_id, content_hash, record_key, topic, kafka_partition,"
                " kafka_offset, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (self._cluster, e.event_id, e.content_hash, e.record_key, e.topic, e.partition, e.offset,
                     e.published_at.isoformat())
                    for e in entries
                ],
            )

    def close(self) -> None:
        self._db.close()
