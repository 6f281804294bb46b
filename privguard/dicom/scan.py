"""A strict scanner of DICOM bytes: it accepts only what it can parse without guessing.

privguard writes only what it has parsed and decided. Two readers that parse
the same bytes differently (pydicom's lenient reader and DCMTK, say) are how
a value privguard removed can still be read from its output, so every input is
first scanned here, and refused with a precise, PHI-free reason, when anything
in it is ambiguous:

* tags out of order or repeated within a data set or item;
* file meta elements (0002,xxxx) inside the data set; items or delimiters
  outside a sequence;
* an unknown VR; an undefined length on anything but a sequence, a UN
  sequence or encapsulated pixel data; a length that runs past its item or
  the file; an odd length; a fixed-size VR whose length is not a multiple of
  its size;
* a sequence attribute (SQ in the data dictionary) written with another VR
  than SQ or UN, or an attribute the dictionary does not list as a sequence
  written as SQ; a VR from another class than the dictionary's (text for a
  number, say). A VR of the same class is accepted: the attribute is then
  handled by its tag's action (Specific Character Set excepted: CS or UN only);
* UN holding a sequence in a big-endian file (its items are implicit VR
  little endian; readers disagree);
* sequences nested deeper than :data:`MAX_DEPTH`; a deflated data set that
  inflates past :data:`MAX_INFLATED`;
* anything after the last element that is not an element (a truncated or
  zero-filled tail).

Outputs are scanned with the same rules before they are kept
(:mod:`privguard.dicom.verify`). The scanner never builds pydicom objects: it
walks the bytes with :func:`struct.unpack_from` and returns an index of the
top-level elements.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

from privguard.errors import InputError, NotDicomError

MAX_DEPTH = 32
"""The deepest sequence nesting accepted (real files stay well under 10)."""
MAX_INFLATED = 1 << 30
"""A deflated data set may inflate to at most this many bytes (1 GiB)."""

ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
SPECIFIC_CHARACTER_SET = 0x00080005

LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UR", b"UT", b"UN", b"SV", b"UV"}
)
TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
#: Bytes no text value may hold (PS3.5 6.1.2/6.2: control characters other than ESC, and for the
#: long text VRs TAB, LF, FF and CR, which are allowed everywhere here). NUL is allowed only as
#: trailing padding. An element header swallowed by a wrong length always brings some of these.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
#: Fixed-size VRs: the value length must be a multiple of this.
FIXED_SIZE = {
    "AT": 4, "FL": 4, "FD": 8, "SL": 4, "SS": 2, "UL": 4, "US": 2, "SV": 8, "UV": 8,
    "OD": 8, "OF": 4, "OL": 4, "OV": 8, "OW": 2,
}  # fmt: skip
NUMBER_VRS = frozenset({"AT", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV"})
VRS = frozenset(TEXT_VRS | BINARY_VRS | NUMBER_VRS | {"SQ"})
_VR_BYTES = {v.encode(): v for v in VRS}

#: Transfer syntax UID -> (implicit VR, little endian, deflated, encapsulated).
TRANSFER_SYNTAXES: dict[str, tuple[bool, bool, bool, bool]] = {}


def _vr_class(vr: str) -> str:
    if vr == "SQ":
        return "SQ"
    if vr in TEXT_VRS:
        return "text"
    if vr in NUMBER_VRS:
        return "number"
    return "binary"


class ScanError(InputError):
    """The bytes are not a DICOM data set privguard can parse without guessing."""


def tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@dataclass(slots=True)
class TopElement:
    """One top-level element of the data set: where it lies in the scanned buffer."""

    tag: int
    vr: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One element at any depth (see :func:`element_index`); offsets into the scanned data set."""

    tag: int
    vr: str
    start: int
    value_start: int
    end: int
    depth: int
    undefined: bool


@dataclass(frozen=True)
class Known:
    """Top-level elements of an output copied byte for byte from a scanned input (see :func:`scan`).

    ``elements`` maps a file offset in the output to the (tag, VR, length) the input's
    strict scan found for the identical bytes; ``transfer_syntax`` is the input's.
    """

    transfer_syntax: str
    elements: dict[int, tuple[int, str, int]]


