"""The persistent hybrid index: chunk store + FAISS (dense) + BM25 (lexical), with a manifest.

Layout under settings.index_dir:
    CURRENT            name of the live version (replaced atomically, last step of a build)
    v-<time>-<id>/     one complete version: manifest.json, articles.jsonl, chunks.jsonl, dense.faiss, bm25/
    .tmp-<id>/         a build in progress; a killed build leaves only this, which the next build removes
    .lock              held while building, so two writers never interleave

Readers load the version CURRENT names, so a crash at any point leaves the previous index usable.
Updates are incremental: an article whose content hash is unchanged keeps its chunks and vectors, and
BM25 token lists come from a cache (cache_dir/tokens.sqlite), so only new text is tokenized. With
`lexical_first`, changed articles are published for BM25 search before the embedding model is loaded.

Dense coverage may be partial: with `max_embed`, a build embeds at most that many chunks and publishes
an index where the rest are searchable lexically only. Each later build fills in more (vectors of
finished batches are in the embedding cache, so even a killed build loses nothing). This is how a
corpus too large to embed in one sitting is usable from the first minutes.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rag import text
from rag.index import chunking
from rag.config import Settings
from rag.errors import CorpusEmpty, IndexCorrupt, IndexMismatch, IndexMissing
from rag.types import Article, Chunk
from rag.index.version import current_version  # noqa: F401 (rag.index.build.current_version, as before)

FORMAT_VERSION = 2  # 2: dense vectors in an IDMap2 keyed by chunk row (partial coverage)
REBUILD_HINT = "run `rag index --rebuild`"


def index_config(settings: Settings, embedder_name: str) -> dict:
    """Everything that, if changed, makes stored chunks or vectors wrong. Compared on every load."""
    return {
        "format": FORMAT_VERSION,
        "embedder": embedder_name,
        "dim": settings.embed_dim,
        "splitter": chunking.SPLITTER_ID,
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "tokenizer": settings.tokenizer,
    }


def config_diff(built: dict, wanted: dict) -> list[str]:
    return [f"{k}: index has {built.get(k)!r}, settings say {wanted[k]!r}" for k in wanted if built.get(k) != wanted[k]]


@dataclass
class Index:
    """One loaded version. Immutable once loaded; a rebuild produces a new object."""

    path: Path
    manifest: dict
    articles: dict[str, Article]
    chunks: list[Chunk]
    faiss: object  # faiss IndexIDMap2 over unit vectors; id i = chunks[i] (chunks may lack a vector)
    bm25: object  # bm25s.BM25, doc i = chunks[i]
    _unembedded: set[int] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def config(self) -> dict:
        return self.manifest["config"]

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def dense_coverage(self) -> float:
        return self.faiss.ntotal / len(self.chunks) if self.chunks else 1.0

    # The Store protocol (rag/index/store.py): keys are rows of self.chunks, a filter is a boolean row mask.

    @property
    def version(self) -> str:
        return self.path.name

    def chunk(self, key: int) -> Chunk:
        return self.chunks[key]

    def prepare_filter(self, filters) -> np.ndarray:
        return filters.mask(self)

    def lexical(self, tokens: list[str], k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        ids = self.bm25.get_tokens_ids(tokens)
        if not ids:
            return []
        return top_scores(self.bm25.get_scores_from_ids(ids), k, allowed)

    def dense(self, query_vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        n = len(self.chunks)
        # With a filter, look further down the list so the allowed chunks are still found.
        depth = n if allowed is not None else min(k, n)
        q = np.ascontiguousarray(query_vector[None, :], dtype=np.float32)
        scores, rows = self.faiss.search(q, depth)
        pairs = [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]
        if allowed is not None:
            pairs = [(r, s) for r, s in pairs if allowed[r]]
        return [(r, s) for r, s in pairs[:k] if s > 0]

    def without_vector(self) -> set[int]:
        if self._unembedded is None:
            n = len(self.chunks)
            self._unembedded = set() if self.faiss.ntotal == n else set(range(n)) - set(vector_ids(self.faiss).tolist())
        return self._unembedded


def top_scores(scores: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    """The k best positive scores as (row, score), best first; rows outside `allowed` never count."""
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    k = min(k, len(scores))
    if k <= 0:
        return []
    idx = np.argpartition(-scores, k - 1)[:k]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return [(int(i), float(scores[i])) for i in idx if np.isfinite(scores[i]) and scores[i] > 0]


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    chunks: int = 0
    embedded: int = 0  # chunks the model embedded in this run
    from_cache: int = 0  # new chunks whose vectors were already in the embedding cache
    without_vector: int = 0  # chunks searchable lexically only, until a later build embeds them
    rebuilt_because: list[str] = field(default_factory=list)
    version: str = ""
    seconds: float = 0.0

    def summary(self) -> str:
        s = (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.deleted)} deleted, "
            f"{len(self.unchanged)} unchanged; {self.chunks} chunks ({self.embedded} embedded"
            + (f", {self.from_cache} from the embedding cache" if self.from_cache else "")
            + (f", {self.without_vector} still lexical-only: run `rag index` again" if self.without_vector else "")
            + f") in {self.seconds:.1f}s -> {self.version}"
        )
        return s


# ---------------------------------------------------------------- reading


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# What a manifest holds: key -> (type of its value, type of that value's own values; None: any)
_MANIFEST_SCHEMA = {"config": (dict, None), "counts": (dict, int), "articles": (dict, str), "files": (dict, int)}


def _manifest_problem(manifest) -> str | None:
    """What is wrong with a manifest's shape, if anything: valid JSON of the wrong shape (an old
    format, a hand edit) is as corrupt as a torn file."""
    if not isinstance(manifest, dict):
        return f"a JSON {type(manifest).__name__}, not an object"
    for key, (kind, item) in _MANIFEST_SCHEMA.items():
        value = manifest.get(key)
        if not isinstance(value, kind):
            return f"{key!r} is {type(value).__name__ if key in manifest else 'missing'}, expected {kind.__name__}"
        if item and not all(isinstance(v, item) and not isinstance(v, bool) for v in value.values()):
            return f"{key!r} holds values that are not {item.__name__}"
    return None


def load(settings: Settings, *, expected_embedder: str | None = None) -> Index:
    """Load the live version; raise IndexMissing / IndexMismatch / IndexCorrupt with the fix in the message."""
    import bm25s
    import faiss

    path = current_version(settings.index_dir)
    if path is None:
        raise IndexMissing(f"no index in {settings.index_dir}: run `rag index` to build it")
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if (why := _manifest_problem(manifest)) is not None:
            raise IndexCorrupt(f"index at {path} is corrupt (manifest.json: {why}): {REBUILD_HINT}")
        for name, size in manifest["files"].items():
            if (path / name).stat().st_size != size:
                raise IndexCorrupt(f"index file {path / name} has the wrong size: {REBUILD_HINT}")
        articles = {a["id"]: Article(**a) for a in _read_jsonl(path / "articles.jsonl")}
        chunks = [Chunk(**c) for c in _read_jsonl(path / "chunks.jsonl")]
        dense = faiss.read_index(str(path / "dense.faiss"))
        lexical = bm25s.BM25.load(str(path / "bm25"), show_progress=False)
    except IndexCorrupt:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise IndexCorrupt(f"index at {path} is unreadable ({type(e).__name__}: {e}): {REBUILD_HINT}") from e
    if dense.ntotal != manifest["counts"].get("vectors", len(chunks)) or lexical.scores["num_docs"] != len(chunks):
        raise IndexCorrupt(
            f"index at {path} is inconsistent ({len(chunks)} chunks, {dense.ntotal} vectors, "
            f"{lexical.scores['num_docs']} BM25 docs): {REBUILD_HINT}"
        )
    from rag.index.embed import embedder_id

    wanted = index_config(settings, expected_embedder or embedder_id(settings))
    diff = config_diff(manifest["config"], wanted)
    if diff:
        raise IndexMismatch(f"index at {path} does not match the settings ({'; '.join(diff)}): {REBUILD_HINT}")
    return Index(path, manifest, articles, chunks, dense, lexical)


# ---------------------------------------------------------------- writing


@contextmanager
def _writer_lock(index_dir: Path):
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fsync_write(path: Path, data: str) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write_jsonl(path: Path, rows) -> None:
    _fsync_write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def bm25_text(chunk: Chunk) -> str:
    # The title is part of what a chunk is about; BM25 sees it too (the dense side gets it via the prompt).
    return f"{chunk.title}\n{chunk.text}"


def bm25_tokens(chunks: list[Chunk], tokenizer_name: str, cache=None, progress: bool = False) -> list[list[str]]:
    """Each chunk's BM25 tokens. Word segmentation (pyvi) is the slow part of indexing (~750 chunks/s),
    so token lists are kept in a cache keyed by tokenizer and text: a re-index tokenizes only new text."""
    tok = text.tokenizer(tokenizer_name)
    texts = [bm25_text(c) for c in chunks]
    keys = [
        hashlib.sha256(f"{tokenizer_name}\x00{text.TOKENIZER_VERSION}\x00{t}".encode()).hexdigest() for t in texts
    ]
    found = cache.get_many(keys) if cache else {}
    out, new = [], {}
    missing = sum(k not in found for k in keys)
    with tqdm(total=missing, desc="tokenizing for BM25", unit="chunk", disable=not progress or missing < 1000) as bar:
        for k, t in zip(keys, texts):
            if k in found:
                tokens = found[k].decode("utf-8").split("\n") if found[k] else []
            else:
                tokens = tok(t)
                new[k] = "\n".join(tokens).encode("utf-8")  # tokens are \w+ runs: never contain "\n"
                bar.update(1)
            out.append(tokens or [""])
    if cache:
        cache.put_many(new)
    return out


def build_bm25(tokens: list[list[str]]):
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    return retriever


def open_token_cache(settings: Settings):
    from rag.index.cache import BlobCache

    return BlobCache(settings.cache_dir / "tokens.sqlite", "tokens")


def build_faiss(vectors: np.ndarray, ids: np.ndarray, dim: int):
    import faiss

    # Exact inner-product search: at ~100k chunks it takes milliseconds and loses nothing.
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if len(vectors):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
    return index


def vector_ids(index) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(index.id_map)


def _previous(settings: Settings, wanted: dict, log) -> tuple[Index | None, list[str]]:
    """The live version if it can be reused, else None and why we rebuild."""
    try:
        return load(settings, expected_embedder=wanted["embedder"]), []
    except IndexMissing:
        return None, []
    except IndexMismatch as e:
        log(f"Settings changed since the last build, rebuilding from scratch: {e}")
        return None, [str(e)]
    except IndexCorrupt as e:
        log(f"The existing index is unusable, rebuilding from scratch: {e}")
        return None, [str(e)]


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
    lexical_first: bool = False,
    embed_only: set[str] | None = None,
    on_publish=None,
) -> IndexReport:
    """Bring the index in line with `articles` (the whole corpus), reusing what is unchanged.
    `max_embed` bounds the chunks embedded in this run (None: all); see the module docstring.
    `lexical_first`: when chunks need the embedding model, first publish a version where they are
    searchable lexically (seconds), then embed them and publish again; the model load alone takes
    longer than the rest of a small re-index.
    `embed_only`: article ids whose chunks may be embedded in this run (None: any); the others wait,
    lexical-only, for a later run (an upload embeds its own articles, not the backlog).
    `on_publish()` is called each time a version goes live, e.g. to make a server pick it up."""
    from rag.index.embed import embed_some

    if not articles:
        raise CorpusEmpty("no articles to index: the corpus is empty (the existing index, if any, is kept)")
    t0 = time.perf_counter()
    index_dir = settings.index_dir
    wanted = index_config(settings, embedder.name)
    report = IndexReport()
    with _writer_lock(index_dir):
        old, why = (None, ["--rebuild asked"]) if rebuild else _previous(settings, wanted, log)
        report.rebuilt_because = why
        old_hashes = old.manifest["articles"] if old else {}
        old_chunks: dict[str, list[int]] = {}
        if old:
            for i, c in enumerate(old.chunks):
                old_chunks.setdefault(c.article_id, []).append(i)

        splitter = chunking.make_splitter(settings.chunk_size, settings.chunk_overlap)
        chunks: list[Chunk] = []
        reused_rows: list[int] = []  # row in old index, or -1 for a chunk to embed
        hashes = {}
        for a in articles:
            hashes[a.id] = a.content_hash
            if old_hashes.get(a.id) == hashes[a.id]:
                report.unchanged.append(a.id)
                rows = old_chunks.get(a.id, [])
                chunks.extend(old.chunks[i] for i in rows)
                reused_rows.extend(rows)
                continue
            (report.changed if a.id in old_hashes else report.added).append(a.id)
            new = chunking.split(a, splitter=splitter)
            chunks.extend(new)
            reused_rows.extend([-1] * len(new))
        report.deleted = sorted(set(old_hashes) - set(hashes))
        report.chunks = len(chunks)
        same_chunks = old is not None and not (report.added or report.changed or report.deleted or why)

        vectors = np.zeros((len(chunks), settings.embed_dim), dtype=np.float32)
        has_vec = np.zeros(len(chunks), dtype=bool)
        old_ids = set(vector_ids(old.faiss).tolist()) if old else set()
        for i, r in enumerate(reused_rows):
            if r in old_ids:
                vectors[i] = old.faiss.reconstruct(int(r))
                has_vec[i] = True

        def fill(limit: int | None) -> int:
            """Vectors for chunks that lack one: from the cache only (limit 0), or embedding up to `limit`."""
            todo = np.flatnonzero(~has_vec).tolist()
            if embed_only is not None and limit != 0:
                todo = [i for i in todo if chunks[i].article_id in embed_only]
            if not todo:
                return 0
            got = embed_some(
                embedder, [chunks[i].text for i in todo], [chunks[i].title for i in todo], cache=cache,
                batch_size=settings.embed_batch, limit=limit, progress=progress, desc="embedding chunks",
            )
            for j, v in got.items():
                vectors[todo[j]] = v
                has_vec[todo[j]] = True
            return len(got)

        report.from_cache = fill(0)  # no model needed for these
        if same_chunks and not report.from_cache and (has_vec.all() or max_embed == 0):
            report.version = old.path.name
            report.seconds = time.perf_counter() - t0
            return report  # nothing to do: keep the live version as it is

        tokens = None if same_chunks else bm25_tokens(chunks, settings.tokenizer, open_token_cache(settings), progress)
        bm25_from = old.path / "bm25" if same_chunks else None
        published = []

        def publish() -> None:
            published.append(_publish(settings, articles, hashes, chunks, vectors, has_vec, tokens, bm25_from, wanted))
            if on_publish is not None:
                on_publish()

        if lexical_first and not same_chunks and not has_vec.all() and max_embed != 0:  # else: already live
            publish()
            bm25_from = index_dir / published[-1] / "bm25"
            log(f"searchable now ({published[-1]}), {int((~has_vec).sum())} chunks lexically only until embedded")
        report.embedded = fill(max_embed)
        report.without_vector = int((~has_vec).sum())
        if report.embedded or not published:
            publish()
        previous = published[0] if len(published) > 1 else (old.path.name if old else "")
        _prune(index_dir, keep={published[-1], previous})
        report.version = published[-1]
        report.seconds = time.perf_counter() - t0
        return report


def _publish(settings, articles, hashes, chunks, vectors, has_vec, tokens, bm25_from, config) -> str:
    """Write one complete version in a temporary folder, then make it live by replacing CURRENT.
    BM25 is built from `tokens`, or hard-linked from `bm25_from` (same chunks; published files never change)."""
    import faiss

    index_dir = settings.index_dir
    _clean_stale(index_dir)
    tmp = index_dir / f".tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    _write_jsonl(tmp / "articles.jsonl", (_article_row(a) for a in articles))
    _write_jsonl(tmp / "chunks.jsonl", (c.to_dict() for c in chunks))
    ids = np.flatnonzero(has_vec)
    faiss.write_index(build_faiss(vectors[ids], ids, settings.embed_dim), str(tmp / "dense.faiss"))
    if bm25_from is not None:
        shutil.copytree(bm25_from, tmp / "bm25", copy_function=_link_or_copy)
    else:
        build_bm25(tokens).save(str(tmp / "bm25"), show_progress=False)
    files = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
    manifest = {
        "config": config,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "models": _model_provenance(settings),
        "counts": {"articles": len(articles), "chunks": len(chunks), "vectors": int(len(ids))},
        "articles": hashes,
        "files": files,
    }
    _fsync_write(tmp / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
    version = index_dir / f"v-{time.strftime('%Y%m%d-%H%M%S')}-{tmp.name[5:]}"
    os.rename(tmp, version)
    _fsync_write(index_dir / "CURRENT.tmp", version.name + "\n")
    os.replace(index_dir / "CURRENT.tmp", index_dir / "CURRENT")  # the commit point
    return version.name


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copy2(src, dst)


def _article_row(a: Article) -> dict:
    d = a.meta()
    d["text"] = a.text
    return d


def _model_provenance(settings: Settings) -> dict:
    """Which model files built this index (name, sha256 where the registry knows it)."""
    from rag import models

    spec = models.REGISTRY.get(settings.embedder)
    return {"embedder": {"name": settings.embedder, "sha256": getattr(spec, "sha256", None)}}


def _clean_stale(index_dir: Path) -> None:
    """Remove leftovers of builds that were killed midway (we hold the writer lock, so none is running)."""
    for p in index_dir.glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)


def _prune(index_dir: Path, keep: set[str]) -> None:
    # The previous version is kept one more round: a reader that resolved CURRENT just before the switch
    # may still be opening its files.
    for p in index_dir.glob("v-*"):
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
