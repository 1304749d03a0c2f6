"""Does a claim answer the question asked? Question kinds, the candidate the question points to, answers taken
from the evidence, and yes/no decided by the evidence sentence (the rules themselves: tests/test_verify_rules.py)."""
from __future__ import annotations

import pytest

from rag.answer.verify import entities, extract, spans, yesno
from rag.answer.verify import question as vq

RANKINGS = ("Trong đó 5 lần liên tiếp được vinh danh là 1 trong 21 cộng đồng có Chiến lược phát triển Thành phố "
            "thông minh tiêu biểu trên thế giới (Smart 21) và lọt danh sách Top7 trong các năm 2021, 2022; Top1 năm 2023.")
PASSAGE = "Trước đó tỉnh Bình Dương (nay là TP.HCM) từng đăng cai diễn đàn. " + RANKINGS
VENUE = ("Ngày 2-12, tại Trung tâm Hội nghị và Triển lãm, phường Bình Dương, TP.HCM diễn ra Hội nghị thượng đỉnh "
         "toàn cầu Diễn đàn Cộng đồng thông minh 2025 do UBND TP.HCM chủ trì.")


@pytest.mark.parametrize("question, kind", [
    ("Bình Dương đứng Top1 Smart 21 năm nào?", vq.YEAR),
    ("In which year was Binh Duong ranked first?", vq.YEAR),
    ("Phiên toàn thể diễn ra ngày nào?", vq.DATE),
    ("Hội nghị diễn ra khi nào?", vq.TIME),
    ("Diễn đàn có bao nhiêu khách mời?", vq.NUMBER),
    ("Bình Dương đứng Top1 năm bao nhiêu?", vq.YEAR),  # one phrase, one kind
    ("Diễn đàn được tổ chức ở đâu?", vq.PLACE),
    ("dien dan to chuc o dau", vq.PLACE),  # typed without diacritics
    ("Ai chủ trì diễn đàn?", vq.AGENT),
    ("Cơ quan nào chủ trì diễn đàn?", vq.AGENT),
    ("Thẩm phán nào làm chủ toạ phiên toà?", vq.AGENT),
    ("Có phải Bình Dương lọt Top1 năm 2021 không?", vq.YESNO),
    ("Hội nghị có được tổ chức vào chiều 27/11 không?", vq.YESNO),
    ("Is Binh Duong in the Top 7?", vq.YESNO),
    ("Smart 21 là danh sách gì?", vq.ANY),
    ("Mưa lớn ở đâu, bao nhiêu hộ sơ tán?", vq.ANY),  # two questions in one: no single type to demand
])
def test_question_kinds(question, kind):
    assert vq.classify(question).kind == kind


def test_plural_questions_are_not_held_to_one_candidate():
    assert vq.classify("Bình Dương lọt Top7 trong những năm nào?").plural
    assert not vq.classify("Bình Dương đứng Top1 năm nào?").plural


def test_extraction_takes_the_clear_candidate_or_nothing():
    for q in ("Bình Dương đứng Top1 Smart 21 năm nào?", "Bình Dương lọt top 1 smart 21 vào năm nào?"):
        span, sentence = extract.extract(vq.classify(q), q, PASSAGE)
        assert span[2] == "2023" and sentence == RANKINGS
    q = "Bình Dương được vinh danh trong Smart 21 bao nhiêu lần liên tiếp?"
    span, sentence = extract.extract(vq.classify(q), q, PASSAGE)
    assert extract.phrase(vq.classify(q), span, sentence, "vi") == "5 lần"
    q = "TP.HCM muốn đưa hệ sinh thái khởi nghiệp lọt vào top bao nhiêu thành phố năng động nhất?"
    hcm = "TP.HCM quyết tâm đưa hệ sinh thái khởi nghiệp sáng tạo lọt vào Top 100 thành phố năng động nhất toàn cầu."
    assert extract.phrase(vq.classify(q), *extract.extract(vq.classify(q), q, hcm), "vi") == "Top 100 thành phố"
    # a question about something the passage does not hold gets nothing, whatever years stand in it
    q = "Hà Nội đứng Top1 Smart 21 năm nào?"
    assert extract.extract(vq.classify(q), q, PASSAGE) is None
    q = "Bình Dương được công nhận đô thị loại 1 năm nào?"
    assert extract.extract(vq.classify(q), q, PASSAGE) is None  # too few of the question's terms


