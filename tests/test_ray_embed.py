"""`rag index --ray`: embedding through a real local Ray cluster (a head and one worker node on 127.0.0.1,
started here), into the embedding cache, resumable after an interruption. Fake embedder: no model."""
from __future__ import annotations

import pytest

from conftest import ROOT, FakeEmbedder, make_articles
from rag.index import build as index
from rag.index.embed import EmbeddingCache
from rag.types import Article

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    """A head and one worker node, 1 CPU each, on loopback; the nodes can import conftest (the fake)."""
    from rag.index.ray_embed import local_cluster

    with local_cluster(nodes=2, cpus_per_node=1, pythonpath=[str(ROOT / "tests")]) as address:
        yield address


def make_fake():  # called on the actors; conftest is importable there (PYTHONPATH of the nodes)
    return FakeEmbedder()


def corpus(n: int = 12) -> list[Article]:
    base = make_articles()
    return [Article(id=f"{a.id}-{i}", title=f"{a.title} {i}", date=a.date, source=a.source, text=f"{a.text}\n\nSố {i}.")
            for i in range(n // len(base)) for a in base]


@pytest.mark.slow  # starts a real local Ray cluster
def test_ray_fills_the_cache_and_resumes_after_an_interruption(cluster, settings):
    from rag.index.ray_embed import embed_with_ray, missing_rows

    settings = settings.replace(embed_batch=2)
    articles, cache, name = corpus(), EmbeddingCache(settings.cache_dir / "embeddings.sqlite"), FakeEmbedder().name
    total = len(missing_rows(settings, articles, name, cache)[0])

    class Interrupted(Exception):
        pass

    def interrupt_after_two(done, todo):
        if done >= 4:
            raise Interrupted  # as a Ctrl-C in the driver after two committed batches

    with pytest.raises(Interrupted):
        embed_with_ray(settings, articles, address=cluster, cache=cache, make_embedder=make_fake, embedder_name=name,
                       on_batch=interrupt_after_two, log=lambda m: None)
    left = len(missing_rows(settings, articles, name, cache)[0])
    assert 0 < left <= total - 4

    report = embed_with_ray(settings, articles, address=cluster, cache=cache, make_embedder=make_fake,
                            embedder_name=name, log=lambda m: None)
    assert report.embedded == left and report.cached == total - left  # nothing finished is embedded again
    assert report.workers == 2
    assert missing_rows(settings, articles, name, cache)[0] == []

    # the ordinary update publishes from the cache alone: the embedder is never called
    embedder = FakeEmbedder()
    built = index.update(settings, articles, embedder, cache=cache, progress=False, log=lambda m: None)
    assert embedder.embedded == [] and built.without_vector == 0 and built.from_cache == built.chunks
    # and the vectors are the ones the embedder computes in process
    idx = index.load(settings, expected_embedder=name)
    c = idx.chunks[0]
    assert (idx.faiss.reconstruct(0) == embedder.embed_documents([c.text], [c.title])[0]).all()


@pytest.mark.slow  # starts a real local Ray cluster
def test_rag_index_ray_cli(cluster, settings, tmp_path, monkeypatch):
    """`rag index --ray ADDRESS` end to end, with the embedder the CLI would load replaced by the fake."""
    import rag.index.embed
    from rag import cli
    from rag.index import ray_embed
    from rag.ingest.corpus import write_article

    for a in corpus(6):
        write_article(a, settings.corpus_dir)
    monkeypatch.setenv("RAG_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("RAG_EMBEDDER", "fake-hash")
    monkeypatch.setenv("RAG_EMBED_DIM", "64")
    monkeypatch.setenv("RAG_DEDUP_THRESHOLD", "0")  # the generated articles are copies of three with a number added
    real = ray_embed.embed_with_ray
    monkeypatch.setattr(ray_embed, "embed_with_ray",
                        lambda s, a, **kw: real(s, a, make_embedder=make_fake, embedder_name=FakeEmbedder().name, **kw))
    monkeypatch.setattr(rag.index.embed, "load_embedder", lambda s: FakeEmbedder())
    rc = cli.main(["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir), "index", "--ray",
                   cluster, "--quiet", "--json"])
    assert rc == 0
    idx = index.load(settings.replace(chunk_size=800, chunk_overlap=120), expected_embedder=FakeEmbedder().name)
    assert idx.dense_coverage == 1.0 and len(idx.articles) == 6
