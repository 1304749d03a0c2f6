"""Does a claim answer the question asked? Question kinds, answer types, the candidate the question
points to, answers taken from the evidence, and yes/no decided by the evidence sentence."""
from __future__ import annotations

import pytest

from rag.verify import checks, entities, extract, spans, yesno
from rag.verify import question as vq

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


@pytest.mark.parametrize("question, claim, ok", [
    ("Ai chủ trì Diễn đàn Cộng đồng thông minh 2025?", "Trung tâm Hội nghị và Triển lãm, phường Bình Dương, TP.HCM.", False),
    ("Ai chủ trì Diễn đàn Cộng đồng thông minh 2025?", "UBND TP.HCM chủ trì diễn đàn.", True),
    ("Ai phát biểu khai mạc hội nghị?", "Là ông Lâm Đình Thắng, Giám đốc Sở Khoa học và Công nghệ.", True),
    ("Diễn đàn có bao nhiêu khách mời?", "Các khách mời đến từ Brazil, Thổ Nhĩ Kỳ và Canada.", False),  # items, not a count
    ("Diễn đàn có bao nhiêu khách mời?", "Diễn đàn có hàng trăm khách mời tham dự.", True),
    ("Bình Dương đứng Top1 Smart 21 năm nào?", "Bình Dương đứng Top1 Smart 21.", False),  # repeats, adds no year
    ("Diễn đàn tổ chức tại địa điểm nào ở TP.HCM?", "Diễn đàn được tổ chức tại TP.HCM.", False),  # only the question's city
    ("Diễn đàn tổ chức tại địa điểm nào ở TP.HCM?", "Tại Trung tâm Hội nghị và Triển lãm, phường Bình Dương.", True),
])
def test_answer_type_must_come_from_the_claims_new_words(question, claim, ok):
    assert entities.right_type(vq.classify(question), claim, question) is ok


def test_the_year_next_to_the_questions_term_is_the_answer():
    q = "Bình Dương đứng Top1 Smart 21 năm nào?"
    e = vq.classify(q)
    wrong = checks.check_claim(e, q, "Bình Dương đứng Top1 Smart 21 năm 2021.", PASSAGE)
    assert not wrong.ok and wrong.better == "2023"
    assert checks.check_claim(e, q, "Bình Dương đứng Top1 năm 2023.", PASSAGE).ok
    pasted = checks.check_claim(e, q, "Bình Dương lọt Top7 trong các năm 2021, 2022; Top1 năm 2023.", PASSAGE)
    assert not pasted.ok and "candidates" in pasted.reason
    # asked about Top7, in the plural, the list is the answer
    q7 = "Bình Dương lọt Top7 Smart 21 trong những năm nào?"
    assert checks.check_claim(vq.classify(q7), q7, "Bình Dương lọt Top7 trong các năm 2021, 2022.", PASSAGE).ok


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
    ("Có phải Bình Dương lọt Top1 Smart 21 năm 2021 không?", PASSAGE, False),  # 2021 belongs to Top7
    ("Bình Dương lọt Top7 năm 2022 đúng không?", PASSAGE, True),
    ("Ông Võ Minh Thành có phải là Giám đốc Sở Khoa học và Công nghệ TP.HCM không?",
     "Phó Giám đốc Sở Khoa học và Công nghệ TP.HCM Võ Minh Thành cho biết diễn đàn là dấu mốc.", False),
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


def test_a_place_vaguer_than_the_one_its_sentence_names_is_not_the_answer():
    q = "Diễn đàn Cộng đồng thông minh 2025 được tổ chức ở đâu cụ thể?"
    city = checks.check_claim(vq.classify(q), q, "TP.HCM [1].", VENUE)
    assert not city.ok and city.better == "Trung tâm Hội nghị và Triển lãm, phường Bình Dương, TP.HCM"
    assert checks.check_claim(vq.classify(q), q, "Tại Trung tâm Hội nghị và Triển lãm, phường Bình Dương, TP.HCM.", VENUE).ok


