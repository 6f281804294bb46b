"""Person names in free text, found without the header's help.

A name dictionary (about 19,000 given names and 24,000 surnames of some 80
locales, from faker's per-locale lists; see ``tools/gen_names.py``) is combined
with context and shape:

* a **title or role** (``Dr``, ``Prof``, ``RN``, ``tech``, ``nurse``, ``by``, ``per``,
  ``attn``, ``wife``...) makes the next one to three name-shaped words a name,
  whether or not the dictionary knows them (``Dr. Xyzabc``), unless they are
  clinical or everyday words (``by Phone``, ``per Protocol``);
* a **weak trigger** (``for``, ``with``, ``patient``, ``called``...) does the same for
  dictionary names only (``CT for Maria``, not ``CT for Evaluation``);
* **two dictionary names in a row**, capitalised or in capitals, at least one of
  them not an ordinary English word (``Maria Lopez``, ``LOPEZ, MARIA``);
* **one dictionary name alone** when it is not an ordinary English word
  (``Kevin``, ``Kowalczyk``; never ``Rose``, ``Will``, ``May``, ``Mark``);
* DICOM person-name form with carets (``SMITH^JOHN^Q``);
* initials, particles (``de la``, ``van``) and unknown capitalised words next to a
  name found by the rules above become part of it.

Clinical words (anatomy, modalities, sequences, devices, drugs, months) are
never names; eponyms (``Hodgkin``, ``Colles``, ``Hill-Sachs``) are not names next
to ``disease``, ``fracture``, ``lymphoma`` ... (:mod:`privguard.text.vocab`).
Lower-case names are found only after a title or role (``seen by maria lopez``).

Chinese, Japanese and Korean names are found by surname lists with given-name
lists, honorifics and trigger words: :func:`find_cjk_names`.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from privguard.text import vocab

_DATA = "names.json.gz"


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The name dictionary, loaded once per process (about 60 ms)."""

    first: frozenset[str]
    last: frozenset[str]
    ambiguous: frozenset[str]
    english: frozenset[str]
    zh_surnames: frozenset[str]
    zh_given: frozenset[str]
    zh_given_chars: frozenset[str]
    ja_surnames: frozenset[str]
    ja_given: frozenset[str]
    ko_surnames: frozenset[str]
    ko_given: frozenset[str]


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """Load the committed dictionary (``privguard/text/_data/names.json.gz``)."""
    raw = resources.files("privguard.text").joinpath("_data", _DATA).read_bytes()
    d = json.loads(gzip.decompress(raw))
    zh_given = frozenset(d["zh_given"])
    return Lexicon(
        first=frozenset(d["first"]),
        last=frozenset(d["last"]),
        ambiguous=frozenset(d["ambiguous"]),
        english=frozenset(d["english"]),
        zh_surnames=frozenset(d["zh_surnames"]),
        zh_given=zh_given,
        zh_given_chars=frozenset("".join(zh_given)),
        ja_surnames=frozenset(_to_katakana(w) for w in d["ja_surnames"]),
        ja_given=frozenset(_to_katakana(w) for w in d["ja_given"]),
        ko_surnames=frozenset(d["ko_surnames"]),
        ko_given=frozenset(d["ko_given"]),
    )


def fold(word: str) -> str:
    """Lower case without accents (``José`` -> ``jose``), as the dictionary is stored."""
    if word.isascii():
        return word.lower()
    nfkd = unicodedata.normalize("NFKD", word)
    return "".join(c for c in nfkd if not unicodedata.combining(c)).lower()


# -- Latin script ------------------------------------------------------------------------

