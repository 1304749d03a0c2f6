"""The Store on a Milvus server (RAG_STORE=milvus, RAG_MILVUS_URI=http://host:19530), through pymilvus.

Three collections, named from settings.milvus_collection (the prefix P):
    P_chunks    one row per chunk, primary key = chunk id: dense vector (FLAT, inner product = cosine of
                unit vectors), BM25 sparse vector (inner product), and the fields filters need
    P_articles  one row per article: text, metadata, content hash (what `update` compares)
    P_meta      one row: the index config and the corpus fingerprint, written last (the commit point)

Lexical side: each chunk's sparse vector holds bm25s's own eager weights, idf(t) * tf / (k1 * (1 - b +
b * dl / avgdl) + tf) over the project's Vietnamese tokens (rag.index.build.bm25_tokens), keyed by a 32-bit
hash of the token; a query is the count of each of its tokens. The inner product is then bm25s's score
exactly, so Milvus and the local store rank the same. The weights depend on corpus-wide statistics (N,
df, avgdl), so a corpus change rewrites every row (vectors are read back, never re-embedded), as the
local store rebuilds its BM25 index. Milvus's own BM25 function keeps those statistics server-side,
but milvus-lite computes them per segment (see its sparse search), so its scores would not match.

Fusion stays client-side (rag.answer.retrieve): two server-side searches with the filter pushed down, then the
project's min-max fusion. Milvus's WeightedRanker normalises each score with arctan, not min-max, and
rag.answer.retrieve needs each list's ranks and scores for the answer step.

Idempotent and crash-safe: `update` computes the whole target state from the corpus, deletes chunk rows
that should not exist, upserts the rest by chunk id, then articles, then the meta row. A run killed
midway leaves the old fingerprint in P_meta, so the next run rewrites everything and converges.
Readers see a collection being rewritten as it is; there is no versioning as in the local store.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Mapping

import numpy as np

from rag.index import chunking
from rag.config import Settings
from rag.errors import CorpusEmpty, IndexMismatch, IndexMissing
from rag.index.build import REBUILD_HINT, IndexReport, bm25_tokens, config_diff, index_config, open_token_cache
from rag.types import Article, Chunk

K1, B = 1.5, 0.75  # bm25s defaults (method "lucene"), as the local store uses
BATCH = 500  # rows per insert/query call: well under the gRPC message limit at 768-d
META_KEY = "index"
_CHUNK_FIELDS = ["id", "article_id", "position", "start", "end", "text", "title", "row"]  # read back with a hit


def term_id(token: str) -> int:
    """Sparse-vector dimension of a token (Milvus wants uint32 indices)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "little") % (2**32 - 1)


def bm25_weights(tokens: list[list[str]]) -> list[dict[int, float]]:
    """bm25s's eager BM25 scores per (chunk, token), as sparse vectors."""
    n = len(tokens)
    df = Counter(t for doc in tokens for t in set(doc))
    avgdl = sum(len(doc) for doc in tokens) / n if n else 1.0
    idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
    out = []
    for doc in tokens:
        norm = K1 * ((1 - B) + B * len(doc) / avgdl)
        vec: dict[int, float] = {}
        for t, tf in Counter(doc).items():
            tid = term_id(t)
            vec[tid] = vec.get(tid, 0.0) + float(np.float32(idf[t] * tf / (norm + tf)))
        out.append(vec)
    return out


def query_vector(tokens: list[str]) -> dict[int, float]:
    # bm25s sums a token's scores once per occurrence in the query.
    counts = Counter(term_id(t) for t in tokens)
    return {tid: float(c) for tid, c in counts.items()}


def connect(settings: Settings):
    from pymilvus import MilvusClient

    if not settings.milvus_uri:
        raise ValueError("RAG_STORE=milvus needs RAG_MILVUS_URI, e.g. http://127.0.0.1:19530")
    # pymilvus pings every 10 s even on an idle connection; a gRPC server with default settings (milvus-lite's)
    # answers "too many pings" and drops the connection while, say, the model embeds. Ping only during calls.
    keepalive = {"grpc.keepalive_permit_without_calls": False, "grpc.keepalive_time_ms": 60_000}
    return MilvusClient(uri=settings.milvus_uri, token=settings.milvus_token or "", grpc_options=keepalive)


