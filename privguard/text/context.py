"""PHI context: the identifying values a file itself carries, gathered before scrubbing.

Free text (descriptions, comments, SR text, OCR'd pixel text) is checked
against these values, which is far more reliable than guessing: the name in
"CT chest for John Q Example" is found because the header says the patient is
``Example^John^Q``. The context is built from the original dataset, kept in
memory only, and dropped once the file is done. It is never logged.

Which attributes count is decided by the standard: every attribute of PS3.15
Table E.1-1 with a person-name, date or short-text VR is a source.
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from privguard.header.standard import e1_1

#: Short-text VRs whose values are terms to look for (IDs, names of places and organisations).
_TERM_VRS = frozenset({"LO", "SH", "CS", "AE", "UC"})
#: Keywords that hold something other than an identifier-like term; never used as terms.
_NOT_TERMS = frozenset({"PatientSex", "PatientAge", "SpecificCharacterSet"})
_ID_HINT = re.compile(r"(ID|Number|Identifier|Code)s?$")
_PHONE_HINT = re.compile(r"Telephone|Telecom")
_ADDRESS_HINT = re.compile(r"Address|Residence|Location|Country|Region")
#: Words too generic to stand alone as evidence of an institution or address.
GENERIC_WORDS = frozenset(
    [
        "hospital",
        "hospitals",
        "medical",
        "medicine",
        "center",
        "centre",
        "clinic",
        "clinics",
        "university",
        "universitaire",
        "health",
        "healthcare",
        "radiology",
        "imaging",
        "department",
        "dept",
        "institute",
        "institution",
        "general",
        "regional",
        "community",
        "memorial",
        "county",
        "city",
        "street",
        "road",
        "avenue",
        "lane",
        "suite",
        "floor",
        "building",
        "the",
        "of",
        "and",
        "for",
        "at",
        "de",
        "la",
        "le",
        "du",
        "des",
        "der",
        "und",
        "saint",
        "sankt",
        "st",
        "north",
        "south",
        "east",
        "west",
        "new",
        "upper",
        "lower",
        "main",
        "care",
        "children",
        "childrens",
        "womens",
        "mens",
        "cancer",
        "heart",
    ]
)
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _is_cjk(ch: str) -> bool:
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL"))


def has_cjk(text: str) -> bool:
    """True if ``text`` holds Chinese, Japanese or Korean characters."""
    return any(_is_cjk(c) for c in text)


@dataclass(frozen=True)
class PersonName:
    """One person name, split into tokens, in all its component groups.

    ``groups`` holds the alphabetic, ideographic and phonetic representations
    (PS3.5 6.2.1); each is a tuple of its components' words.
    """

    groups: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, value: str) -> PersonName:
        groups = []
        for group in value.split("="):
            words: list[str] = []
            for comp in group.split("^"):
                words += [w for w in re.split(r"[\s,]+", comp.strip()) if w]
            if words:
                groups.append(tuple(words))
        return cls(tuple(groups))

    def tokens(self) -> Iterator[str]:
        for g in self.groups:
            yield from g


@dataclass
class PhiContext:
    """Identifying values of one file, by kind. Build with :meth:`from_dataset`."""

    names: list[PersonName] = field(default_factory=list)
    identifiers: set[str] = field(default_factory=set)
    dates: set[_dt.date] = field(default_factory=set)
    places: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    other: set[str] = field(default_factory=set)

    def __repr__(self) -> str:  # never show values
        return (
            f"PhiContext(names={len(self.names)}, identifiers={len(self.identifiers)}, "
            f"dates={len(self.dates)}, places={len(self.places)}, phones={len(self.phones)})"
        )

    @property
    def empty(self) -> bool:
        return not (self.names or self.identifiers or self.dates or self.places or self.phones or self.other)

    # -- building ------------------------------------------------------------------

    @classmethod
    def from_dataset(cls, ds: Dataset) -> PhiContext:
        """Gather identifying values from ``ds`` and its sequences (read only)."""
        ctx = cls()
        ctx.add_dataset(ds)
        return ctx

    def add_dataset(self, ds: Dataset) -> None:
        sources = _source_tags()
        for tag in list(ds.keys()):
            t = int(tag)
            if t & 0x10000:  # private: handled by removal, not a source of terms
                continue
            vr = _stored_vr(ds, t)
            if t not in sources and vr not in ("SQ", None):
                continue  # neither a source nor a sequence: leave it unconverted (raw)
            if vr is not None and vr != "SQ":
                fast = _ascii_value(ds, t, vr)
                if fast is not None:  # plain ASCII text read straight from the raw bytes
                    if fast:
                        self.add_value(sources[t], vr, fast)
                    continue
            try:
                elem = ds[tag]
            except Exception:  # unreadable element: the header stage reports it
                continue
            if elem.VR == "SQ":
                for item in elem.value or ():
                    self.add_dataset(item)
                continue
            if t not in sources or elem.value in (None, "", b""):
                continue
            self.add_value(sources[t], elem.VR, elem.value)

    def add_value(self, keyword: str, vr: str, value: Any) -> None:
        values: Iterable[Any] = value if isinstance(value, list | tuple) or _is_multivalue(value) else [value]
        for v in values:
            text = str(v).strip()
            if len(text) < 2 or (vr != "PN" and len(text) < 3):
                continue
            if vr == "PN":
                name = PersonName.parse(text)
                if name.groups and name not in self.names:
                    self.names.append(name)
            elif vr in ("DA", "DT"):
                d = parse_da(text[:8])
                if d is not None:
                    self.dates.add(d)
            elif vr in _TERM_VRS or (vr in ("ST", "LT", "UT") and _ADDRESS_HINT.search(keyword)):
                if keyword in _NOT_TERMS:
                    continue
                if _PHONE_HINT.search(keyword):
                    self.phones.add(text)
                elif _ADDRESS_HINT.search(keyword) or keyword.startswith("Institution"):
                    self.places.add(text)
                elif _ID_HINT.search(keyword):
                    self.identifiers.add(text)
                else:
                    self.other.add(text)

    # -- derived views used by the recognizers -----------------------------------------

    def name_tokens(self) -> set[str]:
        """Every word of every name (Latin words of 2+ letters, CJK words of 2+ characters)."""
        out = set()
        for n in self.names:
            for t in n.tokens():
                t = t.strip(".")
                if len(t) >= 2:
                    out.add(t)
        return out

    def name_initials(self) -> set[str]:
        return {t[0].upper() for n in self.names for t in n.tokens() if t and not has_cjk(t)}

    def cjk_names(self) -> set[str]:
        """Ideographic/phonetic names written without separators, e.g. 山田太郎 and 太郎."""
        out = set()
        for n in self.names:
            for g in n.groups:
                if any(has_cjk(w) for w in g):
                    out.add("".join(g))
                    out.update(w for w in g if len(w) >= 2)
        return out

    def date_strings(self) -> set[str]:
        """Each date in the common ways people and devices write it."""
        out: set[str] = set()
        for d in self.dates:
            out |= date_variants(d)
        return out

    def place_terms(self) -> set[str]:
        """Place and organisation names, plus their distinctive words."""
        out = set()
        for p in self.places | self.other:
            out.add(p)
            for w in re.split(r"[\s,;/^]+", p):
                w = w.strip(".()'\"")
                if len(w) >= 4 and w.lower() not in GENERIC_WORDS and not w.isdigit():
                    out.add(w)
        return out


#: Text VRs whose raw ASCII bytes are the value (backslash separates values, except in the long texts).
_TEXT_VRS = frozenset({"AE", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UT"})
_SINGLE_VALUED = frozenset({"LT", "ST", "UT"})


def _ascii_value(ds: Dataset, tag: int, vr: str) -> list[str] | None:
    """The values of a still-raw ASCII text element, without pydicom's conversion; None otherwise."""
    if vr not in _TEXT_VRS:
        return None
    raw = ds.get_item(tag)
    value = getattr(raw, "value", None)
    if type(raw).__name__ != "RawDataElement" or not isinstance(value, bytes) or not value.isascii():
        return None
    if b"\x1b" in value:  # ISO 2022 escape sequences: the character set decides, so pydicom does
        return None
    text = value.decode("ascii").rstrip(" \x00")
    if not text:
        return []
    return [text] if vr in _SINGLE_VALUED else text.split("\\")


