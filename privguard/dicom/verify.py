"""Check an output before it is kept: it parses strictly and holds none of the input's identifiers.

The emitter should never produce a bad output; this is the last line of
defence if it does (a bug, or an input the scanner let through that should
not have been). The output is re-scanned with the same strict rules as the
inputs (:mod:`privguard.dicom.scan`) and its data set (pixel data excluded) is
searched, byte for byte, for the input's identifying values (names and
identifiers of 8 characters or more in the pixel data too): PatientName,
PatientID, AccessionNumber, OtherPatientIDs and the input's own instance
UIDs (every top-level UI value outside the DICOM root), each of at least 4
characters; for names, each name part (family, given, ...) of at least 4
characters too; outside the pixel data, also in UTF-16 (a name another program wrote into a
binary value). A value a profile deliberately keeps (a site override keeping the
PatientID, the Retain UIDs option) is not searched for. Purely numeric
values shorter than 8 characters are not searched for either: they occur by
chance in numeric strings (a PatientID ``1234`` in ``-1234.5``).

The patient's name words (3 letters or more) are also searched for whatever their case, as
whole words, in the free-text and person-name values at every depth (:func:`_word_in_text`).
privguard's own method attributes are excused only when they hold exactly what it writes
for the profile (:func:`_method_is_ours`).
"""

from __future__ import annotations

import re
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter

from pydicom.dataset import Dataset

from privguard.dicom.scan import (
    LONG_VRS,
    IndexEntry,
    Known,
    Scan,
    ScanError,
    TopElement,
    scan,
    transfer_syntax_info,
)
from privguard.errors import OutputError

#: Identifying attributes searched for, tag -> keyword (the message names the keyword only).
IDENTIFYING = {
    0x00100010: "PatientName",
    0x00100020: "PatientID",
    0x00080050: "AccessionNumber",
    0x00101000: "OtherPatientIDs",
    0x00101001: "OtherPatientNames",
    0x00101005: "PatientBirthName",
    0x00101060: "PatientMotherBirthName",
    0x00120063: "DeidentificationMethod",
}
_NAMES = frozenset({0x00100010, 0x00101001, 0x00101005, 0x00101060})
#: Searched for inside other values by :func:`hidden_identifiers`.
_HIDDEN_TAGS = tuple(IDENTIFYING)


def _person_names() -> dict[int, str]:
    """Every other attribute of VR PN in the data dictionary -> its keyword.

    No profile keeps a person's name (Table E.1-1 and its options never retain one; PN
    values inside items become dummies): their values, at every depth, are searched for
    too, whole (a name part alone could occur by chance in a value that is kept).
    """
    from pydicom._dicom_dict import DicomDictionary

    return {t: e[4] for t, e in DicomDictionary.items() if e[0] == "PN" and t not in IDENTIFYING and e[4]}


OTHER_NAMES = _person_names()
PRIVATE_NAME_KEYWORD = "private person name"
"""The keyword given to the value of a private element of VR PN (see Scan.collected)."""
_OTHER_NAME_KEYWORDS = frozenset((*OTHER_NAMES.values(), PRIVATE_NAME_KEYWORD))
IDENTIFYING.update(OTHER_NAMES)
_METHOD = 0x00120063
#: The attributes privguard writes to record the de-identification (PatientIdentityRemoved,
#: DeidentificationMethod, its code sequence, LongitudinalTemporalInformationModified): generated from
#: the profile, never from the input. A value found in them does not count when they hold exactly
#: what privguard writes (see :func:`_method_is_ours`).
_OURS_TAGS = (0x00120062, 0x00120063, 0x00120064, 0x00280303)
_CODE_SEQUENCE = 0x00120064
_DICOM_ROOT = b"1.2.840.10008."
UID_KEYWORD = "an instance UID"
#: Identifying values at least this long (UIDs excepted) are also searched for in the pixel data.
PIXEL_SEARCH_MIN = 8
_NUMERIC = frozenset(b"0123456789.-+ ")
#: Values privguard itself writes as dummies: never searched for.
_DUMMIES = frozenset({b"ANONYMIZED", b"ANONYMOUS", b"REMOVED"})
_PARTS = re.compile(rb"[\\^= ]")
_NAME_PARTS = re.compile(rb"[\\^=, ]+")


