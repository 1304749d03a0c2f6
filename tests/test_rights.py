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
from test_collections import base, bearer, chat, filled, home  # noqa: F401 (fixtures)

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