@pytest.mark.parametrize("question, passage, verdict", [
    ("Có phải Bình Dương đứng Top1 Smart 21 năm 2023 không?", PASSAGE, True),
    ("Bình Dương lọt Top7 năm 2022 đúng không?", PASSAGE, True),
    ("Diễn đàn có được tổ chức tại Hà Nội không?", VENUE, None),  # never mentioned: no verdict
    ("Diễn đàn năm nay có bao nhiêu nhà đầu tư Nhật Bản không?", VENUE, None),
])
def test_yes_no_is_decided_by_the_evidence_sentence(question, passage, verdict):
    yes, sentence, _ = yesno.decide_yesno(question, passage)
    assert yes is verdict
    if verdict is not None:
        assert sentence in passage


def test_people_are_names_that_are_not_places_or_organisations():
    answer = "Là ông Lâm Đình Thắng, Giám đốc Sở Khoa học và Công nghệ Thành phố Hồ Chí Minh [1]."
    assert entities.people(answer) == ["Lâm Đình Thắng"]


def test_a_claim_with_a_qualifier_its_source_lacks_is_not_confirmed():
    law = "Hợp đồng lữ hành phải được lập thành văn bản. Doanh nghiệp được tổ chức tour cho khách du lịch."
    assert yesno.decide_yesno("Chỉ doanh nghiệp được tổ chức tour cho khách du lịch, đúng hay sai?", law)[0] is False
    assert yesno.decide_yesno("Doanh nghiệp được tổ chức tour cho khách du lịch, đúng hay sai?", law)[0] is True


def test_questions_typed_without_diacritics():
    q = "binh duong dung dau smart 21 nam 2023 dung khong?"  # "đứng đầu": "dau" is not "đâu" here
    assert vq.classify(q).kind == vq.YESNO and vq.classify(q).folded
    assert yesno.decide_yesno("binh duong lot top1 smart 21 nam 2023 dung khong?", PASSAGE)[0] is True


def test_a_count_of_people_is_not_taken_from_another_figure():
    q = "Hồ Thị Ánh Tuyết đã lừa xin việc cho bao nhiêu người?"
    assert vq.classify(q).unit == "người"
    evidence = "Công an bắt Hồ Thị Ánh Tuyết (36 tuổi) vì lừa xin việc, chiếm đoạt 1,3 tỷ đồng."
    assert extract.extract(vq.classify(q), q, evidence, min_coverage=0.5) is None  # "36 tuổi" counts years, not people
    counted = "Hồ Thị Ánh Tuyết lừa xin việc cho 12 người, chiếm đoạt 1,3 tỷ đồng."
    assert extract.extract(vq.classify(q), q, counted, min_coverage=0.5)[0][2] == "12"


def test_a_ranking_is_the_same_figure_with_or_without_top():
    assert spans.candidate_key("Top 100") == spans.candidate_key("100") == "100"


@pytest.mark.parametrize("question, asks", [
    ("Bài báo của HTV về hội nghị được đăng ngày nào?", True),
    ("Bài viết này xuất bản khi nào?", True),
    ("When was the HTV article on the conference published?", True),
    ("Tỉnh nào đăng cai diễn đàn năm nào?", False),  # "đăng cai" hosts, it does not publish
    ("Hội nghị diễn ra ngày nào?", False),
])
def test_questions_about_when_an_article_came_out(question, asks):
    assert vq.asks_publication(question) is asks