@dataclass(frozen=True)
class Forbidden:
    """The input's identifying values (bytes as in the file) and the keyword each came from."""

    values: tuple[tuple[bytes, str], ...]
    parts: frozenset[bytes] = frozenset()
    """The values that are only a part of a person's name (a family or given name)."""
    words: tuple[bytes, ...] = ()
    """The patient's name words (ASCII, lower case, at least 3 letters; see ``header.names``): searched
    for in the header's text values as whole words, whatever their case (:func:`_word_in_text`)."""
    method: bytes = b""
    """DeidentificationMethod exactly as privguard writes it (values joined by a backslash)."""
    method_codes: frozenset[tuple[bytes, bytes]] = frozenset()
    """The (CodeValue, CodeMeaning) pairs privguard may write in DeidentificationMethodCodeSequence."""
    temporal: bytes = b""
    """LongitudinalTemporalInformationModified as privguard writes it."""

    @cached_property
    def pixel_needles(self) -> tuple[bytes, ...]:
        """The fewest values whose absence from the pixel data proves every pixel-searched value absent.

        The pixel data is searched for the values of :data:`PIXEL_SEARCH_MIN` characters or
        more, UIDs excepted. A value that holds another of them as a part (a full name
        ``FAMILY^GIVEN`` holds its name parts) cannot occur unless that part does too, so
        only the part is searched for: one search fewer over a large pixel data per name.
        """
        return _minimal(v for v, k in self.values if _pixel_searched(v, k))

    @cached_property
    def wide(self) -> tuple[tuple[bytes, str], ...]:
        """The UTF-16 (little and big endian) forms of the ASCII values, UIDs excepted.

        A name written by another program into a binary value the profile keeps (a safe
        private OB, say) is often UTF-16; the header outside the pixel data is searched for
        these forms too.
        """
        out = []
        for v, k in self.values:
            if k == UID_KEYWORD or not v.isascii():
                continue
            text = v.decode("ascii")
            out += [(text.encode("utf-16-le"), k), (text.encode("utf-16-be"), k)]
        return tuple(out)

    @cached_property
    def wide_pixels(self) -> tuple[tuple[bytes, str], ...]:
        """The UTF-16 forms of the values searched for in the pixel data (see :func:`_pixel_searched`).

        Searched for in encapsulated pixel data only: text there (a fragment holding a note) is
        not image data, while a second pass over every native image would cost more than the
        rest of the check.
        """
        return tuple(
            (w, k) for w, k in self.wide if len(w) >= 2 * PIXEL_SEARCH_MIN and k not in _OTHER_NAME_KEYWORDS
        )


def _pixel_searched(value: bytes, keyword: str) -> bool:
    """Whether ``value`` is searched for in the pixel data too: the patient's own names and IDs of
    :data:`PIXEL_SEARCH_MIN` characters or more (not UIDs, not the names of other persons, whose
    search would cost a pass over the pixel data each)."""
    return len(value) >= PIXEL_SEARCH_MIN and keyword != UID_KEYWORD and keyword not in _OTHER_NAME_KEYWORDS


def _minimal(values: Iterable[bytes]) -> tuple[bytes, ...]:
    """``values`` (each once) less those holding another of them as a name part or a value.

    Only the parts a value splits into (at ``^``, ``=``, ``\\`` and spaces) are looked up: a
    set lookup per part, not a search per pair, and exact, since each part is a substring.
    """
    unique = dict.fromkeys(values)
    kept = []
    for v in unique:
        parts = _PARTS.split(v)
        if len(parts) > 1 and any(p != v and p in unique for p in parts):
            continue
        kept.append(v)
    return tuple(kept)


