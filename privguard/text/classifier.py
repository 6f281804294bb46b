"""Which parts of a text are PHI: the file's own values, names, patterns and presidio.

The classifier runs presidio offline: no spaCy model (presidio's no-op NLP
engine), pattern recognizers only, and tldextract pinned to its bundled
public-suffix snapshot so that nothing is fetched. On top of presidio's
generic recognizers (dates, e-mail, phone, URL, IP, SSN) privguard adds:

* :class:`HeaderValueRecognizer`, built per file from its :class:`PhiContext`:
  the patient's and staff's names in any order and with any separator
  (initials included when next to a name word), identifiers with or without
  separators, the file's dates in every common format, institution names and
  addresses and their distinctive words, phone numbers;
* pattern recognizers for labelled identifiers (``MRN: 12345``), titled names
  (``Dr. Smith``), long digit runs and dates presidio's set misses (``07.22.1943``);
* header-independent recognizers: person names by dictionary and context
  (:mod:`privguard.text.names`, Latin script and Chinese/Japanese/Korean), and
  phones valid or not, addresses, postcodes, dates, ages over 89 and codes after
  identifier keywords (:mod:`privguard.text.patterns`).

Found spans are replaced by a label (``[NAME]``, ``[ID]``, ``[DATE]`` ...) so that
the rest of the text stays: "CT chest for John Q Example" becomes
"CT chest for [NAME]". The burned-in text stage reuses :meth:`PhiClassifier.find`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from privguard.text.context import PhiContext, has_cjk
from privguard.text.names import find_cjk_names, find_names, lexicon
from privguard.text.patterns import find_patterns

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, RecognizerResult

logger = logging.getLogger(__name__)

#: Replacement label per entity type.
LABELS: dict[str, str] = {
    "PERSON": "[NAME]",
    "ID": "[ID]",
    "DATE_TIME": "[DATE]",
    "PHONE_NUMBER": "[PHONE]",
    "EMAIL_ADDRESS": "[EMAIL]",
    "URL": "[URL]",
    "IP_ADDRESS": "[IP]",
    "LOCATION": "[PLACE]",
    "US_SSN": "[ID]",
    "MEDICAL_LICENSE": "[ID]",
    "AGE": "[AGE]",
}
HEADER_SCORE = 0.95
#: Score of the header-independent recognizers (names by dictionary/context, patterns).
NAME_SCORE = 0.8
PATTERN_SCORE = 0.85
#: Presidio results below this score are ignored (its weakest date patterns are 0.1-0.2).
SCORE_THRESHOLD = 0.3
_SEP = r"[\s\-./,]?"


@dataclass(frozen=True, slots=True)
class PhiSpan:
    """A span of text classified as PHI. ``source`` is 'header' or 'pattern'."""

    start: int
    end: int
    entity: str
    score: float
    source: str

    @property
    def label(self) -> str:
        return LABELS.get(self.entity, "[REDACTED]")


@dataclass(frozen=True, slots=True)
class Redaction:
    """The cleaned text and the spans (in the original text) that were replaced."""

    text: str
    spans: tuple[PhiSpan, ...]

    @property
    def changed(self) -> bool:
        return bool(self.spans)

    @property
    def counts(self) -> dict[str, int]:
        """Spans replaced per label (``{"[NAME]": 2, "[PHONE]": 1}``): counts, never values."""
        out: dict[str, int] = {}
        for s in self.spans:
            out[s.label] = out.get(s.label, 0) + 1
        return out


def _alternation(terms: Iterable[str]) -> str:
    return "|".join(sorted({re.escape(t) for t in terms if t}, key=len, reverse=True))


def _flexible(term: str) -> str:
    """A pattern for ``term`` that tolerates changed separators and spacing."""
    chars = [c for c in term if not c.isspace() and c not in "-./,"]
    return _SEP.join(re.escape(c) for c in chars)


class _Matchers:
    """Compiled regular expressions for one PhiContext."""

    def __init__(self, ctx: PhiContext) -> None:
        latin_names = {t for t in ctx.name_tokens() if not has_cjk(t)}
        cjk = ctx.cjk_names()
        self.names = (
            re.compile(rf"(?<!\w)(?:{_alternation(latin_names)})(?!\w)", re.IGNORECASE)
            if latin_names
            else None
        )
        self.cjk = re.compile(_alternation(cjk)) if cjk else None
        initials = ctx.name_initials()
        self.initial = re.compile(rf"(?<!\w)[{''.join(sorted(initials))}]\.?(?!\w)") if initials else None
        ids = [i for i in ctx.identifiers if len(i) >= 3]
        self.ids = (
            re.compile(
                r"(?<![A-Za-z0-9])(?:"
                + "|".join(_flexible(i) for i in sorted(ids, key=len, reverse=True))
                + r")(?![A-Za-z0-9])",
                re.IGNORECASE,
            )
            if ids
            else None
        )
        dates = ctx.date_strings()
        self.dates = (
            re.compile(rf"(?<![0-9])(?:{_alternation(dates)})(?![0-9])", re.IGNORECASE) if dates else None
        )
        places = ctx.place_terms()
        self.places = (
            re.compile(
                r"(?<!\w)(?:"
                + "|".join(
                    r"\s+".join(re.escape(w) for w in p.split())
                    for p in sorted(places, key=len, reverse=True)
                )
                + r")(?!\w)",
                re.IGNORECASE,
            )
            if places
            else None
        )
        phones = [re.sub(r"\D", "", p) for p in ctx.phones]
        phones = [p for p in phones if len(p) >= 5]
        self.phones = re.compile("|".join(r"[\s().+-]*".join(p) for p in phones)) if phones else None


def header_spans(text: str, ctx: PhiContext, matchers: _Matchers | None = None) -> list[PhiSpan]:
    """Spans of ``text`` that repeat the file's own identifying values."""
    m = matchers or _Matchers(ctx)
    spans: list[PhiSpan] = []

    def add(rx: re.Pattern[str] | None, entity: str) -> None:
        if rx is None:
            return
        for hit in rx.finditer(text):
            if hit.end() > hit.start():
                spans.append(PhiSpan(hit.start(), hit.end(), entity, HEADER_SCORE, "header"))

    add(m.ids, "ID")
    add(m.dates, "DATE_TIME")
    add(m.phones, "PHONE_NUMBER")
    add(m.places, "LOCATION")
    add(m.cjk, "PERSON")
    names = []
    if m.names is not None:
        names = [(h.start(), h.end()) for h in m.names.finditer(text)]
    if names and m.initial is not None:
        # An initial counts only right next to a name word ("John Q Example", "J. Example").
        for h in m.initial.finditer(text):
            for s, e in names:
                gap_after = text[e : h.start()]
                gap_before = text[h.end() : s]
                if (h.start() >= e and re.fullmatch(r"[\s,.^'-]{0,3}", gap_after)) or (
                    h.end() <= s and re.fullmatch(r"[\s,.^'-]{0,3}", gap_before)
                ):
                    names.append((h.start(), h.end()))
                    break
    spans += [PhiSpan(s, e, "PERSON", HEADER_SCORE, "header") for s, e in names]
    return spans


