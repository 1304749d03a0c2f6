"""Page-furniture removal: on the two real seed pages, and on small snippets in other sites' styles."""
from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from rag.ingest.clean import clean_text, is_dateline, is_furniture_line, normalize

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
HTV = "htv-dot-pha-cong-nghe-2025-11-28.md"
TT = "dien-dan-cong-dong-thong-minh-2025-12-02.md"
HTV_TITLE = "Đột phá công nghệ, kiến tạo thế hệ tương lai cho Thành phố Hồ Chí Minh"
BODY = (
    "Chiều 27/11, Sở Khoa học và Công nghệ tổ chức hội nghị quốc tế về đổi mới sáng tạo "
    "với sự tham dự của hàng trăm chuyên gia trong nước và quốc tế."
)


def raw_body(name: str) -> str:
    """The page text of a corpus file, as it was scraped (front matter cut off)."""
    return (CORPUS / name).read_text(encoding="utf-8").split("---\n", 2)[2]


def paragraphs(text: str) -> list[str]:
    return text.split("\n\n")


def test_htv_page_keeps_the_article_and_drops_the_furniture():
    out = clean_text(raw_body(HTV), HTV_TITLE)
    for fact in ("Lâm Đình Thắng", "Nghị quyết số 57-NQ/TW", "Silver Lion Enterprise Impact Singapore",
                 "Top 100 thành phố năng động nhất toàn cầu", "giai đoạn 2026-2030", "đáng tin cậy và bền vững."):
        assert fact in out
    for furniture in ("Ý kiến của bạn", "Bình luận", "Xem thêm", "Có thể bạn sẽ thích", "Thứ Sáu 28/11/2025",
                      "Kinh tế 09:48", "(HTV) -", "Chuyện chúng tôi"):
        assert furniture not in out
    # the teasers' subjects must not be answerable from this article
    for teaser in ("Vàng đồng loạt tăng", "Diễn đàn Kinh tế mùa Thu", "Chung một tấm lòng", "WEF"):
        assert teaser not in out
    assert HTV_TITLE not in out  # the title (twice on the page) is the title, not a paragraph
    assert paragraphs(out)[0].startswith("Chiều 27/11")
    assert paragraphs(out)[-1].startswith("Hội nghị quy tụ nhiều diễn giả")


def test_tuoitre_page_keeps_the_article_and_drops_credits_and_comment_box():
    out = clean_text(raw_body(TT))
    for fact in ("Võ Minh Thành", "Top1 năm 2023", "Brazil, Thổ Nhĩ Kỳ",
                 "Thảo luận về tiềm năng phát triển của TP.HCM sau hợp nhất", "Smart 21"):
        assert fact in out
    for furniture in ("Ảnh", "T.D.", "Tối đa", "1500 ký tự", "Hiện chưa có bình luận", "người đầu tiên bình luận"):
        assert furniture not in out
    # a caption's text is content (John Jung's role is stated nowhere else); its credit is not
    assert "Ông John Jung - Chủ tịch và Đồng sáng lập Diễn đàn Cộng đồng Thông minh (ICF) phát biểu." in paragraphs(out)
    assert paragraphs(out)[0] == "Các khách mời và nhà đầu tư quốc tế tham dự Diễn đàn Cộng đồng thông minh 2025 do UBND TP.HCM chủ trì."
    assert paragraphs(out)[-1].endswith("Top1 năm 2023.")


def test_comment_phrase_glued_to_the_next_article():
    """The Tuổi Trẻ page ends with the comment prompt and no newline: glued to the next page's header."""
    glued = raw_body(TT).rstrip("\n") + raw_body(HTV)
    assert "bình luậnCông nghệ Thứ Sáu" in glued
    out = clean_text(glued)
    assert out == clean_text(raw_body(TT))
    assert "Lâm Đình Thắng" not in out


def test_glued_comment_prompt_in_another_style():
    page = f"{BODY}\nHiện chưa có bình luận nào, hãy là người đầu tiên bình luậnTiêu đề khác\nNội dung bài khác."
    assert clean_text(page) == BODY


def test_furniture_phrase_glued_after_the_body():
    page = f"{BODY}Ý kiến của bạn\nGửi bình luận\nTên của bạn"
    assert clean_text(page) == BODY


def test_related_block_in_the_tail_truncates_the_article():
    page = "\n".join([
        "Thời sự Thứ Hai, 01/12/2025 - 10:15 (GMT+7)",
        BODY,
        "Theo ban tổ chức, hội nghị năm nay tập trung vào trí tuệ nhân tạo và chuyển đổi số.",
        "Tin liên quan",
        "Giá xăng giảm lần thứ ba liên tiếp",
        "Kinh tế 08:00 30/11/2025",
        "(VNA) - Liên bộ Công Thương - Tài chính vừa điều chỉnh giá xăng dầu.",
    ])
    out = clean_text(page)
    assert paragraphs(out) == [BODY, "Theo ban tổ chức, hội nghị năm nay tập trung vào trí tuệ nhân tạo và chuyển đổi số."]


@pytest.mark.parametrize("heading", ["Xem thêm", "Tin cùng chuyên mục", "Đọc thêm:", "Bài liên quan", "CÓ THỂ BẠN QUAN TÂM"])
def test_every_related_heading_truncates(heading):
    out = clean_text(f"{BODY}\n{heading}\nBão số 15 đổ bộ vào Khánh Hòa\nThể thao 14:00 27/11/2025")
    assert out == BODY


