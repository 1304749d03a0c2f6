"""The named rules that reject a claim as not the answer asked for: each a function of one frozen
`ClaimContext`, registered in `CHECKS` in the order they run, with the question kinds they apply to.
The first rule that fires rejects the claim, with a typed `Rejection(rule, reason, better)` (`better`:
the candidate its evidence ties to the question instead, when one is clear). `RAG_DISABLED_CHECKS`
(Settings.disabled_checks) switches rules off by name.

Every rule here earned its place on held-out questions (eval/ablation.py; eval/RESULTS.md, "The answer checks,
rule by rule"): fifteen others that did not were deleted. `several_candidates` is about the answer asked for;
`yesno_qualifier` decides a yes/no question's "no" from its deciding sentence (rag.answer.verify.yesno runs it);
`unsure` (the model was less sure of a word of the claim than RAG_MIN_CONFIDENCE) and `reader_span` (the trained
reader found no answer in any source, or the claim does not hold the span it found) run last, on every kind."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterable

from rag import text
from rag.answer import ground
from rag.errors import InvalidSetting
from rag.answer.verify.entities import new_part
from rag.answer.verify.extract import question_sentence
from rag.answer.verify.lexicon import QUALIFIER
from rag.answer.verify.question import COUNTED, KINDS, YESNO, Expected
from rag.answer.verify.spans import CLEAR_MARGIN, anchor_scores, candidate_key, candidates, keys

SPAN_COVERAGE = 0.8  # share of the reader's span (its syllables) a sentence must repeat to hold it
SPAN_INSIDE = 0.5  # or: share of what the sentence adds to the question that must lie inside the span


@dataclass(frozen=True)
class Rejection:
    """Why a claim is not shown: the rule that fired, in words, and the candidate its evidence ties to the
    question instead when that is clear (the verifier may answer with it)."""

    rule: str
    reason: str
    better: str | None = None


@dataclass(frozen=True)
class ClaimContext:
    """Everything a rule may look at for one claim: the question, what it asks for, the claim (markers
    removed), the text of the sources it was verified against, how sure the model was of it, and the
    reader's answer span. Derived views are computed once, on first use."""

    expected: Expected
    question: str
    claim: str
    evidence: str
    sure: float | None = None  # the model's lowest word probability in the claim (None: not the model's, or unknown)
    min_confidence: float = 0.0
    span: str | None = None  # the span the trained reader found; every claim must hold it

    @cached_property
    def q(self) -> str:
        return self.question.lower()

    @cached_property
    def new(self) -> str:
        """What the claim adds to the question: where its answer must be."""
        return new_part(self.claim, self.question)

    @cached_property
    def own(self) -> str | None:
        """The sentence of the evidence that is clearly about the question, or None."""
        return question_sentence(self.expected, self.evidence)

    @cached_property
    def asked(self) -> set[str]:
        """The candidates the question itself names ("năm 2023" in "... năm 2023 đúng không")."""
        return keys(self.expected.kind, self.question)

    @cached_property
    def said(self) -> set[str]:
        """The candidates the claim adds."""
        return keys(self.expected.kind, self.new) - self.asked

    @cached_property
    def own_keys(self) -> set[str]:
        """The candidates the sentence about the question names."""
        return keys(self.expected.kind, self.own) - self.asked if self.own is not None else set()

    @cached_property
    def ranking(self):
        """(scores, candidate keys, candidate texts), best first, of the sentence that weighs the claimed
        value against its other candidates most clearly; None when no sentence has two candidates, one of
        them claimed, or when no candidate is clearly tied to the question."""
        # where the claimed value stands in the sentence about the question, only that sentence is weighed
        within = bool(self.own_keys & self.said)
        spans = [(0, len(self.own))] if within else text.split_sentences(self.evidence)
        best = None
        for a, b in spans:
            sentence = self.own[a:b] if within else self.evidence[a:b]
            cands = [c for c in candidates(self.expected.kind, sentence) if candidate_key(c[2]) not in self.asked]
            if len(cands) < 2 or not self.said & {candidate_key(c[2]) for c in cands}:
                continue  # one candidate: nothing to choose between; none said: not this sentence
            scores = anchor_scores(self.expected, sentence, cands)
            if best is None or max(scores) > best[0]:
                best = (max(scores), cands, scores)
        if best is None:
            return None
        top, cands, scores = best
        ranked = sorted(zip(scores, [candidate_key(c[2]) for c in cands], [c[2] for c in cands]), reverse=True)
        clear = top > 0 and (len(ranked) < 2 or ranked[0][0] >= CLEAR_MARGIN * ranked[1][0])
        return ranked if clear else None


Rule = Callable[[ClaimContext], "Rejection | None"]


@dataclass(frozen=True)
class Check:
    name: str
    kinds: frozenset[str]  # the question kinds it applies to
    rule: Rule = field(compare=False)

    @property
    def doc(self) -> str:
        return (self.rule.__doc__ or "").strip().split("\n\n")[0]


