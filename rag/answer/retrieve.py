"""Query -> ranked chunks: BM25, dense (FAISS), or their fusion.

Fusion (settings.fusion) is min-max normalised score fusion by default: fused = w * dense + (1 - w) * bm25
over the union of both candidate lists (a chunk missing from one list scores 0 there), w =
settings.dense_weight. It beat reciprocal rank fusion ("rrf", k=60) on the sets in eval/RESULTS.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag import text
from rag.answer import ground
from rag.config import Settings, check
from rag.index.build import Index
from rag.index.store import Store
from rag.types import Hit
from rag.answer.verify.question import without_diacritics

RRF_K = 60
# Ordering by date reorders only candidates at least this share of the best fused score: "the newest
# relevant article", not the newest article that happens to share a word with the question.
RELEVANT_SHARE = 0.5
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class Filters:
    """Restrict results to some articles, sources, or a date range (ISO dates, inclusive), and order
    them by date: `recent` puts the newest relevant chunks first, `prefer_from`/`prefer_to` those
    published in that range. A story stored once for several sources (Article.also) matches the
    source or date of any of its appearances. `source` is one name or a list (any of them)."""

    article_ids: set[str] | None = None
    source: str | list[str] | None = None
    date_from: str | None = None
    date_to: str | None = None
    recent: bool = False
    prefer_from: str | None = None
    prefer_to: str | None = None

    _KEYS = ("article_ids", "source", "date_from", "date_to", "recent", "prefer_from", "prefer_to")

    @classmethod
    def from_dict(cls, d: dict | None) -> "Filters | None":
        if not d:
            return None
        unknown = set(d) - set(cls._KEYS)
        if unknown:
            raise ValueError(f"unknown filter(s) {sorted(unknown)}; use {', '.join(cls._KEYS)}")
        for key in ("date_from", "date_to", "prefer_from", "prefer_to"):
            if d.get(key) and not _ISO.fullmatch(str(d[key])):
                raise ValueError(f"filter {key}={d[key]!r}: expected a date as YYYY-MM-DD")
        ids = d.get("article_ids")
        return cls(set(ids) if ids else None, d.get("source"), d.get("date_from"), d.get("date_to"),
                   bool(d.get("recent")), d.get("prefer_from"), d.get("prefer_to"))

    def restricts(self) -> bool:
        return bool(self.article_ids is not None or self.source or self.date_from or self.date_to)

    def mask(self, index: Index) -> np.ndarray:
        wanted = {self.source.lower()} if isinstance(self.source, str) else {s.lower() for s in self.source or ()}
        ok = {}
        for aid, a in index.articles.items():
            seen = a.appearances()
            keep = (self.article_ids is None or aid in self.article_ids) and (
                not wanted or any((p.get("source") or "").lower() in wanted for p in seen)
            )
            if keep and (self.date_from or self.date_to):
                keep = any(p.get("date") and (self.date_from or "") <= p["date"] <= (self.date_to or "9999") for p in seen)
            ok[aid] = keep
        return np.array([ok.get(c.article_id, False) for c in index.chunks], dtype=bool)

    def order(self, ranked: list[int], fused: dict[int, float], date_of) -> list[int]:
        """`ranked` (best first) with the relevant part (fused score >= RELEVANT_SHARE of the best)
        re-ordered by date as asked; the rest keeps its order after it."""
        if not (self.recent or self.prefer_from or self.prefer_to) or not ranked:
            return ranked
        best = fused[ranked[0]]
        relevant = [i for i in ranked if fused[i] >= RELEVANT_SHARE * best]
        rest = ranked[len(relevant):]
        if self.recent:
            relevant.sort(key=lambda i: date_of(i) or "", reverse=True)  # stable: equal dates keep score order
        else:
            lo, hi = self.prefer_from or "", self.prefer_to or "9999"
            relevant.sort(key=lambda i: not (date_of(i) and lo <= date_of(i) <= hi))
        return relevant + rest


def _minmax(pairs: list[tuple[int, float]]) -> dict[int, float]:
    if not pairs:
        return {}
    vals = [s for _, s in pairs]
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-9:
        return {i: 1.0 for i, _ in pairs}
    return {i: (s - lo) / (hi - lo) for i, s in pairs}


class Retriever:
    def __init__(self, index: Store, embedder, settings: Settings):
        import faiss

        # One query at a time: OpenMP's thread start-up costs more than it saves (bench: hybrid p95 at
        # 22,643 articles 52 ms with both cores, 11 ms with one).
        faiss.omp_set_num_threads(1)
        self.index, self.embedder, self.settings = index, embedder, settings
        self._tok = text.tokenizer(index.config["tokenizer"])

    def bm25(self, query: str, k: int, allowed=None) -> list[tuple[object, float]]:
        return self.index.lexical(self._tok(query), k, allowed)

    def dense(self, query: str, k: int, allowed=None, query_vector: np.ndarray | None = None):
        if self.embedder is None:
            raise ValueError("dense retrieval needs an embedder")
        q = self.embedder.embed_queries([query])[0] if query_vector is None else query_vector
        return self.index.dense(q, k, allowed)

    def search(
        self,
        query: str,
        k: int | None = None,
        retriever: str | None = None,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        k = self.settings.top_k if k is None else check("top_k", k)  # a caller's value obeys the setting's range
        mode = check("retriever", retriever or self.settings.retriever)
        if len(self.index) == 0:
            return []
        allowed = self.index.prepare_filter(filters) if filters and filters.restricts() else None
        depth = max(k, self.settings.candidates)
        lists: dict[str, list[tuple[int, float]]] = {}
        if mode in ("hybrid", "bm25"):
            lists["bm25"] = self.bm25(query, depth, allowed)
        if mode in ("hybrid", "dense"):
            lists["dense"] = self.dense(query, depth, allowed, query_vector)

        ranks = {name: {i: r + 1 for r, (i, _) in enumerate(pairs)} for name, pairs in lists.items()}
        raw = {name: dict(pairs) for name, pairs in lists.items()}
        if mode == "hybrid" and self.settings.fusion == "rrf":
            fused = {}
            for name in lists:
                for i, r in ranks[name].items():
                    fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + r)
        elif mode == "hybrid":
            w = self.settings.dense_weight
            nb, nd = _minmax(lists["bm25"]), _minmax(lists["dense"])
            # A chunk not embedded yet (partial dense coverage) has an unknown dense score, not zero:
            # it stands on its BM25 score alone.
            unknown = self.index.without_vector()
            fused = {
                i: nb[i] if i in unknown else w * nd.get(i, 0.0) + (1 - w) * nb.get(i, 0.0)
                for i in set(nb) | set(nd)
            }
        else:
            fused = raw[mode]
        order = sorted(fused, key=lambda i: (-fused[i], i))
        if filters:
            order = filters.order(order, fused, lambda i: self.index.articles[self.index.chunk(i).article_id].date)
        order = order[:k]
        hits = []
        for i in order:
            chunk = self.index.chunk(i)
            hits.append(
                Hit(
                    chunk=chunk,
                    article=self.index.articles[chunk.article_id],
                    score=fused[i],
                    ranks={name: ranks[name].get(i) for name in lists},
                    scores={name: raw[name][i] for name in lists if i in raw[name]},
                )
            )
        return hits


# Retrieval gate: below both, nothing retrieved is about the question, so the model is not even asked.
MIN_QUESTION_COVERAGE = 0.34  # share of the question's content syllables found in the best hit
MIN_DENSE_SCORE = 0.45  # cosine of the best hit (EmbeddingGemma, query vs. document prompt)
# A question in another language shares no syllables with Vietnamese text and scores lower across
# languages (answerable English questions about the seed corpus: 0.31-0.55; "price of gold": 0.05),
# so it passes on a lower cosine and grounding (names, numbers, similarity) does the rest.
MIN_DENSE_SCORE_CROSSLINGUAL = 0.28


def about(question: str, hits: list[Hit]) -> bool:
    """True when retrieval found something about the question.

    A Vietnamese question whose names or numbers appear nowhere in what was retrieved asks about
    something the articles don't hold ("... năm 2026 ...", "Chủ tịch UBND Hà Nội"): on the seed
    gold set this rule flags 7 unanswerable questions and no answerable one."""
    if not hits:
        return False
    if ground.is_vietnamese(question):
        found = "\n".join(
            f"{h.article.title}\n{h.article.date or ''}\n{h.article.source or ''}\n{h.chunk.text}"
            for h in hits
        )
        if ground.check_mentions(question, found):
            return False
    # a question typed without diacritics is compared with the hits' text without them too
    same = text.fold_diacritics if without_diacritics(question) else (lambda x: x)
    q = {same(t) for t in ground.content_tokens(question)}
    best_cov = max(
        (len(q & set(text.syllables(same(h.article.title + " " + h.chunk.text)))) / len(q) for h in hits),
        default=0.0,
    ) if q else 1.0
    best_dense = max((h.scores.get("dense", 0.0) for h in hits), default=0.0)
    if not ground.is_vietnamese(question):
        return best_cov >= MIN_QUESTION_COVERAGE or best_dense >= MIN_DENSE_SCORE_CROSSLINGUAL
    return best_cov >= MIN_QUESTION_COVERAGE or best_dense >= MIN_DENSE_SCORE