def test_a_date_taken_from_another_sentence_than_the_one_about_the_question_is_not_the_answer():
    forum = (VENUE + " Diễn đàn Cộng đồng thông minh 2025 sẽ diễn ra trong hai ngày 2-12 và 3-12. "
             "Trong phiên toàn thể (ngày làm việc thứ hai, 3-12), các đại biểu thảo luận. "
             "Diễn đàn Cộng đồng thông minh 2025 lần đầu tiên được tổ chức tại TP.HCM sau hợp nhất.")
    q = "Phiên toàn thể của Diễn đàn Cộng đồng thông minh 2025 diễn ra ngày nào?"
    wrong = checks.check_claim(vq.classify(q), q, "2-12 [1].", forum)
    assert not wrong.ok and wrong.better == "3-12"
    assert checks.check_claim(vq.classify(q), q, "Ngày 3-12 [1].", forum).ok
    q = "Diễn đàn Cộng đồng thông minh 2025 diễn ra ngày nào?"  # no one sentence is about it more than another
    assert checks.check_claim(vq.classify(q), q, "Ngày 2-12 [1].", forum).ok


@pytest.mark.parametrize("question, claim, evidence, ok", [
    # crime news gives everyone's birth date: it is not the date of the arrest asked about
    ("Ông Nguyễn Thanh Hoài bị khởi tố vào ngày nào?", "Ngày 24/10/1978.",
     "Nguyễn Thanh Hoài (sinh ngày 24/10/1978) bị khởi tố ngày 23/7/2018.", False),
    ("Ông Nguyễn Thanh Hoài bị khởi tố vào ngày nào?", "Ngày 23/7/2018.",
     "Nguyễn Thanh Hoài (sinh ngày 24/10/1978) bị khởi tố ngày 23/7/2018.", True),
    ("Nguyễn Thanh Hoài sinh ngày nào?", "Ngày 24/10/1978.",
     "Nguyễn Thanh Hoài (sinh ngày 24/10/1978) bị khởi tố ngày 23/7/2018.", True),
    # a deputy is not the head the question names
    ("Chủ tịch Hội Nhà báo tỉnh Hà Tĩnh là ai?", "Đặng Quốc Vinh, Phó Chủ tịch UBND tỉnh.",
     "Ông Đặng Quốc Vinh, Phó Chủ tịch UBND tỉnh và ông Nguyễn Xuân Hải, Chủ tịch Hội Nhà báo tỉnh dự lễ.", False),
    ("Chủ tịch Hội Nhà báo tỉnh Hà Tĩnh là ai?", "Ông Nguyễn Xuân Hải.",
     "Ông Đặng Quốc Vinh, Phó Chủ tịch UBND tỉnh và ông Nguyễn Xuân Hải, Chủ tịch Hội Nhà báo tỉnh dự lễ.", True),
    # "xã nào" wants a commune, not the province
    ("Vụ cướp ngân hàng xảy ra ở xã nào?", "Phú Thọ.", "Vụ cướp xảy ra tại xã Thanh Hà, huyện Thanh Ba, tỉnh Phú Thọ.", False),
    ("Vụ cướp ngân hàng xảy ra ở xã nào?", "Thanh Hà.", "Vụ cướp xảy ra tại xã Thanh Hà, huyện Thanh Ba, tỉnh Phú Thọ.", True),
    # two figures asked, one given; an amount where people are counted
    ("Bao nhiêu suất quà được trao và tổng trị giá bao nhiêu?", "271 suất.", "Trao 271 suất quà trị giá 138 triệu đồng.", False),
    ("Bao nhiêu suất quà được trao và tổng trị giá bao nhiêu?", "271 suất, trị giá 138 triệu đồng.",
     "Trao 271 suất quà trị giá 138 triệu đồng.", True),
    ("Tuyết đã lừa bao nhiêu người?", "1,3 tỷ đồng.", "Tuyết lừa 12 người, chiếm đoạt 1,3 tỷ đồng.", False),
    ("Tuyết đã lừa bao nhiêu người?", "12 người.", "Tuyết lừa 12 người, chiếm đoạt 1,3 tỷ đồng.", True),
    ("Ông Thơ thưởng bao nhiêu tiền?", "60 triệu đồng.", "Ông Thơ thưởng 60 triệu đồng cho ban chuyên án.", True),
    # the defendant is not the judge the question asks for
    ("Thẩm phán nào làm chủ toạ phiên toà?", "Thẩm phán Nguyễn Đức Mạnh làm chủ toạ phiên toà.",
     "Bị cáo Nguyễn Đức Mạnh bị đưa ra xét xử. Phiên toà do Thẩm phán Trần Thị Ánh Tuyết làm chủ toạ.", False),
    ("Thẩm phán nào làm chủ toạ phiên toà?", "Thẩm phán Trần Thị Ánh Tuyết.",
     "Bị cáo Nguyễn Đức Mạnh bị đưa ra xét xử. Phiên toà do Thẩm phán Trần Thị Ánh Tuyết làm chủ toạ.", True),
])
def test_news_answers_of_the_wrong_kind_are_not_shown(question, claim, evidence, ok):
    assert checks.check_claim(vq.classify(question), question, claim, evidence).ok is ok


