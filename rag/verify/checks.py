"""The named rules that reject a claim as not the answer asked for: each a function of one frozen
`ClaimContext`, registered in `CHECKS` in the order they run, with the question kinds they apply to.
The first rule that fires rejects the claim, with a typed `Rejection(rule, reason, better)` (`better`:
the candidate its evidence ties to the question instead, when one is clear). `RAG_DISABLED_CHECKS`
(Settings.disabled_checks) switches rules off by name.

Four rules decide a yes/no question's "no" from its deciding sentence (`yesno_*`: rag.verify.yesno runs them).
Two rules are not about the answer's type: `unsure` (the model was less sure of a word of the claim than
RAG_MIN_CONFIDENCE) and `reader_span` (the trained reader found no answer in any source, or the claim does
not hold the span it found). They run last, on every kind."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterable

from rag import ground, text
from rag.errors import InvalidSetting
from rag.verify.entities import (new_part, nearest_person, person_names, persons_asked, qualified_role, right_type,
                                 the_unit_asked, vaguer_place)
from rag.verify.extract import question_sentence
from rag.verify.lexicon import ADMIN_ASKED, CASE_ROLE, CASE_ROLE_BEFORE, COUNTED_ELSE, MONEY_UNITS, NEGATION, QUALIFIER
from rag.verify.question import AGENT, COUNTED, DATE, KINDS, NUMBER, PLACE, TEMPORAL, TYPED, YEAR, YESNO, Expected
from rag.verify.spans import (CLEAR_MARGIN, anchor_scores, birth_dates, candidate_key, candidates, figure_and_unit,
                              keys)

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
    def one_place(self) -> bool:
        """A where-question wanting one place, not an administrative unit ("xã nào")."""
        return self.expected.kind == PLACE and not self.expected.plural and not ADMIN_ASKED.search(self.q)

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

@check("answer_type", TYPED)
def answer_type(c: ClaimContext) -> Rejection | None:
    """What the claim adds to the question is not of the kind asked for: no person or organisation for
    who, no place for where, no date for when, no number for how many."""
    if right_type(c.expected, c.claim, c.question) or the_unit_asked(c.question, c.claim, c.evidence):
        return None
    # "ở TP.HCM, tại địa điểm nào?" answered "TP.HCM": the place its source names around it may be the answer
    fuller = vaguer_place(ground.MARKER.sub(" ", c.claim), c.evidence, c.own) if c.one_place else None
    return Rejection("answer_type", f"not a {c.expected.kind}", fuller)


@check("birth_date", TEMPORAL)
def birth_date(c: ClaimContext) -> Rejection | None:
    """A date its source gives as someone's birth (crime news gives everyone's), for a when-question not
    about a birth."""
    if "sinh" in c.q or "born" in c.q:
        return None
    said = keys(c.expected.kind, c.new)
    if said and said <= birth_dates(c.evidence):
        return Rejection("birth_date", "a birth date, not the date asked for")
    return None


@check("other_person", COUNTED)
def other_person(c: ClaimContext) -> Rejection | None:
    """Wherever its source gives the claimed figure, the person named nearest before it is not the one the
    question asks about ("how many years for Trầm Bê" answered with Phạm Công Danh's sentence)."""
    asked = persons_asked(c.question)
    if not asked:
        return None
    said = keys(c.expected.kind, c.new) - c.asked
    with_unit_ = {pair for pair in figure_and_unit(c.claim) if pair[0] in said}
    places = [a for a, b, span in candidates(c.expected.kind, c.evidence) if candidate_key(span) in said
              and (not with_unit_ or any(pair[0] == candidate_key(span) for pair in with_unit_ & figure_and_unit(c.evidence[a:b + 20])))]
    named = list(dict.fromkeys(person_names(c.evidence) + asked))
    same = lambda x, y: text.fold_diacritics(x.lower()) == text.fold_diacritics(y.lower())  # noqa: E731
    for at in places:
        nearest = nearest_person(c.evidence, at, named)
        if nearest is None or any(same(nearest, p) or same(nearest.split()[-1], p.split()[-1]) for p in asked):
            return None
    return Rejection("other_person", f"another person's figure, not {asked[0]}'s") if places else None


@check("case_role", {AGENT})
def case_role(c: ClaimContext) -> Rejection | None:
    """The person named is given another part in its source than the one asked for ("Bị cáo Nguyễn Đức
    Mạnh" for "Thẩm phán nào ...")."""
    asked = {m.group(1).lower() for m in re.finditer(CASE_ROLE + r"\b", c.question, re.I)}
    if not asked:
        return None
    for person in person_names(c.new):
        parts = {m.group(1).lower() for m in (CASE_ROLE_BEFORE.search(c.evidence[max(0, k.start() - 20) : k.start()])
                                                for k in re.finditer(re.escape(person), c.evidence)) if m}
        if parts and not parts & asked:
            return Rejection("case_role", f"the {sorted(parts)[0]} in its source, not the one asked for")
    return None


@check("qualified_role", {AGENT})
def qualified_role_(c: ClaimContext) -> Rejection | None:
    """A deputy for the head the question names ("Phó Chủ tịch" for "Chủ tịch")."""
    if role := qualified_role(c.claim.lower(), c.q):
        return Rejection("qualified_role", f"a {role}, where the question asks for the role unqualified")
    return None


@check("admin_unit", {PLACE})
def admin_unit(c: ClaimContext) -> Rejection | None:
    """Not the administrative unit asked for (a province for "xã nào")."""
    if (m := ADMIN_ASKED.search(c.q)) and not the_unit_asked(c.question, c.claim, c.evidence):
        return Rejection("admin_unit", f"not a {m.group(1)}")
    return None


@check("figure_elsewhere", {NUMBER})
def figure_elsewhere(c: ClaimContext) -> Rejection | None:
    """A figure its source gives only with another word after it ("3 năm tù" where the source says "sau 3 ngày")."""
    held = figure_and_unit(c.evidence)
    asked = keys(NUMBER, c.question)
    for number, unit in figure_and_unit(c.claim) - {(n, u) for n, u in figure_and_unit(c.claim) if n in asked}:
        if any(n == number for n, _ in held) and (number, unit) not in held:
            return Rejection("figure_elsewhere", f"'{number} {unit}' is not what its source says")
    return None


@check("two_figures", {NUMBER})
def two_figures(c: ClaimContext) -> Rejection | None:
    """One figure where the question asks two ("bao nhiêu ... bao nhiêu")."""
    if len(re.findall(r"\b(?:bao nhiêu|mấy)\b", c.q)) >= 2 and len(candidates(NUMBER, c.new)) < 2:
        return Rejection("two_figures", "one figure where two were asked for")
    return None


@check("amount_not_count", {NUMBER})
def amount_not_count(c: ClaimContext) -> Rejection | None:
    """Money where the question counts something else ("bao nhiêu người" answered "5 triệu đồng")."""
    unit = c.expected.unit
    if unit and unit not in MONEY_UNITS and unit not in c.new.lower():
        found = candidates(NUMBER, c.new)
        if found and all(COUNTED_ELSE.match(c.new[b:]) for _, b, _ in found):
            return Rejection("amount_not_count", f"an amount, where the question counts {unit}")
    return None


@check("vaguer_place", {PLACE})
def vaguer_place_(c: ClaimContext) -> Rejection | None:
    """A place less specific than the one its source names around it ("TP.HCM" for "tại Trung tâm Hội nghị
    và Triển lãm, phường Bình Dương, TP.HCM")."""
    if not c.one_place:
        return None
    fuller = vaguer_place(c.new, c.evidence, c.own, c.question)
    return Rejection("vaguer_place", "less specific than the place its source names", fuller) if fuller else None


def _one_value(c: ClaimContext) -> bool:
    return c.expected.kind in COUNTED and not c.expected.plural


@check("other_sentence", COUNTED)
def other_sentence(c: ClaimContext) -> Rejection | None:
    """The sentence that holds most of the question's terms names its own value, not the claimed one: the
    claim took a value from another sentence ("Phiên toàn thể (…, 3-12)" answered with "2-12")."""
    if not _one_value(c) or not c.said or len(c.own_keys) != 1 or c.own_keys & c.said:
        return None
    better = next(x[2] for x in candidates(c.expected.kind, c.own) if candidate_key(x[2]) in c.own_keys)
    return Rejection("other_sentence", f"the sentence about the question names {sorted(c.own_keys)[0]!r}", better)


@check("tied_candidate", COUNTED)
def tied_candidate(c: ClaimContext) -> Rejection | None:
    """Among several candidates in its sentence, the question's own terms clearly point to another one than
    the claim's (the year next to "Top1", not the years of "Top7")."""
    if not _one_value(c) or (ranked := c.ranking) is None:
        return None
    winner_key, winner = ranked[0][1], ranked[0][2]
    if winner_key not in c.said:
        return Rejection("tied_candidate", f"the evidence ties {winner!r} to the question, not {sorted(c.said)}", winner)
    return None


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
# For these the context is the yes/no question's: `claim` is the deciding sentence (rag.verify.yesno), `evidence`
# the sentences about the claim, and `expected.focus` the claim's terms.

@check("yesno_value", {YESNO})
def yesno_value(c: ClaimContext) -> Rejection | None:
    """The deciding sentence gives its own year, date or number where the question claims one, or ties
    another one to the claim's terms clearly ("Top1 năm 2023" for "Top1 năm 2021, đúng không?")."""
    for kind in (YEAR, DATE, NUMBER):
        claimed = {candidate_key(x[2]) for x in candidates(kind, c.question)}
        found = candidates(kind, c.claim)
        if not claimed or not found:
            continue
        found_keys = [candidate_key(x[2]) for x in found]
        if not claimed & set(found_keys):
            return Rejection("yesno_value", f"it gives {found[0][2]!r}, not the value the question claims")
        if len(found) > 1 and kind != NUMBER:  # numbers in codes and counts are too many to rank
            focus = Expected(kind, False, c.expected.focus - claimed, folded=c.expected.folded)
            ranked = sorted(zip(anchor_scores(focus, c.claim, found), found_keys), reverse=True)
            if ranked[0][0] > 0 and ranked[0][0] >= CLEAR_MARGIN * ranked[1][0] and ranked[0][1] not in claimed:
                return Rejection("yesno_value", f"it ties {ranked[0][1]!r} to the question's terms")
    return None


@check("yesno_qualifier", {YESNO})
def yesno_qualifier(c: ClaimContext) -> Rejection | None:
    """The deciding sentence lacks a qualifier the claim makes ("chỉ", "có thể", "hơn")."""
    said = c.claim.lower()
    missing = [m.group(0) for m in QUALIFIER.finditer(c.q) if m.group(0) not in said]
    return Rejection("yesno_qualifier", f"it does not say «{missing[0]}»") if missing else None


@check("yesno_role", {YESNO})
def yesno_role(c: ClaimContext) -> Rejection | None:
    """The deciding sentence qualifies a role the claim states bare ("Phó Giám đốc" for "Giám đốc")."""
    same = text.fold_diacritics if c.expected.folded else (lambda x: x)
    if role := qualified_role(c.claim.lower(), c.q, same):
        return Rejection("yesno_role", f"it names a {role}, where the question states the role unqualified")
    return None


@check("yesno_denial", {YESNO})
def yesno_denial(c: ClaimContext) -> Rejection | None:
    """The deciding sentence, or another one about the claim, denies a word the claim asserts ("không thu được
    ma tuý tại nhà"); `better` is the sentence that denies it."""
    same = text.fold_diacritics if c.expected.folded else (lambda x: x)

    def denies(sentence: str) -> bool:
        return any(same(m.group(2)) in c.expected.focus and same(m.group(0)) not in c.q
                   for m in NEGATION.finditer(sentence.lower()))

    others = [c.evidence[a:b] for a, b in text.split_sentences(c.evidence)]
    denial = next((x for x in [c.claim, *others] if denies(x)), None)
    return Rejection("yesno_denial", "it denies what the question asserts", denial) if denial is not None else None


@check("unsure", KINDS)
def unsure(c: ClaimContext) -> Rejection | None:
    """The model was less sure of a word of the claim than RAG_MIN_CONFIDENCE (it was choosing between facts)."""
    if c.sure is not None and c.sure < c.min_confidence:
        return Rejection("unsure", f"the model was unsure of it ({c.sure:.2f})")
    return None


@check("reader_span", KINDS)
def reader_span(c: ClaimContext) -> Rejection | None:
    """The claim and the answer span the trained reader found in the sources (rag.reader) disagree. The same
    rule refuses the whole answer when the reader finds no answer in any source (rag.pipeline)."""
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


# ------------------------------------------------------------------ the answer-type verdict

YESNO_RULES = tuple(c.name for c in CHECKS if c.kinds == {YESNO})
ANSWER_TYPE_RULES = tuple(n for n in names() if n not in ("unsure", "reader_span") + YESNO_RULES)


@dataclass
class Verdict:
    ok: bool
    reason: str = ""
    better: str | None = None  # the candidate the evidence ties to the question, when it is clear
    rule: str = ""  # the rule that rejected the claim

    @classmethod
    def of(cls, rejection: Rejection | None) -> "Verdict":
        return cls(True) if rejection is None else cls(False, rejection.reason, rejection.better, rejection.rule)


def check_claim(expected: Expected, question: str, claim: str, evidence: str,
                disabled: frozenset[str] = frozenset()) -> Verdict:
    """Does `claim` answer `question`, given the source text it was verified against? The answer-type
    rules only (not `unsure` or `reader_span`, which need the model's and the reader's outputs)."""
    return Verdict.of(run(ClaimContext(expected, question, claim, evidence), disabled, ANSWER_TYPE_RULES))
