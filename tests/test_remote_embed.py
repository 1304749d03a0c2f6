"""RAG_EMBED_URL: an OpenAI-compatible /v1/embeddings server as the embedder, against a real local server
(llama-cpp-python's, serving the SmolLM2 test GGUF with mean pooling, on 127.0.0.1)."""
from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from conftest import _free_port
from rag import models
from rag.index import build as index
from rag.config import load_settings
from rag.index.embed import embedder_id, load_embedder, open_cache
from rag.errors import BackendError, IndexMismatch, SettingsError
from rag.answer.retrieve import Retriever


def test_server_model_is_the_embedder_identity():
    s = load_settings({"RAG_EMBED_URL": "http://127.0.0.1:1/v1", "RAG_EMBED_MODEL": "bge-m3", "RAG_EMBED_DIM": "512"})
    assert embedder_id(s) == "openai:bge-m3@512"
    assert embedder_id(s.replace(embed_url="http://other:8080/v1")) == "openai:bge-m3@512"  # address: same vectors
    with pytest.raises(SettingsError, match="RAG_EMBED_URL needs RAG_EMBED_MODEL"):
        embedder_id(s.replace(embed_model=""))


def test_unreachable_server_is_a_backend_error():
    port = _free_port()  # nothing listens there
    s = load_settings({"RAG_EMBED_URL": f"http://127.0.0.1:{port}/v1", "RAG_EMBED_MODEL": "m"})
    with pytest.raises(BackendError, match=f"127.0.0.1:{port}/v1/embeddings: ConnectError"):
        load_embedder(s).embed_queries(["xin chào"])


@pytest.fixture(scope="module")
def embedding_server(tmp_path_factory):
    gguf = models.resolve("smollm2-135m", load_settings(), kind=models.GGUF)
    port, log_path = _free_port(), tmp_path_factory.mktemp("server") / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
             "--n_ctx", "512", "--embedding", "true", "--kv_overrides", "llama.pooling_type=int:1"],  # 1: mean pooling
            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()[-2000:]
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "llama_cpp.server not ready after 60 s"
            time.sleep(0.25)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_index_and_search_through_an_embedding_server(embedding_server, settings, articles):
    settings = settings.replace(embed_url=embedding_server, embed_model="smollm2-135m", embed_dim=576)
    embedder = load_embedder(settings)
    assert embedder.name == "openai:smollm2-135m@576"
    report = index.update(settings, articles, embedder, cache=open_cache(settings), progress=False, log=lambda m: None)
    assert report.embedded == report.chunks and report.without_vector == 0
    idx = index.load(settings)
    hits = Retriever(idx, embedder, settings.replace(retriever="dense")).search("Đội tuyển Việt Nam thắng Thái Lan", k=3)
    assert len(hits) == 3 and all(h.ranks.get("dense") for h in hits)

    # another server model: a rebuild, never a mix
    with pytest.raises(IndexMismatch, match="openai:smollm2-135m@576.*rag index --rebuild"):
        index.load(settings.replace(embed_model="other-model"))
    # more dimensions asked than the server gives: said plainly
    with pytest.raises(SettingsError, match="returns 576-dimensional vectors: set RAG_EMBED_DIM=576"):
        load_embedder(settings.replace(embed_dim=768)).embed_queries(["x"])


@pytest.mark.slow
def test_ray_workers_call_the_embedding_server(embedding_server, settings, articles):
    """`rag index --ray` with RAG_EMBED_URL: the actors build the configured embedder, i.e. the server client."""
    pytest.importorskip("ray")
    from rag.index.ray_embed import embed_with_ray, local_cluster, missing_rows

    settings = settings.replace(embed_url=embedding_server, embed_model="smollm2-135m", embed_dim=576, embed_batch=2)
    cache = open_cache(settings)
    with local_cluster(nodes=2) as address:
        report = embed_with_ray(settings, articles, address=address, cache=cache, log=lambda m: None)
    assert report.embedded == report.chunks > 0 and missing_rows(settings, articles, embedder_id(settings), cache)[0] == []
    direct = load_embedder(settings)
    built = index.update(settings, articles, direct, cache=cache, progress=False, log=lambda m: None)
    assert built.from_cache == built.chunks and built.embedded == 0
    c = index.load(settings).chunks[0]
    again = direct.embed_documents([c.text], [c.title])[0]
    assert float(again @ index.load(settings).faiss.reconstruct(0)) > 0.999  # the server's vectors, via Ray