_TOKEN = re.compile(r"(?<!\w)[^\W\d_]+(?:['’\-][^\W\d_]+)*(?!\w)")
_PN = re.compile(r"(?<![\w^])[^\W\d_][^\W\d_'’\-]*(?:\^[^\W\d_'’\-]*)+(?![\w^])")
#: What may stand between the words of one name.
_NAME_GAP = re.compile(r"[ \t]{1,3}|[ \t]?[,.][ \t]{0,2}|\.?[ \t]*-[ \t]*|\^")
_TITLE_GAP = re.compile(r"\.?[ \t]*[:#\-]?[ \t]*|\.?[ \t]+")
#: Titles spelled like modality codes (MR, DR) or PA/NP: in capitals, only before a dictionary name.
_MODALITY_TITLES = frozenset({"MR", "DR", "MS", "PA", "NP", "CR", "US", "RF", "SR"})
#: Credentials after a name; the name words before them are names.
_CREDENTIALS = frozenset(
    [
        "MD",
        "DO",
        "PHD",
        "RN",
        "RT",
        "RTR",
        "RDMS",
        "RVT",
        "RDCS",
        "CNMT",
        "ARRT",
        "NP",
        "PA-C",
        "MBBS",
        "FRCR",
        "FRCPC",
        "DNP",
        "CRNA",
        "LPN",
        "DDS",
        "DMD",
        "MPH",
        "FACR",
    ]
)
_CREDENTIAL_RX = re.compile(
    r",?[ \t]{1,2}(?:M\.D\.|D\.O\.|Ph\.D\.|PhD|R\.N\.|RT\([A-Z]{1,3}\)|"
    + "|".join(sorted(_CREDENTIALS, key=len, reverse=True))
    + r")(?![\w(])(?:\.(?!\w))?"
)
_ORG_WORDS = frozenset(
    ["inc", "ltd", "llc", "gmbh", "corp", "co", "ag", "sa", "plc", "company", "corporation", "group"]
)
PARTICLES = frozenset(
    [
        "de",
        "del",
        "della",
        "der",
        "den",
        "di",
        "da",
        "das",
        "dos",
        "du",
        "la",
        "le",
        "van",
        "von",
        "ter",
        "ten",
        "bin",
        "ibn",
        "al",
        "el",
        "zu",
        "st",
        "mc",
        "mac",
    ]
)


@dataclass(slots=True)
class _Tok:
    start: int
    end: int
    raw: str
    fold: str
    shape: str  # "title" | "upper" | "lower" | "mixed"


def _shape(w: str) -> str:
    if w.isupper():
        return "upper"
    if w.islower():
        return "lower"
    if w[0].isupper():
        return "title"
    return "mixed"


def _tokens(text: str) -> list[_Tok]:
    return [
        _Tok(m.start(), m.end(), m.group(), fold(m.group()), _shape(m.group())) for m in _TOKEN.finditer(text)
    ]