# -- presidio ----------------------------------------------------------------------------


def _offline_tldextract() -> None:
    """Make tldextract use its bundled public-suffix snapshot; never fetch the list."""
    import tldextract
    import tldextract.tldextract as tx

    if not getattr(tx.TLD_EXTRACTOR, "_privguard_offline", False):
        extractor = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)
        extractor._privguard_offline = True  # type: ignore[attr-defined]
        tx.TLD_EXTRACTOR = extractor


def _privguard_patterns() -> list[Any]:
    from presidio_analyzer import Pattern, PatternRecognizer

    return [
        PatternRecognizer(
            supported_entity="DATE_TIME",
            name="PrivguardDateRecognizer",
            patterns=[
                Pattern("d.m.y any order", r"\b\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})\b", 0.6),
                Pattern("yyyymmdd", r"\b(?:1[89]|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b", 0.5),
                Pattern(
                    "month name",
                    r"\b(?:\d{1,2}\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
                    r"(?:\s+\d{1,2}(?:st|nd|rd|th)?,?)?\s+(?:19|20)\d{2}\b",
                    0.6,
                ),
                Pattern("cjk date", r"(?:19|20)\d{2}年\d{1,2}月\d{1,2}日", 0.8),
            ],
        ),
        PatternRecognizer(
            supported_entity="ID",
            name="PrivguardNumberRecognizer",
            patterns=[Pattern("long digit run", r"(?<![\d.])\d{6,}(?![\d.])", 0.5)],
        ),
    ]