#: Pixel data shorter than this is searched value by value (deduplicating would cost more).
_DEDUP_PIXELS = 1 << 16


Ranges = tuple[tuple[int, int], ...]


def _in_header(
    hay: bytes,
    v: bytes,
    base: int,
    px_start: int,
    px_end: int,
    end: int,
    skip: Ranges,
    ours: Callable[[], bool],
) -> bool:
    """Whether ``v`` occurs in the data set outside the pixel data.

    Inside privguard's own method attributes (``skip``, their byte ranges in order) an occurrence
    does not count when they hold exactly what privguard writes (``ours``): those values are
    generated from the profile, never from the input ("Basic" is in "Basic Profile", but a
    patient named Basic has not leaked into it). When they hold anything else, they are
    searched like the rest. (A value cannot straddle a range's edge: it would have to hold an
    element header's bytes, which no text value the scanner accepts holds.)
    """
    if hay.find(v, base, px_start) < 0:  # the common case: one search, nowhere before the pixels
        return hay.find(v, px_end, end) >= 0
    if not skip:
        return True
    pos = base
    for s, e in skip:
        if hay.find(v, pos, s) >= 0:
            return True
        pos = e
    if hay.find(v, pos, px_start) >= 0 or hay.find(v, px_end, end) >= 0:
        return True
    return any(hay.find(v, s, e) >= 0 for s, e in skip) and not ours()


def _never() -> bool:
    return False


def _any_hit(
    hay: bytes,
    forbidden: Forbidden,
    base: int,
    px_start: int,
    px_end: int,
    end: int,
    skip: Ranges = (),
    fragments: bool = False,
    ours: Callable[[], bool] = _never,
) -> bool:
    """Whether any forbidden value occurs where :func:`verify_output` looks for it.

    Exactly as strict as the value-by-value search (see :attr:`Forbidden.pixel_needles`
    and :func:`_pixels_may_hold`); it only answers yes or no: on a yes the caller searches
    value by value, in order, for the message.
    """
    for v, _ in forbidden.values:
        if _in_header(hay, v, base, px_start, px_end, end, skip, ours):
            return True
    for v, _ in forbidden.wide:
        if hay.find(v, base, px_start) >= 0 or hay.find(v, px_end, end) >= 0:
            return True
    if fragments and forbidden.wide_pixels and _wide_pixels_hit(hay, forbidden, px_start, px_end):
        return True
    if px_end - px_start >= _DEDUP_PIXELS:
        needles: tuple[bytes, ...] = forbidden.pixel_needles
        if not _pixels_may_hold(hay, needles, px_start, px_end):
            return False
    else:
        needles = tuple(v for v, k in forbidden.values if _pixel_searched(v, k))
    return any(hay.find(v, px_start, px_end) >= 0 for v in needles)


def _wide_pixels_hit(hay: bytes, forbidden: Forbidden, start: int, end: int) -> bool:
    """Whether a UTF-16 form of a pixel-searched value occurs in ``hay[start:end]``.

    A direct search costs one pass over the pixel data per form (two per value). Instead, one
    vectorised pass looks for the NULs every other byte that such a text needs; where there
    are some, the bytes at even and at odd offsets are taken apart (two copies of half the
    data), where a UTF-16 text shows as its ASCII form, and those are searched as the ASCII
    values are (:func:`_pixels_may_hold` first); only on a hit are the UTF-16 forms searched for.
    """
    import numpy as np

    needles = tuple(v for v in forbidden.pixel_needles if v.isascii())
    if not needles:
        return False
    a = np.frombuffer(hay, np.uint8, end - start, start)
    # A UTF-16 form of an ASCII value of n characters holds n NULs, one every other byte:
    # rare in compressed data, so this pass (a compare and a few ANDs) usually ends it here.
    nuls = a == 0
    covered, step = 1, 2
    while covered * 2 <= min(len(v) for v in needles) and nuls.size > step:
        nuls = nuls[:-step] & nuls[step:]  # now: NULs at i, i+2, ..., i+2*(covered*2-1)
        covered, step = covered * 2, step * 2
    if not nuls.any():
        return False
    for offset in (0, 1):
        half = a[offset::2].tobytes()
        if len(half) >= _DEDUP_PIXELS and not _pixels_may_hold(half, needles, 0, len(half)):
            continue
        if any(half.find(v) >= 0 for v in needles):
            return any(hay.find(w, start, end) >= 0 for w, _ in forbidden.wide_pixels)
    return False