def test_related_box_in_the_middle_drops_only_its_titles():
    second = "Ông Nguyễn Văn An cho biết dự án sẽ được khởi công vào quý 2 năm 2026. " * 3
    page = "\n".join([BODY, "Đọc thêm", "Giá vàng hôm nay lập đỉnh mới", "Hà Nội cấm xe máy từ năm 2030",
                      second, second.replace("An", "Bình"), "Dự án có tổng vốn 5.000 tỷ đồng."])
    out = clean_text(page)
    assert "Giá vàng" not in out and "cấm xe máy" not in out
    assert paragraphs(out) == [BODY, second.strip(), second.replace("An", "Bình").strip(), "Dự án có tổng vốn 5.000 tỷ đồng."]


@pytest.mark.parametrize("link", ["Xem thêm: Giá vàng hôm nay tăng mạnh", ">> Đọc thêm: Bão số 15 đổ bộ vào Khánh Hòa",
                                  "Xem thêm >>> Lo sợ Mỹ, Trung Quốc tăng cường sức mạnh quân sự"])
def test_inline_related_link_is_dropped(link):
    more = "Dự án có tổng vốn 5.000 tỷ đồng, dự kiến hoàn thành trong năm 2027."
    assert paragraphs(clean_text(f"{BODY}\n{link}\n{more}")) == [BODY, more]


@pytest.mark.parametrize("caption, text", [
    ("Tổng thống Mỹ phát biểu tại Nhà Trắng (Ảnh: Reuters)", "Tổng thống Mỹ phát biểu tại Nhà Trắng."),
    ("Quang cảnh hội nghị - Ảnh: NGUYỄN KHÁNH", "Quang cảnh hội nghị."),
    ("Người dân xếp hàng mua vàng – Ảnh: TTXVN", "Người dân xếp hàng mua vàng."),
    ("Lũ lụt ở miền Trung. Ảnh: Lê Hoàng", "Lũ lụt ở miền Trung."),
    ("Giao diện ứng dụng mới - Ảnh chụp màn hình", "Giao diện ứng dụng mới."),
    ("Ảnh minh họa", None),
    ("Ảnh: Internet", None),
    ("Nguồn ảnh: Bộ Y tế", None),
    ("Lực lượng cứu hộ tìm kiếm nạn nhân - Nguồn: Reuters", "Lực lượng cứu hộ tìm kiếm nạn nhân."),
])
def test_photo_captions_keep_their_text_and_lose_the_credit(caption, text):
    assert paragraphs(clean_text(f"{caption}\n{BODY}")) == ([text] if text else []) + [BODY]
    assert is_furniture_line(caption)  # never a title as it stands


@pytest.mark.parametrize("line", [
    "Bình luận về quyết định này, ông Trần Văn Bình nói rằng đây là bước tiến lớn.",
    "Nhiều độc giả đã để lại bình luận dưới bài viết và gửi ảnh về tòa soạn.",
    "Ông Nguyễn Văn A (ảnh) cho biết dự án sẽ hoàn thành trong năm nay.",
    "Hình ảnh xúc động tại lễ tang được nhiều người chia sẻ trên mạng xã hội.",
    "Ảnh hưởng của bão số 15 khiến hàng nghìn hộ dân mất điện.",
    "Xem thêm các quy định mới tại cổng thông tin của Bộ Tài chính.",
    "Tin mới nhất từ Bộ Y tế cho thấy số ca mắc giảm mạnh.",
    "Hàng không tăng giá từ 1/10/2017",
    "Ngày 2-12-2025, tại Hà Nội diễn ra hội nghị tổng kết.",
])
def test_body_lines_that_merely_mention_furniture_words_are_kept(line):
    assert paragraphs(clean_text(f"{BODY}\n{line}")) == [BODY, line]
    assert not is_furniture_line(line)


@pytest.mark.parametrize("line", ["Công nghệ Thứ Sáu 28/11/2025, 07:36", "Kinh tế 09:48 27/11/2025",
                                  "Thời sự Thứ Hai, 01/12/2025 - 10:15 (GMT+7)", "28/11/2025 07:36 GMT+7", "27/11/2025"])
def test_page_header_lines_are_datelines(line):
    assert is_dateline(line)
    assert clean_text(f"{line}\n{BODY}") == BODY


def test_comment_counter_near_the_top_is_dropped_without_truncating():
    assert clean_text(f"Bình luận (12)\n{BODY}\nĐoạn thứ hai của bài.") == f"{BODY}\n\nĐoạn thứ hai của bài."


def test_repeated_title_and_lines():
    title = "Giá vàng  tăng mạnh lần thứ ba"
    page = f"Giá vàng tăng mạnh lần thứ ba\n# GIÁ VÀNG TĂNG MẠNH LẦN THỨ BA\n{BODY}\n{BODY}\nHà Nội\nHà Nội"
    assert paragraphs(clean_text(page, title)) == [BODY, "Hà Nội", "Hà Nội"]  # short lines may recur
    assert paragraphs(clean_text(page)) == ["Giá vàng tăng mạnh lần thứ ba", BODY, "Hà Nội", "Hà Nội"]


def test_whitespace_unicode_and_paragraphs():
    decomposed = unicodedata.normalize("NFD", "Thành phố Hồ Chí Minh")
    page = f"\ufeff  {decomposed}\u00a0 có\t\tmưa\u200b lớn.  \r\n\r\n\n\nDòng   hai.\n"
    assert clean_text(page) == "Thành phố Hồ Chí Minh có mưa lớn.\n\nDòng hai."
    assert normalize(f" a\n\n b\u00a0c ") == "a b c"


def test_cleaning_is_idempotent():
    for name, title in ((HTV, HTV_TITLE), (TT, None)):
        once = clean_text(raw_body(name), title)
        assert clean_text(once, title) == once
