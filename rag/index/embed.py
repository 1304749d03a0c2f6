"""Dense embeddings: the Embedder protocol, EmbeddingGemma through sentence-transformers,
and a persistent embedding cache so no text is ever embedded twice (it also makes long runs resumable)."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from tqdm.auto import tqdm

from rag.index.cache import BlobCache
from rag.config import Settings
from rag.index.embed_format import QUERY_PROMPT, document_text, normalise  # noqa: F401 (re-exported: rag.index.embed.normalise)


class Embedder(Protocol):
    name: str  # identifies model + output dim; part of cache keys and of the index manifest
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...  # (n, dim) float32, L2-normalised

    def embed_documents(self, texts: Sequence[str], titles: Sequence[str]) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """EmbeddingGemma (or any sentence-transformers model) with its query and document prompts."""

    def __init__(self, path: Path, *, name: str, dim: int = 768, threads: int = 0, batch_size: int = 8):
        """`name` should come from embedder_id(): it keys the cache and the manifest."""
        self.path, self.dim, self.batch_size = Path(path), dim, batch_size
        self.name = name
        self.threads = threads or os.cpu_count() or 1
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:  # load once, even when several threads ask at the same time
            if self._model is None:
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(self.threads)
                self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
            return self._model

    def embed_queries(self, texts):
        v = self.model.encode_query(list(texts), batch_size=self.batch_size, convert_to_numpy=True)
        return normalise(v, self.dim)

    def embed_documents(self, texts, titles):
        formatted = [document_text(x, t) for x, t in zip(texts, titles)]
        v = self.model.encode(formatted, prompt="", batch_size=self.batch_size, convert_to_numpy=True)
        return normalise(v, self.dim)


class EmbeddingCache:
    """Vectors keyed by cache_key(): float32 bytes in a BlobCache."""

    def __init__(self, path: Path):
        self._store = BlobCache(path, "vec")

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        return {k: np.frombuffer(v, dtype=np.float32) for k, v in self._store.get_many(keys).items()}

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        self._store.put_many({k: np.asarray(v, dtype=np.float32).tobytes() for k, v in items.items()})


def cache_key(embedder_name: str, kind: str, *parts: str) -> str:
    h = hashlib.sha256(f"{embedder_name}\x00{kind}".encode())
    for p in parts:
        h.update(b"\x00" + p.encode("utf-8"))
    return h.hexdigest()


def embed_some(
    embedder: Embedder,
    texts: Sequence[str],
    titles: Sequence[str] | None = None,
    *,
    cache: EmbeddingCache | None,
    batch_size: int = 32,
    limit: int | None = None,
    progress: bool = True,
    desc: str = "embedding",
) -> dict[int, np.ndarray]:
    """Vectors for texts[i], from the cache or the embedder; at most `limit` texts are newly embedded
    (None: all), so a long job can be done in bounded steps. Documents have titles; queries don't."""
    kind = "query" if titles is None else "doc"
    keys = [cache_key(embedder.name, kind, t, "" if titles is None else titles[i]) for i, t in enumerate(texts)]
    found = cache.get_many(keys) if cache else {}
    out = {i: found[k] for i, k in enumerate(keys) if k in found}
    missing = [i for i in range(len(texts)) if i not in out][:limit]
    missing.sort(key=lambda i: len(texts[i]))  # batches of similar lengths carry little padding
    bar = tqdm(total=len(missing), desc=desc, unit="text", disable=not progress or not missing)
    for s in range(0, len(missing), batch_size):
        idx = missing[s : s + batch_size]
        batch = [texts[i] for i in idx]
        if titles is None:
            vecs = embedder.embed_queries(batch)
        else:
            vecs = embedder.embed_documents(batch, [titles[i] for i in idx])
        if cache:
            cache.put_many({keys[i]: v for i, v in zip(idx, vecs)})
        out.update(zip(idx, vecs))
        bar.update(len(idx))
    bar.close()
    return out


def embed_cached(embedder: Embedder, texts: Sequence[str], titles: Sequence[str] | None = None, **kw) -> np.ndarray:
    """All vectors, as an (n, dim) array; see embed_some."""
    got = embed_some(embedder, texts, titles, **kw)
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.stack([got[i] for i in range(len(texts))]).astype(np.float32)


