"""Identifiers by pattern: phones, e-mail, URLs, IPs, addresses, postcodes, dates, ages, codes.

Plain compiled regular expressions, no dictionary lookups beyond
:mod:`privguard.text.vocab`. They complement presidio's recognizers where those
are too strict for de-identification:

* **phone numbers by shape, valid or not**: HIPAA lists telephone numbers
  whether or not they are valid under the numbering plan, so ``+1 555 248 3435``
  goes as surely as ``+1 617 253 3435`` (presidio keeps only valid numbers);
  numbers after ``tel``/``phone``/``fax``/``pager``/``ext`` whatever their shape;
* e-mail addresses (any domain, ``.local`` included), URLs, IPv4 and IPv6;
* street addresses: a house number and words ending in a street word
  (``12 Elm Street``, ``4410 N. Oak Park Ave, Apt 3``), continental forms
  (``Hauptstraße 12``, ``12 rue de la Paix``), ``PO Box 55``;
* postcodes next to a city or state: ``Boston, MA 02115``, ``CA 94110-1234``,
  ``zip 02115``, ``SW1A 1AA`` (UK) and ``K1A 0B1`` (Canada) after a comma;
* dates in text in every common form (``3 May 2021``, ``May 3rd``, ``2021/5/3``,
  ``03-MAY-2021``, ``5/3/21``, ISO date-times), but not a bare month (``MAY``);
* ages over 89 (``92 yo``, ``age 95``, ``93-year-old``, ``091Y``): a HIPAA Safe
  Harbor identifier;
* **codes after an identifier keyword** (:data:`privguard.text.vocab.ID_KEYWORDS`:
  ``Ref``, ``protocol``, ``order``, ``case``, ``acc``, ``MRN``...): the next token is an
  identifier when it has 5+ characters mixing letters and digits, 4+ digits, or 5+
  capitals that are not an English or clinical word (``Ref UXQTYG``, ``order
  RQ-48213``; not ``protocol ROUTINE`` or ``protocol CTPA``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from privguard.text import vocab

Span = tuple[int, int, str]

_PHONE_SHAPES = re.compile(
    r"""
    (?<![\w.+/-])
    (?:
        \+\d{1,3}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d{1,4}(?:[\s.\-]\d{1,4}){1,5}      # +CC groups
      | \+\d{8,14}
      | \(\d{3}\)\s?\d{3}[\s.\-]?\d{4}                                          # (617) 253-3435
      | \d{3}[.\-]\d{3}[.\-]\d{4}                                               # 617-253-3435
      | \d{3}\s\d{3}\s\d{4}                                                     # 617 253 3435
      | (?:1|001)[\s.\-]\(?\d{3}\)?[\s.\-]?\d{3}[\s.\-]\d{4}                     # 1-800-555-0100, 001-...
      | 0\d(?:[\s.\-]\d{2}){4}                                                  # 06 12 34 56 78
      | 0\d{2,4}[\s/\-]\d{3,4}[\s\-]?\d{2,5}                                    # 030 1234 5678, 0171/1234567
    )
    (?:\s*(?:ext\.?|x|extension)\s*\d{1,6})?
    (?![\w.]\d|\w)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_PHONE_KEYWORD = re.compile(
    r"\b(?:tel|telephone|phone|ph|mobile|mob|cell|fax|pager|beeper|bleep|ext|extension|call|contact|"
    r"tél|telefon|handy|tfno|teléfono)\b\.?\s*(?:no\.?|number|#)?\s*[:#.]?\s*"
    r"(\+?[\d(][\d()\s.\-/]{2,22}\d)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+(?![\w-])")
_URL = re.compile(
    r"\b(?:https?|ftp|dicomweb|wado)://[^\s<>\"']+|\bwww\.[\w-]+(?:\.[\w-]+)+[^\s<>\"']*", re.IGNORECASE
)
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.]|-\d)"
)
#: Full or ``::``-compressed IPv6; three groups (``07:41:13``) are a time, not an address.
_IPV6 = re.compile(
    r"(?<![\w:])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){1,6}(?::[0-9a-f]{1,4}){1,6}"
    r"|(?:[0-9a-f]{1,4}:){1,7}:|::(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4})(?![\w:])",
    re.IGNORECASE,
)

