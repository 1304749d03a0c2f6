"""Rights that hold on every route (issue 32): a generator's model id reads "default"; a running server stops
answering from a collection deleted (or deleted and made anew) behind its back; the chat's upload takes only
files its caller uploaded, and Gradio's file= route serves an upload to its uploader only. The whole
`rag serve` app (rag.serve.web.make_server) through an in-process ASGI client, the fake embedder, an echoing model."""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from conftest import Echo
from rag import models
from rag.index import collections
from rag.serve import users, web
from rag.answer.pipeline import Pipeline
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


# ---------------------------------------------------------------- 1, 11c. uploads: the uploader's own only

SECRET = "---\nid: bi-mat\ntitle: Bí mật\n---\nMật khẩu của máy chủ là 1234.\n"


@pytest.fixture
def uploading(served, tmp_path, monkeypatch):
    """`served` with Gradio's upload folder in tmp_path, erin writing a too, and a 0600 file elsewhere."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    served.keys["erin"] = bearer(users.add(served.settings.home, "erin", read="a", write="a"))
    secret = tmp_path / "secret.md"
    secret.write_text(SECRET, encoding="utf-8")
    secret.chmod(0o600)
    with TestClient(web.make_server(served.pipeline, "0.0.0.0")) as client:
        yield SimpleNamespace(**vars(served) | {"client": client, "secret": secret, "uploads": tmp_path / "gradio"})


def upload(s, who: str, *names: str, content: str = SECRET) -> list[str]:
    """Gradio's upload route, as a browser's file picker calls it (compression welcome): the paths written to."""
    r = s.client.post("/gradio_api/upload", files=[("files", (n, content.encode())) for n in names],
                      headers=s.keys[who] | {"Accept-Encoding": "br, gzip"})
    assert r.status_code == 200, r.text
    return r.json()


def page_event(s, who: str, api_name: str, data: list) -> dict:
    """One of the page's queued events as a browser sends it (its session loaded the collection selector
    first), posted to /gradio_api/queue/join: the output of its process_completed message."""
    c, h, session = s.client, s.keys[who], f"session-{who}"
    fns = {d.get("api_name"): d["id"] for d in c.get("/config", headers=h).json()["dependencies"]}
    c.post("/gradio_api/run/predict", headers=h,
           json={"data": [], "fn_index": fns["collection_choices"], "session_hash": session})
    r = c.post("/gradio_api/queue/join", headers=h, json={"data": data, "fn_index": fns[api_name], "session_hash": session})
    assert r.status_code == 200, r.text
    events = c.get("/gradio_api/queue/data", params={"session_hash": session}, headers=h).text.splitlines()
    done = [json.loads(e[len("data: "):]) for e in events if e.startswith("data: ") and "process_completed" in e]
    return done[-1]["output"]


def file_data(path) -> dict:
    return {"path": str(path), "orig_name": os.path.basename(path), "meta": {"_type": "gradio.FileData"}}


def corpus_of(s, name: str) -> list[str]:
    return sorted(p.name for p in collections.settings_for(s.settings, name).corpus_dir.iterdir())


def test_the_chat_upload_takes_only_files_its_caller_uploaded(uploading):
    s = uploading
    before = corpus_of(s, "a")
    out = page_event(s, "alice", "upload", [[file_data(s.secret)], "a"])  # any path on the server: refused
    assert "not uploaded by a user" in out["error"], out
    assert not list(s.uploads.rglob("secret.md"))  # refused before Gradio copied it into its upload folder
    [theirs] = upload(s, "erin", "cua-erin.md")  # in Gradio's upload folder, but erin's
    out = page_event(s, "alice", "upload", [[file_data(theirs)], "a"])
    assert out["data"][0] == web.UPLOAD_NOT_YOURS.format("«cua-erin.md»"), out
    assert corpus_of(s, "a") == before and "1234" not in chat(s.client, "rag:a", s.keys["alice"]).text
    [mine] = upload(s, "alice", "cua-alice.md")  # her own upload goes in
    out = page_event(s, "alice", "upload", [[file_data(mine)], "a"])
    assert out["data"][0].startswith("Đã thêm 1 bài: «bi-mat»"), out
    assert corpus_of(s, "a") == sorted(before + ["bi-mat.md"])


def test_gradio_serves_an_upload_to_its_uploader_only(uploading):
    s = uploading
    mine, *more = upload(s, "alice", "cua-alice.md", *(f"bai-so-{i}-co-ten-kha-dai.md" for i in range(20)))
    assert all(s.client.get(f"/gradio_api/file={p}", headers=s.keys["alice"]).status_code == 200 for p in more)
    folder, name = os.path.split(mine)
    routes = (f"/gradio_api/file={mine}", f"/gradio_api/file/{mine}",  # Gradio's two spellings, and a detour
              f"/gradio_api/file={folder}/%2E%2E/{os.path.basename(folder)}//{name}")
    for route in routes:
        got = s.client.get(route, headers=s.keys["alice"])
        assert got.status_code == 200 and "1234" in got.text, route
    for who in ("erin", "bob", "carol"):  # another writer, readers: not theirs
        for route in routes:
            r = s.client.get(route, headers=s.keys[who])
            assert r.status_code == 404 and "1234" not in r.text, (who, route)
    assert s.client.get(f"/gradio_api/file={s.secret}", headers=s.keys["alice"]).status_code == 404  # nor any other file
    assert s.client.get(f"/gradio_api/file={mine}").status_code == 401  # no key: the Gate, as before
    for route in ("/gradio_api/runs", "/gradio_api/run-history/buckets"):  # Gradio's run history is off
        assert s.client.get(route, headers=s.keys["alice"]).status_code == 404, route
