"""Which detected words are PHI: header values, recognizers, allow-list, readability.

For every word of every line, in this order:

1. ``redact: all-text`` masks every detected word (zero-risk sites);
2. **PHI** if any reading of the word (line reading, its own crop, other
   orientations) repeats a header value of the file (:mod:`privguard.pixels.fuzzy`:
   names in any order or separator, IDs, dates in any format, places, phones),
   or runs of 2-4 words do together;
3. **PHI** if presidio's and privguard's recognizers
   (:func:`privguard.text.classifier.default_classifier`) flag it in the line's
   text, or privguard's OCR-tolerant patterns do: dates in any common format,
   times, long digit runs (IDs), bracketed sex ``[M]``, ages ``45Y``, e-mails;
4. **PHI** if it follows a PHI label on its line (``Name:``, ``DOB:``, ``MRN:`` ...);
5. **kept** if it is on the allow-list for the modality (``policies/pixels``);
6. **PHI** if it was not read well: low confidence, too few characters for
   its box, mostly non-alphanumeric output (the signature of a script the
   English weights do not cover, e.g. Chinese names), or empty;
7. otherwise kept (or masked when the allow-list says ``unknown_text: redact``).

PHI then spreads to neighbours that complete it, because a partial mask is a
leak (``St.`` left before ``Benedict Medical Center``): other words of the same
header name or place, initials and titles next to a name, generic place words
next to a place, and the sex letter next to a name or age.

Reasons are PHI-free category names; only kept words' text ever reaches the report.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np

from privguard.pixels.allowlist import AllowList, normalize
from privguard.pixels.fuzzy import HeaderMatcher, digit_share, digits
from privguard.pixels.textfind import PHRASE_GAP, Line, Phrase, Word
from privguard.text.classifier import PhiClassifier, default_classifier
from privguard.text.context import GENERIC_WORDS, PhiContext

_DATE = re.compile(r"\d{1,4}\s?[./\-]\s?\d{1,2}\s?[./\-]\s?\d{2,4}")
_DATE_WORDY = re.compile(
    r"(\d{1,2}[\s\-./]?)?(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*[\s\-./,]*\d{0,2}[\s\-./,]*\d{2,4}",
    re.IGNORECASE,
)
_PARTIAL_DATE = re.compile(r"(\d{1,2})\s?/\s?(\d{1,2})|(\d{2})[.\-,](\d{2})")
_TIME = re.compile(r"\d{1,2}[:.]\d{2}([:.]\d{2})?([.,]\d+)?\s?(am|pm)?", re.IGNORECASE)
#: A window width and level read as one token: "W400L40", "400L40", "WW350WL-40".
_WINDOW = re.compile(r"(W{1,2}:?)?\d{1,4}W?L:?-?\d{1,4}", re.IGNORECASE)
_SEX = re.compile(r"[\[(<{]\s*[MFOU]\s*[\])>}JIl1|]?|[\[(<{]?\s*[MFOU]\s*[\])>}]")
_AGE = re.compile(r"0?\d{1,3}\s?(y|yr|yrs|yo|y/o|years?|mo|mos|wk|wks)", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.IGNORECASE)
_LABELS = frozenset(
    [
        "NAME",
        "PATIENT",
        "PT",
        "PAT",
        "PATNAME",
        "PATIENTNAME",
        "DOB",
        "BIRTH",
        "BIRTHDATE",
        "BORN",
        "ID",
        "PID",
        "MRN",
        "MR",
        "ACC",
        "ACCESSION",
        "ACCNO",
        "SEX",
        "GENDER",
        "AGE",
        "PHYSICIAN",
        "DR",
        "REF",
        "REFERRING",
        "REFPHYS",
        "DOCTOR",
        "HOSPITAL",
        "INSTITUTION",
        "OPERATOR",
        "TECH",
        "TECHNOLOGIST",
        "SONOGRAPHER",
        "ADDRESS",
        "PHONE",
        "TEL",
        "STUDYID",
        "EXAM",
        "EXAMNO",
    ]
)
#: Units of measure after a number ("1.25 mm"): that number is a measurement, not a time.
#: Hours ("h") are not here: "10.30 h" is a time of day.
_UNITS = frozenset(
    {"mm", "cm", "m", "um", "ms", "s", "sec", "hz", "khz", "mhz", "ma", "mas", "kv", "kvp", "db", "mgy", "ml"}
)
_TITLES = frozenset({"DR", "MR", "MRS", "MS", "MISS", "PROF", "SR", "JR"})
_CONNECTORS = frozenset(
    {"ST", "SAINT", "STE", "OF", "THE", "AND", "&", "-", "DE", "LA", "DU", "VAN", "VON", "MC"}
)


#: A word read with less confidence than this, right next to PHI, is taken as part of it.
UNSURE = 0.6


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one word, and why (a PHI-free category)."""

    redact: bool
    reason: str


