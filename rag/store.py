"""Where chunks, their vectors and their BM25 weights live, behind one small protocol.

settings.store picks the implementation: "local" (default; rag/index.py: versioned files, FAISS + bm25s,
in process) or "milvus" (rag/store_milvus.py: a Milvus server reached by settings.milvus_uri). Retrieval
(rag/retrieve.py) only calls the methods below, and does the fusion itself, so both stores rank with the
same min-max fusion.
"""
from __future__ import annotations

from typing import Hashable, Mapping, Protocol

import numpy as np

from rag.config import Settings
from rag.types import Article, Chunk

STORES = ("local", "milvus")


class Store(Protocol):
    """A loaded, searchable index. A key names one chunk (a row locally, the chunk id in Milvus)."""

    config: dict  # rag.index.index_config it was built with
    articles: Mapping[str, Article]

    @property
    def version(self) -> str: ...  # identifies what is stored (eval runs record it)

    def __len__(self) -> int: ...  # chunks

    def chunk(self, key: Hashable) -> Chunk: ...

    def article_meta(self, article_id: str) -> dict: ...  # Article.meta() of a chunk's article

    def prepare_filter(self, filters) -> object: ...  # rag.retrieve.Filters -> what lexical/dense take

    def lexical(self, tokens: list[str], k: int, allowed=None) -> list[tuple[Hashable, float]]: ...  # BM25

    def dense(self, query_vector: np.ndarray, k: int, allowed=None) -> list[tuple[Hashable, float]]: ...  # cosine

    def without_vector(self) -> set: ...  # keys searchable lexically only (partial dense coverage)


def _check(settings: Settings) -> str:
    if settings.store not in STORES:
        raise ValueError(f"unknown store {settings.store!r} (RAG_STORE); choose one of {STORES}")
    return settings.store


def load(settings: Settings, *, expected_embedder: str | None = None) -> Store:
    """The live index of the configured store; IndexMissing / IndexMismatch / IndexCorrupt say how to fix."""
    if _check(settings) == "milvus":
        from rag import store_milvus

        return store_milvus.load(settings, expected_embedder=expected_embedder)
    from rag import index

    return index.load(settings, expected_embedder=expected_embedder)


def update(settings: Settings, articles: list[Article], embedder, **kw):
    """Bring the configured store in line with `articles` (the whole corpus); see rag.index.update."""
    if _check(settings) == "milvus":
        from rag import store_milvus

        return store_milvus.update(settings, articles, embedder, **kw)
    from rag import index

    return index.update(settings, articles, embedder, **kw)
