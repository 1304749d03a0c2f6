"""The answer checks by rule (rag.answer.verify.checks): for every registered rule, a claim it rejects (and that it
is this rule, not another, that does) and a claim it lets through; the registry demands both of every rule.
RAG_DISABLED_CHECKS switches a rule off, by name, and rejects names no rule has."""
from __future__ import annotations

import pytest

from rag.config import Settings
from rag.errors import InvalidSetting
from rag.answer.verify import checks, yesno
from rag.answer.verify.question import classify

PASSAGE = ("Trước đó tỉnh Bình Dương (nay là TP.HCM) từng đăng cai diễn đàn. Trong đó 5 lần liên tiếp được vinh danh là 1 "
           "trong 21 cộng đồng có Chiến lược phát triển Thành phố thông minh tiêu biểu trên thế giới (Smart 21) và lọt danh "
           "sách Top7 trong các năm 2021, 2022; Top1 năm 2023.")
GOLD = "Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng."
SPEECH = "Ông Lâm Đình Thắng, Giám đốc Sở Khoa học và Công nghệ, phát biểu khai mạc."
LAW = "Hợp đồng lữ hành phải được lập thành văn bản. Doanh nghiệp được tổ chức tour cho khách du lịch."


def case(question: str, claim: str, evidence: str, **kw) -> checks.ClaimContext:
    return checks.ClaimContext(classify(question), question, claim, evidence, **kw)


def yesno_case(question: str, passage: str) -> checks.ClaimContext:
    """The context the yes/no rules see: the sentence that decides the question, as rag.answer.verify.yesno finds it."""
    captured = []
    real = checks.run
    try:
        checks.run = lambda ctx, *a, **k: captured.append(ctx) or real(ctx, *a, **k)
        yesno.decide_yesno(question, passage)
    finally:
        checks.run = real
    (ctx,) = captured
    return ctx


# rule -> (claims it must reject, claims it must let through)
CASES: dict[str, tuple[list[checks.ClaimContext], list[checks.ClaimContext]]] = {
    "several_candidates": (
        [case("Bình Dương đứng Top1 Smart 21 năm nào?", "Bình Dương lọt Top7 trong các năm 2021, 2022; Top1 năm 2023.", PASSAGE)],
        [case("Bình Dương đứng Top1 Smart 21 năm nào?", "Bình Dương đứng Top1 năm 2023.", PASSAGE),
         case("Bình Dương lọt Top7 Smart 21 trong những năm nào?", "Bình Dương lọt Top7 trong các năm 2021, 2022.", PASSAGE)],
    ),
    "yesno_qualifier": (
        [yesno_case("Chỉ doanh nghiệp được tổ chức tour cho khách du lịch, đúng hay sai?", LAW)],
        [yesno_case("Doanh nghiệp được tổ chức tour cho khách du lịch, đúng hay sai?", LAW)],
    ),
    "unsure": (
        [case("Giá vàng miếng hôm nay tăng bao nhiêu?", "Giá vàng miếng tăng 1 triệu đồng.", GOLD, sure=0.1, min_confidence=0.25)],
        [case("Giá vàng miếng hôm nay tăng bao nhiêu?", "Giá vàng miếng tăng 1 triệu đồng.", GOLD, sure=0.9, min_confidence=0.25),
         case("Giá vàng miếng hôm nay tăng bao nhiêu?", "Giá vàng miếng tăng 1 triệu đồng.", GOLD, sure=None, min_confidence=0.25)],
    ),
    "reader_span": (
        [case("Ai phát biểu khai mạc?", "Ông Võ Minh Thành phát biểu khai mạc.", SPEECH, span="Lâm Đình Thắng"),
         case("Giá vàng tăng bao nhiêu?", "Top 50 thành phố.", GOLD, span="top 100 thành phố")],
        [case("Ai phát biểu khai mạc?", "Ông Lâm Đình Thắng phát biểu khai mạc.", SPEECH, span="Lâm Đình Thắng")],
    ),
}
FIRES = [(rule, ctx) for rule, (fire, _) in CASES.items() for ctx in fire]
HOLDS = [(rule, ctx) for rule, (_, hold) in CASES.items() for ctx in hold]


def test_every_rule_has_a_case_that_fires_and_one_that_must_not():
    assert list(CASES) == checks.names()  # in registry order, none missing, none unknown
    for rule, (fire, hold) in CASES.items():
        assert fire and hold, rule


@pytest.mark.parametrize("rule, ctx", FIRES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(FIRES)])
def test_the_rule_that_rejects_is_the_one_named(rule, ctx):
    rejection = checks.run(ctx)
    assert rejection is not None and rejection.rule == rule, rejection
    assert rejection.reason


@pytest.mark.parametrize("rule, ctx", HOLDS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(HOLDS)])
def test_the_rule_lets_its_good_claim_through(rule, ctx):
    (c,) = [c for c in checks.CHECKS if c.name == rule]
    assert c.rule(ctx) is None


@pytest.mark.parametrize("rule, ctx", FIRES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(FIRES)])
def test_a_disabled_rule_does_not_fire(rule, ctx):
    rejection = checks.run(ctx, frozenset({rule}))
    assert rejection is None or rejection.rule != rule


def test_rules_apply_to_their_kinds_only():
    kinds = {c.name: c.kinds for c in checks.CHECKS}
    assert "yesno" not in kinds["several_candidates"] and "yesno" in kinds["reader_span"]
    assert set(checks.YESNO_RULES) == {n for n, k in kinds.items() if k == {"yesno"}}
    assert not set(checks.YESNO_RULES) & set(checks.ANSWER_TYPE_RULES)
    for rule, ctx in FIRES:
        assert ctx.expected.kind in kinds[rule]


def test_the_better_candidate_comes_with_the_rejection():
    (ctx,) = CASES["several_candidates"][0]
    assert checks.run(ctx).better == "2023"


def test_disabled_checks_setting_is_validated_against_the_registry(tmp_path):
    s = Settings(home=tmp_path, disabled_checks="several_candidates, reader_span")
    assert checks.parse_disabled(s.disabled_checks) == {"several_candidates", "reader_span"}
    with pytest.raises(InvalidSetting, match="RAG_DISABLED_CHECKS.*no_such_rule.*several_candidates"):
        Settings(home=tmp_path, disabled_checks="several_candidates,no_such_rule")
    with pytest.raises(InvalidSetting, match="RAG_DISABLED_CHECKS.*answer_type"):  # deleted by the ablation
        Settings(home=tmp_path, disabled_checks="answer_type")


def test_a_yes_no_rule_switched_off_lets_the_sentence_decide():
    no = yesno.decide_yesno("Chỉ doanh nghiệp được tổ chức tour cho khách du lịch, đúng hay sai?", LAW)
    assert no.verdict is False and no.rejection.rule == "yesno_qualifier"
    off = yesno.decide_yesno("Chỉ doanh nghiệp được tổ chức tour cho khách du lịch, đúng hay sai?", LAW,
                             frozenset({"yesno_qualifier"}))
    assert off.verdict is True and off.rejection is None