def _pixels_may_hold(hay: bytes, needles: tuple[bytes, ...], start: int, end: int) -> bool:
    """False only if no needle can occur in ``hay[start:end]``; one vectorised pass, no search.

    A needle of n bytes needs n consecutive bytes within the range of byte values its
    needles use (lowest to highest byte of any needle): the pass marks the bytes in that
    range and looks for a run of k of them, k the largest power of two not above the
    shortest needle. Pixel samples rarely hold such runs (CT: none), so the per-needle
    search, whose cost grows with every pixel byte that resembles a needle's, is skipped;
    where they do (8-bit images of mid-grey), the needles are searched as before.
    """
    if not needles:
        return False
    import numpy as np  # loaded with pydicom anyway; not at import time

    lo = min(min(n) for n in needles)
    hi = max(max(n) for n in needles)
    run = 1 << (min(len(n) for n in needles).bit_length() - 1)
    a = np.frombuffer(hay, np.uint8, end - start, start)
    inside = (a >= lo) & (a <= hi)
    k = 1
    while k < run and inside.size > k:
        inside = inside[:-k] & inside[k:]  # now: the k * 2 bytes from here are all in range
        k *= 2
    return bool(k >= run and inside.any())


def _components(raw: bytes, name: bool = False) -> list[bytes]:
    """The searchable parts of a value: each of its values and, for a person name, each name part."""
    return [v for v, _ in _split(raw, name)]


def _split(raw: bytes, name: bool = False) -> list[tuple[bytes, bool]]:
    """(value, whether it is only a name part) for each searchable part of ``raw``."""
    parts = []
    for v in raw.split(b"\\"):
        parts.append((v, False))
        if name:
            # Name parts: at the component separators, and at spaces and commas too (many
            # files hold "SMITH JOHN" or "SMITH, JOHN" in a single component).
            parts.extend((p, True) for p in _NAME_PARTS.split(v))
    out = []
    for v, part in parts:
        v = v.strip(b"\x00 ")
        if len(v) < 4 or v in _DUMMIES:
            continue
        if len(v) < 8 and set(v) <= _NUMERIC:
            continue
        out.append((v, part))
    return out


def _ours(tag: int, value: bytes, ours: list[bytes]) -> bool:
    """Whether ``value`` of ``tag`` is (part of) a DeidentificationMethod value privguard writes."""
    return tag == _METHOD and any(value in m for m in ours)


def _raw_value(ds: Dataset, tag: int) -> bytes | None:
    elem = ds._dict.get(tag)  # type: ignore[call-overload]
    if elem is None:
        return None
    value = elem.value
    if isinstance(value, bytes):
        return value
    if value is None:
        return None
    try:
        text = "\\".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
        return text.encode("utf-8")
    except Exception:
        return None


_HIDDEN_MAX = 1024
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")