_EMBEDDERS: dict[tuple, Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def load_embedder(settings: Settings) -> Embedder:
    """One embedder object per identity (model, runtime or server, dim) per process: the model loads once."""
    key = (embedder_id(settings), str(settings.cache_dir), settings.embed_url)
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = _make_embedder(settings)
        return _EMBEDDERS[key]


def _make_embedder(settings: Settings) -> Embedder:
    from rag import models

    if settings.embed_url:
        from rag.index.remote_embed import OpenAIEmbedder

        return OpenAIEmbedder(settings.embed_url, settings.embed_model, dim=settings.embed_dim,
                              batch_size=max(settings.embed_batch, 32))  # a server batches well
    path = models.resolve(settings.embedder, settings, kind="embedder")
    chosen = runtime(settings)
    common = dict(dim=settings.embed_dim, threads=settings.threads, batch_size=settings.embed_batch)
    torch_embedder = lambda: SentenceTransformerEmbedder(  # noqa: E731
        path, name=embedder_id(settings.replace(embed_runtime="torch")), **common)
    if chosen == "torch":
        return torch_embedder()
    from rag.index.onnx_embed import ExportedEmbedder

    exported = ExportedEmbedder(path, settings.models_dir, chosen, name=embedder_id(settings), **common)
    if settings.embed_runtime != "auto":
        return exported  # asked for by name: its failure is the user's to see
    try:  # chosen for the user: load it now (export once, compile), so a machine that cannot falls back cleanly
        exported.load()
    except Exception as e:  # noqa: BLE001 (any failure of an optional runtime: out of memory, no package, old CPU)
        why = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        print(f"embedding runtime {chosen} could not load here ({why}); using torch", file=sys.stderr)
        _FALLBACK.add(_fallback_key(settings))
        return torch_embedder()
    return exported


def open_cache(settings: Settings) -> EmbeddingCache:
    return EmbeddingCache(settings.cache_dir / "embeddings.sqlite")


FASTEST = "openvino-bf16"  # the fastest runtime within 0.3 MRR@10 of torch on every gold set (bench/runtime_quality.py)
_FALLBACK: set[tuple] = set()  # (model, cache dir) pairs whose automatic runtime failed to load in this process


def _fallback_key(settings: Settings) -> tuple:
    return settings.embedder, str(settings.models_dir)


def runtime(settings: Settings) -> str:
    """The embedding runtime in use. Named in the settings: that one. "auto" (the default): the runtime the
    existing local index was built with, so queries are embedded as its passages were and an upgrade never
    re-embeds a corpus; with no index, FASTEST when its packages are installed and it loaded in this process,
    else torch."""
    if settings.embed_runtime != "auto":
        return settings.embed_runtime
    from rag.index.onnx_embed import RUNTIMES as EXPORTED, installed

    if settings.store == "local":
        from rag.index.version import current_version

        version = current_version(settings.index_dir)
        try:
            built = json.loads((version / "manifest.json").read_text(encoding="utf-8"))["config"]["embedder"]
        except (TypeError, OSError, ValueError, KeyError):
            built = None  # no index yet (or an unreadable one: index.load says so)
        if isinstance(built, str):
            for name in ("torch",) + EXPORTED:
                if built == embedder_id(settings.replace(embed_runtime=name)):
                    return name
    if _fallback_key(settings) in _FALLBACK:
        return "torch"
    return FASTEST if installed(FASTEST) else "torch"


def embedder_id(settings: Settings) -> str:
    """The embedder's identity as recorded in the index manifest, known without loading the model.
    A runtime other than torch computes (slightly) different vectors, so it is part of the identity:
    switching runtime asks for a rebuild and never mixes vectors in one index or cache key."""
    from rag import models

    if settings.embed_url:
        from rag.index.remote_embed import remote_id

        return remote_id(settings.embed_model, settings.embed_dim)
    base = settings.embedder if settings.embedder in models.REGISTRY else str(Path(settings.embedder).expanduser().resolve())
    used = runtime(settings)
    return f"{base}{'' if used == 'torch' else '+' + used}@{settings.embed_dim}"