class _Judge:
    """Per-text judgements about tokens (dictionary, clinical, shape)."""

    def __init__(self, text: str, toks: list[_Tok], lex: Lexicon) -> None:
        self.text = text
        self.toks = toks
        self.lex = lex

    def gap(self, i: int) -> str:
        """The text between token i and token i+1."""
        return self.text[self.toks[i].end : self.toks[i + 1].start]

    def joined(self, i: int) -> bool:
        """Tokens i and i+1 may belong to one name (only name punctuation between).

        A full stop joins only after an initial (``J. Smith``), not across sentences.
        """
        if i + 1 >= len(self.toks):
            return False
        gap = self.gap(i)
        if not _NAME_GAP.fullmatch(gap):
            return False
        return "." not in gap or len(self.toks[i].raw) == 1

    def clinical(self, i: int) -> bool:
        f = self.toks[i].fold
        if f in vocab.CLINICAL or f.replace("-", "") in vocab.CLINICAL or f in vocab.PROTOCOL_ACRONYMS:
            return True
        parts = f.split("-")
        if len(parts) > 1 and all(p in vocab.EPONYMS or p in vocab.CLINICAL for p in parts):
            return True  # Hill-Sachs, X-Ray
        if f in vocab.EPONYMS or f.removesuffix("'s") in vocab.EPONYMS:
            # Colles fracture, Hodgkin's lymphoma, Salter Harris type II: the term follows
            nxt = i + 1 < len(self.toks) and self.joined(i)
            if nxt and self.toks[i + 1].fold in vocab.EPONYM_CONTEXT:
                return True
            if (
                nxt
                and i + 2 < len(self.toks)
                and self.joined(i + 1)
                and self.toks[i + 2].fold in vocab.EPONYM_CONTEXT
            ):
                return True
            if nxt and self.toks[i + 1].fold in vocab.EPONYMS and self.toks[i + 1].fold != f:
                return True
            if (
                i > 0
                and self.joined(i - 1)
                and self.toks[i - 1].fold in vocab.EPONYMS
                and self.toks[i - 1].fold != f
            ):
                return True
        return False

    def eponymic(self, i: int) -> bool:
        """Token i stands right before a disease, sign or fracture word: an eponym (``Jordan curve``)."""
        return (
            i + 1 < len(self.toks)
            and self.gap(i) in (" ", "'s ", "’s ")
            and self.toks[i + 1].fold in vocab.EPONYM_DISEASE
        )

    def function(self, i: int) -> bool:
        return self.toks[i].fold in vocab.FUNCTION

    def dictionary(self, i: int) -> bool:
        f = self.toks[i].fold
        return (
            f in self.lex.first
            or f in self.lex.last
            or _parts_in(f, self.lex)
            or _korean_given(f)
            or bool(_ARABIC_PREFIXED.fullmatch(self.toks[i].raw))
        )

    def strong(self, i: int) -> bool:
        """A dictionary name that is not also an everyday word (diacritics make it one: Müller)."""
        f = self.toks[i].fold
        return (
            self.dictionary(i)
            and (f not in self.lex.ambiguous or not self.toks[i].raw.isascii())
            and f not in vocab.COMMON
            and not self.clinical(i)
            and not self.function(i)
        )

    def shaped(self, i: int) -> bool:
        """Capitalised like a name: Title, CAPITALS, McDonald, O'Brien."""
        t = self.toks[i]
        return t.shape in ("title", "upper") or (t.shape == "mixed" and t.raw[:1].isupper())

    def initial(self, i: int) -> bool:
        t = self.toks[i]
        return len(t.raw) == 1 and t.raw.isupper()

    def after_title(self, i: int, loose: bool = False) -> bool:
        """Token i may be a name after a title/role: not clinical, and known or not English.

        ``loose`` (after an honorific such as ``Dr.``): any capitalised word that is
        not clinical or a function word.
        """
        t = self.toks[i]
        if self.clinical(i) or self.function(i) or t.fold in vocab.TITLES:
            return False
        if t.raw.replace(".", "").upper() in _CREDENTIALS and t.shape == "upper":
            return False
        if self.initial(i):
            return True
        if self.shaped(i):
            if loose:
                return True
            return self.dictionary(i) or t.fold not in self.lex.english
        return self.strong(i) and (t.fold in self.lex.first or t.fold not in self.lex.english)

    def organisation(self, i: int) -> bool:
        """Part of a company name: ``Johnson & Johnson``, ``Smith & Nephew``, ``Bracco Inc``."""
        before = self.text[max(0, self.toks[i].start - 3) : self.toks[i].start]
        after = self.text[self.toks[i].end : self.toks[i].end + 3]
        if "&" in before or "&" in after:
            return True
        return i + 1 < len(self.toks) and self.toks[i + 1].fold in _ORG_WORDS and self.joined(i)