def hidden_identifiers(data: bytes, start: int, end: int, little: bool) -> list[tuple[int, bytes]]:
    """(tag, value) of every element header of an identifying attribute found in ``data[start:end]``.

    A byte search, not a parse: an element carried inside another element's value
    (a wrong length that swallowed it, a binary or private value holding a copy) is
    invisible to the parser, so its value would not be searched for in the output.
    Any place where an identifying tag's four bytes are followed by an element header
    that fits (explicit: a VR and a 16-bit length; implicit: a 32-bit length) and a
    text value of 4 to 1,024 bytes is taken as one. Every such header of a well-formed
    file is one of its parsed elements, so this only adds values where something is
    hidden (on the project's bundled, TCIA and benchmark files it finds nothing else).
    """
    order = "<" if little else ">"
    short, long_ = struct.Struct(order + "H"), struct.Struct(order + "I")
    found: list[tuple[int, bytes]] = []
    end = min(end, len(data))
    for tag in _HIDDEN_TAGS:
        pattern = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF)
        i = data.find(pattern, start, end)
        while i >= 0 and i + 8 <= end:
            vr = data[i + 4 : i + 6]
            if vr.isalpha() and vr.isupper():
                (n,) = short.unpack_from(data, i + 6)
            else:
                (n,) = long_.unpack_from(data, i + 4)
            if n <= _HIDDEN_MAX and i + 8 + n <= end:
                value = data[i + 8 : i + 8 + n].rstrip(b"\x00 ")
                if len(value) >= 4 and not _CONTROL.search(value):
                    found.append((tag, value))
            i = data.find(pattern, i + 1, end)
    return found


def identifying_values(
    ds: Dataset,
    *,
    keep: Iterable[int] = (),
    keep_uids: bool = False,
    nested: Iterable[tuple[int, bytes]] = (),
    written_methods: Iterable[str] = (),
    name_words: Iterable[str] = (),
    method_codes: Iterable[tuple[str, str]] = (),
    temporal: str = "",
) -> Forbidden:
    """Collect the identifying values of a data set before it is de-identified.

    ``keep`` lists tags a profile deliberately keeps; ``keep_uids`` skips UIDs;
    ``nested`` adds raw values of identifying attributes found at any depth by
    the scanner (:attr:`privguard.dicom.scan.Scan.collected`).
    ``written_methods`` are the DeidentificationMethod values privguard itself
    writes: an input's method value that is part of one of them (a file that
    privguard de-identified before) is not searched for, since the output holds
    it by construction, not because it was copied.
    ``name_words`` are the patient's name words (see ``privguard.header.names``), searched for in
    the output's text values whatever their case; ``method_codes`` the CID 7050 (code value,
    meaning) pairs privguard may write: with ``written_methods`` they tell privguard's own
    method attributes from values copied into them (:func:`_method_is_ours`).
    """
    kept = set(keep)
    ours = [m.encode("utf-8") for m in written_methods]
    values: list[tuple[bytes, str]] = []
    whole: set[bytes] = set()
    parts: set[bytes] = set()

    def add(tag: int, raw: bytes) -> None:
        keyword = IDENTIFYING.get(tag, PRIVATE_NAME_KEYWORD)
        for v, part in _split(raw, tag in _NAMES):
            if not _ours(tag, v, ours):
                values.append((v, keyword))
                (parts if part else whole).add(v)

    for tag in IDENTIFYING:
        if tag in kept:
            continue
        raw = _raw_value(ds, tag)
        if raw:
            add(tag, raw)
    for tag, raw in nested:
        if tag not in kept and (tag in IDENTIFYING or tag >> 16 & 1):  # private: a PN (see Scan.collected)
            add(tag, raw)
    if not keep_uids:
        for tag, elem in ds._dict.items():
            if getattr(elem, "VR", None) != "UI" or int(tag) in kept or int(tag) >> 16 == 0x0002:
                continue
            raw = _raw_value(ds, int(tag))
            if raw:
                values.extend((v, UID_KEYWORD) for v in _components(raw) if not v.startswith(_DICOM_ROOT))
    words = tuple(
        dict.fromkeys(
            w.encode("ascii") for w in name_words if w.isascii() and w.upper().encode("ascii") not in _DUMMIES
        )
    )
    return Forbidden(
        tuple(dict.fromkeys(values)),
        frozenset(parts - whole),
        words,
        b"\\".join(ours),
        frozenset((v.encode("ascii"), m.encode("ascii")) for v, m in method_codes),
        temporal.encode("ascii"),
    )


@dataclass(frozen=True)
class Copied:
    """Header bytes an output copied from its input: what the re-scan need not walk again."""

    scan: Scan
    """The input's strict scan."""
    source: bytes
    """The input's bytes from the start of the file (at least as far as the copied ranges)."""
    runs: list[tuple[int, int, int]]
    """(output offset, input offset, length) of each copied range."""