_W = r"[^\W\d_][\w'’.\-]*"
_STREET = "|".join(sorted((re.escape(w) for w in vocab.STREET_WORDS), key=len, reverse=True))
_UNIT = r"(?:,?\s*(?:apt|apartment|suite|ste|unit|fl|floor|flat|room|rm|bldg|\#)\.?\s*\#?\s*[\w\-]{1,6})?"
_UNIT_ANYCASE = (
    r"(?:,?\s*(?i:apt|apartment|suite|ste|unit|fl|floor|flat|room|rm|bldg|\#)\.?\s*\#?\s*[\w\-]{1,6})?"
)
_ADDRESS = re.compile(
    rf"""(?<![\w.])\d{{1,6}}[A-Za-z]?(?:-\d{{1,5}})?,?\s+(?:[NSEW]\.?\s+|north\s+|south\s+|east\s+|west\s+)?
        (?P<words>(?:{_W}\s+){{1,3}})(?:{_STREET})(?![\w])\.?{_UNIT}""",
    re.VERBOSE | re.IGNORECASE,
)
_STREET_CAP = "|".join(
    sorted((w.capitalize() for w in vocab.STREET_WORDS_CAPITALISED), key=len, reverse=True)
)
_CAP_WORD = r"(?:[A-Z][\w'’\-]*|(?:St|Mt|Ft)\.)"
_ADDRESS_CAPITALISED = re.compile(
    rf"""(?<![\w.])\d{{1,6}}[A-Za-z]?,?\s+(?:[NSEW]\.?\s+)?(?P<words>(?:{_CAP_WORD}\s+){{1,3}})(?:{_STREET_CAP})
        (?![\w])\.?{_UNIT_ANYCASE}""",
    re.VERBOSE,
)
_MILITARY = re.compile(
    r"\b(?:(?:PSC|CMR|Unit)\s+\d{3,5},?\s+Box\s+\d{3,5}|(?:USNS|USNV|USS|USCGC)\s+[A-Z][a-z]+"
    r"|(?:APO|FPO|DPO)\s+(?:AA|AE|AP)\s+\d{5})\b"
)


_ORG_WORD = r"(?:[A-Z][\w'’\-]*\.?|St\.?|of|and|&|the|de|la)"
_INSTITUTION = re.compile(
    rf"(?<![\w])(?:{_ORG_WORD},?\s+){{1,6}}(?:Hospitals?|Medical\s+Cent(?:er|re)|Health\s+Cent(?:er|re)|Clinic|Infirmary"
    r"|Health\s+System|Healthcare|Health\s+Care|Cancer\s+Cent(?:er|re)|Imaging\s+Cent(?:er|re)|Radiology\s+Associates"
    r"|Medical\s+Group|Surgery\s+Cent(?:er|re)|Klinikum|Krankenhaus|Hôpital|Hopital|Clinique|Ospedale|Policlinico)\b"
    r"|(?<![\w])(?:University|Hôpital|Hopital|Ospedale|Clinique|Hospital|Klinikum)\s+(?:of\s+|de\s+|du\s+|des\s+|di\s+)?"
    r"(?:[A-Z][\w'’\-]*\s*){1,3}"
)
_GENERIC_ORG = frozenset(
    [
        "st",
        "st.",
        "saint",
        "of",
        "and",
        "&",
        "the",
        "de",
        "la",
        "university",
        "general",
        "community",
        "regional",
        "memorial",
        "county",
        "city",
        "medical",
        "health",
        "children's",
        "childrens",
        "women's",
        "womens",
        "veterans",
        "teaching",
        "district",
        "national",
        "state",
        "central",
        "north",
        "south",
        "east",
        "west",
        "new",
        "upper",
        "lower",
        "main",
        "outside",
        "other",
        "local",
        "referring",
    ]
)


def _institutions(text: str) -> list[Span]:
    out = []
    for m in _INSTITUTION.finditer(text):
        words = re.findall(r"[^\W\d_][\w'’\-]*", m.group())
        specific = [
            w
            for w in words
            if w.lower() not in _GENERIC_ORG
            and w.lower() not in vocab.CLINICAL
            and w.lower() not in vocab.FUNCTION
            and w.lower()
            not in ("hospital", "hospitals", "center", "centre", "clinic", "infirmary", "system")
        ]
        if specific:
            out.append((m.start(), m.end(), "LOCATION"))
    return out


