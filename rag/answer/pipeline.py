"""The one pipeline every face calls (Python API, CLI, web app, eval):

question -> validate -> (history -> standalone question) -> retrieve -> select sentences -> prompt
         -> generate (streamed, sentence by sentence) -> verify each sentence against its sources
         -> Answer(text, citations, abstained, timings)

Loading is lazy and happens once per process: the index, the embedder and each generator are loaded on
first use and kept. Answer sentences are verified before they are shown, so a stream never displays a
claim that is later withdrawn.

This module only orders the steps; each lives in the module named for it: rag.answer.followup (the standalone
question), rag.answer.retrieve (search, and whether anything found is about the question), rag.answer.prompt (sources and
messages), rag.answer.reader, rag.answer.generate, rag.answer.reply (the streamed reply as sentences) and rag.answer.verify (the checks).
"""
from __future__ import annotations

import re
import sys
import threading
import time
import unicodedata
from contextlib import closing
from typing import Iterator

from rag.answer import dates, followup, ground, prompt
from rag.index import store
from rag.config import Settings, check, load_settings
from rag.errors import CorpusEmpty, IndexMissing, InvalidQuestion
from rag.answer.reply import Reply
from rag.answer.retrieve import Filters, Retriever, about
from rag.types import Answer, Hit
from rag.answer.verify import checks
from rag.answer.verify.question import YESNO, asks_publication, classify
from rag.answer.verify.verifier import Verifier

ABSTAIN = {
    "vi": "Các bài báo không nhắc đến điều này.",
    "en": "The articles don't say.",
}
CLOSEST = {"vi": "Bài gần nhất tìm được: ", "en": "Closest articles found: "}

def language(question: str) -> str:
    return "vi" if ground.is_vietnamese(question) else "en"


def validate(question: str, max_chars: int) -> str:
    if not isinstance(question, str):
        raise InvalidQuestion(f"the question must be text, not {type(question).__name__}")
    q = unicodedata.normalize("NFC", question).strip()
    if not q:
        raise InvalidQuestion("the question is empty: type a question about the articles")
    bad = sorted({f"U+{ord(c):04X}" for c in q if unicodedata.category(c) == "Cc" and c not in "\n\t"})
    if bad:
        raise InvalidQuestion(f"the question contains control characters ({', '.join(bad)}): remove them and ask again")
    if len(q) > max_chars:
        raise InvalidQuestion(f"the question is {len(q)} characters long; the limit is {max_chars} (RAG_MAX_QUESTION_CHARS)")
    if not any(c.isalnum() for c in q):
        raise InvalidQuestion("the question has no words in it")
    return " ".join(q.split())


