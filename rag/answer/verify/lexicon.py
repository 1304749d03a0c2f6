"""The word lists the checks use, as data apart from the logic that reads them: places, organisations, units,
qualifiers, stop words. Changing a list changes what the checks accept (measured in eval/RESULTS.md): keep them
as they are unless a measurement says otherwise. The lists only deleted rules read (venues, administrative units,
family names, roles, court roles, money units, negations) went with those rules."""
from __future__ import annotations

import re

from rag import text

# ------------------------------------------------------------------ letters and names

# The upper-case letters of Vietnamese: a name is two or more capitalised syllables, or an acronym.
UPPER = "A-ZÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬĐÈÉẺẼẸÊỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢÙÚỦŨỤƯỪỨỬỮỰỲÝỶỸỴ"
# Titles that open a name and are not part of it ("Ông Võ Minh Thành" -> "Võ Minh Thành").
HONORIFIC = re.compile(r"^(?:Ông|Bà|Anh|Chị|Cô|Ngài|Mr\.?|Mrs\.?|Ms\.?|Dr\.?)\s+")

# Function words and question words carry no claim; leaving them out keeps coverage about content.
STOPWORDS = set(
    """và của là có được các những một này đó cho với trong tại theo từ đã đang sẽ để về như khi thì mà
    nhưng hay hoặc cũng rất nhiều ra vào lên không chưa ai gì nào đâu sao bao nhiêu mấy bởi vì nên do
    ông bà anh chị họ nó này kia ấy năm ngày tháng người việc điều đến trên dưới sau trước bài báo theo
    nguồn cho_biết the a an of to in on at and or is are was were be by for with as that this it its from""".split()
)
QUESTION_WORDS = set("ai gì nào đâu bao nhiêu mấy khi giờ sao thế who what where when which how why whom".split())

# ------------------------------------------------------------------ places

# Frequent place names: a name that is one of them is not a person's.
PLACES = {text.fold_diacritics(p.strip()) for p in """
tp.hcm, tphcm, hồ chí minh, sài gòn, hà nội, đà nẵng, hải phòng, cần thơ, huế, bình dương, đồng nai, bà rịa, vũng tàu,
long an, tây ninh, bình phước, khánh hòa, nha trang, lâm đồng, đà lạt, quảng ninh, hạ long, nghệ an, thanh hóa,
quảng nam, quảng ngãi, bình định, phú yên, gia lai, kon tum, đắk lắk, đắk nông, bắc ninh, bắc giang, hải dương,
hưng yên, thái bình, nam định, ninh bình, hà nam, vĩnh phúc, phú thọ, thái nguyên, lào cai, yên bái, sơn la,
điện biên, lai châu, hà giang, cao bằng, lạng sơn, tuyên quang, bắc kạn, hòa bình, quảng bình, quảng trị, hà tĩnh,
bình thuận, ninh thuận, tiền giang, bến tre, vĩnh long, trà vinh, đồng tháp, an giang, kiên giang, hậu giang,
sóc trăng, bạc liêu, cà mau, việt nam, trung quốc, mỹ, hoa kỳ, nhật bản, hàn quốc, singapore, thái lan, lào,
campuchia, nga, pháp, đức, anh, úc, canada, brazil, ấn độ, tây ban nha, thổ nhĩ kỳ, ý, indonesia, malaysia,
philippines, châu á, châu âu, đông nam á, vietnam, china, japan, korea, thailand, france, germany, russia, india,
spain, turkey, australia, europe, asia, ho chi minh city, hanoi, binh duong
""".replace("\n", " ").split(",") if p.strip()}
# ------------------------------------------------------------------ people and organisations

ORG_WORDS = re.compile(
    r"\b(sở|bộ|ubnd|ủy ban|uỷ ban|hđnd|công ty|tập đoàn|ngân hàng|trường|viện|đại học|tòa án|toà án|tand|vks|vksnd|"
    r"công an|cục|tổng cục|ban|hội(?! (?:nghị|thảo|trường|chợ))|hiệp hội|đài|báo|quỹ|liên đoàn|câu lạc bộ|clb|đảng|chính phủ|quốc hội|"
    r"doanh nghiệp|tổ chức|cơ quan|đơn vị|department|ministry|committee|company|group|bank|university|council|"
    r"government|court|police|organi[sz]ation|agency|forum)\b",
    re.I,
)
# ------------------------------------------------------------------ numbers, dates and units

MONTHS_EN = "january|february|march|april|may|june|july|august|september|october|november|december"
NUM_WORDS_VI = "một hai ba bốn sáu bảy tám chín mười mươi trăm nghìn ngàn triệu tỷ tỉ chục".split()
NUM_WORDS_EN = "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred hundreds thousand thousands million millions billion billions dozen dozens".split()
# Words that end a number's unit ("5 lần và ..."): function words, never what is counted.
UNIT_STOP = set("và của trong với là thì mà để cho từ đến trên dưới tại ở theo khi".split())
# Function words elsewhere, units after "bao nhiêu": "bao nhiêu người", "bao nhiêu năm tù".
COUNT_NOUNS = {"người", "năm", "ngày", "tháng"}
# What gives a date as someone's birth ("SN 1990", "sinh ngày 24/10/1978").
BIRTH = re.compile(r"\b(?:sn|sinh(?: ngày| năm)?|born(?: on| in)?)\s*$", re.I)

# ------------------------------------------------------------------ yes / no

YESNO_WORDS = {"phải", "chăng", "liệu", "đúng", "sai", "hay", "không", "chưa"}
# Words that narrow or strengthen a claim: a claim carrying one that the deciding sentence lacks says more
# than the source does ("chỉ", "nhất thiết", "có thể", "vẫn", "hơn": how false statements differ from the law).
QUALIFIER = re.compile(
    r"\b(chỉ|duy nhất|nhất thiết|bắt buộc|có thể|không cần|không phải|vẫn|luôn|mọi|tất cả|hơn|nhất|thêm|ngay|"
    r"only|must|always|never|all|every|more|less|most)\b", re.I)

# ------------------------------------------------------------------ articles

# "đăng" but not "đăng cai" (host), "đăng ký" (register), "đăng quang" (be crowned)
PUBLISHED = re.compile(r"\b(?:đăng(?! cai| ký| kí| nhập| quang)|xuất bản|phát hành|published|posted|came out)\b", re.I)
ARTICLE = re.compile(r"\b(?:bài|bản tin|tin|article|story|report|piece)\b", re.I)