#: Syllables of romanized Korean given names (Revised Romanization and McCune-Reischauer).
_KO_SYLLABLES = frozenset(
    [
        "ji",
        "woo",
        "min",
        "jun",
        "seo",
        "yeon",
        "ha",
        "eun",
        "hyun",
        "soo",
        "su",
        "young",
        "yeong",
        "jae",
        "hee",
        "hui",
        "kyung",
        "gyeong",
        "sung",
        "seong",
        "dong",
        "jin",
        "hye",
        "yoon",
        "yun",
        "won",
        "jung",
        "jeong",
        "ho",
        "hoon",
        "hun",
        "sook",
        "suk",
        "ja",
        "ah",
        "a",
        "na",
        "ra",
        "ri",
        "rin",
        "bin",
        "been",
        "chan",
        "chul",
        "cheol",
        "gu",
        "gyu",
        "kyu",
        "han",
        "hwa",
        "hwan",
        "in",
        "il",
        "joo",
        "ju",
        "kang",
        "ki",
        "gi",
        "kwang",
        "gwang",
        "mi",
        "myung",
        "myeong",
        "nam",
        "sang",
        "sik",
        "shin",
        "sin",
        "so",
        "sol",
        "tae",
        "taek",
        "uk",
        "woong",
        "wook",
        "yeop",
        "yong",
        "yu",
        "yul",
        "ye",
        "da",
        "do",
        "du",
        "gun",
        "geon",
        "hak",
        "hyuk",
        "hyeok",
        "jong",
        "ok",
    ]
)


def _korean_given(f: str) -> bool:
    """A hyphenated romanized Korean given name: Ji-woo, Min-jun, Seo-yeon."""
    parts = f.split("-")
    return len(parts) == 2 and all(p in _KO_SYLLABLES for p in parts)


#: Arabic surnames with an article or kinship prefix: Al-Farsi, El-Sayed, Abu-Bakr, Abdel-Rahman.
_ARABIC_PREFIXED = re.compile(
    r"(?:[Aa]l|[Ee]l|Abu|Abd|Abdel|Bin|Ben|Ibn)-[A-Z][a-z]{2,}|(?:AL|EL|ABU|ABD|ABDEL|BIN|BEN|IBN)-[A-Z]{3,}"
)


def _parts_in(f: str, lex: Lexicon) -> bool:
    parts = [p for p in f.replace("'", "-").split("-") if len(p) > 1 and p not in PARTICLES]
    return len(parts) >= 1 and "-" in f and all((p in lex.first or p in lex.last) for p in parts)


def _title_word(t: _Tok) -> bool:
    return t.fold in vocab.TITLES or t.fold.rstrip(".") in vocab.TITLES