class Pipeline:
    def __init__(self, settings: Settings | None = None, *, embedder=None, generator=None, reader=None):
        self.settings = settings or load_settings()
        self._embedder, self._generator, self._reader = embedder, generator, reader
        self._index = None
        self._lock = threading.RLock()
        self._parent: Pipeline | None = None  # a collection's pipeline shares its parent's models
        self._collections: dict[str, Pipeline] = {}
        self._parts: dict[str, Pipeline] = {}  # over several collections: theirs, each with its own index

    def collection(self, name: str | list[str] | None = None) -> "Pipeline":
        """This pipeline over collection `name` (rag.index.collections; None/"default": itself): the same models,
        that collection's own index, so an answer never mixes collections. CollectionError if it is missing.
        Several ("a,b" or a list) only when asked: one pipeline searching each one's index (rag.index.store.Merged),
        each citation naming its collection."""
        from rag.index import collections

        names = collections.parse(name)
        if len(names) > 1:
            return self._merged(names)
        name = names[0] if names else None
        settings = collections.settings_for(self.settings, name)  # checks that it exists
        if settings is self.settings:
            return self
        with self._lock:
            child = self._collections.get(name)
            if child is None or child.settings != settings or child._replaced():
                child = Pipeline(settings, embedder=self._embedder, generator=self._generator, reader=self._reader)
                child._parent = self
                self._collections[name] = child
            return child

    def _merged(self, names: list[str]) -> "Pipeline":
        parts = {n: self.collection(n) for n in names}  # each checked (it may have been deleted since)
        key = ",".join(names)  # no collection name holds a comma
        with self._lock:
            merged = self._collections.get(key)
            if merged is None or any(merged._parts.get(n) is not p for n, p in parts.items()):
                merged = Pipeline(self.settings, embedder=self._embedder, generator=self._generator, reader=self._reader)
                merged._parent, merged._parts = self, parts
                self._collections[key] = merged
            return merged

    # ------------------------------------------------------------ lazy parts

    @property
    def embedder(self):
        if self._embedder is None and self._parent is not None:
            self._embedder = self._parent.embedder
        if self._embedder is None:
            from rag.index.embed import load_embedder

            self._embedder = load_embedder(self.settings)
        return self._embedder

    def generator(self, name: str | None = None):
        if name is None and self._generator is not None:
            return self._generator
        if name is None and self._parent is not None:
            self._generator = self._parent.generator()
            return self._generator
        from rag.answer.generate import make_generator

        gen = make_generator(self.settings, name)  # cached per process by make_generator
        if name is None:
            self._generator = gen
        return gen

    @property
    def reader(self):
        if self._reader is None and self._parent is not None:
            self._reader = self._parent.reader
        if self._reader is None:
            from rag.answer.reader import load_reader

            self._reader = load_reader(self.settings)
        return self._reader

    @property
    def index(self):
        if self._parts:  # each collection's own index, loaded (and reloaded) by its pipeline
            stores = {n: p.index for n, p in self._parts.items()}
            with self._lock:
                if self._index is None or any(self._index.stores[n] is not s for n, s in stores.items()):
                    self._index = store.Merged(stores)
                return self._index
        with self._lock:
            if self._index is None:
                embedder_name = self._embedder.name if self._embedder is not None else None
                try:
                    self._index = store.load(self.settings, expected_embedder=embedder_name)
                except IndexMissing:  # a fresh install with articles and no index yet: build it, once
                    from rag.ingest.manage import build_index

                    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
                    log(f"no index in {self.settings.index_dir} yet: indexing {self.settings.corpus_dir} (once)…")
                    build_index(self.settings, self._embedder, log)
                    self._index = store.load(self.settings, expected_embedder=embedder_name)
            return self._index

    def _replaced(self) -> bool:
        """Is the index this pipeline holds no longer its folder's live version? Another process ran `rag index`
        or `rag add`, or deleted the collection (and maybe made one of the same name): a running server must not
        answer from what it loaded before. One small read (CURRENT) per request; a Milvus store is searched on its
        server, so it is not checked here."""
        from rag.index.build import current_version

        loaded = self._index
        return loaded is not None and self.settings.store == "local" and \
            current_version(self.settings.index_dir) != loaded.path

    def reload(self) -> None:
        """Pick up a new index version (after `rag index` or an upload). In-flight questions keep the old one."""
        with self._lock:
            self._index = None
        for part in self._parts.values():
            part.reload()

    def warm_up(self) -> None:
        """Pay the first-use costs before the first question: load the index and the models, and
        evaluate the fixed system prompt once (llama.cpp keeps it as the cached prefix of every prompt)."""
        from rag.answer.generate import complete

        self.index  # noqa: B018 (loads it)
        self.embedder.embed_queries(["khởi động"])
        if self.settings.reader != "off":
            self.reader  # noqa: B018 (loads it)
        complete(self.generator(), prompt.messages("khởi động", []), max_tokens=1)

    # ------------------------------------------------------------ steps

    def search(self, query: str, *, k: int | None = None, retriever: str | None = None, filters=None) -> list[Hit]:
        if len(self.index) == 0:
            raise CorpusEmpty("the index has no articles: add files to the corpus folder and run `rag index`")
        mode = check("retriever", retriever or self.settings.retriever)  # before an embedder loads for it
        r = Retriever(self.index, None if mode == "bm25" else self.embedder, self.settings)
        f = filters if isinstance(filters, Filters) or filters is None else Filters.from_dict(filters)
        return r.search(query, k=k, retriever=mode, filters=f)

    # ------------------------------------------------------------ ask

    def ask(self, question: str, **kw) -> Answer:
        answer = None
        for piece in self.ask_stream(question, **kw):
            if isinstance(piece, Answer):
                answer = piece
        return answer

    def ask_stream(self, question: str, **kw) -> Iterator[str | Answer]:
        """Yield verified answer text as it is produced, then the final Answer. A time phrase in the
        question ("tuần trước", "mới nhất") becomes a date filter or ordering (rag.answer.dates), reported in
        Answer.period."""
        period = dates.resolve(question, self.settings.today) if isinstance(question, str) else None
        kw["filters"] = dates.apply(kw.get("filters"), period)
        with closing(self._answer_stream(question, **kw)) as pieces:
            for piece in pieces:
                if isinstance(piece, Answer) and period is not None:
                    piece.period = period.to_dict() | {"note": period.note(language(piece.question))}
                yield piece

    def _answer_stream(
        self,
        question: str,
        *,
        history: list[dict] | None = None,
        top_k: int | None = None,
        filters=None,
        retriever: str | None = None,
        generator: str | None = None,
        passages: list[Hit] | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str | Answer]:
        """Yield verified answer text as it is produced, then the final Answer. `passages`: answer from
        these instead of searching (reading comprehension: the question's own paragraph). `cancel`: once
        set (e.g. the client went away), the stream ends at the model's next token, without an Answer.
        Closing this generator closes the model's stream too (which frees the model for the next question)."""
        t0 = time.perf_counter()
        q = validate(question, self.settings.max_question_chars)
        if top_k is not None:  # checked before any model loads (the retriever checks it again)
            check("top_k", top_k)
        lang = language(q)
        gen = self.generator(generator)
        timings: dict[str, float] = {}
        standalone = followup.standalone(q, history, gen, self.settings.followup)
        if standalone != q:
            timings["rewrite"] = _ms(t0)
        t1 = time.perf_counter()
        hits = passages or self.search(standalone, k=top_k, retriever=retriever, filters=filters)
        timings["retrieve"] = _ms(t1)

        if passages is None and not about(standalone, hits):
            answer = self._abstain(q, lang, hits, gen.name, timings, t0)
            yield answer.text
            yield answer
            return

        texts = {h.chunk.article_id: self.index.articles[h.chunk.article_id].text for h in hits}
        sources = prompt.select_sources(standalone, hits, self.settings.context_sentences, texts=texts)
        expected = classify(standalone)
        disabled = checks.parse_disabled(self.settings.disabled_checks)
        verifier = Verifier(sources, self.embedder if lang != "vi" else None, standalone, expected,
                            self.settings.min_confidence, disabled)
        if expected.kind == YESNO or asks_publication(standalone):
            # yes/no is decided by the evidence sentence itself, or not at all: the small model says "Có" to
            # nearly anything, and its free answers were bare "Có" or beside the point. When an article was
            # published is in its metadata, which the model, shown the date beside the title, did not read.
            shown = verifier.yes_no(lang) if expected.kind == YESNO else verifier.published(lang)
            if shown or expected.kind == YESNO:
                answer = (Answer(q, shown, verifier.citations(), False, timings, gen.name) if shown
                          else self._abstain(q, lang, hits, gen.name, timings, t0))
                answer.rejections = verifier.trace()
                timings["first_output"] = timings["total"] = _ms(t0)
                yield answer.text
                yield answer
                return
        reading = None
        if self.settings.reader != "off" and lang == "vi":
            # the reader decides: no answer in any source -> refused, whatever the model would say; else the
            # answer shown must hold its span (rag.answer.reader). Vietnamese only: it was trained on Vietnamese questions.
            t3 = time.perf_counter()
            # the excerpt: what the model is shown too (reading whole passages took 0.85 s p50 on the seed
            # questions against 0.23 s, and found the answer no more often: eval/RESULTS.md)
            n, found = self.reader.best(standalone, [s.excerpt for s in sources])
            timings["read"] = _ms(t3)
            reading = {"span": found.span.text if found.span else None, "source": sources[n].article.id,
                       "no_answer": round(found.no_answer, 4)}
            if not found.answers(self.reader.threshold) and "reader_span" not in disabled:
                # the rule reader_span, for the whole answer: no source holds an answer
                verifier.reject("", checks.Rejection("reader_span", f"the reader found no answer in any source "
                                                                    f"(no-answer probability {found.no_answer:.2f})"))
                answer = self._abstain(q, lang, hits, gen.name, timings, t0)
                answer.reading, answer.rejections = reading, verifier.trace()
                yield answer.text
                yield answer
                return
            if found.answers(self.reader.threshold):
                verifier.span = (sources[n].n, found.span.text)
            # reader first: a confident span answers a one-fact question at once, cited, and the model is not run
            # (its prompt alone takes seconds to read on 2 cores); "span": wherever the reader answers
            at = self.settings.reader_alone if self.settings.reader_alone >= 0 else self.reader.alone
            alone = self.settings.reader == "span" or (found.no_answer <= at and one_fact(standalone, expected))
            if alone and (shown := verifier.from_evidence(lang)):
                timings["first_output"] = timings["total"] = _ms(t0)
                yield shown
                yield Answer(q, shown, verifier.citations(), False, timings, "reader", reading=reading,
                             rejections=verifier.trace())
                return
        shown_sources = sources
        if verifier.span and self.settings.prompt_sources == "reader":
            shown_sources = [s for s in sources if s.n == verifier.span[0]]
        messages = prompt.messages(q if standalone == q else standalone, shown_sources)
        out_parts: list[str] = []
        held: list[str] = []  # connective sentences wait until a verified claim follows them
        reply = Reply()
        t2 = time.perf_counter()

        def release(sentence: str, sure: float | None):
            shown = verifier.accept(sentence, sure)
            if shown is None:
                return
            held.append(shown)
            if verifier.order:  # at least one cited claim: what was held may be shown now
                if "first_output" not in timings:
                    timings["first_output"] = _ms(t0)
                for part in held:
                    yield (" " if out_parts else "") + part
                    out_parts.append(part)
                held.clear()

        if cancel is not None and cancel.is_set():
            return
        # a backend that can stop in the middle of reading the prompt is handed the cancel event too
        stop_early = {"cancel": cancel} if cancel is not None and getattr(gen, "takes_cancel", False) else {}
        # closed explicitly, not left to the garbage collector: an open model stream holds the model
        with closing(gen.stream(messages, max_tokens=self.settings.max_new_tokens, **stop_early)) as deltas:
            for delta in deltas:
                if cancel is not None and cancel.is_set():
                    return
                if "first_token" not in timings:
                    timings["first_token"] = _ms(t0)
                for sentence, sure in reply.add(delta):
                    yield from release(sentence, sure)
        if cancel is not None and cancel.is_set():
            return  # the model stopped because the answer was cancelled: its reply is cut short, not an answer
        timings["generate"] = _ms(t2)
        for sentence, sure in reply.rest():
            yield from release(sentence, sure)

        if not out_parts and (shown := verifier.from_evidence(lang)):
            # the model refused or its answer was not the one asked for, but one sentence answers
            # a when / how-many question with a single clear candidate: that candidate, cited
            timings.setdefault("first_output", _ms(t0))
            yield shown
            out_parts.append(shown)
            held.clear()
        if not out_parts:  # nothing verified: whatever the model said is not shown
            answer = self._abstain(q, lang, hits, gen.name, timings, t0)
            answer.reading, answer.rejections = reading, verifier.trace()
            yield answer.text
            yield answer
            return
        timings["total"] = _ms(t0)  # a connective left over introduces nothing: not shown
        yield Answer(q, " ".join(out_parts), verifier.citations(), False, timings, gen.name, reading=reading,
                     rejections=verifier.trace())

    def _abstain(self, q, lang, hits, model, timings, t0) -> Answer:
        text_ = ABSTAIN[lang]
        titles = list(dict.fromkeys(h.article.title for h in hits if h.article.title))[:2]
        if titles:
            text_ += " " + CLOSEST[lang] + "; ".join(f"«{t}»" for t in titles) + "."
        timings["total"] = _ms(t0)
        return Answer(q, text_, [], True, timings, model)