def _stored_vr(ds: Dataset, tag: int) -> str | None:
    """The VR of an element as stored (raw or converted), None when unknown (implicit VR)."""
    try:
        raw = ds.get_item(tag)
    except Exception:
        return None
    vr = getattr(raw, "VR", None)
    if vr is None:
        from pydicom.datadict import dictionary_VR

        try:
            return str(dictionary_VR(tag))
        except KeyError:
            return None
    return str(vr)


def _is_multivalue(value: Any) -> bool:
    return type(value).__name__ == "MultiValue"


#: Options whose rows hold text to be cleaned, or characteristics, rather than identifiers.
_NOT_SOURCE_OPTIONS = frozenset(
    {"clean_descriptors", "retain_patient_characteristics", "retain_device_identity"}
)


@lru_cache(maxsize=1)
def _source_tags() -> dict[int, str]:
    """Table E.1-1 tags whose values identify someone, with their keywords.

    Descriptions (the Clean Descriptors rows) are what gets cleaned, not a source
    of terms; patient characteristics (sex, ethnic group) and device identity are
    not identifying on their own and would make poor search terms.
    """
    from pydicom.datadict import dictionary_VR

    out = {}
    for tag, row in e1_1().by_tag.items():
        if not row.keyword or _NOT_SOURCE_OPTIONS & row.options.keys():
            continue
        try:
            if dictionary_VR(tag) == "CS":
                continue
        except KeyError:
            continue
        out[tag] = row.keyword
    return out