@dataclass
class Scan:
    """What the scanner found: encoding, top-level elements, pixel data."""

    part10: bool
    transfer_syntax: str
    implicit: bool
    little: bool
    deflated: bool
    meta_end: int
    """Where the data set starts in the file (after preamble and meta, if any)."""
    data: bytes | memoryview
    """The data set's bytes as scanned (the inflated data set for a deflated file)."""
    mismatched: bool = False
    """The data set is not encoded as the transfer syntax says (implicit for explicit, or back)."""
    elements: list[TopElement] = field(default_factory=list)
    index: list[IndexEntry] | None = None
    collected: list[tuple[int, bytes]] = field(default_factory=list)
    """(tag, raw value) of the elements asked for with ``collect``, at every depth; when ``collect``
    is given, also of every private element of VR PN (explicit VR: the file names the VR)."""
    count: int = 0
    """Elements at every depth."""

    @property
    def tags(self) -> list[int]:
        return [e.tag for e in self.elements]

    @property
    def pixel(self) -> TopElement | None:
        for e in reversed(self.elements):
            if e.tag == PIXEL_DATA:
                return e
            if e.tag < PIXEL_DATA:
                return None
        return None


@lru_cache(maxsize=1)
def _dictionary() -> dict[int, tuple[str, ...]]:
    from pydicom._dicom_dict import DicomDictionary

    return {t: tuple(entry[0].split(" or ")) for t, entry in DicomDictionary.items()}


@lru_cache(maxsize=4096)
def _repeater_vr(tag: int) -> tuple[str, ...] | None:
    from pydicom.datadict import dictionary_VR

    try:
        return tuple(dictionary_VR(tag).split(" or "))
    except KeyError:
        return None


def dictionary_vrs(tag: int) -> tuple[str, ...] | None:
    """The data dictionary's VR(s) for a public tag; None for private or unknown tags."""
    if tag >> 16 & 1:
        return None
    vrs = _dictionary().get(tag)
    if vrs is None:
        vrs = _repeater_vr(tag)
    return vrs


@lru_cache(maxsize=1)
def _transfer_syntaxes() -> dict[str, tuple[bool, bool, bool, bool]]:
    from pydicom.uid import UID, AllTransferSyntaxes

    out = {}
    for u in AllTransferSyntaxes:
        uid = UID(u)
        out[str(uid)] = (uid.is_implicit_VR, uid.is_little_endian, uid.is_deflated, uid.is_encapsulated)
    return out


def transfer_syntax_info(ts: str) -> tuple[bool, bool, bool, bool]:
    info = _transfer_syntaxes().get(ts)
    if info is None:
        raise ScanError("the transfer syntax UID is not a known DICOM transfer syntax")
    return info