_start = attrgetter("start")
_tag = attrgetter("tag")


def _known(data: bytes | memoryview, copied: Copied) -> Known | None:
    """The output's top-level elements that are byte-for-byte copies of elements the input scan accepted.

    Each copied range is compared with the input's bytes (one memory comparison); only
    whole input elements, as the input's scanner delimited them, inside a range that
    matches count. Anything else (a range that does not match, one that starts or ends
    inside an element) is simply walked again.
    """
    sc = copied.scan
    if sc.deflated or sc.mismatched:
        return None
    base = sc.meta_end
    top = sc.elements
    src = copied.source
    elements: dict[int, tuple[int, str, int]] = {}
    for out_pos, in_pos, n in copied.runs:
        if n <= 0 or in_pos + n > len(src) or out_pos + n > len(data):
            continue
        if bytes(data[out_pos : out_pos + n]) != src[in_pos : in_pos + n]:  # bytes: memcmp
            continue
        i = bisect_left(top, in_pos - base, key=_start)
        q, stop = in_pos, in_pos + n
        while i < len(top) and base + top[i].start == q and base + top[i].end <= stop:
            e = top[i]
            elements[out_pos + q - in_pos] = (e.tag, e.vr, e.end - e.start)
            q = base + e.end
            i += 1
    return Known(sc.transfer_syntax, elements)


def _ours_ranges(sc: Scan, base: int) -> Ranges:
    """Where the output's method attributes lie (adjacent ones merged), in order."""
    els = sc.elements  # in tag order (the scanner refuses anything else)
    out: list[tuple[int, int]] = []
    for tag in _OURS_TAGS:
        i = bisect_left(els, tag, key=_tag)
        if i < len(els) and els[i].tag == tag:
            s, e = base + els[i].start, base + els[i].end
            if out and out[-1][1] == s:
                out[-1] = (out[-1][0], e)
            else:
                out.append((s, e))
    return tuple(out)


def _value_start(sc: Scan, e: TopElement) -> int:
    """Where a top-level element's value starts (after its tag, VR and length)."""
    if sc.implicit:
        return e.start + 8
    return e.start + (12 if e.vr.encode() in LONG_VRS else 8)


def _method_is_ours(data: bytes | memoryview, sc: Scan, forbidden: Forbidden) -> bool:
    """Whether the output's method attributes hold exactly what privguard writes for this profile.

    PatientIdentityRemoved must be ``YES``, DeidentificationMethod and
    LongitudinalTemporalInformationModified privguard's values byte for byte (padding aside),
    and every item of DeidentificationMethodCodeSequence exactly a CodeValue, a
    CodingSchemeDesignator ``DCM`` and a CodeMeaning, a pair privguard writes. Anything else (an
    item more, another attribute, a value an earlier tool wrote) means they were not all
    written by privguard: nothing in them is then excused.
    """
    if not forbidden.method:
        return False
    expected = {0x00120062: b"YES", 0x00120063: forbidden.method, 0x00280303: forbidden.temporal}
    codes = dict(forbidden.method_codes)
    els = sc.elements
    for tag in _OURS_TAGS:
        i = bisect_left(els, tag, key=_tag)
        if i >= len(els) or els[i].tag != tag:
            continue
        e = els[i]
        if tag != _CODE_SEQUENCE:
            if bytes(sc.data[_value_start(sc, e) : e.end]).rstrip(b"\x00 ") != expected[tag]:
                return False
            continue
        try:
            index = scan(data, require_part10=True, with_index=True).index or []
        except ScanError:
            return False
        inner = sorted((x for x in index if e.start < x.start and x.end <= e.end), key=_start)
        if not inner or len(inner) % 3:
            return False
        for k in range(0, len(inner), 3):
            cv, cs, cm = inner[k : k + 3]
            if (cv.tag, cs.tag, cm.tag) != (0x00080100, 0x00080102, 0x00080104):
                return False
            if (cv.depth, cs.depth, cm.depth) != (1, 1, 1):
                return False
            got = [bytes(sc.data[x.value_start : x.end]).rstrip(b"\x00 ") for x in (cv, cs, cm)]
            if got[1] != b"DCM" or codes.get(got[0]) != got[2]:
                return False
    return True


