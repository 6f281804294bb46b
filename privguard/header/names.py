"""Find the patient's own name in text a profile keeps, whatever its case, accents or order.

A kept description, device serial number or private text can hold a copy of the patient's name
written differently from PatientName: ``jane doe``, ``Doe, Jane``, ``ZOE MULLER`` for
``Müller^Zoë``. The header engine replaces such copies with ``[NAME]`` in every text value it
keeps; the output check (:mod:`privguard.dicom.verify`) searches the written header text for the
same words, so a copy the engine missed fails the file.

The words are the family, given and middle names (the first three components of each component
group) of the data set's PatientName, OtherPatientNames, PatientBirthName and
PatientMotherBirthName, split further at spaces, commas and hyphens, each of at least
:data:`MIN_LETTERS` letters (prefixes and suffixes such as MRS or PHD are not names).
They are matched as whole words only (a letter or digit on either side means another word:
``Ann`` is not found in ``Annotation``), with case and diacritics folded.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache

from privguard.dicom.verify import LABEL_WORDS

#: The person-name attributes of the patient (PS3.3 Patient Module).
PATIENT_NAME_TAGS = (0x00100010, 0x00101001, 0x00101005, 0x00101060)
MIN_LETTERS = 3
LABEL = "[NAME]"
_SPLIT = re.compile(r"[\s,\-]+")


def fold(text: str) -> str:
    """``text`` case-folded, Latin letters without diacritics: ``Zoë Müller`` -> ``zoe muller``.

    Only a Latin letter loses its marks (a Japanese voicing mark changes the sound, not an accent).
    """
    if text.isascii():
        return text.lower()
    return "".join(_fold_char(c) for c in text)


@lru_cache(maxsize=4096)
def _fold_char(c: str) -> str:
    parts = unicodedata.normalize("NFKD", c)
    if parts[:1].isascii():
        parts = "".join(p for p in parts if not unicodedata.combining(p))
        return parts.casefold()
    return c.casefold()


def name_words(values: Iterable[str]) -> tuple[str, ...]:
    """The folded name words of person-name values (``FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX``, ``=`` groups)."""
    return _name_words(tuple(values))


@lru_cache(maxsize=1024)
def _name_words(values: tuple[str, ...]) -> tuple[str, ...]:
    # Cached: the files of one patient (a series, a study) share their names.
    words: dict[str, None] = {}
    for value in values:
        for one in value.split("\\"):
            for group in one.split("="):
                for component in group.split("^")[:3]:
                    for part in _SPLIT.split(component):
                        part = part.strip(" \x00.")
                        if len(part) >= MIN_LETTERS and (
                            part.isalpha() or sum(c.isalpha() for c in part) >= MIN_LETTERS
                        ):
                            words[fold(part)] = None
    return tuple(sorted(words, key=lambda w: (-len(w), w)))


@dataclass(frozen=True)
class NameWords:
    """The patient's name words of one file, ready to search text with."""

    words: tuple[str, ...]
    ascii_words: tuple[bytes, ...]
    """The words that are ASCII, as bytes: a raw ASCII value holding none of them is skipped."""

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """A run of name words separated by spaces, commas, dots or carets, as whole words.

        Compiled on first use: most files hold no copy of the name, and every patient has his own.
        """
        alt = "|".join(re.escape(w) for w in self.words)
        word = rf"(?<![^\W_])(?:{alt})(?![^\W_])"
        return re.compile(rf"{word}(?:[\s,.^\-]+{word})*")

    def in_ascii(self, raw: bytes) -> bool:
        """Whether an ASCII value holds a name word as a whole word, whatever its case.

        No regular expression: a search for each word and a look at the bytes on either side,
        so that a word inside another (``ann`` in ``scanner``) costs no more than that.
        """
        return whole_word_in(raw.lower(), self.ascii_words)

    def scrub(self, text: str) -> str | None:
        """``text`` with each copy of the patient's name replaced by ``[NAME]``, or None if none."""
        if text.isascii():
            folded, where = text.lower(), None
        else:
            folded, where = _fold_mapped(text)
        spans = [m.span() for m in self.pattern.finditer(folded) if not _label(text, m.span(), where)]
        if not spans:
            return None
        out, last = [], 0
        for s, e in spans:
            if where is not None:
                s, e = where[s], where[e - 1] + 1
            out.append(text[last:s])
            out.append(LABEL)
            last = e
        out.append(text[last:])
        return "".join(out)


def whole_word_in(low: bytes, words: tuple[bytes, ...]) -> bool:
    """Whether one of ``words`` occurs in the lower-cased ASCII ``low`` with no letter or digit beside it."""
    n = len(low)
    for w in words:
        i = low.find(w)
        while i >= 0:
            j = i + len(w)
            if (i == 0 or not _WORD[low[i - 1]]) and (j >= n or not _WORD[low[j]]):
                return True
            i = low.find(w, i + 1)
    return False


#: For each byte: whether it continues a word (an ASCII letter or digit, or any non-ASCII byte).
_WORD = tuple(b >= 0x80 or chr(b).isalnum() for b in range(256))


def _label(text: str, span: tuple[int, int], where: list[int] | None) -> bool:
    """Whether ``span`` is exactly a label privguard wrote (``[DATE]`` for a patient named Date)."""
    s, e = span if where is None else (where[span[0]], where[span[1] - 1] + 1)
    word = text[s:e]
    return (
        text[s - 1 : s] == "["
        and text[e : e + 1] == "]"
        and word.isupper()
        and word.encode("ascii", "replace") in LABEL_WORDS
    )


def _fold_mapped(text: str) -> tuple[str, list[int]]:
    """:func:`fold` of ``text`` and, for each folded character, the index of its source character."""
    chars: list[str] = []
    where: list[int] = []
    for i, c in enumerate(text):
        f = c.lower() if c.isascii() else _fold_char(c)
        chars.append(f)
        where.extend([i] * len(f))
    return "".join(chars), where


@lru_cache(maxsize=512)
def name_matcher(words: tuple[str, ...]) -> NameWords | None:
    """A :class:`NameWords` for ``words`` (from :func:`name_words`), or None when there are none."""
    if not words:
        return None
    return NameWords(words, tuple(w.encode("ascii") for w in words if w.isascii()))