#: What separates the words of one box's reading: spaces, and an underscore (a space read at
#: the baseline).
_WORD_BREAK = re.compile(r"[\s_]+")


def _core(token: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", token).upper()


def is_label(token: str) -> bool:
    """A PHI label (``DOB:``, ``MRN#``): it says what was there, not whose it was."""
    t = token.strip()
    return t.endswith((":", "#", "=")) and _core(t) in _LABELS


def pattern_kind(token: str) -> str | None:
    """privguard's OCR-tolerant PHI patterns for one word ('date', 'time', 'id', 'sex', 'age', 'email')."""
    t = token.strip().strip(",;")
    if not t:
        return None
    if _EMAIL.fullmatch(t):
        return "email"
    if _SEX.fullmatch(t):
        return "sex"
    if _AGE.fullmatch(t):
        return "age"
    numeric = digit_share(t) >= 0.6
    folded = t
    if numeric:
        folded = re.sub(r"[A-Za-z]", lambda m: digits(m.group()) or m.group(), t)
    if _DATE.fullmatch(folded) or _DATE.fullmatch(t):
        return "date"
    if _DATE_WORDY.fullmatch(t):
        return "date"
    partial = _PARTIAL_DATE.fullmatch(folded) or _PARTIAL_DATE.fullmatch(t)
    if partial:
        a, b = (int(x) for x in (partial.group(1, 2) if partial.group(1) else partial.group(3, 4)))
        if (1 <= a <= 12 and 1 <= b <= 31) or (1 <= b <= 12 and 1 <= a <= 31):
            return "date"
    if _TIME.fullmatch(t) or (numeric and _TIME.fullmatch(folded)):
        return "time"
    if _WINDOW.fullmatch(t):
        return None  # a window setting read without its spaces ("W400L40"), not an ID
    n = len(re.sub(r"[^0-9]", "", t)) if not numeric else len(digits(t))
    if n >= 5:
        return "id"
    return None


def unreadable(word: Word, min_confidence: float) -> bool:
    """True when the recognizer did not read the word well enough to trust its text."""
    text = word.text.strip()
    if not text or word.confidence < min_confidence:
        return True
    chars = [c for c in text if not c.isspace()]
    good = sum(c.isalnum() and c.isascii() for c in chars)
    if good == 0 or good < 0.5 * len(chars):
        return True
    # Box much wider than the characters read: part of the word was not recognised.
    b = word.box
    long_side, short_side = (b.width, b.height) if word.orientation == 0 else (b.height, b.width)
    if short_side >= 6:
        expected = long_side / (0.9 * short_side)
        if len(chars) < 0.35 * expected - 1:
            return True
    return False


class PhiDecider:
    """Decide, per word, whether burned-in text is PHI.

    Parameters
    ----------
    allowlist
        Non-PHI terms and patterns per modality.
    mode
        ``phi`` (mask what is PHI) or ``all-text`` (mask every detected word).
    classifier
        The text classifier (presidio offline + privguard recognizers).
    """

    def __init__(
        self, allowlist: AllowList, mode: str = "phi", classifier: PhiClassifier | None = None
    ) -> None:
        if mode not in ("phi", "all-text"):
            raise ValueError(f"unknown redact mode '{mode}'")
        self.allowlist = allowlist
        self.mode = mode
        self.classifier = classifier or default_classifier()

    def decide(self, lines: list[Line], ctx: PhiContext, modality: str = "") -> list[list[Decision]]:
        """One decision per word of each line."""
        if self.mode == "all-text":
            return [[Decision(True, "all-text") for _ in line.words] for line in lines]
        matcher = HeaderMatcher(ctx)
        return [self._line(line, ctx, matcher, modality) for line in lines]

    # -- one line ------------------------------------------------------------------------------

    def _line(self, line: Line, ctx: PhiContext, m: HeaderMatcher, modality: str) -> list[Decision]:
        words = line.words
        n = len(words)
        phi: list[str | None] = [None] * n
        # 2. header values, word by word, every reading
        for i, w in enumerate(words):
            for r in w.readings():
                kind = m.match(r.text) if r.text.strip() else None
                parts = _WORD_BREAK.split(r.text.strip())
                if not kind and len(parts) > 1:
                    # one box holding several words (a faint line read whole, "LAKEVEW UNIVERSITY
                    # HOSPITAL", or with a space read as "_": "LAKEVIEW_UNIVERSITY"): a header
                    # value in any of them makes the box PHI
                    kind = next((hit for part in parts if part and (hit := m.match(part))), None)
                if kind:
                    phi[i] = "header:" + kind
                    break
        # 3. privguard's patterns on every reading; presidio on the other readings
        for i, w in enumerate(words):
            if phi[i]:
                continue
            readings = w.readings()
            for k, r in enumerate(readings):
                if k > 0 and r.confidence < self.allowlist.min_confidence:
                    # an unsure other reading (another orientation, a padded crop) is often noise
                    # shaped like a pattern; header values are still matched on it above, and so
                    # is a bracketed sex ("[Fl" upright of a "[F]" read turned as "5"): noise
                    # seldom takes that exact shape
                    if pattern_kind(r.text) == "sex":
                        phi[i] = "pattern:sex"
                        break
                    continue
                pk = pattern_kind(r.text)
                if pk:
                    phi[i] = "pattern:" + pk
                    break
                if k > 0 and r.text.strip():
                    spans = [sp for sp in self.classifier.find(r.text, ctx) if _plausible(sp.entity, r.text)]
                    if spans:
                        phi[i] = ("header:" if spans[0].source == "header" else "pattern:") + spans[
                            0
                        ].entity.lower()
                        break
        # runs of words, presidio and the phrase readings, one phrase (words no more than a space
        # or two apart) at a time: items far apart on a line are unrelated
        phrases = list(line.phrases)
        for group in _groups(words):
            tokens = [words[k].text for k in group]
            for i, j, kind in m.match_runs(tokens):
                for k in group[i:j]:
                    phi[k] = phi[k] or "header:" + kind
            for k, kind in self._classified(tokens, ctx):
                phi[group[k]] = phi[group[k]] or kind
            for phrase in phrases:
                if set(phrase.words) <= set(group):
                    for k, kind in self._phrase(phrase, words, ctx, m):
                        phi[k] = phi[k] or kind
        # a number shaped like a time but followed by a unit of measure is a measurement
        # ("1.25 mm" slice thickness, "0.50 s"), not a time of day
        for group in _groups(words):
            for a, b in itertools.pairwise(group):
                if phi[a] == "pattern:time" and not phi[b] and _core(words[b].text).lower() in _UNITS:
                    phi[a] = None
        # 4. values after a PHI label, within the label's phrase, up to the end of the value
        for group in _groups(words):
            labelled = False
            seen_value = False
            for k in group:
                w = words[k]
                if is_label(w.text):
                    labelled, seen_value = True, False
                    continue
                if w.text.strip().endswith(":"):
                    labelled = False
                if not labelled:
                    continue
                if phi[k]:
                    seen_value = True
                elif seen_value:
                    labelled = False  # the value ended; what follows is something else
                else:
                    phi[k] = "label-value"
        # spread PHI to the words that complete it
        self._expand(words, phi, m)
        # an identifier in one word makes its whole phrase PHI ("Children's Hospital" of a masked
        # "Eastbrook"): a partial mask leaves the rest readable, and the rest narrows it down.
        # PHI labels ("DOB:") stay: they say what was there, not whose it was.
        for group in _groups(words):
            if any(phi[k] and phi[k] != "adjacent" for k in group):
                for k in group:
                    if not phi[k] and not is_label(words[k].text):
                        phi[k] = "phrase"
        # 5.-7. allow-list, readability, unknown text
        out = []
        phrase_kept = self._phrases([w.text for w in words], modality)
        for i, w in enumerate(words):
            if phi[i]:
                out.append(Decision(True, phi[i] or "phi"))
                continue
            bad = unreadable(w, self.allowlist.min_confidence)
            if i in phrase_kept or self.allowlist.matches(w.text, modality, strict=bad):
                out.append(Decision(False, "allow-list"))
            elif bad:
                out.append(Decision(True, "unreadable"))
            elif self.allowlist.unknown_text == "redact":
                out.append(Decision(True, "unknown-text"))
            else:
                out.append(Decision(False, "non-phi"))
        # a word masked because it could not be read makes the rest of its phrase PHI too, unless
        # the rest is on the allow-list ("Laksput County" unreadable: its "Hospital" goes with it)
        for group in _groups(words):
            if any(out[k].redact for k in group):
                for k in group:
                    if out[k].reason == "non-phi":
                        out[k] = Decision(True, "phrase")
        return out

    def _phrase(
        self, phrase: Phrase, words: list[Word], ctx: PhiContext, m: HeaderMatcher
    ) -> list[tuple[int, str]]:
        """PHI in a phrase reading, mapped back to its words.

        With as many tokens as words, token ``k`` is word ``k``; otherwise (the detector cut
        a token at its punctuation) by character position, a word counting when half of it
        lies under the span.
        """
        text = phrase.reading.text
        if not text.strip():
            return []
        spans: list[tuple[int, int, str]] = []
        tokens = []
        pos = 0
        for tok in text.split():
            start = text.index(tok, pos)
            tokens.append((start, start + len(tok), tok))
            pos = start + len(tok)
        for t, (_s0, _e0, tok) in enumerate(tokens):
            kind = m.match(tok)
            pk = None if kind else pattern_kind(tok)
            if kind or pk:
                spans.append((t, t + 1, ("header:" + kind) if kind else "pattern:" + str(pk)))
        for i, j, kind in m.match_runs([t for _, _, t in tokens]):
            spans.append((i, j, "header:" + kind))
        for span in self.classifier.find(text, ctx):
            if not _plausible(span.entity, text[span.start : span.end]):
                continue
            first = next((t for t, (s0, e0, _) in enumerate(tokens) if e0 > span.start), len(tokens) - 1)
            last = next((t for t, (s0, e0, _) in enumerate(tokens) if e0 >= span.end), len(tokens) - 1)
            prefix = "header:" if span.source == "header" else "pattern:"
            spans.append((first, last + 1, prefix + span.entity.lower()))
        out = []
        if len(tokens) == len(phrase.words):
            for i, j, kind in spans:
                out += [(phrase.words[t], kind) for t in range(i, j)]
            return out
        # The detector cut the text differently from the reading: map by character position.
        # Dates, IDs and the like spread over the words under them; a name or a place must be
        # found in the part of the reading that lies over the word itself.
        x0, width, n = phrase.box.x0, max(1, phrase.box.width), max(1, len(text))
        for i, j, kind in spans:
            if kind.endswith(("name", "person", "place", "location")):
                continue
            a = x0 + width * tokens[i][0] / n
            b = x0 + width * tokens[j - 1][1] / n
            for k in phrase.words:
                wb = words[k].box
                if max(0.0, min(b, wb.x1) - max(a, wb.x0)) >= 0.5 * max(1, wb.width):
                    out.append((k, kind))
        for k in phrase.words:
            wb = words[k].box
            c0 = max(0, int((wb.x0 - x0) * n / width) - 1)
            c1 = min(len(text), int(np.ceil((wb.x1 - x0) * n / width)) + 1)
            kind_m = m.match(text[c0:c1].strip())
            if kind_m in ("name", "place"):
                out.append((k, "header:" + kind_m))
        return out

    def _classified(self, tokens: list[str], ctx: PhiContext) -> list[tuple[int, str]]:
        text = " ".join(tokens)
        if not text.strip():
            return []
        starts = []
        pos = 0
        for t in tokens:
            starts.append((pos, pos + len(t)))
            pos += len(t) + 1
        out = []
        for span in self.classifier.find(text, ctx):
            if not _plausible(span.entity, text[span.start : span.end]):
                continue
            kind = ("header:" if span.source == "header" else "pattern:") + span.entity.lower()
            for i, (s, e) in enumerate(starts):
                if s < span.end and span.start < e and e > s:
                    out.append((i, kind))
        return out

    def _phrases(self, tokens: list[str], modality: str) -> set[int]:
        kept: set[int] = set()
        norm = [normalize(t) for t in tokens]
        for phrase in self.allowlist.phrases(modality):
            k = len(phrase)
            for i in range(len(norm) - k + 1):
                if tuple(norm[i : i + k]) == phrase:
                    kept.update(range(i, i + k))
        return kept

    def _expand(self, words: list[Word], phi: list[str | None], m: HeaderMatcher) -> None:
        """Spread PHI to neighbours that complete it (see the module docstring).

        Words added because they merely sit next to PHI (a cut-off piece, an unsure reading)
        are marked ``adjacent`` and do not spread further; name, place and date words do.
        """
        changed = True
        while changed:
            changed = False
            for i, w in enumerate(words):
                if phi[i]:
                    continue
                core = _core(w.text)
                for j in (i - 1, i + 1):
                    if not (0 <= j < len(words)) or not phi[j]:
                        continue
                    kind = phi[j] or ""
                    primary = kind != "adjacent"
                    h = max(w.box.height, words[j].box.height)
                    gap = w.box.gap(words[j].box)[0]
                    namey = kind.endswith(("name", "person"))
                    placey = kind.endswith(("place", "location"))
                    if (namey and (m.is_name_word(w.text) or core in _TITLES)) or (
                        placey
                        and (m.is_place_word(w.text) or core.lower() in GENERIC_WORDS or core in _CONNECTORS)
                    ):
                        phi[i] = kind
                    elif kind.endswith(("age", "date", "date_time", "name", "person", "sex")) and core in {
                        "M",
                        "F",
                        "O",
                    }:
                        phi[i] = "pattern:sex"
                    elif gap <= 0.25 * h and primary:
                        phi[i] = kind  # the same word, cut in two: the same kind of PHI
                    elif primary and (
                        (w.confidence < UNSURE and gap <= 0.8 * h)  # an unsure reading next to PHI
                        or (namey and len(core) == 1 and core.isalpha() and gap <= 1.2 * h)  # an initial
                    ):
                        phi[i] = "adjacent"
                    else:
                        continue
                    changed = True
                    break


_WEB = re.compile(r"(?i)(https?:|www\.|://|@|\.(com|org|net|edu|gov|info|io|de|uk|fr|cn|jp|nl|ch|it|es)\b)")


def _plausible(entity: str, text: str) -> bool:
    """Drop a URL/domain hit on an OCR reading that has no web shape ("3.5MHz" read "3.SMHz"):
    measurements with a dot look like domains to a URL recognizer."""
    if entity.upper() in ("URL", "DOMAIN_NAME", "DOMAIN"):
        return bool(_WEB.search(text))
    return True


def _groups(words: list[Word]) -> list[list[int]]:
    """Indices of a line's words in phrases: runs no wider apart than :data:`PHRASE_GAP` heights."""
    out: list[list[int]] = []
    for k, w in enumerate(words):
        if out:
            prev = words[out[-1][-1]]
            if w.orientation and prev.orientation:
                # a rotated line: words stacked, the text height is the boxes' width
                near = w.box.gap(prev.box)[1] <= PHRASE_GAP * max(w.box.width, prev.box.width)
            else:
                near = w.box.gap(prev.box)[0] <= PHRASE_GAP * max(w.box.height, prev.box.height)
            if near:
                out[-1].append(k)
                continue
        out.append([k])
    return out