#: Code identifiers of coded entries (CodeValue, CodingSchemeDesignator, ...): codes, not text. PS3.15
#: (notes to Table E.1-1): "it is usually safe to assume that coded sequence entries ... do not contain
#: identifying information"; the header engine keeps them as they are so that codes stay valid.
CODE_IDENT_TAGS = frozenset(
    {
        0x00080100,  # CodeValue
        0x00080102,  # CodingSchemeDesignator
        0x00080103,  # CodingSchemeVersion
        0x00080105,  # MappingResource
        0x00080106,  # ContextGroupVersion
        0x00080107,  # ContextGroupLocalVersion
        0x0008010B,  # ContextGroupExtensionFlag
        0x0008010F,  # ContextIdentifier
        0x00080118,  # MappingResourceUID
        0x00080119,  # LongCodeValue
        0x00080120,  # URNCodeValue
    }
)
#: The labels privguard writes in place of what it removes from text (``[NAME]``, ``[DATE]``...; the
#: text classifier's and the header engine's): a patient named Date is not found in ``[DATE]``.
LABEL_WORDS = frozenset(
    {b"NAME", b"ID", b"DATE", b"PHONE", b"EMAIL", b"URL", b"IP", b"PLACE", b"AGE", b"REDACTED"}
)
#: The VRs of free text and names, where the patient's name words are searched for whatever their
#: case. Code strings (CS) are codes ("in general, there are no CS VR Attributes in this table, since
#: it is usually safe to assume that code strings do not contain identifying information", PS3.15):
#: BodyPartExamined HEAD for a patient named Head is not a copy of the name.
_WORD_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})


def _word_byte(b: int) -> bool:
    """Whether a byte continues a word: an ASCII letter or digit, or any non-ASCII byte."""
    return b >= 0x80 or (0x30 <= b <= 0x39) or (0x61 <= b <= 0x7A) or (0x41 <= b <= 0x5A)


def _word_in_text(
    data: bytes | memoryview,
    hay: bytes,
    sc: Scan,
    base: int,
    px_start: int,
    px_end: int,
    end: int,
    forbidden: Forbidden,
    skip: Ranges,
    ours: Callable[[], bool],
) -> bool:
    """Whether a name word of the patient occurs, whatever its case, as a whole word in a text value.

    The header outside the pixel data is lower-cased once (ASCII) and searched for each word;
    a hit counts only between two non-word bytes (``ann`` is not in ``annotation``), inside the
    value of a free-text or person-name element (:data:`_WORD_VRS`; not a binary or numeric
    value, where the bytes are there by chance, nor a code) at any depth, and outside
    privguard's own method attributes when they are exactly what privguard writes.
    """
    index: list[IndexEntry] | None = None

    def in_text(r: int) -> bool:
        """Whether data set offset ``r`` lies in the value of a free-text or name element."""
        nonlocal index
        tops = sc.elements
        k = bisect_right(tops, r, key=_start) - 1
        if k < 0 or r >= tops[k].end:
            return False
        top = tops[k]
        if top.vr != "SQ":
            return top.vr in _WORD_VRS and top.tag not in CODE_IDENT_TAGS and r >= _value_start(sc, top)
        if index is None:  # inside a sequence (rare: only where a word was found): the full index
            index = scan(data, require_part10=True, with_index=True).index or []
        x = max((x for x in index if x.value_start <= r < x.end), key=attrgetter("depth"), default=None)
        return x is not None and x.vr in _WORD_VRS and x.tag not in CODE_IDENT_TAGS

    for s, e in ((base, px_start), (px_end, end)):
        if s >= e:
            continue
        low = hay[s:e].lower()
        n = len(low)
        for w in forbidden.words:
            i = low.find(w)
            while i >= 0:
                j = i + len(w)
                whole = (i == 0 or not _word_byte(low[i - 1])) and (j >= n or not _word_byte(low[j]))
                pos = s + i
                if (
                    whole
                    and hay[pos - 1 : pos + len(w) + 1] == b"[" + w.upper() + b"]"
                    and w.upper() in LABEL_WORDS
                ):
                    whole = False  # a label privguard wrote
                if whole and not (any(a <= pos < b for a, b in skip) and ours()) and in_text(pos - base):
                    return True
                i = low.find(w, i + 1)
    return False