def find_names(text: str) -> list[tuple[int, int]]:
    """Spans of Latin-script person names in ``text`` (start, end), sorted, not overlapping."""
    if not text:
        return []
    lex = lexicon()
    spans: list[tuple[int, int]] = [
        m.span()
        for m in _PN.finditer(text)
        if re.search(r"\^[^\W\d_]", m.group())
        # not a clinical word pair such as abdomen^liver or SPINE^LSPINE
        and not any(fold(p) in vocab.CLINICAL for p in m.group().split("^") if p)
    ]
    toks = _tokens(text)
    n = len(toks)
    if not n:
        return spans
    j = _Judge(text, toks, lex)
    name = [False] * n

    def follow(i: int, accept: int, loose: bool = False) -> None:
        """Mark up to ``accept`` name words from token i on (particles and initials in between)."""
        k = i
        taken = 0
        while k < n and taken < accept:
            if taken and not j.joined(k - 1):
                break
            if toks[k].shape == "lower" and toks[k].fold in PARTICLES:
                m = k
                while m < n and toks[m].shape == "lower" and toks[m].fold in PARTICLES and j.joined(m):
                    m += 1
                if m < n and j.shaped(m) and j.after_title(m, True):
                    for q in range(k, m):
                        name[q] = True
                    k = m
                    continue
                break
            if not j.after_title(k, loose):
                prev = toks[k - 1] if taken else None
                unknown = toks[k].fold not in lex.english and not j.clinical(k) and not j.function(k)
                known = j.dictionary(k) and toks[k].fold not in vocab.COMMON
                if (
                    prev is not None
                    and prev.shape == "lower"
                    and toks[k].shape == "lower"
                    and (unknown or known)
                ):
                    name[k] = True  # "seen by maria xyloquist": an unknown word after a lower-case name
                break
            name[k] = True
            taken += 1
            k += 1

    for i, t in enumerate(toks):
        if i + 1 >= n:
            break
        gap = text[t.end : toks[i + 1].start]
        if t.raw in _MODALITY_TITLES:  # MR ENTEROGRAPHY, DR PORTABLE: a dictionary name only
            if j.shaped(i + 1) and j.strong(i + 1) and _TITLE_GAP.fullmatch(gap):
                follow(i + 1, 3)
        elif t.raw.upper() in _CREDENTIALS and "." in gap:
            continue  # "Doe, Kwame, RN. Will repeat": a credential ending a sentence
        elif _title_word(t) and _TITLE_GAP.fullmatch(gap):
            follow(i + 1, 3, loose=t.fold.rstrip(".") in vocab.HONORIFICS)
        elif (
            (t.fold in vocab.WEAK_TRIGGERS or t.fold in vocab.ROLE_LABELS)
            and _TITLE_GAP.fullmatch(gap)
            and ((j.shaped(i + 1) and j.strong(i + 1)) or (":" in gap and t.fold in vocab.ROLE_LABELS))
        ):
            follow(i + 1, 3)

    for i in range(n):
        if not j.shaped(i) or j.clinical(i) or j.function(i) or j.initial(i) or j.organisation(i):
            continue
        if not j.dictionary(i):
            continue
        # a pair (an initial may stand between): Maria Lopez, LOPEZ, MARIA, John Q. Smith
        k = i + 1
        if k < n and j.joined(i) and j.initial(k) and k + 1 < n and j.joined(k):
            k += 1
        if (
            k < n
            and j.joined(k - 1)
            and j.shaped(k)
            and not j.clinical(k)
            and not j.function(k)
            and j.dictionary(k)
            and (j.strong(i) or j.strong(k))
        ):
            if not j.eponymic(k):  # Austin Flint murmur: a sign named after people
                for m in range(i, k + 1):
                    name[m] = True
            continue
        # one name alone: given names of 3+ letters, surnames of 4+ letters not in English
        t = toks[i]
        if (
            j.strong(i)
            and not j.eponymic(i)
            and (t.shape != "upper" or len(t.raw) >= 4)
            and (
                (t.fold in lex.first and len(t.raw) >= 3)
                or (len(t.raw) >= 4 and (t.fold not in lex.english or not t.raw.isascii()))
            )
        ):
            name[i] = True

    # dotted initials before a capitalised dictionary name: "J. Q. Smith", "K. Hughes"
    for i in range(n - 1):
        if not (j.initial(i) and text[toks[i].end : toks[i].end + 1] == "."):
            continue
        k = i + 1
        while k < n and j.initial(k) and text[toks[k].end : toks[k].end + 1] == "." and j.joined(k - 1):
            k += 1
        if (
            k < n
            and j.joined(k - 1)
            and j.shaped(k)
            and (j.dictionary(k) or toks[k].fold not in lex.english)
            and not j.clinical(k)
            and not j.function(k)
        ):
            for q in range(i, k + 1):
                name[q] = True

    # credentials after a name: "Smith MD", "Jane Doe, RN", "J. Doe, M.D."
    ends = {t.end: i for i, t in enumerate(toks)}
    for cred in _CREDENTIAL_RX.finditer(text):
        before = ends.get(cred.start())
        taken = 0
        while before is not None and taken < 3 and j.after_title(before, True) and not j.organisation(before):
            name[before] = True
            taken += 1
            if before == 0 or not j.joined(before - 1):
                break
            before -= 1

    # grow: unknown capitalised words, initials and particles next to a name
    changed = True
    while changed:
        changed = False
        for i in range(n):
            if name[i]:
                continue
            left = i > 0 and name[i - 1] and j.joined(i - 1)
            right = i + 1 < n and name[i + 1] and j.joined(i)
            if not (left or right):
                continue
            t = toks[i]
            grow = False
            if t.raw in _CREDENTIALS or _CREDENTIAL_RX.match(text, t.start - 1 if t.start else 0):
                continue  # "SMITH, JOHN MD", "J. Doe, M.D.": the credential stays
            if j.initial(i):
                # "KEVIN R KNEE": a letter before a clinical word is laterality, not an initial
                grow = not (i + 1 < n and j.joined(i) and j.clinical(i + 1))
            elif (
                left
                and i >= 2
                and j.initial(i - 1)
                and name[i - 2]
                and not j.initial(i - 2)
                and j.shaped(i)
                and not j.clinical(i)
                and not j.function(i)
            ):
                grow = True  # John Q Example: a capitalised word after a name and an initial is the surname
            elif t.shape == "lower" and t.fold in PARTICLES:
                # Sara van Nus, Willem de Swart, Maria de la Cruz: particles and the surname after them
                k = i + 1
                while k < n and toks[k].shape == "lower" and toks[k].fold in PARTICLES and j.joined(k - 1):
                    k += 1
                if (
                    left
                    and k < n
                    and j.joined(k - 1)
                    and (name[k] or (j.shaped(k) and j.after_title(k, True)))
                ):
                    for q in range(i, k + 1):
                        name[q] = True
                    changed = True
            elif (
                j.shaped(i)
                and not j.clinical(i)
                and not j.function(i)
                and t.fold not in vocab.TITLES
                and t.fold not in vocab.COMMON
                and (j.dictionary(i) or t.fold not in lex.english)
                and (t.shape != "upper" or toks[i - 1 if left else i + 1].shape == "upper")
            ):
                grow = True
            if grow:
                name[i] = True
                changed = True

    i = 0
    while i < n:
        if not name[i]:
            i += 1
            continue
        k = i
        while k + 1 < n and name[k + 1] and j.joined(k):
            k += 1
        end = toks[k].end
        if j.initial(k) and end < len(text) and text[end] == ".":
            end += 1
        spans.append((toks[i].start, end))
        i = k + 1
    return _union(spans)


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


