"""OCR-tolerant matching of burned-in words against the file's own header values.

OCR misreads (``KAUFMAN SCOI`` for ``KAUFMAN SCOTT``, ``0`` for ``O``, ``^``
read as ``A``), drops or merges separators, and shows values in other formats
(``DAVIDSON DOUGLAS`` for ``DAVIDSON^DOUGLAS``, ``06.16.1976`` for
``19760616``). So words are compared after *folding* (the usual OCR
confusions mapped to one character; letters-only for names, digits-only for
numbers) with a bounded edit distance that grows with the length of the value.

The :class:`HeaderMatcher` is built per file from its
:class:`~privguard.text.context.PhiContext` and never logs or stores values
outside memory.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

from privguard.text.context import GENERIC_WORDS, PhiContext, has_cjk

_ALPHA_FOLD = str.maketrans(
    {"0": "O", "1": "I", "|": "I", "!": "I", "5": "S", "8": "B", "$": "S", "@": "A", "€": "E"}
)
_DIGIT_FOLD = str.maketrans(
    {
        "O": "0",
        "o": "0",
        "D": "0",
        "Q": "0",
        "U": "0",
        "I": "1",
        "l": "1",
        "|": "1",
        "!": "1",
        "i": "1",
        "L": "1",
        "J": "1",
        "j": "1",
        "S": "5",
        "s": "5",
        "$": "5",
        "B": "8",
        "Z": "2",
        "z": "2",
        "G": "6",
        "b": "6",
        "T": "7",
        "g": "9",
        "q": "9",
        "A": "4",
    }
)


#: Latin letters that Unicode does not decompose into a base letter and a mark.
_LATIN_EXTRA = str.maketrans(
    {
        "Ø": "O",
        "ø": "o",
        "Ł": "L",
        "ł": "l",
        "Đ": "D",
        "đ": "d",
        "Ħ": "H",
        "ħ": "h",
        "Æ": "AE",
        "æ": "ae",
        "Œ": "OE",
        "œ": "oe",
        "Þ": "TH",
        "þ": "th",
        "ß": "ss",
        "ı": "i",
    }
)


def base_letters(text: str) -> str:
    """Latin letters without their diacritics (``SZŐKE`` -> ``SZOKE``, ``ØSTERGAARD`` ->
    ``OSTERGAARD``): the English recognizer reads only the base letters, while the header keeps
    the name as written. Other scripts are left as they are."""
    if text.isascii():
        return text
    t = unicodedata.normalize("NFKD", text.translate(_LATIN_EXTRA))
    return unicodedata.normalize("NFC", "".join(c for c in t if not unicodedata.combining(c)))


def alpha_fold(text: str) -> str:
    """Upper-case base letters, digits that look like letters turned into those letters."""
    return base_letters(text).upper().translate(_ALPHA_FOLD)


def letters(text: str) -> str:
    """Only the letters of :func:`alpha_fold` (separators and noise dropped)."""
    return re.sub(r"[^A-Z]", "", alpha_fold(text))


def digits(text: str) -> str:
    """Letters that look like digits turned into digits; only the digits kept."""
    return re.sub(r"[^0-9]", "", text.translate(_DIGIT_FOLD))


def alnum(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", base_letters(text).upper())


def digit_share(text: str) -> float:
    chars = [c for c in text if c.isalnum()]
    return sum(c.isdigit() for c in chars) / len(chars) if chars else 0.0


def distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or ``limit + 1`` as soon as it is known to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if a == b:
        return 0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        best = i
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            best = min(best, cur[j])
        if best > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def allowed_errors(length: int) -> int:
    """Edits tolerated for a value of ``length`` characters (0 for very short values)."""
    if length <= 3:
        return 0
    if length <= 5:
        return 1
    if length <= 9:
        return 2
    return 3


def near(word: str, value: str) -> bool:
    """True if ``word`` is ``value`` up to OCR errors (both already folded)."""
    if not word or not value:
        return False
    return distance(word, value, allowed_errors(len(value))) <= allowed_errors(len(value))


def contains_near(word: str, value: str) -> bool:
    """True if ``value`` appears inside ``word`` up to OCR errors (a label or noise glued to it)."""
    if len(word) < len(value):
        return near(word, value)
    if value in word:
        return True
    limit = allowed_errors(len(value))
    if limit == 0:
        return False
    n = len(value)
    for size in (n - 1, n, n + 1):
        for start in range(0, max(1, len(word) - size + 1)):
            if distance(word[start : start + size], value, limit) <= limit:
                return True
    return False


class HeaderMatcher:
    """Fuzzy matcher of OCR words against one file's identifying header values.

    Parameters
    ----------
    ctx
        The file's original identifying values.
    """

    def __init__(self, ctx: PhiContext) -> None:
        self.name_words: set[str] = set()
        self.name_runs: set[str] = set()
        self.cjk: set[str] = set(ctx.cjk_names())
        for name in ctx.names:
            for group in name.groups:
                words = [letters(w) for w in group if not has_cjk(w)]
                words = [w for w in words if len(w) >= 2]
                self.name_words.update(words)
                for r in range(2, min(4, len(words)) + 1):
                    for combo in itertools.permutations(words, r):
                        self.name_runs.add("".join(combo))
        self.ids: set[str] = {alnum(i) for i in ctx.identifiers | ctx.other if len(alnum(i)) >= 3}
        self.id_digits: set[str] = {digits(i) for i in ctx.identifiers if len(digits(i)) >= 5}
        self.dates: set[str] = set()
        for d in ctx.dates:
            y, m, dd = d.year, d.month, d.day
            yy = f"{y % 100:02d}"
            for s in (
                f"{y}{m:02d}{dd:02d}",
                f"{m:02d}{dd:02d}{y}",
                f"{dd:02d}{m:02d}{y}",
                f"{m:02d}{dd:02d}{yy}",
                f"{dd:02d}{m:02d}{yy}",
                f"{yy}{m:02d}{dd:02d}",
                f"{m}{dd}{y}",
                f"{dd}{m}{y}",
            ):
                self.dates.add(s)
        self.date_texts: set[str] = {alnum(s) for s in ctx.date_strings() if re.search(r"[A-Za-z]", s)}
        self.places: set[str] = set()
        self.place_words: set[str] = set()
        self.place_values: list[list[str]] = [p.split() for p in sorted(ctx.places) if len(p.split()) > 1]
        for p in ctx.places | ctx.other:
            words = [letters(w) for w in re.split(r"[\s,;/^]+", p) if w]
            self.place_words.update(w for w in words if w)
            self.places.update(w for w in words if len(w) >= 4 and w.lower() not in GENERIC_WORDS)
        self.phones: set[str] = {digits(p) for p in ctx.phones if len(digits(p)) >= 5}

    # -- single words ----------------------------------------------------------------------

    def match(self, token: str) -> str | None:
        """The kind of header value ``token`` repeats ('name', 'id', 'date', 'place', 'phone'), or None."""
        if not token.strip():
            return None
        if self.cjk and any(c in token for c in self.cjk):
            return "name"
        if digit_share(token) >= 0.5:
            kind = self._numeric(token)
            if kind:
                return kind
        kind = self._textual(token)
        if kind:
            return kind
        if digit_share(token) < 0.5:
            # mostly letters read as digits: with no digit read at all ("Oblsz WI", a turned
            # "Im 25/40", folds to 061521), only an exact date or identifier counts
            return (
                self._numeric(token, exact=not re.search(r"[0-9]", token))
                if len(digits(token)) >= 5
                else None
            )
        return None

    def _numeric(self, token: str, exact: bool = False) -> str | None:
        d = digits(token)
        raw = re.sub(r"[^0-9]", "", token)
        same = (lambda a, b: a == b) if exact else near
        within = (lambda a, b: b in a) if exact else contains_near
        for cand in {d, raw}:
            if len(cand) >= 6 and any(same(cand, x) for x in self.dates if abs(len(x) - len(cand)) <= 1):
                return "date"
            if len(cand) >= 5 and any(within(cand, x) for x in self.id_digits):
                return "id"
            if len(cand) >= 5 and any(within(cand, x) for x in self.phones):
                return "phone"
        a = alnum(token)
        if len(a) >= 3 and any(contains_near(a, x) if len(x) >= 5 else a == x for x in self.ids):
            return "id"
        return None

    def _textual(self, token: str) -> str | None:
        word = letters(token)
        if len(word) >= 2:
            for n in self.name_words:
                if (len(n) >= 2 and word == n) or (len(n) >= 4 and near(word, n)):
                    return "name"
            for run in self.name_runs:
                if len(word) >= 6 and contains_near(word, run):
                    return "name"
            # a name glued to a label or noise ("NAME:SMITH", "DOESMITHJ")
            if len(word) >= 6 and any(len(n) >= 5 and n in word for n in self.name_words):
                return "name"
            # a name read only in part (the end cut off or misread: "SCO", "SCOI" for SCOTT)
            if len(word) >= 3 and any(
                len(n) >= 4
                and (len(n) - len(word) <= 3 or len(word) >= 4)
                and (n.startswith(word) or n.endswith(word) or (len(word) >= 4 and n.startswith(word[:-1])))
                for n in self.name_words
            ):
                return "name"
            for p in self.places:
                if near(word, p):
                    return "place"
        a = alnum(token)
        if len(a) >= 3 and any(near(a, x) if len(x) >= 5 else a == x for x in self.ids):
            return "id"
        if len(a) >= 5 and any(near(a, x) for x in self.date_texts):
            return "date"
        return None

    def missing_letters(self, token: str) -> tuple[int, int]:
        """Letters of a header name that a word read only in part lacks: ``(before, after)``.

        ``FITZGER`` read of a burned-in ``FITZGERALD`` (its end crosses anatomy and was not
        detected) lacks 3 letters after it; ``ZGERALD`` lacks 3 before it. The most any name word
        it is a prefix (suffix) of lacks; (0, 0) for a whole name or no name."""
        word = letters(token)
        if len(word) < 3 or word in self.name_words:
            return 0, 0
        before = after = 0
        for n in self.name_words:
            if len(n) <= len(word) or len(n) < 4:
                continue
            if n.startswith(word):
                after = max(after, len(n) - len(word))
            elif n.endswith(word):
                before = max(before, len(n) - len(word))
        return before, after

    def missing_digits(self, token: str, whole: str = "") -> tuple[int, int]:
        """Digits of a header date or identifier that a word read only in part lacks:
        ``(before, after)``.

        ``02/10/198`` read of a burned-in ``02/10/1994`` (its last digit over an organ, not
        detected) lacks 1 digit after it; ``6108-30`` of ``99-6108-30`` lacks 2 before it. The
        most over the values (date spellings, identifiers) it begins or ends, one misread digit
        allowed from six read; (0, 0) when fewer than five digits were read, when the word or the
        text it was read in (``whole``: its run of PHI words, ``27 Jul 2019`` of a ``2019``)
        holds a whole value, or when it begins or ends none."""
        d, around = digits(token), digits(whole)
        values = self.dates | self.id_digits
        if len(d) < 5 or any(x in d or x in around for x in values):
            return 0, 0
        limit = 1 if len(d) >= 6 else 0
        before = after = 0
        for x in values:
            if len(x) <= len(d):
                continue
            if distance(d, x[: len(d)], limit) <= limit:
                after = max(after, len(x) - len(d))
            elif distance(d, x[-len(d) :], limit) <= limit:
                before = max(before, len(x) - len(d))
        return before, after

    def missing_place_text(self, tokens: list[str]) -> tuple[int, int]:
        """Characters of a header place (an institution) that a run of words read in part lacks:
        ``(before, after)``, spaces included.

        ``ST. BARTHOLOMEW`` read of a burned-in ``ST. BARTHOLOMEW MEDICAL CENTER`` whose end is
        too faint for the detector lacks `` MEDICAL CENTER`` (15 characters) after it. The run
        must repeat consecutive words of the value, one of them distinctive (not a generic
        word like "Hospital"); (0, 0) for a whole value or no match."""
        run = [letters(w) for t in tokens for w in t.split()]  # a detector word may hold several
        run = [w for w in run if w]
        if not run:
            return 0, 0
        best = (0, 0)
        for value in self.place_values:
            words = [letters(w) for w in value]
            for i in range(len(words) - len(run) + 1):
                part = words[i : i + len(run)]
                if not all(a == b or (len(b) >= 4 and near(a, b)) for a, b in zip(run, part, strict=True)):
                    continue
                if not any(w in self.places for w in part):
                    continue
                before = len(" ".join(value[:i])) + (1 if i else 0)
                rest = value[i + len(run) :]
                after = len(" ".join(rest)) + (1 if rest else 0)
                if before + after > sum(best):
                    best = (before, after)
        return best

    # -- runs of words -----------------------------------------------------------------------

    def match_runs(self, tokens: list[str]) -> list[tuple[int, int, str]]:
        """Runs ``[i, j)`` of 2-4 adjacent tokens that together repeat a header value.

        Every token of a numeric run must hold a digit and every token of a name run two
        letters, so a label next to a value ("DOB:" before a date) is not swept in; and a token
        at either end of a run must improve the match (fewer edits without it would do), so
        fuzzy tolerance does not absorb a neighbour ("RAFAEL KOWALSKI RT", "4643482136 L40").
        """
        out = []
        for size in range(2, 5):
            for i in range(0, len(tokens) - size + 1):
                j = i + size
                got = self._run_score(tokens[i:j])
                if got is None:
                    continue
                kind, dist = got
                needed = True
                for part in (tokens[i + 1 : j], tokens[i : j - 1]):
                    smaller = self._run_score(part) if len(part) > 1 else self._single_score(part[0])
                    if smaller is not None and smaller[1] <= dist:
                        needed = False
                if needed:
                    out.append((i, j, kind))
        return out

    def _single_score(self, token: str) -> tuple[str, int] | None:
        return self._run_score([token], single=True)

    def _run_score(self, part: list[str], single: bool = False) -> tuple[str, int] | None:
        """(kind, edit distance) of the best header value a run repeats, or None."""
        joined = "".join(part)
        if not joined:
            return None
        a = alnum(joined)
        if len(a) >= 5:
            best = min((distance(a, x, allowed_errors(len(x))) for x in self.date_texts), default=99)
            if best <= 3 and any(near(a, x) for x in self.date_texts):
                return "date", best
        if digit_share(joined) >= 0.6:
            if not single and not all(re.search(r"[0-9]", t) for t in part):
                return None
            d = digits(joined)
            best_kind, best = None, 99
            if len(d) >= 6:
                for x in self.dates:
                    if abs(len(x) - len(d)) <= 1 and near(d, x):
                        dist = distance(d, x, 3)
                        if dist < best:
                            best_kind, best = "date", dist
            if len(d) >= 5:
                for x in self.id_digits | self.phones:
                    if contains_near(d, x):
                        dist = 0 if x in d else distance(d, x, 3) if len(d) <= len(x) else 1
                        if dist < best:
                            best_kind, best = ("id" if x in self.id_digits else "phone"), dist
            return (best_kind, best) if best_kind else None
        if single or all(len(re.sub(r"[^A-Za-z]", "", t)) >= 2 for t in part):
            word = letters(joined)
            if len(word) >= 6:
                dists = [distance(word, r, allowed_errors(len(r))) for r in self.name_runs if near(word, r)]
                if dists:
                    return "name", min(dists)
                if single and any(near(word, n) for n in self.name_words if len(n) >= 4):
                    return "name", min(distance(word, n, 3) for n in self.name_words if len(n) >= 4)
        return None

    def is_place_word(self, token: str) -> bool:
        """True if the token is any word of a header place (generic words included), for expansion."""
        w = letters(token)
        return bool(w) and any(w == p or (len(p) >= 5 and near(w, p)) for p in self.place_words)

    def is_name_word(self, token: str) -> bool:
        w = letters(token)
        return bool(w) and any(w == n or (len(n) >= 4 and near(w, n)) for n in self.name_words)
