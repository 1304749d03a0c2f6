"""The answer checks by rule (rag.verify.checks): for every registered rule, a claim it rejects (and that it
is this rule, not another, that does) and a claim it lets through; the registry demands both of every rule.
RAG_DISABLED_CHECKS switches a rule off, by name, and rejects names no rule has."""
from __future__ import annotations

import pytest

from rag.config import Settings
from rag.errors import InvalidSetting
from rag.verify import checks, yesno
from rag.verify.question import classify

PASSAGE = ("Trước đó tỉnh Bình Dương (nay là TP.HCM) từng đăng cai diễn đàn. Trong đó 5 lần liên tiếp được vinh danh là 1 "
           "trong 21 cộng đồng có Chiến lược phát triển Thành phố thông minh tiêu biểu trên thế giới (Smart 21) và lọt danh "
           "sách Top7 trong các năm 2021, 2022; Top1 năm 2023.")
VENUE = ("Ngày 2-12, tại Trung tâm Hội nghị và Triển lãm, phường Bình Dương, TP.HCM diễn ra Hội nghị thượng đỉnh "
         "toàn cầu Diễn đàn Cộng đồng thông minh 2025 do UBND TP.HCM chủ trì.")
FORUM = (VENUE + " Diễn đàn Cộng đồng thông minh 2025 sẽ diễn ra trong hai ngày 2-12 và 3-12. "
         "Trong phiên toàn thể (ngày làm việc thứ hai, 3-12), các đại biểu thảo luận. "
         "Diễn đàn Cộng đồng thông minh 2025 lần đầu tiên được tổ chức tại TP.HCM sau hợp nhất.")
VNCB = ("Đại diện VKS đề nghị tuyên phạt bị cáo Phạm Công Danh 20 năm tù, tổng hợp với bản án 30 năm tù trong giai "
        "đoạn 1, buộc Danh chấp hành mức án là 30 năm tù. Bị cáo Trầm Bê bị đề nghị 4 - 5 năm tù; bị cáo Phan Thành "
        "Mai bị đề nghị 12 - 14 năm tù, tổng hợp là 30 năm tù. Trước đó, sau 3 ngày xét xử, các bị cáo giữ nguyên lời khai.")
ARREST = "Nguyễn Thanh Hoài (sinh ngày 24/10/1978) bị khởi tố ngày 23/7/2018."
JOURNALISTS = "Ông Đặng Quốc Vinh, Phó Chủ tịch UBND tỉnh và ông Nguyễn Xuân Hải, Chủ tịch Hội Nhà báo tỉnh dự lễ."
ROBBERY = "Vụ cướp xảy ra tại xã Thanh Hà, huyện Thanh Ba, tỉnh Phú Thọ."
GIFTS = "Trao 271 suất quà trị giá 138 triệu đồng."
FRAUD = "Tuyết lừa 12 người, chiếm đoạt 1,3 tỷ đồng."
TRIAL = "Bị cáo Nguyễn Đức Mạnh bị đưa ra xét xử. Phiên toà do Thẩm phán Trần Thị Ánh Tuyết làm chủ toạ."
GOLD = "Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng."
SPEECH = "Ông Lâm Đình Thắng, Giám đốc Sở Khoa học và Công nghệ, phát biểu khai mạc."


LAW = "Hợp đồng lữ hành phải được lập thành văn bản. Doanh nghiệp được tổ chức tour cho khách du lịch."
DEPUTY = "Phó Giám đốc Sở Khoa học và Công nghệ TP.HCM Võ Minh Thành cho biết diễn đàn là dấu mốc."
SEARCH = ("Công an thị trấn Nam Đàn đã phối hợp khám xét nơi ở của Võ Mạnh Linh, trú thị trấn Nam Đàn. "
          "Theo tìm hiểu, Linh làm nghề lái tàu ổn định. "
          "Phó Trưởng Công an thị trấn Nam Đàn cho biết không thu được ma tuý tại nhà lái tàu Linh.")


def case(question: str, claim: str, evidence: str, **kw) -> checks.ClaimContext:
    return checks.ClaimContext(classify(question), question, claim, evidence, **kw)


