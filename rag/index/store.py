"""Where chunks, their vectors and their BM25 weights live, behind one small protocol.

settings.store picks the implementation: "local" (default; rag/index/build.py: versioned files, FAISS + bm25s,
in process) or "milvus" (rag/index/store_milvus.py: a Milvus server reached by settings.milvus_uri). Retrieval
(rag/answer/retrieve.py) only calls the methods below, and does the fusion itself, so both stores rank with the
same min-max fusion. `Merged` puts several collections' stores behind the same protocol (an answer over
`--collection a,b`).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Hashable, Iterator, Mapping, Protocol

import numpy as np

from rag.index import collections
from rag.config import Settings
from rag.errors import IndexMismatch
from rag.types import Article, Chunk

STORES = ("local", "milvus")
UNPUBLISHED = "unpublished.json"  # in the index folder: articles written but not yet published (rag.ingest.manage)


class Store(Protocol):
    """A loaded, searchable index. A key names one chunk (a row locally, the chunk id in Milvus)."""

    config: dict  # rag.index.build.index_config it was built with
    articles: Mapping[str, Article]

    @property
    def version(self) -> str: ...  # identifies what is stored (eval runs record it)

    def __len__(self) -> int: ...  # chunks

    def chunk(self, key: Hashable) -> Chunk: ...

    def prepare_filter(self, filters) -> object: ...  # rag.answer.retrieve.Filters -> what lexical/dense take

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
        from rag.index import store_milvus

        return store_milvus.load(settings, expected_embedder=expected_embedder)
    from rag.index import build as index

    return index.load(settings, expected_embedder=expected_embedder)


def update(settings: Settings, articles: list[Article], embedder, **kw):
    """Bring the configured store in line with `articles` (the whole corpus); see rag.index.build.update. Holds the
    collection (rag.index.collections.writing): a deleted one is not made again. Once the new version is live, the
    corpus folder as read is published: rag.ingest.manage's list of articles written but not yet published goes."""
    with collections.writing(settings):
        if _check(settings) == "milvus":
            from rag.index import store_milvus

            report = store_milvus.update(settings, articles, embedder, **kw)
        else:
            from rag.index import build as index

            report = index.update(settings, articles, embedder, **kw)
        (settings.index_dir / UNPUBLISHED).unlink(missing_ok=True)
    return report


# What must be equal for the stores' scores to be compared: the same vectors (cosines) and the same tokens (BM25)
_COMPARABLE = ("embedder", "dim", "tokenizer")


class Merged:
    """Several collections' stores as one Store, for an answer over several collections (rag.index.collections).

    A key is (collection, key in its store); an article is "NAME/ID" (Chunk.article_id too: two collections may
    hold the same id), and the Article keeps its own id with `collection` set to NAME, which citations carry.
    lexical() and dense() ask every store for its k best and keep the k best raw scores of the union, so the
    Retriever fuses (min-max over the union, or RRF over the merged ranks) exactly as for one store: each
    collection is not normalised on its own, which would lift its best hit to 1 however poor. Cosines compare
    across collections (one embedder); BM25 scores use each collection's own IDF: of one scale, not exactly equal
    (a word rare in one collection weighs more there)."""

    SEP = "/"  # collection names hold none

    def __init__(self, stores: Mapping[str, Store]):
        self.stores = dict(stores)
        self.config = next(iter(self.stores.values())).config
        for name, s in self.stores.items():
            diff = [k for k in _COMPARABLE if s.config.get(k) != self.config.get(k)]
            if diff:
                raise IndexMismatch(f"the collections' indexes differ in {', '.join(diff)}: their scores cannot be "
                                    f"compared; rebuild the index of {name!r} with the same settings")
        self.articles = _Articles(self)

    @property
    def version(self) -> str:
        return "+".join(f"{name}={s.version}" for name, s in self.stores.items())

    def __len__(self) -> int:
        return sum(len(s) for s in self.stores.values())

    def _split(self, article_id: str) -> tuple[str, str]:
        name, _, own = article_id.partition(self.SEP)
        return name, own

    def chunk(self, key) -> Chunk:
        name, own = key
        c = self.stores[name].chunk(own)
        return replace(c, article_id=f"{name}{self.SEP}{c.article_id}")

    def prepare_filter(self, filters) -> dict:
        return {name: s.prepare_filter(filters) for name, s in self.stores.items()}

    def _merge(self, search, k: int, allowed) -> list[tuple[Hashable, float]]:
        pairs = [((name, key), score) for name, s in self.stores.items() if len(s)
                 for key, score in search(s, None if allowed is None else allowed[name])]
        return sorted(pairs, key=lambda p: (-p[1], p[0]))[:k]

    def lexical(self, tokens: list[str], k: int, allowed=None) -> list[tuple[Hashable, float]]:
        return self._merge(lambda s, a: s.lexical(tokens, k, a), k, allowed)

    def dense(self, query_vector: np.ndarray, k: int, allowed=None) -> list[tuple[Hashable, float]]:
        return self._merge(lambda s, a: s.dense(query_vector, k, a), k, allowed)

    def without_vector(self) -> set:
        return {(name, key) for name, s in self.stores.items() for key in s.without_vector()}


class _Articles(Mapping):
    """"NAME/ID" -> the Article ID of collection NAME, its `collection` set."""

    def __init__(self, merged: Merged):
        self._merged = merged

    def __getitem__(self, article_id: str) -> Article:
        name, own = self._merged._split(article_id)
        if name not in self._merged.stores:
            raise KeyError(article_id)
        return replace(self._merged.stores[name].articles[own], collection=name)

    def __iter__(self) -> Iterator[str]:
        return (f"{name}{Merged.SEP}{aid}" for name, s in self._merged.stores.items() for aid in s.articles)

    def __len__(self) -> int:
        return sum(len(s.articles) for s in self._merged.stores.values())