def scan(
    buf: bytes | memoryview,
    *,
    require_part10: bool = False,
    with_index: bool = False,
    collect: frozenset[int] = frozenset(),
    known: Known | None = None,
) -> Scan:
    """Scan a whole file's bytes strictly. Raises :class:`ScanError` (an ``InputError``).

    ``known`` (see :class:`Known`) names top-level elements of ``buf`` proven to be
    byte-for-byte copies of elements a strict scan accepted under the same transfer
    syntax: their tags are checked for order and repetition like any other, but their
    values are not walked again (the walk of an element depends only on its bytes and
    the encoding, so it would accept them again).

    With ``with_index``, :attr:`Scan.index` lists every element at every depth
    (in the order their values end: an element after the elements inside it).
    The raw values of the tags in ``collect``, at every depth, go to :attr:`Scan.collected`,
    with those of private elements whose VR is PN (person names no tag list can name).
    """
    size = len(buf)
    if size == 0:
        raise NotDicomError("empty file")
    if size >= 132 and bytes(buf[128:132]) == b"DICM":
        meta_start = 132
    elif not require_part10 and size >= 8 and bytes(buf[:2]) == b"\x02\x00" and bytes(buf[4:6]) in _VR_BYTES:
        meta_start = 0  # file meta without the preamble
    elif require_part10:
        raise ScanError("no DICM prefix after the preamble")
    else:
        meta_start = -1
    mismatched = False
    if meta_start >= 0:
        ts, meta_end = _scan_meta(buf, meta_start)
        implicit, little, deflated, encapsulated = transfer_syntax_info(ts)
        part10 = meta_start == 132
        if not deflated and meta_end + 8 <= size:
            # A data set not encoded as its transfer syntax says (as pydicom and DCMTK
            # detect it from the first element): scanned, and written, as it is encoded.
            looks_explicit = bytes(buf[meta_end + 4 : meta_end + 6]) in _VR_BYTES
            if looks_explicit == implicit:
                implicit, mismatched = not implicit, True
    else:
        # A bare data set (no preamble, no meta): its encoding from the first element.
        if size < 8:
            raise NotDicomError("not a DICOM file")
        meta_end = 0
        implicit = bytes(buf[4:6]) not in _VR_BYTES
        little = not (buf[0] == 0 and buf[1] != 0)
        if implicit and not little:
            raise ScanError("a bare implicit VR big endian data set is not DICOM")
        deflated, encapsulated, part10 = False, False, False
        ts = "1.2.840.10008.1.2" if implicit else ("1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")
        (group,) = struct.unpack_from("<H" if little else ">H", buf, 0)
        if group == 0x0002:
            raise ScanError("file meta elements without a file meta header")
    view = memoryview(buf)
    data: bytes | memoryview = view[meta_end:]
    if deflated:
        data = _inflate(view, meta_end)
    if len(data) == 0:
        raise ScanError("the data set is empty")
    sc = Scan(part10, ts, implicit, little, deflated, meta_end, data, mismatched=mismatched)
    walker = _Walker(data, implicit, little, encapsulated)
    if known is not None and known.transfer_syntax == ts and not mismatched and not deflated:
        walker.known = {p - meta_end: (t, v, p - meta_end + n) for p, (t, v, n) in known.elements.items()}
    if with_index:
        walker.index = sc.index = []
    walker.collect = collect
    walker.top(sc)
    sc.count = walker.count
    sc.collected = walker.collected
    if not sc.elements:
        raise NotDicomError("no DICOM data elements found")
    return sc


def _inflate(buf: bytes | memoryview, start: int) -> bytes:
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = d.decompress(bytes(buf[start:]), MAX_INFLATED + 1)
    except zlib.error:
        raise ScanError("the deflated data set cannot be inflated") from None
    if len(out) > MAX_INFLATED or (d.unconsumed_tail and not d.eof):
        raise ScanError(f"the deflated data set inflates past {MAX_INFLATED >> 20} MiB")
    if d.eof and d.unconsumed_tail:
        raise ScanError("data follows the end of the deflated data set")
    if not d.eof:
        raise ScanError("the deflated data set is truncated")
    tail = d.unused_data
    # A pad byte (to an even length), or a gzip-style trailer (CRC-32 and size) as some
    # writers add; nothing else may follow.
    if tail and tail != b"\x00" and tail != struct.pack("<II", zlib.crc32(out), len(out) & 0xFFFFFFFF):
        raise ScanError("data after the end of the deflated data set")
    return out


