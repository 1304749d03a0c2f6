"""Rights that hold on every route (issue 32): a generator's model id reads "default"; a running server stops
answering from a collection deleted (or deleted and made anew) behind its back; the chat's upload takes only
files its caller uploaded, and Gradio's file= route serves an upload to its uploader only. The whole
`rag serve` app (rag.web.make_server) through an in-process ASGI client, the fake embedder, an echoing model."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from conftest import Echo
from rag import collections, models, users, web
from rag.pipeline import Pipeline
from test_collections import SPEAKERS, article, base, bearer, chat, fill, filled, home  # noqa: F401 (fixtures)

GENERATOR = "smollm2-135m"  # another provisioned generator: a model id of its own on /v1


@pytest.fixture
def served(filled, fake_embedder, monkeypatch):
    """default, a and b (filled); alice reads a and b and writes a, bob reads b, carol reads default."""
    real = models.status
    monkeypatch.setattr(models, "status", lambda s, **kw: [  # as if GENERATOR were pulled
        r | {"provisioned": True} if r["name"] == GENERATOR else r for r in real(s, **kw)])
    keys = {"alice": users.add(filled.home, "alice", read="a,b", write="a"),
            "bob": users.add(filled.home, "bob", read="b"),
            "carol": users.add(filled.home, "carol", read="default")}
    p = Pipeline(filled, embedder=fake_embedder, generator=Echo())
    with TestClient(web.make_server(p, "0.0.0.0")) as client:  # nothing is bound
        yield SimpleNamespace(client=client, keys={k: bearer(v) for k, v in keys.items()}, settings=filled, pipeline=p)


def model_ids(served, who: str) -> list[str]:
    return [m["id"] for m in served.client.get("/v1/models", headers=served.keys[who]).json()["data"]]


# ---------------------------------------------------------------- 2. a generator id reads "default"


def test_a_generator_model_id_needs_the_right_to_read_default(served):
    assert GENERATOR in model_ids(served, "carol")  # carol reads default: the generator is hers to pick
    assert GENERATOR not in model_ids(served, "bob") and model_ids(served, "bob") == ["rag:b"]
    for model in (GENERATOR, "no-such-model"):  # 403 before existence is told, as for "rag:nosuch"
        r = chat(served.client, model, served.keys["bob"])
        assert r.status_code == 403, (model, r.text)
        assert r.json()["error"]["code"] == "collection_forbidden" and "'default'" in r.json()["error"]["message"]
    assert chat(served.client, "no-such-model", served.keys["carol"]).status_code == 404


# ---------------------------------------------------------------- 4. deleted collections stay deleted


def test_a_running_server_stops_answering_from_a_deleted_or_recreated_collection(served, fake_embedder):
    c, alice = served.client, served.keys["alice"]
    r = chat(c, "rag:a", alice)
    assert r.status_code == 200 and SPEAKERS["a"] in r.json()["choices"][0]["message"]["content"]  # a is loaded
    collections.delete(served.settings, "a")  # as `rag collections delete a` in another process
    assert chat(c, "rag:a", alice).status_code == 404
    collections.create(served.settings, "a")  # made anew, empty: nothing of the old index is answered
    r = chat(c, "rag:a", alice)
    assert r.status_code == 503 and SPEAKERS["a"] not in r.text, r.text
    fill(collections.settings_for(served.settings, "a"), "b", fake_embedder)  # then filled with other articles
    for model in ("rag:a", "rag:a,b"):
        r = chat(c, model, alice)
        assert r.status_code == 200, r.text
        assert SPEAKERS["a"] not in r.json()["choices"][0]["message"]["content"], model
        assert {x["article_id"] for x in r.json()["citations"]} == {article("b").id}, model


def test_a_collection_indexed_again_by_another_process_is_picked_up(served, fake_embedder):
    """`rag add --collection b` while the server runs: the next request answers from the new version."""
    c, bob = served.client, served.keys["bob"]
    assert chat(c, "rag:b", bob).json()["citations"][0]["article_id"] == "hoi-nghi-b"
    b = collections.settings_for(served.settings, "b")
    (b.corpus_dir / "hoi-nghi-b.md").unlink()
    fill(b, "default", fake_embedder)  # the index now holds the default speaker's article only
    r = chat(c, "rag:b", bob)
    assert r.status_code == 200 and SPEAKERS["default"] in r.json()["choices"][0]["message"]["content"], r.text
