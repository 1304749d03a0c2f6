"""An external embedding server speaking the OpenAI API (POST {base_url}/embeddings): text-embeddings-
inference, vLLM, llama.cpp's server, Ollama, a hosted API... set RAG_EMBED_URL (and RAG_EMBED_MODEL).

The texts sent carry EmbeddingGemma's query and document prompts, as in process. The embedder's name
includes the server's model, so an index or cache filled by one model never receives another's vectors;
the URL is not part of it (the same model behind another address computes the same vectors)."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from rag.index.embed_format import QUERY_PROMPT, document_text, normalise
from rag.errors import BackendError, SettingsError


def remote_id(model: str, dim: int) -> str:
    """The embedder's name for a server's model, as recorded in the manifest and cache keys."""
    if not model:
        raise SettingsError("RAG_EMBED_URL needs RAG_EMBED_MODEL: the server's model name, which keeps its "
                            "vectors apart from any other model's in the index and the cache")
    return f"openai:{model}@{dim}"


class OpenAIEmbedder:
    def __init__(self, base_url: str, model: str, *, dim: int = 768, batch_size: int = 32, api_key: str | None = None,
                 timeout: float = 300):
        self.name = remote_id(model, dim)
        self.url = base_url.rstrip("/") + "/embeddings"
        self.model, self.dim, self.batch_size, self.timeout = model, dim, batch_size, timeout
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY")

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        out = []
        for s in range(0, len(texts), self.batch_size):
            body = {"model": self.model, "input": list(texts[s : s + self.batch_size]), "encoding_format": "float"}
            try:
                response = httpx.post(self.url, json=body, headers=headers, timeout=self.timeout)
            except httpx.HTTPError as e:
                raise BackendError(f"{self.url}: {type(e).__name__}: {e or 'no detail'}") from e
            if response.status_code != 200:
                raise BackendError(f"{self.url}: HTTP {response.status_code}: {response.text[:500]}")
            try:
                data = sorted(response.json()["data"], key=lambda d: d["index"])
                vectors = np.asarray([d["embedding"] for d in data], dtype=np.float32)
            except (ValueError, KeyError, TypeError) as e:
                raise BackendError(f"{self.url}: not an embeddings response ({type(e).__name__}: {e})") from e
            if vectors.shape != (len(body["input"]), vectors.shape[1] if vectors.ndim == 2 else -1):
                raise BackendError(f"{self.url}: expected {len(body['input'])} vectors, got shape {vectors.shape}")
            if vectors.shape[1] < self.dim:
                raise SettingsError(f"{self.url} returns {vectors.shape[1]}-dimensional vectors: set "
                                    f"RAG_EMBED_DIM={vectors.shape[1]} (or less)")
            out.append(vectors)
        return normalise(np.concatenate(out) if out else np.zeros((0, self.dim), np.float32), self.dim)

    def embed_queries(self, texts):
        return self._embed([QUERY_PROMPT + t for t in texts])

    def embed_documents(self, texts, titles):
        return self._embed([document_text(x, t) for x, t in zip(texts, titles)])
