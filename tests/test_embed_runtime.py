"""Embedding runtimes (RAG_EMBED_RUNTIME): a different runtime is a different embedder everywhere (manifest,
cache keys), so a switch asks for `rag index --rebuild` and never mixes vectors; length bucketing."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import FakeEmbedder
from rag import index
from rag.config import load_settings
from rag.embed import cache_key, embed_some, embedder_id, open_cache
from rag.errors import IndexMismatch, InvalidSetting


def test_runtime_is_part_of_the_embedder_identity():
    torch_id = embedder_id(load_settings({}))
    assert torch_id == "embeddinggemma-300m@768"  # unchanged: indexes built before runtimes existed stay valid
    onnx_id = embedder_id(load_settings({"RAG_EMBED_RUNTIME": "openvino-bf16"}))
    assert onnx_id == "embeddinggemma-300m+openvino-bf16@768"
    assert cache_key(torch_id, "doc", "x", "t") != cache_key(onnx_id, "doc", "x", "t")


def test_unknown_runtime_is_a_clear_error():
    with pytest.raises(InvalidSetting, match="RAG_EMBED_RUNTIME=tensorrt: expected one of torch, onnx"):
        embedder_id(load_settings({"RAG_EMBED_RUNTIME": "tensorrt"}))


def test_switching_runtime_asks_for_a_rebuild_and_never_mixes_vectors(settings, articles):
    settings = settings.replace(embedder="embeddinggemma-300m")
    torch_emb = FakeEmbedder()
    torch_emb.name = embedder_id(settings)
    cache = open_cache(settings)
    index.update(settings, articles, torch_emb, cache=cache, progress=False, log=lambda m: None)

    onnx = settings.replace(embed_runtime="onnx")
    with pytest.raises(IndexMismatch, match=r"embedder: index has 'embeddinggemma-300m@64', settings say "
                                            r"'embeddinggemma-300m\+onnx@64'.*rag index --rebuild"):
        index.load(onnx)

    # an update with the other runtime rebuilds from scratch and embeds everything anew (no cache hit)
    onnx_emb = FakeEmbedder()
    onnx_emb.name = embedder_id(onnx)
    messages = []
    report = index.update(onnx, articles, onnx_emb, cache=cache, progress=False, log=messages.append)
    assert report.rebuilt_because and "rag index --rebuild" in messages[0]
    assert report.from_cache == 0 and report.embedded == report.chunks == len(onnx_emb.embedded)
    assert index.load(onnx).manifest["config"]["embedder"] == "embeddinggemma-300m+onnx@64"


def test_embed_some_batches_texts_of_similar_length():
    class Recording(FakeEmbedder):
        def __init__(self):
            super().__init__()
            self.batches = []

        def embed_documents(self, texts, titles):
            self.batches.append([len(t) for t in texts])
            return super().embed_documents(texts, titles)

    texts = ["a" * n for n in (50, 3, 40, 2, 60, 1)]
    emb = Recording()
    got = embed_some(emb, texts, [""] * len(texts), cache=None, batch_size=2, progress=False)
    assert emb.batches == [[1, 2], [3, 40], [50, 60]]
    for i, t in enumerate(texts):  # each vector still belongs to its own text
        assert np.allclose(got[i], emb.embed_documents([t], [""])[0])


@pytest.mark.slow
def test_onnx_runtime_gives_the_torch_vectors():
    """The exported graph (exported on first use: ~1.5 min) computes what sentence-transformers computes."""
    from rag.embed import load_embedder

    settings = load_settings({})
    texts, titles = ["Giá vàng hôm nay tăng mạnh.", "Đội tuyển Việt Nam thắng 2-1 tại Mỹ Đình."], ["Vàng", ""]
    reference = load_embedder(settings)
    onnx = load_embedder(settings.replace(embed_runtime="onnx"))
    assert onnx.name != reference.name
    docs = (onnx.embed_documents(texts, titles) * reference.embed_documents(texts, titles)).sum(axis=1)
    queries = (onnx.embed_queries(["giá vàng"]) * reference.embed_queries(["giá vàng"])).sum(axis=1)
    assert docs.min() > 0.9999 and queries.min() > 0.9999