def yesno_case(question: str, passage: str) -> checks.ClaimContext:
    """The context the yes/no rules see: the sentence that decides the question, as rag.verify.yesno finds it."""
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
    "answer_type": (
        [case("Ai chủ trì Diễn đàn Cộng đồng thông minh 2025?", "Trung tâm Hội nghị và Triển lãm, phường Bình Dương, TP.HCM.", VENUE),
         case("Bình Dương đứng Top1 Smart 21 năm nào?", "Bình Dương đứng Top1 Smart 21.", PASSAGE)],
        [case("Ai chủ trì Diễn đàn Cộng đồng thông minh 2025?", "UBND TP.HCM chủ trì diễn đàn.", VENUE)],
    ),
    "birth_date": (
        [case("Ông Nguyễn Thanh Hoài bị khởi tố vào ngày nào?", "Ngày 24/10/1978.", ARREST)],
        [case("Nguyễn Thanh Hoài sinh ngày nào?", "Ngày 24/10/1978.", ARREST),
         case("Ông Nguyễn Thanh Hoài bị khởi tố vào ngày nào?", "Ngày 23/7/2018.", ARREST)],
    ),
    "other_person": (
        [case("Toà tuyên Trầm Bê bao nhiêu năm tù trong đại án của Phạm Công Danh?", "30 năm tù.", VNCB)],
        [case("Phạm Công Danh phải chấp hành bao nhiêu năm tù?", "30 năm tù.", VNCB)],
    ),
    "case_role": (
        [case("Thẩm phán nào làm chủ toạ phiên toà?", "Thẩm phán Nguyễn Đức Mạnh làm chủ toạ phiên toà.", TRIAL)],
        [case("Thẩm phán nào làm chủ toạ phiên toà?", "Thẩm phán Trần Thị Ánh Tuyết.", TRIAL)],
    ),
    "qualified_role": (
        [case("Chủ tịch Hội Nhà báo tỉnh Hà Tĩnh là ai?", "Đặng Quốc Vinh, Phó Chủ tịch UBND tỉnh.", JOURNALISTS)],
        [case("Chủ tịch Hội Nhà báo tỉnh Hà Tĩnh là ai?", "Ông Nguyễn Xuân Hải.", JOURNALISTS)],
    ),
    "admin_unit": (
        [case("Vụ cướp ngân hàng xảy ra ở xã nào?", "Phú Thọ.", ROBBERY)],
        [case("Vụ cướp ngân hàng xảy ra ở xã nào?", "Thanh Hà.", ROBBERY)],
    ),
    "figure_elsewhere": (
        [case("VKS đề nghị bao nhiêu năm tù đối với Trầm Bê?", "3 năm tù.", VNCB)],
        [case("VKS đề nghị bao nhiêu năm tù đối với Trầm Bê?", "4 - 5 năm tù.", VNCB)],
    ),
    "two_figures": (
        [case("Bao nhiêu suất quà được trao và tổng trị giá bao nhiêu?", "271 suất.", GIFTS)],
        [case("Bao nhiêu suất quà được trao và tổng trị giá bao nhiêu?", "271 suất, trị giá 138 triệu đồng.", GIFTS)],
    ),
    "amount_not_count": (
        [case("Tuyết đã lừa bao nhiêu người?", "1,3 tỷ đồng.", FRAUD)],
        [case("Tuyết đã lừa bao nhiêu người?", "12 người.", FRAUD),
         case("Ông Thơ thưởng bao nhiêu tiền?", "60 triệu đồng.", "Ông Thơ thưởng 60 triệu đồng cho ban chuyên án.")],
    ),
    "vaguer_place": (
        [case("Diễn đàn Cộng đồng thông minh 2025 được tổ chức ở đâu cụ thể?", "TP.HCM.", VENUE)],
        [case("Diễn đàn Cộng đồng thông minh 2025 được tổ chức ở đâu cụ thể?",
              "Tại Trung tâm Hội nghị và Triển lãm, phường Bình Dương, TP.HCM.", VENUE)],
    ),
    "other_sentence": (
        [case("Phiên toàn thể của Diễn đàn Cộng đồng thông minh 2025 diễn ra ngày nào?", "2-12.", FORUM)],
        [case("Phiên toàn thể của Diễn đàn Cộng đồng thông minh 2025 diễn ra ngày nào?", "Ngày 3-12.", FORUM),
         case("Diễn đàn Cộng đồng thông minh 2025 diễn ra ngày nào?", "Ngày 2-12.", FORUM)],
    ),
    "tied_candidate": (
        [case("Bình Dương đứng Top1 Smart 21 năm nào?", "Bình Dương đứng Top1 Smart 21 năm 2021.", PASSAGE)],
        [case("Bình Dương đứng Top1 Smart 21 năm nào?", "Bình Dương đứng Top1 năm 2023.", PASSAGE)],
    ),
    "several_candidates": (
        [case("Bình Dương đứng Top1 Smart 21 năm nào?", "Bình Dương lọt Top7 trong các năm 2021, 2022; Top1 năm 2023.", PASSAGE)],
        [case("Bình Dương đứng Top1 Smart 21 năm nào?", "Bình Dương đứng Top1 năm 2023.", PASSAGE),
         case("Bình Dương lọt Top7 Smart 21 trong những năm nào?", "Bình Dương lọt Top7 trong các năm 2021, 2022.", PASSAGE)],
    ),
    "yesno_value": (
        [yesno_case("Có phải Bình Dương lọt Top1 Smart 21 năm 2021 không?", PASSAGE),  # 2023 is tied to Top1
         yesno_case("Nguyễn Thanh Hoài bị khởi tố ngày 24/10/1978 đúng không?", ARREST)],
        [yesno_case("Bình Dương lọt Top7 năm 2022 đúng không?", PASSAGE)],
    ),
    "yesno_qualifier": (
        [yesno_case("Chỉ doanh nghiệp được tổ chức tour cho khách du lịch, đúng hay sai?", LAW)],
        [yesno_case("Doanh nghiệp được tổ chức tour cho khách du lịch, đúng hay sai?", LAW)],
    ),
    "yesno_role": (
        [yesno_case("Ông Võ Minh Thành có phải là Giám đốc Sở Khoa học và Công nghệ TP.HCM không?", DEPUTY)],
        [yesno_case("Ông Võ Minh Thành có phải là Phó Giám đốc Sở Khoa học và Công nghệ TP.HCM không?", DEPUTY)],
    ),
    "yesno_denial": (
        [yesno_case("Công an có thu được ma tuý khi khám xét nhà Võ Mạnh Linh ở thị trấn Nam Đàn không?", SEARCH)],
        [yesno_case("Công an có khám xét nơi ở của Võ Mạnh Linh ở thị trấn Nam Đàn không?", SEARCH)],
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
    assert kinds["vaguer_place"] == {"place"} and kinds["case_role"] == {"agent"}
    assert "yesno" not in kinds["answer_type"] and "yesno" in kinds["reader_span"]
    assert set(checks.YESNO_RULES) == {n for n, k in kinds.items() if k == {"yesno"}}
    assert not set(checks.YESNO_RULES) & set(checks.ANSWER_TYPE_RULES)
    for rule, ctx in FIRES:
        assert ctx.expected.kind in kinds[rule]


def test_the_better_candidate_comes_with_the_rejection():
    (ctx,) = CASES["tied_candidate"][0]
    assert checks.run(ctx).better == "2023"
    (ctx,) = CASES["vaguer_place"][0]
    assert checks.run(ctx).better == "Trung tâm Hội nghị và Triển lãm, phường Bình Dương, TP.HCM"


def test_check_claim_names_the_rule_and_honours_disabled_rules():
    (ctx,) = CASES["tied_candidate"][0]
    verdict = checks.check_claim(ctx.expected, ctx.question, ctx.claim, ctx.evidence)
    assert not verdict.ok and verdict.rule == "tied_candidate" and verdict.better == "2023"
    assert checks.check_claim(ctx.expected, ctx.question, ctx.claim, ctx.evidence, frozenset({"tied_candidate"})).ok


def test_disabled_checks_setting_is_validated_against_the_registry(tmp_path):
    s = Settings(home=tmp_path, disabled_checks="tied_candidate, reader_span")
    assert checks.parse_disabled(s.disabled_checks) == {"tied_candidate", "reader_span"}
    with pytest.raises(InvalidSetting, match="RAG_DISABLED_CHECKS.*no_such_rule.*answer_type"):
        Settings(home=tmp_path, disabled_checks="tied_candidate,no_such_rule")


def test_a_yes_no_rule_switched_off_lets_the_sentence_decide():
    no = yesno.decide_yesno("Chỉ doanh nghiệp được tổ chức tour cho khách du lịch, đúng hay sai?", LAW)
    assert no.verdict is False and no.rejection.rule == "yesno_qualifier"
    off = yesno.decide_yesno("Chỉ doanh nghiệp được tổ chức tour cho khách du lịch, đúng hay sai?", LAW,
                             frozenset({"yesno_qualifier"}))
    assert off.verdict is True and off.rejection is None