# -- Chinese, Japanese, Korean -------------------------------------------------------------

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = r"\u3041-\u309f\u30a0-\u30ff\uff66-\uff9f"
_HANGUL = r"\uac00-\ud7a3"
_HAN_RUN = re.compile(f"[{_HAN}]+")
_KANA_RUN = re.compile(f"[{_KANA}]+(?:[ \u3000・･]?[{_KANA}]+)?")
_HANGUL_WORD = re.compile(f"[{_HANGUL}]+")
_CJK_ANY = re.compile(f"[{_HAN}{_KANA}{_HANGUL}]")


def _to_katakana(s: str) -> str:
    """Hiragana and half-width katakana to full-width katakana (for matching only)."""
    s = unicodedata.normalize("NFKC", s)
    return "".join(chr(ord(c) + 0x60) if 0x3041 <= ord(c) <= 0x3096 else c for c in s)


def _near(text: str, start: int, end: int, words: tuple[str, ...], before: bool) -> bool:
    if before:
        seg = text[max(0, start - 6) : start].rstrip(" \u3000:：")
        return seg.endswith(words)
    seg = text[end : end + 6].lstrip(" \u3000")
    return seg.startswith(words)


def _zh_names(text: str, lex: Lexicon) -> list[tuple[int, int]]:
    out = []
    for m in _HAN_RUN.finditer(text):
        run, base = m.group(), m.start()
        i = 0
        while i < len(run):
            sur = (
                run[i : i + 2]
                if run[i : i + 2] in lex.zh_surnames
                else run[i]
                if run[i] in lex.zh_surnames
                else ""
            )
            if not sur:
                i += 1
                continue
            rest = run[i + len(sur) :]
            trig = _near(text, base + i, base + i, vocab.CJK_TRIGGERS, before=True)
            given = 0
            if rest[:2] in lex.zh_given or rest[:2] in lex.ja_given:
                given = 2
            elif (
                rest[:1]
                and rest[:1] in lex.zh_given
                and (len(rest) == 1 or rest[1] in vocab.ZH_CLINICAL_CHARS)
            ):
                given = 1
            elif all(c in lex.zh_given_chars for c in rest[:2]) and len(rest) >= 2:
                given = 2
            elif (
                i == 0
                and 2 <= len(run) - len(sur) + len(sur) <= 4
                and not any(c in vocab.ZH_CLINICAL_CHARS for c in run)
            ):
                given = len(run) - len(sur)  # a short run standing alone: 王小東
            elif trig or _near(
                text, base + i + len(sur) + 2, base + i + len(sur) + 2, vocab.CJK_HONORIFICS, False
            ):
                given = min(2, len(rest))
                while given and rest[given - 1] in vocab.ZH_CLINICAL_CHARS:
                    given -= 1
            if given and not any(c in vocab.ZH_CLINICAL_CHARS for c in rest[:given]):
                out.append((base + i, base + i + len(sur) + given))
                i += len(sur) + given
            else:
                i += 1
    return out


