"""Which index version is live: the folder the index folder's CURRENT file names (rag.index.build writes it).

Its own module so that the embedder (rag.index.embed, which reads the live manifest to pick the runtime the index
was built with) and the build (which asks the embedder for its identity) need not import each other."""
from __future__ import annotations

from pathlib import Path


def current_version(index_dir: Path) -> Path | None:
    try:
        name = (index_dir / "CURRENT").read_text().strip()
    except FileNotFoundError:
        return None
    return index_dir / name
