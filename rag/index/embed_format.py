"""What every embedding runtime shares (in-process torch, ONNX / OpenVINO, a remote server): EmbeddingGemma's
query prompt and document format, and the normalisation of its vectors. Its own module, so rag.index.onnx_embed and
rag.index.remote_embed need not import rag.index.embed (which loads them)."""
from __future__ import annotations

import numpy as np

QUERY_PROMPT = "task: search result | query: "  # EmbeddingGemma's; in-process runtimes read it from the model


def normalise(vectors: np.ndarray, dim: int | None = None) -> np.ndarray:
    """Matryoshka truncation to `dim`, then unit length (so inner product = cosine)."""
    v = np.asarray(vectors, dtype=np.float32)
    if dim:
        v = v[:, :dim]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


def document_text(text: str, title: str | None) -> str:
    """EmbeddingGemma's document format, which carries the title (every runtime and server uses it)."""
    return f"title: {title or 'none'} | text: {text}"
