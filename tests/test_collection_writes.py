"""Writes and deletes of a collection (issue 32): `rag collections delete` (or rename) refuses while `rag add`
writes into the collection, a write into a collection deleted meanwhile fails without making its folders
again, and a successful index build leaves no list of unpublished articles behind. Fake embedder, files only."""
from __future__ import annotations

import pytest

from conftest import FakeEmbedder
from rag.index import collections, build as index, store
from rag.ingest import corpus, watch as ingest, manage
from rag.errors import RagError
from test_collections import article, base, fill, home  # noqa: F401 (fixtures)


def article_file(tmp_path, name: str = "a"):
    path = tmp_path / f"hoi-nghi-{name}.md"
    corpus.write_article(article(name), tmp_path)
    return path


class DeletesMidway(FakeEmbedder):
    """An embedder that, while `rag add` embeds, tries to delete (and rename) the collection it embeds for."""

    def __init__(self, base, name):
        super().__init__()
        self.base, self.name, self.refusals = base, name, []

    def embed_documents(self, texts, titles):
        for attempt in (lambda: collections.delete(self.base, self.name),
                        lambda: collections.rename(self.base, self.name, "other")):
            try:
                attempt()
            except collections.CollectionError as e:
                self.refusals.append(str(e))
        return super().embed_documents(texts, titles)


def test_deleting_a_collection_while_rag_add_writes_into_it_is_refused(base, tmp_path):
    collections.create(base, "a")
    s = collections.settings_for(base, "a")
    embedder = DeletesMidway(base, "a")
    report = ingest.add(s, [str(article_file(tmp_path))], embedder=embedder)
    assert report.added == ["hoi-nghi-a"] and len(embedder.refusals) == 2
    assert all("is being written to" in r for r in embedder.refusals)
    assert collections.names(base) == ["default", "a"]
    assert index.load(s, expected_embedder=embedder.name).articles.keys() == {"hoi-nghi-a"}
    collections.delete(base, "a")  # once the add is over
    assert collections.names(base) == ["default"]


def test_a_write_into_a_deleted_collection_fails_and_makes_nothing_again(base, tmp_path):
    collections.create(base, "a")
    s = collections.settings_for(base, "a")  # resolved before the delete, as a running `rag add` has it
    collections.delete(base, "a")
    where = base.home / "collections" / "a"
    for write in (lambda: ingest.add(s, [str(article_file(tmp_path))], embedder=FakeEmbedder()),
                  lambda: manage.add_articles(s, [("x.md", [article("a")])], embedder=FakeEmbedder()),
                  lambda: store.update(s, [article("a")], FakeEmbedder(), progress=False, log=lambda m: None)):
        with pytest.raises(collections.CollectionError, match="'a' was deleted or renamed"):
            write()
        assert not where.exists()
    collections.create(base, "b")
    s = collections.settings_for(base, "b")
    collections.rename(base, "b", "c")
    with pytest.raises(RagError, match="'b' was deleted or renamed"):
        manage.add_articles(s, [("x.md", [article("b")])], embedder=FakeEmbedder())
    assert collections.names(base) == ["default", "c"] and not list((base.home / "collections" / "c").rglob("*.md"))


def test_a_successful_index_build_removes_the_unpublished_list(base, tmp_path):
    """`rag add` killed after writing its files leaves unpublished.json; `rag index` (store.update over the
    whole corpus folder) publishes them, and the list goes, but only once the new version is live."""
    pending = base.index_dir / "unpublished.json"
    fake = FakeEmbedder()
    fill(base, "default", fake)
    manage.CorpusWriter(base, manage.AddReport()).write([("x.md", [article("a")])])  # then killed
    assert pending.exists()

    class Crashes(FakeEmbedder):
        def embed_documents(self, texts, titles):
            raise RuntimeError("killed while embedding")

    articles = corpus.load_corpus(base.corpus_dir).articles
    with pytest.raises(RuntimeError):
        store.update(base, articles, Crashes(), progress=False, log=lambda m: None)
    assert pending.exists()  # the build did not finish: the list stays, and the old index serves
    assert index.load(base, expected_embedder=fake.name).articles.keys() == {"hoi-nghi-default"}
    store.update(base, articles, fake, progress=False, log=lambda m: None, lexical_first=True)
    assert not pending.exists()
    assert index.load(base, expected_embedder=fake.name).articles.keys() == {"hoi-nghi-default", "hoi-nghi-a"}