def test_questions_typed_without_diacritics():
    q = "binh duong dung dau smart 21 nam 2023 dung khong?"  # "đứng đầu": "dau" is not "đâu" here
    assert vq.classify(q).kind == vq.YESNO and vq.classify(q).folded
    assert yesno.decide_yesno("binh duong lot top1 smart 21 nam 2023 dung khong?", PASSAGE)[0] is True
    assert yesno.decide_yesno("binh duong lot top1 smart 21 nam 2021 dung khong?", PASSAGE)[0] is False


VNCB = ("Đại diện VKS đề nghị tuyên phạt bị cáo Phạm Công Danh 20 năm tù, tổng hợp với bản án 30 năm tù trong giai "
        "đoạn 1, buộc Danh chấp hành mức án là 30 năm tù. Bị cáo Trầm Bê bị đề nghị 4 - 5 năm tù; bị cáo Phan Thành "
        "Mai bị đề nghị 12 - 14 năm tù, tổng hợp là 30 năm tù. Trước đó, sau 3 ngày xét xử, các bị cáo giữ nguyên lời khai.")


@pytest.mark.parametrize("question, claim, ok", [
    # the figure that follows another defendant's name is not the one asked about
    ("Toà tuyên Trầm Bê bao nhiêu năm tù trong đại án của Phạm Công Danh?", "30 năm tù.", False),
    ("Phạm Công Danh phải chấp hành bao nhiêu năm tù?", "30 năm tù.", True),
    ("VKS đề nghị bao nhiêu năm tù đối với Trầm Bê?", "4 - 5 năm tù.", True),
    # a figure the source gives with another word after it ("3 ngày") is not that figure of years
    ("VKS đề nghị bao nhiêu năm tù đối với Trầm Bê?", "3 năm tù.", False),
])
def test_a_figure_belongs_to_the_person_the_question_asks_about(question, claim, ok):
    assert checks.check_claim(vq.classify(question), question, claim, VNCB).ok is ok


def test_the_people_a_question_is_about():
    assert entities.persons_asked("Toà tuyên Trầm Bê bao nhiêu năm tù trong đại án của Phạm Công Danh?") == ["Trầm Bê"]
    assert entities.persons_asked("Bình đâm anh Lê Đức V. trên đường Hà Huy Tập, ở huyện Đan Phượng lúc nào?") == ["Lê Đức V"]
    assert entities.persons_asked("Tàu tông nhau khi sắp vào ga Núi Thành hôm nào?") == []
    assert entities.persons_asked("Ai là chủ của Phạm Công Danh?") == ["Phạm Công Danh"]  # an owner, when no one else is named