CHECKS: list[Check] = []


def check(name: str, kinds: Iterable[str]):
    """Register a rule under `name` for the question `kinds`, after those registered before it."""
    def register(rule: Rule) -> Rule:
        assert name not in names(), name
        CHECKS.append(Check(name, frozenset(kinds), rule))
        return rule
    return register


def names() -> list[str]:
    return [c.name for c in CHECKS]


def parse_disabled(spec: str | Iterable[str]) -> frozenset[str]:
    """The rule names of RAG_DISABLED_CHECKS ("name,name"), each checked against the registry."""
    wanted = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    unknown = [w for w in wanted if w not in names()]
    if unknown:
        raise InvalidSetting("RAG_DISABLED_CHECKS", ",".join(unknown), "check names, comma-separated, from: " + ", ".join(names()))
    return frozenset(wanted)


def run(ctx: ClaimContext, disabled: frozenset[str] = frozenset(), only: Iterable[str] | None = None) -> Rejection | None:
    """The first rule (in registry order) that rejects the claim, or None. `only`: run just these rules."""
    for c in CHECKS:
        if c.name in disabled or (only is not None and c.name not in only) or ctx.expected.kind not in c.kinds:
            continue
        if (r := c.rule(ctx)) is not None:
            return r
    return None


# ------------------------------------------------------------------ the rules, in the order they run

def _one_value(c: ClaimContext) -> bool:
    return c.expected.kind in COUNTED and not c.expected.plural


@check("several_candidates", COUNTED)
def several_candidates(c: ClaimContext) -> Rejection | None:
    """The sentence pasted whole: the claim names the clear candidate and others beside it, where one was asked for."""
    if not _one_value(c) or (ranked := c.ranking) is None or ranked[0][1] not in c.said:
        return None
    others = c.said & {k for _, k, _ in ranked[1:]}
    if others:
        return Rejection("several_candidates", f"names {len(others) + 1} candidates where one was asked for", ranked[0][2])
    return None


# ------------------------------------------------------------------ yes / no: why the deciding sentence says no
# For this the context is the yes/no question's: `claim` is the deciding sentence (rag.answer.verify.yesno) and
# `expected.focus` the claim's terms; `evidence` is empty.

@check("yesno_qualifier", {YESNO})
def yesno_qualifier(c: ClaimContext) -> Rejection | None:
    """The deciding sentence lacks a qualifier the claim makes ("chỉ", "có thể", "hơn")."""
    said = c.claim.lower()
    missing = [m.group(0) for m in QUALIFIER.finditer(c.q) if m.group(0) not in said]
    return Rejection("yesno_qualifier", f"it does not say «{missing[0]}»") if missing else None


@check("unsure", KINDS)
def unsure(c: ClaimContext) -> Rejection | None:
    """The model was less sure of a word of the claim than RAG_MIN_CONFIDENCE (it was choosing between facts)."""
    if c.sure is not None and c.sure < c.min_confidence:
        return Rejection("unsure", f"the model was unsure of it ({c.sure:.2f})")
    return None


@check("reader_span", KINDS)
def reader_span(c: ClaimContext) -> Rejection | None:
    """The claim and the answer span the trained reader found in the sources (rag.answer.reader) disagree. The same
    rule refuses the whole answer when the reader finds no answer in any source (rag.answer.pipeline)."""
    if c.span is not None and not holds_span(c.claim, c.span, c.question):
        return Rejection("reader_span", f"it does not agree with the reader's answer «{c.span}»")
    return None


def holds_span(claim: str, span: str, question: str = "") -> bool:
    """The claim states the reader's answer. Either it repeats most of the span (the model may drop a title or
    a classifier word: "ông Lâm Đình Thắng" for "Lâm Đình Thắng", SPAN_COVERAGE), or, for a span longer than
    the answer ("các năm 2021, 2022; Top1 năm 2023" for "which year"), what the claim adds to the question
    lies mostly inside the span (SPAN_INSIDE). Either way every figure the claim adds is one of the span's."""
    claim = ground.MARKER.sub(" ", claim)
    asked = set(text.syllables(question))
    want = [w for w in text.syllables(span) if w not in asked] or text.syllables(span)
    if not want:
        return True
    if not ground.numbers(claim) - ground.numbers(question) <= ground.numbers(span):
        return False
    have = set(text.syllables(claim))
    if sum(w in have for w in want) >= SPAN_COVERAGE * len(want):
        return True
    added = [w for w in text.syllables(claim) if w not in asked]
    return bool(added) and sum(w in set(want) for w in added) >= SPAN_INSIDE * len(added)


# ------------------------------------------------------------------ which rules run where

YESNO_RULES = tuple(c.name for c in CHECKS if c.kinds == {YESNO})  # on a yes/no question's deciding sentence
# on a claim and the evidence it was verified against (is it the answer asked for?)
ANSWER_TYPE_RULES = tuple(n for n in names() if n not in ("unsure", "reader_span") + YESNO_RULES)