def verify_output(data: bytes | memoryview, forbidden: Forbidden, copied: Copied | None = None) -> None:
    """Raise :class:`OutputError` unless ``data`` parses strictly and holds no forbidden value.

    ``copied`` (header ranges the writer copied from the input, see
    :func:`privguard.dicomio.write_output`) spares the re-scan walking the inside of the
    elements they hold again. That is exactly as strict as walking them: each range is
    first compared byte for byte with the input, only elements the input's strict scan
    delimited and accepted count, only under the same transfer syntax, and the scanner's
    verdict on an element depends on nothing but its bytes and that encoding. Their tags
    still go through the order and repetition checks of the output's data set, and the
    search for identifying values below still covers every byte.
    """
    known = _known(data, copied) if copied is not None else None
    try:
        sc = scan(data, require_part10=True, known=known)
    except ScanError as exc:
        raise OutputError(f"the output does not parse cleanly ({exc}); nothing written") from None
    if sc.mismatched:
        raise OutputError("the output is not encoded as its transfer syntax says; nothing written")
    if isinstance(sc.data, bytes):
        hay, base = sc.data, 0  # the inflated data set of a deflated file
    elif isinstance(data, bytes):
        hay, base = data, sc.meta_end  # search the file's own bytes in place: no copies
    else:
        hay, base = bytes(sc.data), 0  # a mapped large file
    end = base + len(sc.data)
    px = sc.pixel
    px_start, px_end = (base + px.start, base + px.end) if px is not None else (end, end)
    skip = _ours_ranges(sc, base)
    checked: list[bool] = []

    def ours() -> bool:
        if not checked:
            checked.append(_method_is_ours(data, sc, forbidden))
        return checked[0]

    fragments = px is not None and transfer_syntax_info(sc.transfer_syntax)[3]  # encapsulated
    if not _any_hit(hay, forbidden, base, px_start, px_end, end, skip, fragments, ours):
        words = forbidden.words
        if words and _word_in_text(data, hay, sc, base, px_start, px_end, end, forbidden, skip, ours):
            raise OutputError(
                "the output's header text still holds the patient's name (in another case or form); "
                "nothing written"
            )
        return
    for value, keyword in forbidden.values:  # a hit: find the first one, in order, for the message
        if _in_header(hay, value, base, px_start, px_end, end, skip, ours):
            raise OutputError(f"the output still holds the input's {keyword}; nothing written")
        # Pixel data is copied as decided by the pixel stage, but a name or an identifier
        # spelled out in its bytes (text spliced into the image data) is refused too. Only
        # values long enough not to occur there by chance are searched for, UIDs excepted.
        if _pixel_searched(value, keyword) and hay.find(value, px_start, px_end) >= 0:
            raise OutputError(f"the output's pixel data holds the input's {keyword} as text; nothing written")
    for value, keyword in forbidden.wide:
        if hay.find(value, base, px_start) >= 0 or hay.find(value, px_end, end) >= 0:
            raise OutputError(f"the output still holds the input's {keyword} as UTF-16 text; nothing written")
    for value, keyword in forbidden.wide_pixels if fragments else ():
        if hay.find(value, px_start, px_end) >= 0:
            raise OutputError(
                f"the output's pixel data holds the input's {keyword} as UTF-16 text; nothing written"
            )
