"""The small dataclasses that cross module lines: Article -> Chunk -> Hit -> Citation -> Answer."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    text: str  # cleaned body, page furniture removed
    date: str | None = None  # ISO date, YYYY-MM-DD
    source: str | None = None
    url: str | None = None
    language: str = "vi"
    path: str | None = None  # file it came from, for error messages
    metadata: dict = field(default_factory=dict, compare=False, hash=False)
    # the other places the same story appeared (near-duplicates stored once): [{id, title, source, url, date}]
    also: list[dict] = field(default_factory=list, hash=False)
    # the collection it was found in, in an answer over several (rag.index.store.Merged sets it); never stored
    collection: str | None = field(default=None, compare=False)

    @property
    def content_hash(self) -> str:
        """What the index keys re-embedding on: anything that changes chunks or their embeddings."""
        h = hashlib.sha256()
        for part in (self.title, self.date or "", self.source or "", self.url or "", self.text):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        if self.also:  # a new source for the story re-publishes the article (unchanged chunks keep their vectors)
            h.update(json.dumps(self.also, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        return h.hexdigest()

    def appearances(self) -> list[dict]:
        """Every place the story appeared: this article's own source first, then `also`."""
        own = {k: getattr(self, k) for k in ("id", "title", "source", "url", "date") if getattr(self, k) is not None}
        return [own, *self.also]

    def meta(self) -> dict:
        """Everything stored but the text."""
        d = asdict(self)
        d.pop("text")
        d.pop("collection")
        return d


@dataclass(frozen=True)
class Chunk:
    id: str  # "<article_id>#<position>"
    article_id: str
    position: int  # 0-based order within the article
    start: int  # character offsets into Article.text
    end: int
    text: str
    title: str  # article title, prepended for embedding

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Hit:
    chunk: Chunk
    article: Article  # the chunk's article
    score: float  # fused score, higher is better
    ranks: dict[str, int | None] = field(default_factory=dict)  # retriever -> 1-based rank (None: not in its list)
    scores: dict[str, float] = field(default_factory=dict)  # retriever -> raw score

    def to_dict(self) -> dict:
        return {
            "chunk_id": self.chunk.id,
            "article_id": self.article.id,
            "title": self.article.title,
            "date": self.article.date,
            "source": self.article.source,
            "url": self.article.url,
            "also": self.article.also,
            "text": self.chunk.text,
            "score": round(self.score, 6),
            "ranks": self.ranks,
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
        } | ({"collection": self.article.collection} if self.article.collection else {})


@dataclass
class Citation:
    marker: int  # the n in [n]
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    chunk_id: str
    quote: str  # the article sentence(s) that support the claim
    score: float  # retrieval score of the chunk
    also: list[dict] = field(default_factory=list)  # the same story elsewhere: [{id, title, source, url, date}]
    collection: str | None = None  # the collection the article is in, in an answer over several (rag.index.collections)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # ms: retrieve, first_token, total
    model: str = ""
    period: dict | None = None  # the date range / recency a time phrase in the question resolved to (rag.answer.dates)
    reading: dict | None = None  # what the trained reader found: {"span", "source" (article id), "no_answer"} (rag.answer.reader)
    # the checks that rejected a claim (or, rule "reader_span" with no claim, the whole answer), in the order
    # they fired: [{"rule", "claim", "reason"}] (rag.answer.verify.checks; RAG_DISABLED_CHECKS switches rules off)
    rejections: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "text": self.text,
            "citations": [c.to_dict() for c in self.citations],
            "abstained": self.abstained,
            "timings": self.timings,
            "model": self.model,
            "period": self.period,
            "reading": self.reading,
            "rejections": self.rejections,
        }