def _ja_names(text: str, lex: Lexicon) -> list[tuple[int, int]]:
    out = []
    # kanji: surname + given name from the lists, or surname + honorific / after a trigger
    for m in _HAN_RUN.finditer(text):
        run, base = m.group(), m.start()
        for i in range(len(run)):
            for ln in (3, 2, 1):
                sur = run[i : i + ln]
                if len(sur) != ln or sur not in lex.ja_surnames:
                    continue
                rest = run[i + ln :]
                given = next((g for g in (3, 2, 1) if rest[:g] in lex.ja_given and len(rest) >= g), 0)
                s, e = base + i, base + i + ln + given
                if (
                    given
                    or _near(text, s, e, vocab.CJK_HONORIFICS, False)
                    or _near(text, s, e, vocab.CJK_TRIGGERS, True)
                ):
                    out.append((s, e))
                break
    # kana (hiragana, katakana, half-width): surname + given name from the lists
    for m in _KANA_RUN.finditer(text):
        kata = _to_katakana(m.group())
        parts = re.split(r"[ \u3000・･]", kata)
        words = "".join(parts)
        for ln in range(len(words) - 1, 1, -1):
            if words[:ln] in lex.ja_surnames and (words[ln:] in lex.ja_given or not words[ln:]):
                out.append(m.span())
                break
    return out


def _ko_names(text: str, lex: Lexicon) -> list[tuple[int, int]]:
    out = []
    words = list(_HANGUL_WORD.finditer(text))
    for k, m in enumerate(words):
        w, s = m.group(), m.start()
        core = w
        for p in vocab.KO_PARTICLES:
            if len(core) > 3 and core.endswith(p):
                core = core[: -len(p)]
                break
        e = s + len(core)
        trig = _near(text, s, e, vocab.CJK_TRIGGERS, True) or _near(text, s, e, vocab.CJK_HONORIFICS, False)
        if (len(core) == 3 and core[0] in lex.ko_surnames and (core[1:] in lex.ko_given or trig)) or (
            len(core) == 2
            and core[0] in lex.ko_surnames
            and core[1:]
            and trig
            and core[1:] not in ("자", "사")
        ):
            out.append((s, e))
        elif (
            len(core) == 1
            and core in lex.ko_surnames
            and core != "이"
            and k + 1 < len(words)
            and words[k + 1].start() - e <= 1
            and len(words[k + 1].group()) >= 2
            and (words[k + 1].group()[:2] in lex.ko_given or trig)
        ):
            out.append((s, words[k + 1].start() + 2))
    return out


def find_cjk_names(text: str) -> list[tuple[int, int]]:
    """Spans of Chinese, Japanese and Korean person names in ``text``, by surname lists."""
    if not _CJK_ANY.search(text):
        return []
    lex = lexicon()
    return _union(_zh_names(text, lex) + _ja_names(text, lex) + _ko_names(text, lex))