class _GroupRecognizer:
    """Factory for presidio recognizers whose PHI is one capture group of a regex."""

    @staticmethod
    def build(entity: str, name: str, regex: str, flags: int = 0) -> Any:
        from presidio_analyzer import EntityRecognizer, RecognizerResult

        compiled = re.compile(regex, flags)

        class GroupRecognizer(EntityRecognizer):
            def load(self) -> None:
                pass

            def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
                out = []
                for hit in compiled.finditer(text):
                    s, e = hit.span(1)
                    if e > s:
                        out.append(RecognizerResult(entity, s, e, 0.7))
                return out

        return GroupRecognizer(supported_entities=[entity], name=name)


@lru_cache(maxsize=1)
def _analyzer() -> AnalyzerEngine:
    """Build presidio's analyzer once per process (offline, pattern recognizers only)."""
    _offline_tldextract()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        DateRecognizer,
        EmailRecognizer,
        IpRecognizer,
        MedicalLicenseRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    recognizers = [
        DateRecognizer(),
        EmailRecognizer(),
        PhoneRecognizer(),
        UrlRecognizer(),
        IpRecognizer(),
        UsSsnRecognizer(),
        MedicalLicenseRecognizer(),
        *_privguard_patterns(),
        _GroupRecognizer.build(
            "ID",
            "PrivguardLabelledIdRecognizer",
            r"\b(?:MRN|MR\s*#|patient\s*id|pt\.?\s*id|PID|acc(?:ession)?(?:\s*(?:no|number|#))?|ID)"
            r"\s*[:#.]?\s*([A-Z0-9][A-Z0-9-]{2,})",
            re.IGNORECASE,
        ),
        _GroupRecognizer.build(
            "PERSON",
            "PrivguardTitledNameRecognizer",
            r"\b(?:Dr|Mr|Mrs|Ms|Miss|Prof)\.?\s+([A-Z][A-Za-z'-]+(?:\s+[A-Z][A-Za-z'-]+){0,2})",
        ),
        _GroupRecognizer.build(
            "PERSON",
            "PrivguardLabelledNameRecognizer",
            r"(?i:\b(?:patient(?:'s)?\s+name|name|pt|patient)\s*:\s*)([^\n\r,;:]{2,60}?)(?=\s*(?:[\n\r,;]|$|\s{2}))",
        ),
    ]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
    engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def _merge(spans: list[PhiSpan]) -> list[PhiSpan]:
    """Merge overlapping or touching-by-separator spans; the stronger entity names the result."""
    if not spans:
        return []
    spans = sorted(spans, key=lambda s: (s.start, -s.end))
    out = [spans[0]]
    for s in spans[1:]:
        last = out[-1]
        if s.start <= last.end:
            if last.start <= s.start and s.end <= last.end and s.end - s.start < last.end - last.start:
                best = last  # a name inside an e-mail address: the address names the whole
            elif s.start <= last.start and last.end <= s.end and last.end - last.start < s.end - s.start:
                best = s
            else:
                best = last if (last.score, last.end - last.start) >= (s.score, s.end - s.start) else s
            out[-1] = PhiSpan(
                last.start, max(last.end, s.end), best.entity, max(last.score, s.score), best.source
            )
        else:
            out.append(s)
    return out


def _join_names(text: str, spans: list[PhiSpan]) -> list[PhiSpan]:
    """Join name spans separated only by name punctuation ("Example, John" -> one [NAME])."""
    out: list[PhiSpan] = []
    for s in spans:
        if (
            out
            and out[-1].entity == "PERSON"
            and s.entity == "PERSON"
            and re.fullmatch(r"[\s,.^'-]{0,3}", text[out[-1].end : s.start])
        ):
            last = out[-1]
            out[-1] = PhiSpan(last.start, s.end, "PERSON", max(last.score, s.score), last.source)
        else:
            out.append(s)
    return out


@lru_cache(maxsize=4096)
def _lexical_spans(text: str) -> tuple[PhiSpan, ...]:
    """Names and patterns of ``text``.

    They do not depend on the file, so a value that repeats (a series' descriptions,
    a site's boilerplate) is classified once per process. The cache lives in memory
    only, like the file's context, and is never written or logged.
    """
    spans = [PhiSpan(s, e, "PERSON", NAME_SCORE, "name") for s, e in find_names(text)]
    spans += [PhiSpan(s, e, "PERSON", NAME_SCORE, "name") for s, e in find_cjk_names(text)]
    english = lexicon().english
    spans += [PhiSpan(s, e, ent, PATTERN_SCORE, "pattern") for s, e, ent in find_patterns(text, english)]
    return tuple(spans)


