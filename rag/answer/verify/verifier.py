"""The verifier: checks answer sentences one by one against the numbered sources (is the claim in them?,
rag.answer.ground) and against the question (is it the answer asked for?, rag.answer.verify.checks), renumbers their
citations, and records every rejection with the rule that fired (the Answer's trace)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import numpy as np

from rag import text
from rag.answer import ground, prompt
from rag.types import Citation
from rag.answer.verify import checks
from rag.answer.verify.extract import extract, phrase
from rag.answer.verify.entities import names_listed
from rag.answer.verify.lexicon import UPPER
from rag.answer.verify.question import PUBLICATION_COVERAGE, Expected, terms
from rag.answer.verify.yesno import decide_yesno

# A sentence that refers back to the one before it by a pronoun ("He also ...", "Ông cũng ...", "Điều này ...").
_CONTINUES = re.compile(
    r"^(?:he|she|it|they|this|these|his|her|their|its|also|ông|bà|anh|chị|họ|nó|điều này|việc này|ngoài ra)\b"
    rf"(?!\s+(?-i:[{UPPER}]))", re.IGNORECASE)


@dataclass(frozen=True)
class Claim:
    """An answer sentence as the verifier checks it: its text without citation markers, and the sources it
    cites (numbers of the prompt's sources)."""

    text: str
    cited: tuple[int, ...] = ()

    @classmethod
    def parse(cls, sentence: str) -> "Claim":
        """A sentence the model wrote: "… [1][2]." -> Claim("…", (1, 2))."""
        return cls(ground.MARKER.sub("", sentence).strip(), tuple(ground.parse_markers(sentence)))

    @classmethod
    def cite(cls, statement: str, n: int) -> "Claim":
        """A statement the verifier makes itself from source `n` (a deciding sentence, an extracted value)."""
        own = cls.parse(statement)
        return cls(own.text, own.cited + (n,))


class Verifier:
    def __init__(self, sources: list[prompt.Source], embedder=None, question: str = "", expected: Expected | None = None,
                 min_confidence: float = 0.0, disabled: frozenset[str] = frozenset()):
        self.sources = {s.n: s for s in sources}
        self.min_confidence = min_confidence  # a claim the model was less sure of is not shown (rag.answer.reply.Reply)
        self.embedder = embedder  # for cross-lingual support only
        self.question, self.expected = question, expected
        self.disabled = frozenset(disabled)  # rule names switched off (RAG_DISABLED_CHECKS)
        self.order: list[int] = []  # source numbers in order of first citation -> new marker = index + 1
        self.claims: dict[int, list[str]] = {}
        self.rejected: list[tuple[str, checks.Rejection]] = []  # (claim, the rule that rejected it)
        self.better: tuple[int, str] | None = None  # (source, candidate) its sentence ties to the question
        self.dropped_last = False  # the last factual sentence was not shown
        self.span: tuple[int, str] | None = None  # (source, answer span) the reader found: every claim must hold it

    def reject(self, claim: str, rejection: checks.Rejection) -> None:
        self.rejected.append((claim, rejection))

    def trace(self) -> list[dict]:
        """The rejections that fired, in order: [{rule, claim, reason}] (Answer.rejections)."""
        return [{"rule": r.rule, "claim": claim, "reason": r.reason} for claim, r in self.rejected]

    def _similarities(self, claim: str) -> dict[int, float]:
        if self.embedder is None or ground.is_vietnamese(claim):
            return {}
        vecs = self.embedder.embed_queries([claim])[0]
        docs = self.embedder.embed_documents([s.passage for s in self.sources.values()], [""] * len(self.sources))
        return {n: float(np.dot(vecs, d)) for n, d in zip(self.sources, docs)}

    def accept(self, sentence: str | Claim, sure: float | None = None) -> str | None:
        """The sentence as it will be shown (markers renumbered), or None to drop it. `sentence`: the model's
        text, or a Claim the verifier made itself. `sure`: how sure the model was of it (None: not the
        model's, or not known)."""
        c = sentence if isinstance(sentence, Claim) else Claim.parse(sentence)
        claim = c.text
        if not any(ch.isalnum() for ch in claim) or claim.endswith("?"):
            return None  # a question, often the user's own echoed back, claims nothing
        if not c.cited and not ground.is_factual(claim):
            # a connective introducing what follows ("Theo các bài báo:") may be shown before a cited claim;
            # anything else without a citation is not ("Hai." alone answered a how-many-days question)
            return claim if claim.endswith(":") and not ground.REFUSAL.search(claim) else None
        shown = self._accept_claim(c, sure)
        self.dropped_last = shown is None
        return shown

    def _accept_claim(self, c: Claim, sure: float | None) -> str | None:
        claim = c.text
        if self.dropped_last and _CONTINUES.match(claim):
            return None  # "He also stressed ..." goes on about a sentence that was not shown: its subject is unchecked
        sims = self._similarities(claim)
        cited = [n for n in dict.fromkeys(c.cited) if n in self.sources]
        good = [n for n in cited if ground.check(claim, self.sources[n].checked_text, sims.get(n)).ok]
        if not good and len(cited) > 1:  # a sentence drawing on several articles: check them together
            union = "\n".join(self.sources[n].checked_text for n in cited)
            if ground.check(claim, union, max((sims.get(n) or 0.0) for n in cited) if sims else None).ok:
                good = cited
        if not good:  # repair: the claim may be supported by another source than the one it names
            for n, s in self.sources.items():
                if n not in cited and ground.check(claim, s.checked_text, sims.get(n)).ok:
                    good = [n]
                    break
        if not good:  # a list of names drawn from several articles ("X và Y"): each cited where it stands
            good = self._list_sources(claim, sims)
        if not good:
            return None
        if self.expected is not None:
            evidence = "\n".join(self.sources[n].passage for n in good)
            ctx = checks.ClaimContext(self.expected, self.question, claim, evidence)
            rejection = checks.run(ctx, self.disabled, checks.ANSWER_TYPE_RULES)
            if rejection is not None:
                self.reject(claim, rejection)
                if rejection.better and self.better is None:  # the right sentence, the wrong part of it
                    self.better = (good[0], rejection.better)
                return None
        # the model's confidence and the reader's span: rules of every kind, with or without an expected kind
        ctx = checks.ClaimContext(self.expected or Expected("any", False, frozenset()), self.question, claim, "",
                                  sure, self.min_confidence, self.span[1] if self.span is not None else None)
        if (rejection := checks.run(ctx, self.disabled, ("unsure", "reader_span"))) is not None:
            self.reject(claim, rejection)
            return None
        markers = []
        for n in good:
            if n not in self.order:
                self.order.append(n)
            self.claims.setdefault(n, []).append(claim)
            markers.append(f"[{self.order.index(n) + 1}]")
        end = claim[-1] if claim[-1] in ".!?…" else ""
        body = claim[:-1] if end else claim
        return f"{body} {''.join(markers)}{end or '.'}"

    def _list_sources(self, claim: str, sims: dict[int, float]) -> list[int]:
        """The sources of a claim listing names no single source holds together ("Ông Lâm Đình Thắng và ông Võ
        Minh Thành"): each name held by one of them, the claim supported by all of them together. Only lists
        of names: a sentence mixing one article's event with another's date is no such claim (it read as
        supported when any union of sources was allowed)."""
        listed = names_listed(claim, self.question)
        if len(listed) < 2 or len(self.sources) < 2:
            return []
        holders = {n: [m for m, s in self.sources.items() if ground.check(name, s.checked_text).ok] for n, name in enumerate(listed)}
        if not all(holders.values()) or set.intersection(*(set(h) for h in holders.values())):
            return []  # a name no source holds, or one source holding them all (then it alone must support the claim)
        cited = sorted({m for h in holders.values() for m in h[:1]})
        union = "\n".join(self.sources[m].checked_text for m in cited)
        return cited if ground.check(claim, union, max((sims.get(m) or 0.0) for m in cited) if sims else None).ok else []

    def yes_no(self, lang: str) -> str | None:
        """"Có. <the deciding sentence> [n]." from the first source that decides the question, or None."""
        for n, s in self.sources.items():
            yes, sentence, rejection = decide_yesno(self.question, s.passage, self.disabled)
            if rejection is not None:  # the rule that made it a "no", in the trace
                self.reject(sentence, rejection)
            if yes is not None and (shown := self.accept(Claim.cite(sentence, n))):
                word = {("vi", True): "Có", ("vi", False): "Không", ("en", True): "Yes", ("en", False): "No"}[lang, yes]
                return f"{word}. {shown}"
        return None

    def published(self, lang: str) -> str | None:
        """"Bài «title» đăng ngày 28/11/2025 [n]." for the source a when-was-it-published question names (its
        names found there, most of its terms in its title, source and text), from the article's date; or None."""
        def fit(s: prompt.Source) -> int:
            return len(self.expected.focus & terms(s.checked_text, self.expected.folded))

        # every capitalised word of the question in it: "Bài của VnExpress …" is not the HTV article
        proper = {text.fold_diacritics(w.lower()) for w in re.findall(rf"(?<!^)\b\w*[{UPPER}]\w*", self.question)}
        named = [s for s in self.sources.values() if s.article.date and not ground.check_mentions(self.question, s.checked_text)
                 and all(w in text.fold_diacritics(ground.with_aliases(s.checked_text).lower()) for w in proper)]
        best = max(named, key=fit, default=None)  # max keeps the first (best-ranked) of equals
        if best is None:
            return None
        if lang == "vi" and fit(best) < PUBLICATION_COVERAGE * len(self.expected.focus):
            return None
        if lang != "vi" and not ground.names(self.question):  # across languages only its names tell the article
            return None
        try:
            day = date.fromisoformat(best.article.date[:10])
        except ValueError:
            return None
        title = best.article.title or best.article.id
        self.order.append(best.n)
        self.claims[best.n] = [title]
        if lang == "vi":
            return f"Bài «{title}» đăng ngày {day.day}/{day.month}/{day.year} [{len(self.order)}]."
        return f"The article «{title}» was published on {day:%d %B %Y} [{len(self.order)}]."

    def from_evidence(self, lang: str) -> str | None:
        """The reader's span when there is one and the model claimed nothing a rule rejected; else the single
        candidate a source sentence ties to a when / how-many question, or the one the evidence of a rejected
        claim ties to the question (a year, a fuller place), cited; or None."""
        if self.span is not None:  # the reader's span, cited, when the model did not phrase it
            if self.rejected:
                # the model answered something else (or something a rule refused): two readers disagreeing is
                # a refusal, not the reader's word alone (wrong more often than right: eval/RESULTS.md)
                return None
            n, span = self.span
            self.dropped_last = False
            return self._accept_claim(Claim(span[:1].upper() + span[1:], Claim.parse(f"{span} [{n}]").cited), None)
        if self.expected is None:
            return None
        for n, s in self.sources.items():
            found = extract(self.expected, self.question, s.passage)
            if found and (shown := self.accept(Claim.cite(phrase(self.expected, *found, lang), n))):
                return shown
        if self.better:  # the model cited the sentence that answers, but named a wrong or vaguer part of it
            n, value = self.better
            self.better = None
            return self.accept(Claim.cite(phrase(self.expected, (0, len(value), value), value, lang), n))
        return None

    def citations(self) -> list[Citation]:
        out = []
        for i, n in enumerate(self.order, start=1):
            s = self.sources[n]
            a = s.article
            quote = ground.best_quote(" ".join(self.claims[n]), s.passage)
            out.append(
                Citation(i, a.id, a.title, a.date, a.source, a.url, s.chunk_for(quote), quote, round(s.score, 4),
                         a.also, a.collection)
            )
        return out
