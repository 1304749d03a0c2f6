"""Collections and users (issue 24): corpora side by side, each answering from its own index only, and keys
that decide who reads and who writes which. Fake embedder, an echoing generator, the whole `rag serve` app
(rag.serve.web.make_server) through an in-process ASGI client: nothing is bound, no model loads."""
from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from conftest import Echo, FakeEmbedder, make_articles
from rag import cli
from rag.serve import access, users, web
from rag.index import collections, build as index
from rag.ingest import corpus
from rag.config import Settings
from rag.answer.pipeline import Pipeline
from rag.types import Article

QUESTION = "Ai phát biểu khai mạc hội nghị NextGen?"
SPEAKERS = {"default": "Ông Lê Văn Cường", "a": "Ông Nguyễn Văn An", "b": "Bà Trần Thị Bình"}


def article(name: str) -> Article:
    return Article(id=f"hoi-nghi-{name}", title=f"Hội nghị NextGen ({name})", date="2025-11-27", source=f"Báo {name}",
                   text=f"{SPEAKERS[name]} phát biểu khai mạc hội nghị NextGen tại Thành phố Hồ Chí Minh. "
                        "Hội nghị kéo dài hai ngày.\n\nCác đại biểu bàn về công nghệ.")


def fill(settings: Settings, name: str, embedder) -> None:
    """A collection's corpus file and its index, as `rag add` leaves them."""
    corpus.write_article(article(name), settings.corpus_dir)
    index.update(settings, [article(name)], embedder, progress=False, log=lambda m: None)


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def base(home, tmp_path) -> Settings:
    return Settings(home=home, cache_dir=tmp_path / "cache", embedder="fake-hash", embed_dim=64, chunk_size=200,
                    chunk_overlap=20, today="2025-11-27", reader="off")


@pytest.fixture
def filled(base, fake_embedder):
    """Collections default, a and b, each holding its own article about who opened the conference."""
    fill(base, "default", fake_embedder)
    for name in ("a", "b"):
        collections.create(base, name)
        fill(collections.settings_for(base, name), name, fake_embedder)
    return base


def pipeline(settings, embedder) -> Pipeline:
    return Pipeline(settings, embedder=embedder, generator=Echo())


# ---------------------------------------------------------------- collections


@pytest.mark.parametrize("bad", ["", "A", "1abc", "a-b", "a/b", "..", "a b", "x" * 33, "tin.tuc", None])
def test_collection_names_are_safe_slugs(bad, base, capsys):
    with pytest.raises(collections.CollectionError, match="invalid collection name"):
        collections.check_name(bad)
    if isinstance(bad, str) and bad:
        assert cli.main(["--home", str(base.home), "collections", "create", bad]) == 2
        assert "lowercase letters" in capsys.readouterr().err


def test_two_collections_answer_the_same_question_each_from_its_own_articles(filled, fake_embedder, monkeypatch):
    p = pipeline(filled, fake_embedder)
    for name in ("default", "a", "b"):
        answer = p.collection(name).ask(QUESTION)
        assert SPEAKERS[name] in answer.text and not answer.abstained, answer.text
        assert [c.article_id for c in answer.citations] == [f"hoi-nghi-{name}"]
        others = [s for n, s in SPEAKERS.items() if n != name]
        assert not any(s in answer.text for s in others)
    # the package's ask(collection=) goes the same way
    from rag.answer import pipeline as pipeline_mod

    monkeypatch.setattr(pipeline_mod, "get_pipeline", lambda settings=None: p)
    assert SPEAKERS["b"] in pipeline_mod.ask(QUESTION, collection="b").text
    with pytest.raises(collections.CollectionError, match="no collection 'zz'"):
        pipeline_mod.ask(QUESTION, collection="zz")