def names(settings: Settings) -> dict[str, str]:
    p = settings.milvus_collection
    return {"chunks": f"{p}_chunks", "articles": f"{p}_articles", "meta": f"{p}_meta"}


def _quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a Milvus string literal: double quotes, backslash escapes


def _in(field: str, values) -> str:
    return f"{field} in [{', '.join(_quote(v) for v in values)}]"


# ---------------------------------------------------------------- schema


def _create(client, settings: Settings) -> None:
    from pymilvus import DataType

    n = names(settings)
    s = client.create_schema(auto_id=False)
    s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=512)
    s.add_field("article_id", DataType.VARCHAR, max_length=512)
    s.add_field("row", DataType.INT64)  # order in the corpus: the search key, so ties rank as in the local store
    s.add_field("position", DataType.INT64)
    s.add_field("start", DataType.INT64)
    s.add_field("end", DataType.INT64)
    s.add_field("text", DataType.VARCHAR, max_length=65535)
    s.add_field("title", DataType.VARCHAR, max_length=4096)
    # the article's meta() as JSON: no longer read (a hit's article comes from P_articles), still written so that
    # indexes built before keep their schema instead of needing a rebuild
    s.add_field("meta", DataType.VARCHAR, max_length=65535)
    s.add_field("source", DataType.VARCHAR, max_length=512)  # lower-cased: filters compare case-blind
    s.add_field("date", DataType.VARCHAR, max_length=32)  # ISO date or "": string order is date order
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=settings.embed_dim)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    ip = client.prepare_index_params()
    ip.add_index("dense", index_type="FLAT", metric_type="IP")  # exact, as the local store
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection(n["chunks"], schema=s, index_params=ip)

    for name, extra in (("articles", [("text", 65535), ("hash", 64), ("meta", 65535)]), ("meta", [("value", 65535)])):
        s = client.create_schema(auto_id=False)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=512)
        for field, size in extra:
            s.add_field(field, DataType.VARCHAR, max_length=size)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
        ip = client.prepare_index_params()
        ip.add_index("v", index_type="FLAT", metric_type="L2")
        client.create_collection(n[name], schema=s, index_params=ip)


def _read_meta(client, settings: Settings) -> dict | None:
    n = names(settings)
    if not all(client.has_collection(c) for c in n.values()):
        return None
    rows = client.get(n["meta"], ids=[META_KEY], output_fields=["value"])
    return json.loads(rows[0]["value"]) if rows else None


def _all_ids(client, collection: str, output_fields=()) -> list[dict]:
    rows, it = [], client.query_iterator(collection, batch_size=BATCH, filter='id != ""', output_fields=["id", *output_fields])
    while batch := it.next():
        rows.extend(batch)
    it.close()
    return rows


# ---------------------------------------------------------------- writing


