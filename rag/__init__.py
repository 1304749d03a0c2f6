"""Vietnamese-first question answering over news articles, with citations.

    from rag import ask
    answer = ask("Bình Dương đứng Top1 Smart 21 năm nào?")   # Answer(text, citations, abstained, ...)

Importing `rag` is cheap: the public names load their modules on first use (PEP 562), so torch,
sentence-transformers and llama.cpp are imported only when a question is asked or an index built.
"""
from __future__ import annotations

import importlib

# public name -> module that defines it
_EXPORTS = {
    "ask": "rag.answer.pipeline",
    "ask_stream": "rag.answer.pipeline",
    "Pipeline": "rag.answer.pipeline",
    "Answer": "rag.types",
    "Citation": "rag.types",
    "Article": "rag.types",
    "Chunk": "rag.types",
    "Hit": "rag.types",
    "Settings": "rag.config",
    "load_settings": "rag.config",
}

__all__ = sorted(_EXPORTS)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # ~20 ms: only when asked

    try:
        return version("rag-news-vi")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0+unknown"


def __getattr__(name: str):
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