def test_cli_collection_option(filled, fake_embedder, monkeypatch, capsys):
    from rag.answer import pipeline as pipeline_mod

    real = pipeline_mod.Pipeline
    monkeypatch.setattr(pipeline_mod, "Pipeline",  # (a collection's pipeline is made with its parent's models)
                        lambda s, **kw: real(s, **{"embedder": fake_embedder, "generator": Echo(), **kw}))
    for k, v in {"EMBED_DIM": "64", "CHUNK_SIZE": "200", "CHUNK_OVERLAP": "20", "READER": "off", "TODAY": "2025-11-27",
                 "CACHE_DIR": str(filled.cache_dir)}.items():  # the settings the fixture indexed with
        monkeypatch.setenv(f"RAG_{k}", v)
    h = str(filled.home)
    assert cli.main(["--home", h, "ask", QUESTION, "--collection", "a"]) == 0
    assert SPEAKERS["a"] in capsys.readouterr().out
    assert cli.main(["--home", h, "ask", QUESTION, "--collection", "a,b"]) == 0  # both searched
    out = capsys.readouterr().out
    cited = "a" if "  [1] [a] " in out else "b"
    assert f"  [1] [{cited}] Hội nghị NextGen ({cited})" in out and SPEAKERS[cited] in out, out
    from rag.index import embed, store

    load = store.load  # `rag search` loads the configured embedder: the fake one here
    monkeypatch.setattr(store, "load", lambda s, **kw: load(s, expected_embedder=fake_embedder.name))
    monkeypatch.setattr(embed, "load_embedder", lambda s: fake_embedder)
    assert cli.main(["--home", h, "search", QUESTION, "--collection", "b,a", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert {x["collection"] for x in hits} == {"a", "b"} and {x["article_id"] for x in hits} == {"hoi-nghi-a", "hoi-nghi-b"}
    assert cli.main(["--home", h, "index", "--collection", "a,b"]) == 2  # built one collection at a time
    assert "one collection at a time here" in capsys.readouterr().err
    assert cli.main(["--home", h, "collections", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"name": "a"' in out and '"indexed": true' in out


@pytest.fixture
def apart(base, fake_embedder):
    """Collections "tin" (gold, football, rain) and "hoi" (the conference): only "hoi" can answer QUESTION."""
    collections.create(base, "tin")
    index.update(collections.settings_for(base, "tin"), make_articles(), fake_embedder, progress=False, log=lambda m: None)
    collections.create(base, "hoi")
    fill(collections.settings_for(base, "hoi"), "b", fake_embedder)
    return base


def test_several_collections_are_searched_together_only_when_asked(apart, fake_embedder, monkeypatch):
    p = pipeline(apart, fake_embedder)
    alone = p.collection("tin").ask(QUESTION)
    assert alone.abstained and not alone.citations and SPEAKERS["b"] not in alone.text
    for asked in ("tin,hoi", "hoi,tin", ["tin", "hoi"]):
        answer = p.collection(asked).ask(QUESTION)
        assert SPEAKERS["b"] in answer.text and not answer.abstained, (asked, answer.text)
        assert [(c.marker, c.collection, c.article_id) for c in answer.citations] == [(1, "hoi", "hoi-nghi-b")]
        # the hits are fused over both collections' raw scores: the best of "tin" is not lifted to the top
        hits = p.collection(asked).search(QUESTION)
        assert hits[0].article.collection == "hoi" and hits[0].score == 1.0
        assert {h.article.collection for h in hits} == {"tin", "hoi"} and all(h.score < 0.6 for h in hits[1:])
    assert p.collection("tin,hoi") is p.collection("tin, hoi")  # one pipeline per set of collections
    from rag.answer import pipeline as pipeline_mod

    monkeypatch.setattr(pipeline_mod, "get_pipeline", lambda settings=None: p)
    assert pipeline_mod.ask(QUESTION, collection="tin,hoi").citations[0].collection == "hoi"
    assert pipeline_mod.ask(QUESTION, collection="tin").abstained
    with pytest.raises(collections.CollectionError, match="no collection 'zz'"):
        pipeline_mod.ask(QUESTION, collection="tin,zz")


class Both:
    """Answers with the first sentence of sources [1] and [2], each cited."""

    name = "both"

    def stream(self, messages, *, max_tokens=200, stop=None):
        lines = messages[-1]["content"].splitlines()
        for n in (1, 2):
            at = next((i for i, line in enumerate(lines) if line.startswith(f"[{n}] ")), None)
            if at is not None:
                yield lines[at + 1].split(". ")[0].rstrip(".") + f" [{n}]. "


def test_the_same_article_id_in_two_collections_is_two_sources_with_their_own_markers(base, fake_embedder):
    for name in ("a", "b"):
        collections.create(base, name)
        same_id = Article(**{**article(name).__dict__, "id": "hoi-nghi"})
        settings = collections.settings_for(base, name)
        corpus.write_article(same_id, settings.corpus_dir)
        index.update(settings, [same_id], fake_embedder, progress=False, log=lambda m: None)
    answer = Pipeline(base, embedder=fake_embedder, generator=Both()).collection("a,b").ask(QUESTION)
    cited = {c.marker: c for c in answer.citations}
    assert sorted(cited) == [1, 2] and {c.article_id for c in cited.values()} == {"hoi-nghi"}, answer
    assert {c.collection for c in cited.values()} == {"a", "b"}
    for c in cited.values():
        assert SPEAKERS[c.collection] in c.quote and f"{SPEAKERS[c.collection]} phát biểu" in answer.text


def test_deleting_a_collection_leaves_the_others_intact(filled, fake_embedder, capsys):
    h = str(filled.home)
    assert cli.main(["--home", h, "collections", "delete", "a"]) == 0
    assert collections.names(filled) == ["default", "b"]
    assert not (filled.home / "collections" / "a").exists()
    assert list((filled.home / "collections").iterdir()) == [filled.home / "collections" / "b"]  # no leftovers
    p = pipeline(filled, fake_embedder)
    assert SPEAKERS["b"] in p.collection("b").ask(QUESTION).text
    assert SPEAKERS["default"] in p.ask(QUESTION).text
    with pytest.raises(collections.CollectionError):
        p.collection("a")
    assert cli.main(["--home", h, "collections", "delete", "default"]) == 2  # today's folders are never deleted
    assert cli.main(["--home", h, "collections", "delete", "a"]) == 2
    # rename keeps the index: nothing is embedded again
    embedded = len(fake_embedder.embedded)
    assert cli.main(["--home", h, "collections", "rename", "b", "tin_tuc"]) == 0
    assert SPEAKERS["b"] in pipeline(filled, fake_embedder).collection("tin_tuc").ask(QUESTION).text
    assert len(fake_embedder.embedded) == embedded
    assert cli.main(["--home", h, "collections", "rename", "tin_tuc", "default"]) == 2


def test_todays_layout_is_the_default_collection_without_reembedding(base, tmp_path, capsys):
    """Migration, on a copy: a data folder of today (HOME/corpus, HOME/embeddings) is the collection
    'default' as it is: nothing moved, nothing embedded again, and new collections live beside it."""
    old = FakeEmbedder()
    fill(base, "default", old)
    copy = tmp_path / "copy"
    shutil.copytree(base.home, copy)
    before = sorted(str(p.relative_to(copy)) for p in copy.rglob("*"))
    settings = base.replace(home=copy, corpus_dir=copy / "corpus", index_dir=copy / "embeddings")
    fresh = FakeEmbedder()
    report = index.update(settings, corpus.load_corpus(settings.corpus_dir).articles, fresh, progress=False,
                          log=lambda m: None)
    assert fresh.embedded == [] and report.embedded == 0  # the old vectors serve as they are
    assert SPEAKERS["default"] in pipeline(settings, fresh).collection("default").ask(QUESTION).text
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*")) == before  # nothing moved or added
    assert cli.main(["--home", str(copy), "collections", "list"]) == 0
    assert "default" in capsys.readouterr().out
    collections.create(settings, "moi")
    assert (copy / "corpus").is_dir() and (copy / "collections" / "moi" / "corpus").is_dir()


# ---------------------------------------------------------------- users


def test_users_file_holds_hashes_only_mode_0600(home, capsys):
    key = users.add(home, "alice", read="a,b", write="a")
    other = users.add(home, "bob", read="b")
    raw = (home / "users.json").read_text()
    assert stat.S_IMODE(os.stat(home / "users.json").st_mode) == 0o600
    for k in (key, other):
        assert k.split(".", 1)[1] not in raw  # the secret is nowhere on disk
    stored = users.load(home)
    assert stored["alice"]["salt"] != stored["bob"]["salt"] and len(stored["alice"]["scrypt"]) == 64
    check = users.Users(home)
    assert check.check(key).can_write("a") and check.check(key).can_read("b") and not check.check(key).can_write("b")
    assert check.check(other).can_read("b") and not check.check(other).can_read("a")
    assert check.check(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    assert check.check(key, user="bob") is None  # Basic: the name must be the key's
    assert check.check("alice") is None and check.check("") is None
    with pytest.raises(users.UserError, match="already exists"):
        users.add(home, "alice", read="a")
    with pytest.raises(collections.CollectionError):
        users.add(home, "carol", read="../x")
    users.remove(home, "alice")
    assert check.check(key) is None  # re-read on change: the removed key stops working at once
    assert cli.main(["--home", str(home), "users", "add", "dan", "--read", "*"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("dan.") and users.Users(home).check(printed).can_read("anything")
    assert cli.main(["--home", str(home), "users", "list"]) == 0
    listed = capsys.readouterr().out
    assert "dan" in listed and "scrypt" not in listed and printed not in listed


@pytest.fixture
def served(filled, fake_embedder):
    """The whole server over default, a, b with two users: alice reads a and b and writes a; bob reads b."""
    keys = {"alice": users.add(filled.home, "alice", read="a,b", write="a"),
            "bob": users.add(filled.home, "bob", read="b")}
    p = pipeline(filled, fake_embedder)
    with TestClient(web.make_server(p, "0.0.0.0")) as client:  # only the decision uses the host: nothing is bound
        yield SimpleNamespace(client=client, keys=keys, settings=filled, pipeline=p)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def basic(user: str, key: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


def chat(client, model: str, headers: dict):
    return client.post("/v1/chat/completions", headers=headers,
                       json={"model": model, "messages": [{"role": "user", "content": QUESTION}]})


def test_keys_decide_what_is_listed_and_answered(served):
    c, alice, bob = served.client, bearer(served.keys["alice"]), bearer(served.keys["bob"])
    ids = lambda h: [m["id"] for m in c.get("/v1/models", headers=h).json()["data"]]  # noqa: E731
    assert [i for i in ids(bob) if i.startswith("rag")] == ["rag:b"]
    assert [i for i in ids(alice) if i.startswith("rag")] == ["rag:a", "rag:b"]
    r = chat(c, "rag:b", bob)
    assert r.status_code == 200 and SPEAKERS["b"] in r.json()["choices"][0]["message"]["content"]
    assert r.json()["citations"][0]["article_id"] == "hoi-nghi-b"
    for model in ("rag:a", "rag", "rag:nosuch"):  # 403 before existence is told
        r = chat(c, model, bob)
        assert r.status_code == 403, model
        assert r.json()["error"]["code"] == "collection_forbidden" and set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert chat(c, "rag:nosuch", bearer(users.add(served.settings.home, "root", read="*"))).status_code == 404


def test_a_model_naming_several_collections_needs_the_right_to_read_each(served):
    c, alice, bob = served.client, bearer(served.keys["alice"]), bearer(served.keys["bob"])
    r = chat(c, "rag:a,b", alice)
    assert r.status_code == 200, r.text
    body = r.json()
    cited = body["citations"][0]["collection"]
    assert [(x["collection"], x["article_id"]) for x in body["citations"]] == [(cited, f"hoi-nghi-{cited}")]
    text = body["choices"][0]["message"]["content"]
    assert SPEAKERS[cited] in text and f"[1] [{cited}] Hội nghị NextGen ({cited})" in text
    for model in ("rag:a,b", "rag:b,a", "rag:b,default", "rag:b,nosuch"):  # bob reads b only: 403 for any other
        r = chat(c, model, bob)
        assert r.status_code == 403 and r.json()["error"]["code"] == "collection_forbidden", model
    assert "rag:a,b" not in [m["id"] for m in c.get("/v1/models", headers=alice).json()["data"]]
    assert chat(c, "rag:a,nosuch", alice).status_code == 403
    root = bearer(users.add(served.settings.home, "root", read="*"))
    assert chat(c, "rag:a,nosuch", root).status_code == 404
    assert chat(c, "rag:default,b", root).status_code == 200


def test_wrong_or_missing_key_gets_401(served):
    c, bob = served.client, served.keys["bob"]
    for headers in ({}, bearer("bob.wrong"), bearer(bob + "x"), bearer("nobody.x"), basic("alice", bob),
                    {"Authorization": "Basic !!"}, {"Authorization": bob}):
        r = c.get("/v1/models", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", headers
        assert chat(c, "rag:b", headers).status_code == 401
        page = c.get("/", headers=headers)
        assert page.status_code == 401 and page.headers["www-authenticate"].startswith("Basic")
    assert c.get("/", headers=basic("bob", bob)).status_code == 200  # the browser's login prompt
    assert c.get("/", headers=bearer(bob)).status_code == 200


def test_a_read_only_key_cannot_upload_fetch_or_delete(served):
    c, s = served.client, served.settings
    corpus_b = collections.settings_for(s, "b").corpus_dir
    before = sorted(p.name for p in corpus_b.iterdir())
    bob = bearer(served.keys["bob"])
    r = c.post("/gradio_api/upload", files={"files": ("x.md", b"# X\n\nx")}, headers=bob)
    assert r.status_code == 403 and r.json()["error"]["code"] == "writes_disabled"
    for name, data in (("add_urls", ["http://127.0.0.1:9/x.html", "b"]), ("remove", ["hoi-nghi-b", "b"]),
                       ("upload", [[], "b"])):
        r = c.post(f"/gradio_api/call/{name}", json={"data": data}, headers=bob)
        assert r.status_code == 403 and r.json()["error"]["code"] == "writes_disabled", name
    assert c.post("/gradio_api/upload", files={"files": ("x.md", b"# X\n\nx")},
                  headers=bearer(served.keys["alice"])).status_code == 200
    # the corpus tab's functions, as the page's queued events call them: the write right on that collection
    demo = web.build_app(served.pipeline, policy=access.Policy(s.home, "", "0.0.0.0"))
    fns = {f.fn.__name__: f.fn for f in demo.fns.values()}
    as_ = lambda who: SimpleNamespace(headers=bearer(served.keys[who]))  # noqa: E731
    refused = access.NO_WRITE_RIGHTS.format("b")
    assert fns["add_urls"]("http://127.0.0.1:9/x.html", "b", as_("bob"))[0] == refused
    assert fns["remove"]("hoi-nghi-b", "b", as_("bob"))[0] == refused
    assert fns["upload"]([], "b", as_("bob"))[0] == refused
    assert fns["remove"]("hoi-nghi-b", "b", as_("alice"))[0] == refused  # alice reads b, writes only a
    assert fns["show_collection"]("a", as_("bob"))[2] == access.NO_READ_RIGHTS.format("a")  # nor see a
    assert sorted(p.name for p in corpus_b.iterdir()) == before
    # a writer gets past the rights check (and meets the corpus tab's own rule: never remove the last article)
    assert "last article" in fns["remove"]("hoi-nghi-a", "a", as_("alice"))[0]


def test_concurrent_asks_in_two_collections_never_mix(served):
    c = served.client
    key = bearer(served.keys["alice"])
    models = ["rag:a", "rag:b"] * 4

    def one(model):
        r = chat(c, model, key)
        assert r.status_code == 200, r.text
        return model, r.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, models, timeout=120))
    for model, body in results:
        name = model.split(":")[1]
        text = body["choices"][0]["message"]["content"]
        assert SPEAKERS[name] in text and [x["article_id"] for x in body["citations"]] == [f"hoi-nghi-{name}"]
        assert not any(s in text for n, s in SPEAKERS.items() if n != name)


def test_no_users_on_loopback_works_as_before_and_the_network_needs_users_or_insecure(base, filled, capsys):
    open_policy = access.Policy(base.home, "", "127.0.0.1")
    assert open_policy.who({}).can_write("a")  # no users, loopback: every right, no key
    with pytest.raises(access.UnsafeBind, match="--insecure"):
        access.check_bind("0.0.0.0", access.Policy(base.home, "", "0.0.0.0"))
    access.check_bind("0.0.0.0", access.Policy(base.home, "", "0.0.0.0"), insecure=True)
    assert not access.Policy(base.home, "", "0.0.0.0").who({}).writes_anything  # --insecure: reading only
    access.check_bind("0.0.0.0", access.Policy(base.home, "k", "0.0.0.0"))  # RAG_API_KEY
    assert cli.main(["--home", str(base.home), "serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "refusing to serve on 0.0.0.0" in capsys.readouterr().err
    users.add(base.home, "alice", read="a")
    access.check_bind("0.0.0.0", access.Policy(base.home, "", "0.0.0.0"))  # users: fine
    assert access.Policy(base.home, "", "127.0.0.1").who({}) is None  # users exist: a key even on loopback