def update(
    settings: Settings,
    articles: list[Article],
    embedder,
    *,
    rebuild: bool = False,
    progress: bool = True,
    log=print,
    cache=None,
    max_embed: int | None = None,
    lexical_first: bool = False,  # noqa: ARG001 (every Milvus row carries its vector: nothing to publish early)
) -> IndexReport:
    """As rag.index.build.update, into Milvus. `max_embed` is refused: a Milvus row cannot lack its vector."""
    from rag.index.embed import embed_some

    if not articles:
        raise CorpusEmpty("no articles to index: the corpus is empty (the existing index, if any, is kept)")
    if max_embed is not None:
        raise ValueError("--max-embed is not supported with RAG_STORE=milvus: every chunk is embedded")
    t0 = time.perf_counter()
    client = connect(settings)
    n = names(settings)
    wanted = index_config(settings, embedder.name)
    report = IndexReport()
    meta = None if rebuild else _read_meta(client, settings)
    if rebuild:
        report.rebuilt_because = ["--rebuild asked"]
    elif meta is not None and config_diff(meta["config"], wanted):
        report.rebuilt_because = config_diff(meta["config"], wanted)
        log(f"Settings changed since the last build, rebuilding from scratch: {'; '.join(report.rebuilt_because)}")
    if meta is None or report.rebuilt_because:
        for c in n.values():
            client.drop_collection(c)
        _create(client, settings)
        meta = None

    stored = {r["id"]: r["hash"] for r in _all_ids(client, n["articles"], ["hash"])}
    splitter = chunking.make_splitter(settings.chunk_size, settings.chunk_overlap)
    chunks: list[Chunk] = []
    for a in articles:
        if stored.get(a.id) == a.content_hash:
            report.unchanged.append(a.id)
        else:
            (report.changed if a.id in stored else report.added).append(a.id)
        chunks.extend(chunking.split(a, splitter=splitter))
    report.deleted = sorted(set(stored) - {a.id for a in articles})
    report.chunks = len(chunks)
    fingerprint = hashlib.sha256(
        json.dumps([wanted, sorted((a.id, a.content_hash) for a in articles)]).encode()
    ).hexdigest()
    if meta is not None and meta.get("fingerprint") == fingerprint:
        report.version = fingerprint[:12]
        report.seconds = time.perf_counter() - t0
        return report  # the collections already hold exactly this corpus

    # Vectors: read back those of unchanged articles, then the embedding cache, then the model.
    unchanged = set(report.unchanged)
    keep_ids = [c.id for c in chunks if c.article_id in unchanged]
    vectors: dict[str, np.ndarray] = {}
    for i in range(0, len(keep_ids), BATCH):
        for r in client.get(n["chunks"], ids=keep_ids[i : i + BATCH], output_fields=["dense"]):
            vectors[r["id"]] = np.asarray(r["dense"], dtype=np.float32)
    todo = [c for c in chunks if c.id not in vectors]
    texts, titles = [c.text for c in todo], [c.title for c in todo]
    kw = dict(cache=cache, batch_size=settings.embed_batch, progress=progress, desc="embedding chunks")
    report.from_cache = len(embed_some(embedder, texts, titles, limit=0, **kw))
    got = embed_some(embedder, texts, titles, limit=None, **kw)
    for j, c in enumerate(todo):
        vectors[c.id] = np.asarray(got[j], dtype=np.float32)
    report.embedded = len(todo) - report.from_cache

    sparse = bm25_weights(bm25_tokens(chunks, settings.tokenizer, open_token_cache(settings), progress))
    by_id = {a.id: a for a in articles}
    target = {c.id for c in chunks}
    stale = [r["id"] for r in _all_ids(client, n["chunks"]) if r["id"] not in target]
    for i in range(0, len(stale), BATCH):
        client.delete(n["chunks"], ids=stale[i : i + BATCH])
    rows = []
    for row, (c, sp) in enumerate(zip(chunks, sparse)):
        a = by_id[c.article_id]
        rows.append(c.to_dict() | {"row": row,
            "meta": json.dumps(a.meta(), ensure_ascii=False), "source": (a.source or "").lower(),
            "date": a.date or "", "dense": vectors[c.id].tolist(), "sparse": sp,
        })
        if len(rows) == BATCH:
            client.upsert(n["chunks"], rows)
            rows = []
    if rows:
        client.upsert(n["chunks"], rows)
    new = [by_id[i] for i in report.added + report.changed]
    for i in range(0, len(new), BATCH):
        client.upsert(n["articles"], [
            {"id": a.id, "text": a.text, "hash": a.content_hash, "meta": json.dumps(a.meta(), ensure_ascii=False), "v": [0.0, 0.0]}
            for a in new[i : i + BATCH]
        ])
    for i in range(0, len(report.deleted), BATCH):
        client.delete(n["articles"], ids=report.deleted[i : i + BATCH])
    value = {"config": wanted, "fingerprint": fingerprint, "counts": {"articles": len(articles), "chunks": len(chunks)},
             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    client.flush(n["chunks"])  # seal what was written: durable, and searched from built segment indexes
    client.upsert(n["meta"], [{"id": META_KEY, "value": json.dumps(value), "v": [0.0, 0.0]}])  # the commit point
    report.version = fingerprint[:12]
    report.seconds = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------- reading


class _Articles(Mapping):
    """Articles fetched from P_articles on first use (the corpus may not fit in memory)."""

    def __init__(self, client, collection: str, count: int):
        self._client, self._collection, self._count, self._cache = client, collection, count, {}

    def __getitem__(self, article_id: str) -> Article:
        if article_id not in self._cache:
            rows = self._client.get(self._collection, ids=[article_id], output_fields=["text", "meta"])
            if not rows:
                raise KeyError(article_id)
            self._cache[article_id] = Article(**json.loads(rows[0]["meta"]), text=rows[0]["text"])
        return self._cache[article_id]

    def __iter__(self):
        return iter(r["id"] for r in _all_ids(self._client, self._collection))

    def __len__(self) -> int:
        return self._count


class MilvusStore:
    """The Store protocol (rag/index/store.py) over the collections. A key is a chunk's row (its order in the corpus,
    as in the local store: equal scores, e.g. of duplicate chunks, then rank the same); a filter is an expression."""

    def __init__(self, settings: Settings, client, meta: dict):
        self.client, self.names, self.meta = client, names(settings), meta
        self.config = meta["config"]
        self.articles = _Articles(client, self.names["articles"], meta["counts"]["articles"])
        self._rows: dict[int, dict] = {}  # chunk rows seen in results, for chunk()

    @property
    def version(self) -> str:
        return self.meta["fingerprint"][:12]

    def __len__(self) -> int:
        return self.meta["counts"]["chunks"]

    def chunk(self, key: int) -> Chunk:
        r = self._rows[key]
        return Chunk(**{f: r[f] for f in _CHUNK_FIELDS if f != "row"})

    def prepare_filter(self, filters) -> str:
        parts = []
        if filters.article_ids is not None:
            parts.append(_in("article_id", sorted(filters.article_ids)))
        if filters.source:  # one name or a list: any of them (the article's own source; see Filters)
            sources = [filters.source] if isinstance(filters.source, str) else list(filters.source)
            parts.append(_in("source", [x.lower() for x in sources]))
        if filters.date_from or filters.date_to:
            parts.append(f'date != "" and date >= {_quote(filters.date_from or "")} and date <= {_quote(filters.date_to or "9999")}')
        return " and ".join(f"({p})" for p in parts) or 'id != ""'

    def _search(self, field: str, data, k: int, allowed: str | None) -> list[tuple[int, float]]:
        if len(self) == 0 or k <= 0:
            return []
        res = self.client.search(
            self.names["chunks"], data=[data], anns_field=field, limit=min(k, 16384), filter=allowed or "",
            output_fields=_CHUNK_FIELDS, search_params={"metric_type": "IP"},
        )
        if len(self._rows) > 100_000:  # a long-lived reader: forget old results
            self._rows.clear()
        out = []
        for hit in res[0]:
            row = int(hit["entity"]["row"])
            self._rows[row] = hit["entity"] | {"id": hit["id"]}
            if hit["distance"] > 0:
                out.append((row, float(hit["distance"])))
        return out

    def lexical(self, tokens: list[str], k: int, allowed: str | None = None) -> list[tuple[int, float]]:
        q = query_vector(tokens)
        return self._search("sparse", q, k, allowed) if q else []

    def dense(self, query_vector: np.ndarray, k: int, allowed: str | None = None) -> list[tuple[int, float]]:
        return self._search("dense", np.asarray(query_vector, dtype=np.float32).tolist(), k, allowed)

    def without_vector(self) -> set:
        return set()


def load(settings: Settings, *, expected_embedder: str | None = None) -> MilvusStore:
    from rag.index.embed import embedder_id

    client = connect(settings)
    meta = _read_meta(client, settings)
    if meta is None:
        raise IndexMissing(f"no index in Milvus at {settings.milvus_uri} (collections {settings.milvus_collection}_*): run `rag index` to build it")
    diff = config_diff(meta["config"], index_config(settings, expected_embedder or embedder_id(settings)))
    if diff:
        raise IndexMismatch(f"Milvus index {settings.milvus_collection} does not match the settings ({'; '.join(diff)}): {REBUILD_HINT}")
    return MilvusStore(settings, client, meta)