def _addresses(text: str) -> list[Span]:
    out = []
    for rx in (_ADDRESS, _ADDRESS_CAPITALISED):
        for m in rx.finditer(text):
            words = re.findall(r"[^\W\d_]+", m.group("words").lower())
            street = (
                text[m.end("words") :].split(None, 1)[0].strip(".,").lower()
                if m.end("words") < len(text)
                else ""
            )
            medical = street in vocab.STREET_WORDS_CLINICAL or rx is _ADDRESS
            if medical and any(w in vocab.CLINICAL for w in words):
                continue  # "3 Small Bowel Loop", "2 Bone Spur", "5 mm Iliac Crest": anatomy, not a street
            out.append((m.start(), m.end(), "LOCATION"))
    return out


_ADDRESS_CONTINENTAL = re.compile(
    r"(?<!\w)[^\W\d_][\w\-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|laan|straat|gatan|vej|veien|utca)"
    r"\s+\d{1,5}[a-z]?\b"
    r"|(?<!\w)(?:rue|avenue|boulevard|chemin|via|viale|piazza|corso|calle|avenida|rua|ulica)\s+(?:[\w'’\-]+\s+){0,4}\d{1,5}[a-z]?\b"
    r"|(?<![\w.])\d{1,5},?\s+(?:rue|avenue|boulevard|bd|chemin|allée|place|impasse|via|calle)\s+(?:d[eu']\s*|de\s+la\s+|des\s+)?[^\W\d_][\w'’\-]*(?:\s+[^\W\d_][\w'’\-]*){0,3}",
    re.IGNORECASE,
)
_PO_BOX = re.compile(r"\b(?:P\.?\s?O\.?\s?Box|Post\s+Office\s+Box|Postfach|BP)\s*\d{1,6}\b", re.IGNORECASE)
_STATES = "|".join(sorted(vocab.US_STATES))
_STATE_NAMES = "|".join(sorted(vocab.US_STATE_NAMES, key=len, reverse=True))
_CITY = r"(?:[A-Z][a-z][\w'’.\-]*(?:\s+[A-Z][a-z][\w'’.\-]*){0,2},?\s+)?"
_US_ZIP = re.compile(
    rf"{_CITY}(?:\b(?:{_STATES})\b\.?|\b(?i:{_STATE_NAMES})\b),?\s+\d{{5}}(?:-\d{{4}})?(?!\d)"
)
_ZIP_KEYWORD = re.compile(
    r"\b(?:zip|zipcode|zip\s+code|postcode|postal\s+code|post\s+code|plz|cp|cap)\b"
    r"\.?\s*[:#]?\s*([A-Z0-9][A-Z0-9\- ]{2,9}[A-Z0-9])",
    re.IGNORECASE,
)
_UK_POSTCODE = re.compile(r"(?:,\s*|\b(?:London|UK)\s+)([A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2})\b")
_CA_POSTCODE = re.compile(
    r"(?:,\s*|\b(?:ON|QC|BC|AB|MB|SK|NS|NB|NL|PE|YT|NT|NU)\s+)([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]\s?\d[ABCEGHJ-NPRSTV-Z]\d)\b"
)
_EU_POSTCODE_CITY = re.compile(
    r"(?:,\s*|\b(?:D|F|I|A|CH|NL|B)-)(\d{4,5}\s+[A-Z][a-zà-ÿ]+(?:[\s\-][A-Z][a-zà-ÿ]+)?)\b"
)

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|janv(?:ier)?|févr(?:ier)?|mars|avr(?:il)?|mai|juin|juil(?:let)?"
    r"|août|sept(?:embre)?|déc(?:embre)?|januar|februar|märz|juni|juli|okt(?:ober)?|dez(?:ember)?|enero|febrero"
    r"|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre)"
)
_ORD = r"(?:st|nd|rd|th|er|\.)?"
_DATES = re.compile(
    rf"""(?<![\w/.\-])(?:
        \d{{4}}[-/.]\d{{1,2}}[-/.]\d{{1,2}}(?:[T\s]\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?(?:Z|[+-]\d{{2}}:?\d{{2}})?)?
      | \d{{1,2}}[-/.]\d{{1,2}}[-/.](?:\d{{4}}|\d{{2}})
      | (?:[0-2]?\d|3[01]){_ORD}[\s\-./]*(?:of\s+)?{_MONTH}\.?(?:[\s\-./,]+(?:\d{{4}}|'?\d{{2}}))?
      | {_MONTH}\.?[\s\-./]+\d{{1,2}}{_ORD}(?:,?[\s\-./]+(?:\d{{4}}|'\d{{2}}))?
      | {_MONTH}\.?[\s\-./,]+\d{{4}}
      | (?:19|20)\d{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:\d{{4,6}}(?:\.\d+)?)?
      | (?:19|20)\d{{2}}年\d{{1,2}}月(?:\d{{1,2}}日)?
      | \d{{1,2}}月\d{{1,2}}日
      | (?:19|20)\d{{2}}년\s?\d{{1,2}}월(?:\s?\d{{1,2}}일)?
    )(?![\w/])""",
    re.VERBOSE | re.IGNORECASE,
)
_AGE = re.compile(
    r"""(?<![\w.])(?:
        (?:age[sd]?|aged|âge|alter|edad)\s*[:=]?\s*(\d{2,3})(?!\d)(?:\s*(?:y|yrs?|years?|yo|y/o|j|ans|años|a)\b\.?)?
      | (\d{2,3})\s*[-\s]?(?:years?[-\s]old|yrs?[-\s]old|y\.?o\.?|y/o|yrs?|years?|yo|jährig|jahre|ans|años)\b
      | 0?(\d{2,3})Y\b
    )""",
    re.VERBOSE | re.IGNORECASE,
)
_KEYWORDS = "|".join(sorted((re.escape(k) for k in vocab.ID_KEYWORDS), key=len, reverse=True))
_KEYWORD_CODE = re.compile(
    rf"(?<![\w])(?:{_KEYWORDS})(?![\w])(?P<gap>\s*(?:no\.?|nr\.?|num(?:ber)?|\#|id)?\s*[:#=.\-]?\s*)"
    r"(?=(?P<code>[A-Za-z0-9][A-Za-z0-9\-_/.]*[A-Za-z0-9]|\d{4,}))",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_SSN = re.compile(r"(?<![\w\-])\d{3}-\d{2}-\d{4}(?![\w\-])")
#: DEA registration numbers (two letters, seven digits) and labelled licence numbers.
_LICENSE = re.compile(r"\b[ABCDEFGHJKLMPRSTUX][A-Z9]\d{7}\b")
_NUMBER_RUN = re.compile(r"(?<![\w.])\d{6,}(?![\w.]\d)")


def _code_like(token: str, english: frozenset[str]) -> bool:
    """A token that can only be an identifier after an identifier keyword."""
    core = re.sub(r"[\-_/.]", "", token)
    if len(core) < 4:
        return False
    digits = sum(c.isdigit() for c in core)
    letters = sum(c.isalpha() for c in core)
    low = core.lower()
    if re.fullmatch(r"\d+(?:\.\d+)?(?:mm|cm|ml|mg|kv|kvp|mas|ma|s|sec|min|t|hz|kg|g|mci|mbq)", low):
        return False  # a measurement
    if letters == 0:
        return digits >= 4
    if digits == 0:
        if len(core) < 5 or not token.isupper():
            return False
        return low not in english and low not in vocab.CLINICAL and low not in vocab.PROTOCOL_ACRONYMS
    if len(core) < 5:
        return False
    if re.fullmatch(r"(?:t[12]w?|pd|3d|2d|4d|\d+t|\d+(?:mm|cm|ch)|dwi\d+|b\d+)+", low):
        return False  # sequence and coil names: T1W3D, 3T, 32CH
    runs = [r for r in re.findall(r"[a-z]+", low) if len(r) > 1]
    if runs and all(r in vocab.CLINICAL or r in vocab.PROTOCOL_ACRONYMS for r in runs):
        return False  # CHEST5MM, BRAIN3D: clinical words with numbers
    return digits >= 1


def _keyword_codes(text: str, english: frozenset[str]) -> list[Span]:
    out: list[Span] = []
    for m in _KEYWORD_CODE.finditer(text):
        code = m.group("code")
        if _code_like(code, english):
            out.append((m.start("code"), m.end("code"), "ID"))
    return out


def _groups(rx: re.Pattern[str], text: str, entity: str, group: int = 0) -> list[Span]:
    return [
        (m.start(group), m.end(group), entity) for m in rx.finditer(text) if m.end(group) > m.start(group)
    ]


_EXTENSION = re.compile(r"\s*(?:ext\.?|x|extension)\s*\d{1,6}$", re.IGNORECASE)


def _phones(text: str) -> list[Span]:
    out = []
    for m in _PHONE_SHAPES.finditer(text):
        number = _EXTENSION.sub("", m.group())
        if 7 <= sum(c.isdigit() for c in number) <= 16:
            out.append((m.start(), m.end(), "PHONE_NUMBER"))
    for m in _PHONE_KEYWORD.finditer(text):
        if sum(c.isdigit() for c in m.group(1)) >= 4:
            out.append((m.start(1), m.end(1), "PHONE_NUMBER"))
    return out


_MODAL_MAY = re.compile(r"\bmay\b")
_SENTENCE_END = re.compile(r"\d+\.\s")
_YEAR = re.compile(r"\d{4}|'\d{2}")


_NUMERIC_DATE = re.compile(r"(\d{1,4})[-/.](\d{1,2})[-/.](\d{1,4})")


def _plausible_date(s: str) -> bool:
    """A numeric date needs a month and a day in range in some order (``5.00.02`` is a version)."""
    m = _NUMERIC_DATE.fullmatch(s.strip())
    if not m:
        return True
    a, b, c = (int(x) for x in m.groups())
    if len(m.group(1)) == 4:  # y-m-d
        return 1 <= b <= 12 and 1 <= c <= 31
    return (1 <= a <= 12 and 1 <= b <= 31) or (1 <= b <= 12 and 1 <= a <= 31)


def _dates(text: str) -> list[Span]:
    out = []
    for m in _DATES.finditer(text):
        if not _plausible_date(m.group()):
            continue
        # "2 may show", "may 2 lesions": the verb, not the month (no year, lower case)
        if _MODAL_MAY.search(m.group()) and not _YEAR.search(m.group()):
            continue
        if _SENTENCE_END.match(m.group()) and not _YEAR.search(m.group()):
            continue  # "Apt 4. May need": a sentence ends, no German "4. Mai" without a year
        out.append((m.start(), m.end(), "DATE_TIME"))
    return out


def _ages(text: str) -> list[Span]:
    out = []
    for m in _AGE.finditer(text):
        value = next(g for g in m.groups() if g)
        if int(value) > 89:
            out.append((m.start(), m.end(), "AGE"))
    return out


def find_patterns(text: str, english: frozenset[str] = frozenset()) -> list[Span]:
    """Every pattern match in ``text`` as (start, end, entity); overlaps are left to the caller.

    Every pattern but e-mail, URLs, IPv6 and capital codes after a keyword needs a
    digit, so text without one (most descriptors) runs only those four.
    """
    out: list[Span] = []
    if "@" in text:
        out += _groups(_EMAIL, text, "EMAIL_ADDRESS")
    if "://" in text or "www." in text.lower():
        out += _groups(_URL, text, "URL")
    if text.count(":") >= 2:
        out += _groups(_IPV6, text, "IP_ADDRESS")
    out += _keyword_codes(text, english)
    if (
        "Hosp" in text
        or "Cent" in text
        or "Clini" in text
        or "Univ" in text
        or "Health" in text
        or "Klin" in text
    ):
        out += _institutions(text)
    if not _DIGIT.search(text):
        return out
    finders: list[Callable[[], list[Span]]] = [
        lambda: _groups(_IPV4, text, "IP_ADDRESS"),
        lambda: _phones(text),
        lambda: _addresses(text),
        lambda: _groups(_MILITARY, text, "LOCATION"),
        lambda: _groups(_ADDRESS_CONTINENTAL, text, "LOCATION"),
        lambda: _groups(_PO_BOX, text, "LOCATION"),
        lambda: _groups(_US_ZIP, text, "LOCATION"),
        lambda: _groups(_ZIP_KEYWORD, text, "LOCATION", 1),
        lambda: _groups(_UK_POSTCODE, text, "LOCATION", 1),
        lambda: _groups(_CA_POSTCODE, text, "LOCATION", 1),
        lambda: _groups(_EU_POSTCODE_CITY, text, "LOCATION", 1),
        lambda: _dates(text),
        lambda: _ages(text),
        lambda: _groups(_NUMBER_RUN, text, "ID"),
        lambda: _groups(_SSN, text, "US_SSN"),
        lambda: _groups(_LICENSE, text, "MEDICAL_LICENSE"),
    ]
    for f in finders:
        out += f()
    return out