def _scan_meta(buf: bytes | memoryview, pos: int) -> tuple[str, int]:
    """Walk the file meta group (explicit VR little endian); return the transfer syntax and its end."""
    size = len(buf)
    prev = -1
    ts: str | None = None
    group_length: int | None = None
    first = pos
    while pos + 8 <= size:
        g, el, vrb = struct.unpack_from("<HH2s", buf, pos)
        if g != 2:
            break
        tag = 0x00020000 | el
        if tag <= prev:
            raise ScanError(f"file meta element {tag_text(tag)} out of order or repeated")
        prev = tag
        vr = _VR_BYTES.get(vrb)
        if vr is None:
            raise ScanError(f"unknown VR in file meta element {tag_text(tag)}")
        if vrb in LONG_VRS:
            if pos + 12 > size:
                raise ScanError("the file meta is truncated")
            (length,) = struct.unpack_from("<I", buf, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", buf, pos + 6)
            start = pos + 8
        if length == UNDEFINED or start + length > size:
            raise ScanError(f"file meta element {tag_text(tag)} has a bad length")
        value = bytes(buf[start : start + length])
        if tag == 0x00020000:
            if vr != "UL" or length != 4:
                raise ScanError("the file meta group length is malformed")
            (group_length,) = struct.unpack("<I", value)
            first = start + length
        elif tag == 0x00020010:
            ts = value.decode("ascii", "replace").rstrip("\x00 ")
        pos = start + length
    if prev < 0:
        raise ScanError("the file meta group is missing")
    if group_length is not None and first + group_length != pos:
        raise ScanError("the file meta group length does not match its elements")
    if not ts:
        raise ScanError("the file meta has no transfer syntax UID")
    return ts, pos


class _Walker:
    """One scan of one data set's bytes."""

    def __init__(self, buf: bytes | memoryview, implicit: bool, little: bool, encapsulated: bool) -> None:
        self.buf = buf
        self.implicit = implicit
        self.little = little
        self.encapsulated = encapsulated
        e = "<" if little else ">"
        self.hhi = struct.Struct(e + "HHI").unpack_from
        self.hh2sh = struct.Struct(e + "HH2sH").unpack_from
        self.i = struct.Struct(e + "I").unpack_from
        self.count = 0
        self.index: list[IndexEntry] | None = None
        self.collect: frozenset[int] = frozenset()
        self.collected: list[tuple[int, bytes]] = []
        #: Data set offset -> (tag, VR, end) of top-level elements not walked again (see ``scan``).
        self.known: dict[int, tuple[int, str, int]] = {}

    def top(self, sc: Scan) -> None:
        end = self._dataset(0, len(self.buf), 0, sc.elements)
        assert end == len(self.buf)

    def _dataset(self, pos: int, limit: int, depth: int, out: list[TopElement] | None) -> int:
        """Walk the elements of the data set (``out`` given) or of an item in ``[pos, limit)``.

        ``limit`` is None-like for an undefined-length item: pass -1 and the walk
        stops after the Item Delimitation Item, returning the position after it.
        """
        buf = self.buf
        size = len(buf)
        undefined_item = limit < 0
        stop = size if undefined_item else limit
        implicit = self.implicit
        prev = -1
        where = "the data set" if out is not None else "a sequence item"
        known = self.known if out is not None else None
        # Hot loop: everything it reads per element is a local.
        hhi, hh2sh, unpack_i = self.hhi, self.hh2sh, self.i
        dictionary_get = _dictionary().get
        vr_bytes, long_vrs, fixed_size = _VR_BYTES, LONG_VRS, FIXED_SIZE
        index, collect, collected = self.index, self.collect, self.collected
        private_names = bool(collect) and not implicit
        text_vrs, control = TEXT_VRS, _CONTROL.search
        while pos < stop:
            if known:
                k = known.get(pos)
                if k is not None:
                    tag, vr, end = k
                    if tag <= prev:
                        if tag == prev:
                            raise ScanError(f"element {tag_text(tag)} occurs twice in {where}")
                        raise ScanError(f"elements out of order at {tag_text(tag)} in {where}")
                    if end > stop:
                        raise ScanError(f"element {tag_text(tag)} runs past the end of {where}")
                    prev = tag
                    self.count += 1
                    assert out is not None
                    out.append(TopElement(tag, vr, pos, end))
                    pos = end
                    continue
            if pos + 8 > stop:
                raise ScanError(f"{where} ends inside an element header (truncated or trailing bytes)")
            if implicit:
                g, el, length = hhi(buf, pos)
                tag = (g << 16) | el
                hdr = 8
                vr = ""
            else:
                g, el, vrb, length = hh2sh(buf, pos)
                tag = (g << 16) | el
                hdr = 8
                vr = ""
                if g == 0 or g == 0xFFFF:
                    raise ScanError(f"invalid element tag {tag_text(tag)} in {where} (trailing bytes?)")
                if g != 0xFFFE:
                    v = vr_bytes.get(vrb)
                    if v is None:
                        raise ScanError(f"unknown VR in element {tag_text(tag)} of {where}")
                    vr = v
                    if vrb in long_vrs:
                        if pos + 12 > stop:
                            raise ScanError(f"{where} ends inside an element header")
                        if length != 0:
                            raise ScanError(f"reserved bytes are not zero in element {tag_text(tag)}")
                        (length,) = unpack_i(buf, pos + 8)
                        hdr = 12
                else:
                    (length,) = unpack_i(buf, pos + 4)
            if g == 0xFFFE:
                if tag == ITEM_END and undefined_item:
                    if length != 0:
                        raise ScanError("an item delimiter has a non-zero length")
                    return pos + 8
                raise ScanError(f"an item or delimiter {tag_text(tag)} outside its sequence")
            if tag <= prev:
                if tag == prev:
                    raise ScanError(f"element {tag_text(tag)} occurs twice in {where}")
                raise ScanError(f"elements out of order at {tag_text(tag)} in {where}")
            prev = tag
            if g == 0x0002:
                raise ScanError(f"file meta element {tag_text(tag)} inside the data set")
            if g == 0 or g == 0xFFFF:
                raise ScanError(f"invalid element tag {tag_text(tag)} in {where} (trailing bytes?)")
            self.count += 1
            start = pos + hdr
            dict_vrs = None if g & 1 else (dictionary_get(tag) or _repeater_vr(tag))
            if implicit:
                if dict_vrs is None or (length == UNDEFINED and "SQ" not in dict_vrs and tag != PIXEL_DATA):
                    vr = "UN"
                else:
                    vr = dict_vrs[0]
            elif dict_vrs is not None and vr != "UN" and vr not in dict_vrs:
                want = dict_vrs[0]
                if vr == "SQ" or "SQ" in dict_vrs or tag == SPECIFIC_CHARACTER_SET:
                    # Specific Character Set decides how every text value is decoded: as another
                    # text VR (PN, say) it is decoded into something else than the terms it holds.
                    raise ScanError(f"element {tag_text(tag)} has VR {vr}, the data dictionary says {want}")
                if _vr_class(vr) != _vr_class(want):
                    raise ScanError(
                        f"element {tag_text(tag)} has VR {vr}, which contradicts the data dictionary ({want})"
                    )
            if length == UNDEFINED:
                if vr == "SQ":
                    end = self._items(start, -1, depth + 1, False)
                elif vr == "UN" and (dict_vrs is None or "SQ" in dict_vrs):
                    end = self._un_sequence(start, -1, depth + 1, tag)
                elif tag == PIXEL_DATA and out is not None and vr in ("OB", "OW") and self.encapsulated:
                    end = self._fragments(start)
                else:
                    raise ScanError(f"element {tag_text(tag)} has an undefined length but is not a sequence")
                if end > stop:
                    raise ScanError(f"element {tag_text(tag)} runs past the end of {where}")
            else:
                end = start + length
                if end > stop:
                    raise ScanError(
                        f"element {tag_text(tag)} runs past the end of {where} (truncated or bad length)"
                    )
                if length & 1:
                    raise ScanError(f"element {tag_text(tag)} has an odd length")
                if vr == "SQ":
                    self._items(start, end, depth + 1, False)
                elif vr == "UN" and dict_vrs is not None and "SQ" in dict_vrs:
                    self._un_sequence(start, end, depth + 1, tag)
                else:
                    unit = fixed_size.get(vr)
                    if unit is not None and length % unit and not (implicit and len(dict_vrs or ()) > 1):
                        raise ScanError(
                            f"element {tag_text(tag)} ({vr}) has a length that is not a multiple of {unit}"
                        )
                    if length and (
                        vr in text_vrs or (vr == "UN" and dict_vrs is not None and dict_vrs[0] in text_vrs)
                    ):
                        bad = control(buf, start, end)
                        if bad is not None and bytes(buf[bad.start() : end]).strip(b"\x00 "):
                            raise ScanError(
                                f"element {tag_text(tag)} ({vr}) holds control bytes no text value may hold "
                                "(a wrong length that swallowed other elements?)"
                            )
            if out is not None:
                if tag == PIXEL_DATA and self.encapsulated and length != UNDEFINED:
                    raise ScanError("the transfer syntax is encapsulated but the pixel data is not")
                out.append(TopElement(tag, vr, pos, end))
            if index is not None:
                index.append(IndexEntry(tag, vr, pos, start, end, depth, length == UNDEFINED))
            if (tag in collect or (private_names and g & 1 and vr == "PN")) and length != UNDEFINED:
                collected.append((tag, bytes(buf[start:end])))
            pos = end
        if undefined_item:
            raise ScanError(f"{where} has no item delimiter (truncated)")
        return pos

    def _un_sequence(self, start: int, end: int, depth: int, tag: int) -> int:
        if not self.little:
            raise ScanError(f"sequence {tag_text(tag)} is encoded as UN in a big-endian file")
        if self.implicit:
            return self._items(start, end, depth, False)
        # Explicit VR file: the UN value holds implicit VR little endian items.
        sub = _Walker(self.buf, True, True, False)
        sub.index = self.index
        sub.collect, sub.collected = self.collect, self.collected
        try:
            return sub._items(start, end, depth, False)
        finally:
            self.count += sub.count

    def _items(self, pos: int, end: int, depth: int, _unused: bool) -> int:
        """Walk a sequence's items from ``pos``; ``end`` -1 for an undefined length.

        Returns the position after the sequence (after its delimiter when undefined).
        """
        if depth > MAX_DEPTH:
            raise ScanError(f"sequences are nested deeper than {MAX_DEPTH} levels")
        buf = self.buf
        undefined = end < 0
        stop = len(buf) if undefined else end
        while pos < stop:
            if pos + 8 > stop:
                raise ScanError("a sequence ends inside an item header (truncated or bad length)")
            g, el, length = self.hhi(buf, pos)
            tag = (g << 16) | el
            if tag == SEQ_END and undefined:
                if length != 0:
                    raise ScanError("a sequence delimiter has a non-zero length")
                return pos + 8
            if tag != ITEM:
                raise ScanError(f"a sequence holds {tag_text(tag)} where an item was expected")
            start = pos + 8
            if length == UNDEFINED:
                pos = self._dataset(start, -1, depth, None)
            else:
                item_end = start + length
                if item_end > stop:
                    raise ScanError(
                        "a sequence item runs past the end of its sequence (truncated or bad length)"
                    )
                pos = self._dataset(start, item_end, depth, None)
            if pos > stop:
                raise ScanError("a sequence item runs past the end of its sequence")
        if undefined:
            raise ScanError("a sequence has no sequence delimiter (truncated)")
        return pos

    def _fragments(self, pos: int) -> int:
        """Walk encapsulated pixel data: items with defined lengths, then the sequence delimiter."""
        buf = self.buf
        size = len(buf)
        while pos + 8 <= size:
            g, el, length = self.hhi(buf, pos)
            tag = (g << 16) | el
            if tag == SEQ_END:
                if length != 0:
                    raise ScanError("the pixel data's sequence delimiter has a non-zero length")
                return pos + 8
            if tag != ITEM or length == UNDEFINED:
                raise ScanError("the encapsulated pixel data is malformed (not a fragment item)")
            pos += 8 + length
            if pos > size:
                raise ScanError("the encapsulated pixel data is truncated (a fragment runs past the end)")
        raise ScanError("the encapsulated pixel data is truncated (no sequence delimiter)")