_PRESIDIO_HINT = re.compile(r"\d|@|://|www\.", re.IGNORECASE)


class PhiClassifier:
    """Find and replace PHI in free text. One instance per process is enough.

    ``use_presidio`` adds presidio's recognizers (run only on text with a digit,
    ``@`` or a URL: the only text they can match); ``use_lexicon`` adds the
    header-independent recognizers of names and patterns. :meth:`counts` tells
    how many spans of each label this instance replaced (never values).
    """

    def __init__(self, use_presidio: bool = True, use_lexicon: bool = True) -> None:
        self._use_presidio = use_presidio
        self._use_lexicon = use_lexicon
        self._counts: dict[str, int] = {}

    def find(self, text: str, context: PhiContext | None = None) -> list[PhiSpan]:
        """Return the PHI spans of ``text``, merged and sorted."""
        if not text or not text.strip():
            return []
        spans: list[PhiSpan] = []
        if context is not None and not context.empty:
            spans += header_spans(text, context, _matchers_for(context))
        if self._use_lexicon:
            spans += _lexical_spans(text)
        if self._use_presidio and _PRESIDIO_HINT.search(text):
            results: list[RecognizerResult] = _analyzer().analyze(
                text=text, language="en", score_threshold=SCORE_THRESHOLD
            )
            spans += [PhiSpan(r.start, r.end, r.entity_type, float(r.score), "pattern") for r in results]
        return _join_names(text, _merge(spans))

    def redact(self, text: str, context: PhiContext | None = None) -> Redaction:
        """Replace each PHI span by its label; the rest of the text stays."""
        spans = self.find(text, context)
        if not spans:
            return Redaction(text, ())
        parts = []
        pos = 0
        for s in spans:
            parts.append(text[pos : s.start])
            parts.append(s.label)
            pos = s.end
            self._counts[s.label] = self._counts.get(s.label, 0) + 1
        parts.append(text[pos:])
        return Redaction("".join(parts), tuple(spans))

    def counts(self) -> dict[str, int]:
        """Spans replaced so far by :meth:`redact`, per label (counts only, never values)."""
        return dict(self._counts)


_MATCHER_CACHE: dict[int, tuple[PhiContext, _Matchers]] = {}
#: Matchers by context content: files of one series usually carry the same values.
_BY_CONTENT: dict[tuple[object, ...], _Matchers] = {}


def _signature(ctx: PhiContext) -> tuple[object, ...]:
    return (
        tuple(n.groups for n in ctx.names),
        frozenset(ctx.identifiers),
        frozenset(ctx.dates),
        frozenset(ctx.places),
        frozenset(ctx.phones),
        frozenset(ctx.other),
    )


def _matchers_for(ctx: PhiContext) -> _Matchers:
    """Compile a context's matchers once (a file's text values share one context, and
    the files of a series usually share its values: the last few are kept, in memory only)."""
    hit = _MATCHER_CACHE.get(id(ctx))
    if hit is not None and hit[0] is ctx:
        return hit[1]
    key = _signature(ctx)
    m = _BY_CONTENT.get(key)
    if m is None:
        m = _Matchers(ctx)
        if len(_BY_CONTENT) >= 4:
            _BY_CONTENT.pop(next(iter(_BY_CONTENT)))
        _BY_CONTENT[key] = m
    _MATCHER_CACHE.clear()  # one file at a time per process: keep only the newest
    _MATCHER_CACHE[id(ctx)] = (ctx, m)
    return m


@lru_cache(maxsize=1)
def default_classifier() -> PhiClassifier:
    """The classifier the header engine and the pixel stage use.

    presidio is off here: privguard's own recognizers cover what its pattern
    recognizers find (dates, phones of any validity, e-mail, URLs, IPs, SSNs,
    licence and long numbers, labelled and titled names) at a tenth of the cost
    (presidio's analyzer takes about 1.6 ms per value, which cost the research
    profile more than half its throughput). ``PhiClassifier()`` still runs both.
    """
    return PhiClassifier(use_presidio=False)