_EXPLAIN = re.compile(r"\b(tại sao|vì sao|vì lý do gì|lý do|nguyên nhân|như thế nào|thế nào|ra sao|làm sao|bằng cách nào|"
                      r"why|how)\b", re.I)


def one_fact(question: str, expected) -> bool:
    """Does the question ask for one short fact, which a span answers (who, where, when, how many, what)? Not a
    list, a reason or a manner: there the model's sentences add what a span cannot."""
    return not expected.plural and not _EXPLAIN.search(question)


def _ms(t: float) -> float:
    return round((time.perf_counter() - t) * 1000, 1)


_DEFAULT: dict[tuple, Pipeline] = {}
_DEFAULT_LOCK = threading.Lock()


def get_pipeline(settings: Settings | None = None) -> Pipeline:
    """One pipeline per settings per process, so models and the index load once."""
    settings = settings or load_settings()
    with _DEFAULT_LOCK:
        key = tuple(sorted((k, str(v)) for k, v in settings.__dict__.items()))
        if key not in _DEFAULT:
            _DEFAULT[key] = Pipeline(settings)
        return _DEFAULT[key]


def ask(question: str, *, history=None, top_k=None, filters=None, collection: str | list[str] | None = None,
        **kw) -> Answer:
    """Answer `question` from the indexed articles (of `collection`; default: "default"), with citations; see Answer.
    Several collections ("a,b" or a list): searched together, each citation's `collection` saying whose."""
    pipeline = get_pipeline().collection(collection)
    return pipeline.ask(question, history=history, top_k=top_k, filters=filters, **kw)


def ask_stream(question: str, *, history=None, top_k=None, filters=None, collection: str | list[str] | None = None,
               **kw) -> Iterator[str | Answer]:
    """Like ask(), yielding text pieces as they are verified, then the Answer."""
    pipeline = get_pipeline().collection(collection)
    return pipeline.ask_stream(question, history=history, top_k=top_k, filters=filters, **kw)