def test_a_count_of_people_is_not_taken_from_another_figure():
    q = "Hồ Thị Ánh Tuyết đã lừa xin việc cho bao nhiêu người?"
    assert vq.classify(q).unit == "người"
    evidence = "Công an bắt Hồ Thị Ánh Tuyết (36 tuổi) vì lừa xin việc, chiếm đoạt 1,3 tỷ đồng."
    assert not checks.check_claim(vq.classify(q), q, "1,3 tỷ đồng.", evidence).ok
    assert extract.extract(vq.classify(q), q, evidence, min_coverage=0.5) is None  # "36 tuổi" counts years, not people
    counted = "Hồ Thị Ánh Tuyết lừa xin việc cho 12 người, chiếm đoạt 1,3 tỷ đồng."
    assert extract.extract(vq.classify(q), q, counted, min_coverage=0.5)[0][2] == "12"


def test_a_yes_no_claim_another_sentence_denies_is_answered_no():
    passage = ("Công an thị trấn Nam Đàn đã phối hợp khám xét nơi ở của Võ Mạnh Linh, trú thị trấn Nam Đàn. "
               "Theo tìm hiểu, Linh làm nghề lái tàu ổn định. "
               "Phó Trưởng Công an thị trấn Nam Đàn cho biết không thu được ma tuý tại nhà lái tàu Linh.")
    yes, sentence, rejection = yesno.decide_yesno("Công an có thu được ma tuý khi khám xét nhà Võ Mạnh Linh ở thị trấn Nam Đàn không?", passage)
    assert yes is False and "không thu được ma tuý" in sentence and rejection.rule == "yesno_denial"
    yes, _, _ = yesno.decide_yesno("Công an có khám xét nơi ở của Võ Mạnh Linh ở thị trấn Nam Đàn không?", passage)
    assert yes is True


def test_a_ranking_is_the_same_figure_with_or_without_top():
    q = "TP.HCM muốn đưa hệ sinh thái khởi nghiệp lọt vào top bao nhiêu thành phố năng động nhất toàn cầu?"
    evidence = "TP.HCM quyết tâm đưa hệ sinh thái khởi nghiệp sáng tạo lọt vào Top 100 thành phố năng động nhất toàn cầu."
    assert checks.check_claim(vq.classify(q), q, "Top 100 thành phố.", evidence).ok
    assert spans.candidate_key("Top 100") == spans.candidate_key("100") == "100"


def test_a_where_question_answered_with_its_own_city_points_to_the_venue():
    q = "Diễn đàn Cộng đồng thông minh 2025 được tổ chức tại địa điểm nào ở TP.HCM?"
    evidence = VENUE + " Diễn đàn Cộng đồng thông minh 2025 lần đầu tiên được tổ chức tại TP.HCM sau hợp nhất."
    verdict = checks.check_claim(vq.classify(q), q, "TP.HCM.", evidence)
    assert not verdict.ok and verdict.better == "Trung tâm Hội nghị và Triển lãm, phường Bình Dương, TP.HCM"
    assert checks.check_claim(vq.classify(q), q, "Tại Trung tâm Hội nghị và Triển lãm, phường Bình Dương, TP.HCM.", evidence).ok


@pytest.mark.parametrize("question, asks", [
    ("Bài báo của HTV về hội nghị được đăng ngày nào?", True),
    ("Bài viết này xuất bản khi nào?", True),
    ("When was the HTV article on the conference published?", True),
    ("Tỉnh nào đăng cai diễn đàn năm nào?", False),  # "đăng cai" hosts, it does not publish
    ("Hội nghị diễn ra ngày nào?", False),
])
def test_questions_about_when_an_article_came_out(question, asks):
    assert vq.asks_publication(question) is asks