def parse_da(text: str) -> _dt.date | None:
    """Parse a DICOM DA value (YYYYMMDD, or the old YYYY.MM.DD); None if invalid."""
    t = text.replace(".", "").strip()
    if len(t) != 8 or not t.isdigit():
        return None
    try:
        return _dt.date(int(t[:4]), int(t[4:6]), int(t[6:8]))
    except ValueError:
        return None


def date_variants(d: _dt.date) -> set[str]:
    """Common written forms of a date: ISO, US, European, with month names, 2-digit years."""
    y, m, dd = d.year, d.month, d.day
    yy = f"{y % 100:02d}"
    mon = _MONTHS[m - 1]
    out = {f"{y}{m:02d}{dd:02d}"}
    for sep in ("-", "/", ".", " "):
        out |= {
            f"{y}{sep}{m:02d}{sep}{dd:02d}",
            f"{m:02d}{sep}{dd:02d}{sep}{y}",
            f"{dd:02d}{sep}{m:02d}{sep}{y}",
            f"{m}{sep}{dd}{sep}{y}",
            f"{dd}{sep}{m}{sep}{y}",
            f"{m:02d}{sep}{dd:02d}{sep}{yy}",
            f"{dd:02d}{sep}{m:02d}{sep}{yy}",
            f"{m}{sep}{dd}{sep}{yy}",
            f"{dd}{sep}{m}{sep}{yy}",
        }
    for name in (mon, mon[:3]):
        out |= {
            f"{name} {dd}, {y}",
            f"{name} {dd} {y}",
            f"{dd} {name} {y}",
            f"{dd:02d} {name} {y}",
            f"{dd}-{name}-{y}",
            f"{dd:02d}-{name}-{y}",
            f"{dd:02d}-{name}-{yy}",
            f"{dd}{name}{y}",
            f"{dd:02d}{name}{y}",
        }
    out.add(f"{y}年{m}月{dd}日")
    out.add(f"{y}年{m:02d}月{dd:02d}日")
    return out


def keyword_of(tag: BaseTag | int) -> str:
    """The standard keyword of a public tag, or '' (for log lines: tags, never values)."""
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(int(tag)) or ""
