"""A persistent key -> bytes store in sqlite, read and written in batches.

Two caches use it, both under settings.cache_dir: embedding vectors (rag.index.embed) and BM25 token lists
(rag.index.build). Both are pure functions of their key, so nothing is ever computed twice, across index
versions and rebuilds, and a killed run resumes from its last written batch."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Sequence


class BlobCache:
    def __init__(self, path: Path, table: str):
        if not table.isidentifier():
            raise ValueError(f"bad table name {table!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.table = table
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers never block the one writer
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, v BLOB NOT NULL)")
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found = {}
        with self._lock:
            for i in range(0, len(keys), 500):  # sqlite's limit on bound parameters
                part = list(keys[i : i + 500])
                q = f"SELECT key, v FROM {self.table} WHERE key IN ({','.join('?' * len(part))})"
                found.update(self._db.execute(q, part))
        return found

    def put_many(self, items: dict[str, bytes]) -> None:
        if not items:
            return
        with self._lock, self._db:
            self._db.executemany(f"INSERT OR REPLACE INTO {self.table} (key, v) VALUES (?, ?)", items.items())
