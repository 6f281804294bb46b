"""Reading DICOM files for de-identification, and writing them back by splicing.

Header de-identification does not need the pixel data decoded, or even
parsed. :func:`read_source` parses the header only (pydicom,
``stop_before_pixels``), remembers where each top-level element lies in the
file, and locates the Pixel Data element and anything after it.
:func:`write_output` then writes a new Part 10 file:

* a zeroed preamble and a new File Meta group (the Media Storage SOP Instance
  UID follows the new SOP Instance UID; nothing of the old meta is kept);
* each top-level element the de-identification did not touch is copied as
  its original bytes (a byte-range copy, merged with its neighbours); changed,
  added or re-encoded elements are encoded by pydicom;
* the Pixel Data element is copied from the input file in one stream, or
  replaced when the pixel stage produced new pixels;
* elements after the pixel data (rare) are de-identified and re-encoded.

Files whose dataset cannot be spliced (deflated transfer syntax, a pixel
stage that changes the transfer syntax's VR encoding) are written whole by
pydicom instead.

Inputs are opened read-only and never modified.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO, DicomFileLike
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_data_element, write_dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from privguard._version import __version__
from privguard.dicom.scan import Scan, scan
from privguard.errors import InputError, NotDicomError, OutputError

LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UR", b"UT", b"UN", b"SV", b"UV"}
)
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
#: privguard's Implementation Class UID (a 2.25 UUID-derived root) and version name.
IMPLEMENTATION_CLASS_UID = "2.25.150294582340711538424934446549856117760"
IMPLEMENTATION_VERSION = ("PRIVGUARD_" + __version__.replace(".", ""))[:16]
_SNIFF_GROUPS = (0x0002, 0x0008)


@dataclass
class PixelSpan:
    """Where the Pixel Data element lies in the input file."""

    start: int
    end: int
    tag: int


@dataclass
class Source:
    """A parsed input: header dataset, element byte ranges, pixel location."""

    path: Path
    ds: FileDataset
    header: bytes
    spans: dict[int, tuple[int, int]]
    implicit: bool
    little: bool
    transfer_syntax: str
    pixel: PixelSpan | None
    trailing: Dataset | None
    size: int
    data: bytes | None = None
    """The whole file, when it was small enough to read in one go."""
    scan: Scan | None = None
    """The strict scanner's index of the file (every file read by :func:`read_source` has one)."""

    @property
    def spliceable(self) -> bool:
        return self.transfer_syntax != DeflatedExplicitVRLittleEndian and bool(self.spans)


def sniff(path: str | Path) -> bool:
    """True if the file looks like DICOM by its content (not its name).

    A Part 10 file has ``DICM`` at offset 128. A bare dataset (no preamble, no
    meta, as some old systems write) is accepted if it starts with a group
    0002 or 0008 element in either byte order.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(140)
    except OSError:
        return False
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    for fmt in ("<H", ">H"):
        (group,) = struct.unpack(fmt, head[:2])
        if group in _SNIFF_GROUPS:
            vr = head[4:6]
            if vr.isalpha() and vr.isupper():
                return True
            (length,) = struct.unpack(fmt[0] + "I", head[4:8])
            if length < 0x10000:
                return True
    return False


def _read_dataset_file(fh: BinaryIO, force: bool) -> FileDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(fh, stop_before_pixels=True, force=force)


class _Fallback(Exception):
    """The fast parser met something unusual: let pydicom read the file instead."""


class _NeedMore(Exception):
    """The fast parser needs more of the file than has been read."""


_FIRST_READ = 1 << 16
#: Files up to this size are read in one go; the pixel data is then copied from memory.
WHOLE_FILE_LIMIT = 32 << 20
_VR_NAMES = {
    v.encode(): v
    for v in (
        "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV",
        "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV",
    )
}  # fmt: skip


@lru_cache(maxsize=1)
def _sq_tags() -> frozenset[int]:
    from pydicom._dicom_dict import DicomDictionary

    return frozenset(t for t, entry in DicomDictionary.items() if entry[0] == "SQ")


def read_source(path: str | Path) -> Source:
    """Parse ``path``'s header and locate its pixel data. Raises :class:`InputError`.

    Well-formed Part 10 files go through :func:`_parse_fast`, a strict parser
    of the top-level header that records each element's byte range as it goes.
    Anything unusual (no preamble, deflate, a dataset not encoded as its
    transfer syntax says, undefined-length values other than sequences) is read
    by pydicom, which is slower but lenient.
    """
    path = Path(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        raise InputError(f"cannot open file: {exc.strerror or type(exc).__name__}") from None
    try:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise NotDicomError("empty file")
        buf = fh.read(size if size <= WHOLE_FILE_LIMIT else _FIRST_READ)
        sc = _strict_scan(fh, buf, size)
        ends = {e.tag: sc.meta_end + e.end for e in sc.elements} if not sc.deflated else None
        src = _read(path, fh, buf, size, ends)
        _cross_check(sc, src)
        check_character_set(src.ds)
        src.scan = sc
        return src
    finally:
        fh.close()


def _strict_scan(fh: BinaryIO, buf: bytes, size: int) -> Scan:
    """Scan the whole file strictly (see :mod:`privguard.dicom.scan`); large files through mmap.

    The identifying values the output will be searched for are collected on the way.
    """
    from privguard.dicom.verify import IDENTIFYING

    collect = frozenset(IDENTIFYING)
    if len(buf) == size:
        return scan(buf, collect=collect)
    import mmap

    mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        sc = scan(memoryview(mm), collect=collect)
        sc.data = b""  # the map closes here: keep only the index
        return sc
    finally:
        # A view may still be referenced (by a traceback): the map is then closed when collected.
        with contextlib.suppress(BufferError):
            mm.close()


def _cross_check(sc: Scan, src: Source) -> None:
    """Refuse a file that pydicom parsed differently from the strict scanner."""
    if src.ds.file_meta is not None and src.transfer_syntax != sc.transfer_syntax and not sc.mismatched:
        raise InputError("the transfer syntax is ambiguous (the readers disagree)")
    got = [int(t) for t in src.ds._dict]
    if src.pixel is not None:
        got.append(src.pixel.tag)
    if src.trailing is not None:
        got.extend(int(t) for t in src.trailing._dict)
    if got != sc.tags:
        raise InputError("the data set's elements are ambiguous (the readers disagree on them)")


def _read(path: Path, fh: BinaryIO, buf: bytes, size: int, ends: dict[int, int] | None = None) -> Source:
    """Parse the file (already scanned strictly) into a Source: fast parser, else pydicom.

    ``ends`` (top-level tag -> where the element ends in the file) comes from the
    strict scan: sequences are not walked a second time.
    """
    while True:
        try:
            src = _parse_fast(path, buf, size, ends)
            break
        except _NeedMore:
            fh.seek(0)
            buf = fh.read(min(size, 4 * len(buf)))
        except _Fallback:
            src = None
            break
    if src is not None:
        if len(buf) == size:
            src.data = buf
        if src.pixel is not None:
            src.pixel = _locate_pixels(fh, src.pixel.start, size, src.implicit, src.little)
            if src.pixel.end < size:
                src.trailing = _read_trailing(fh, src.pixel.end, src.implicit, src.little, src.ds)
        return src
    part10 = buf[128:132] == b"DICM"
    fh.seek(0)
    try:
        ds = _read_dataset_file(fh, force=not part10)
    except InvalidDicomError:
        raise NotDicomError("not a DICOM file") from None
    except (
        EOFError,
        struct.error,
        ValueError,
        KeyError,
        IndexError,
        OverflowError,
        NotImplementedError,
    ) as exc:
        raise InputError(f"the DICOM header cannot be parsed ({type(exc).__name__})") from None
    stop = fh.tell()
    if not ds._dict:
        raise NotDicomError("no DICOM data elements found")
    implicit, little = _encoding(ds)
    ts = _transfer_syntax(ds, implicit, little)
    if ts == DeflatedExplicitVRLittleEndian or _mismatched(ts, implicit, little):
        # Deflated: no byte ranges to splice. Mismatched: the dataset is not encoded
        # as its transfer syntax says, so its bytes cannot be copied under that
        # syntax. Either way, read it whole and let pydicom write it properly.
        fh.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(fh, force=not part10)
            except Exception as exc:
                raise InputError(f"the deflated dataset cannot be read ({type(exc).__name__})") from None
        return Source(path, ds, b"", {}, False, True, ts, None, None, size)
    fh.seek(0)
    header = fh.read(stop)
    spans = _spans(ds, header, stop, implicit, little) if ts != DeflatedExplicitVRLittleEndian else {}
    _check_complete(ds, spans, size)
    check_sequences(ds, implicit, little)
    pixel = None
    trailing = None
    if stop < size and ts != DeflatedExplicitVRLittleEndian:
        pixel = _locate_pixels(fh, stop, size, implicit, little)
        if pixel.end < size:
            trailing = _read_trailing(fh, pixel.end, implicit, little, ds)
    return Source(path, ds, header, spans, implicit, little, ts, pixel, trailing, size)


def _parse_fast(path: Path, buf: bytes, size: int, ends: dict[int, int] | None = None) -> Source:
    """Strictly parse a Part 10 file's meta group and top-level header from ``buf``."""
    if len(buf) < 144 or buf[128:132] != b"DICM":
        raise _Fallback
    meta_elems, _, pos = _parse_elements(buf, 132, size, False, True, meta=True)
    ts_elem = meta_elems.get(BaseTag(0x00020010))
    if ts_elem is None or ts_elem.value is None:
        raise _Fallback
    ts = UID(ts_elem.value.decode("ascii", "replace").rstrip("\x00 "))
    if not ts.is_transfer_syntax or ts == DeflatedExplicitVRLittleEndian:
        raise _Fallback
    implicit, little = ts.is_implicit_VR, ts.is_little_endian
    elems, spans, stop = _parse_elements(buf, pos, size, implicit, little, meta=False, ends=ends)
    if not elems:
        raise NotDicomError("no DICOM data elements found")
    meta = FileMetaDataset(meta_elems)
    ds = FileDataset(str(path), elems, preamble=buf[:128], file_meta=meta)
    ds.set_original_encoding(implicit, little, ds._character_set)
    pixel = PixelSpan(stop, stop, 0) if stop < size else None
    return Source(path, ds, buf[:stop], spans, implicit, little, str(ts), pixel, None, size)


def _parse_elements(
    buf: bytes,
    pos: int,
    size: int,
    implicit: bool,
    little: bool,
    *,
    meta: bool,
    item: bool = False,
    ends: dict[int, int] | None = None,
) -> tuple[dict[BaseTag, DataElement | RawDataElement], dict[int, tuple[int, int]], int]:
    """Parse elements from ``pos`` until the pixel data (or, for ``meta``, the end of group 2).

    With ``item``, parse a sequence item's elements up to ``size`` (pixel data included).
    With ``ends`` (from the strict scan, which has checked every sequence), sequences are
    not walked again: an undefined-length sequence ends where the scan says.
    """
    e = "<" if little else ">"
    # One unpack per element header: implicit (tag, 32-bit length), explicit (tag, VR, 16-bit length).
    head = struct.Struct(e + ("HHI" if implicit else "HH2sH")).unpack_from
    ii = e + "I"
    have = len(buf)
    sq_tags = _sq_tags()
    vr_names = _VR_NAMES
    raw_new, raw_cls = tuple.__new__, RawDataElement  # skip the namedtuple's Python-level __new__
    elems: dict[BaseTag, DataElement | RawDataElement] = {}
    spans: dict[int, tuple[int, int]] = {}
    while pos < size:
        if pos + 8 > have:
            if have < size:
                raise _NeedMore
            raise InputError("the file is truncated inside a header element")
        if implicit:
            g, el, length = head(buf, pos)
        else:
            g, el, vr_bytes, length = head(buf, pos)
        tag = (g << 16) | el
        if meta and g != 2:
            break
        if not meta and not item and tag in PIXEL_TAGS:
            break
        if implicit:
            vr = None
            hdr = 8
        else:
            vr = vr_names.get(vr_bytes)
            if vr is None:
                raise _Fallback  # not explicit VR after all (or an unknown VR): pydicom copes
            if vr_bytes in LONG_VRS:
                if pos + 12 > have:
                    raise (
                        _NeedMore
                        if have < size
                        else InputError("the file is truncated inside a header element")
                    )
                (length,) = struct.unpack_from(ii, buf, pos + 8)
                hdr = 12
            else:
                hdr = 8
        start = pos + hdr
        is_sq = vr == "SQ" or (implicit and tag in sq_tags)
        if length == _UNDEFINED:
            if not is_sq:
                raise _Fallback  # e.g. undefined-length UN: pydicom's rules apply
            known = ends.get(tag) if ends is not None else None
            if known is not None and known <= have:
                end = known
            else:
                end = _items(buf, start, None, implicit, little, 0)
            if end < 0:
                if have < size:
                    raise _NeedMore
                raise InputError(f"a sequence is malformed or truncated ({_tag_text(tag)})")
            value = buf[start : end - 8]
            length = len(value)
        else:
            end = start + length
            if end > have:
                if have < size:
                    raise _NeedMore
                raise InputError("the file is truncated: a header element runs past the end of the file")
            value = buf[start:end]
            if is_sq and ends is None and _items(buf, start, end, implicit, little, 0) != end:
                raise InputError(f"a sequence is malformed (items do not fit in {_tag_text(tag)})")
        btag = BaseTag(tag)
        elems[btag] = raw_new(raw_cls, (btag, vr, length, value, start, implicit, little, True, False))
        spans[tag] = (pos, end)
        pos = end
    return elems, spans, pos


def decode_sequence(ds: Dataset, tag: BaseTag) -> DataElement | None:
    """Decode ``ds``'s raw sequence element ``tag`` with the strict bytes parser.

    ``ds[tag]`` makes pydicom decode a raw sequence through a file object and
    then revisit every nested item (pixel representation, ambiguous VRs): 90 to
    260 µs per sequence of a CT header. This slices the value once and builds the
    items from raw elements, as pydicom's own reader does, in a fraction of that.
    Returns None, changing nothing, when the element is not a raw sequence or
    anything in it is unusual; the caller then uses ``ds[tag]``.
    """
    raw = ds._dict.get(tag)
    if not isinstance(raw, RawDataElement) or raw.value is None:
        return None
    implicit, little = raw.is_implicit_VR, raw.is_little_endian
    if raw.VR != "SQ" and not (implicit and raw.VR is None and int(tag) in _sq_tags()):
        return None
    buf = raw.value
    encoding = ds.original_character_set or ds._character_set  # as pydicom's ds[tag] does
    pixel_rep = getattr(ds, "_pixel_rep", None)
    fmt = "<HHI" if little else ">HHI"
    items: list[Dataset] = []
    pos, limit = 0, len(buf)
    try:
        while pos < limit:
            if pos + 8 > limit:
                return None
            g, el, length = struct.unpack_from(fmt, buf, pos)
            if (g << 16) | el == _SEQ_END:
                break
            if (g << 16) | el != _ITEM:
                return None
            start = pos + 8
            undefined = length == _UNDEFINED
            if undefined:
                after = _elements(buf, start, None, implicit, little, 1)
                if after < 0:
                    return None
                end, pos = after - 8, after
            else:
                end = pos = start + length
                if end > limit:
                    return None
            elems, _, stop = _parse_elements(buf, start, end, implicit, little, meta=False, item=True)
            if stop != end:
                return None
            item = Dataset(elems, parent_encoding=encoding)
            item_encoding = encoding
            char_set = elems.get(_CHARSET_TAG)
            if char_set is not None:
                item_encoding = convert_encodings(convert_raw_data_element(char_set).value)  # type: ignore[arg-type]
            item.set_original_encoding(implicit, little, item_encoding)
            item.is_undefined_length_sequence_item = undefined
            if _PIXEL_REP_TAG in elems:
                pr = elems[_PIXEL_REP_TAG].value
                if isinstance(pr, bytes) and pr:
                    item._pixel_rep = int(b"\x01" in pr)
            elif pixel_rep is not None:
                item._pixel_rep = pixel_rep
            items.append(item)
    except (_Fallback, _NeedMore, InputError, struct.error):
        return None
    seq = Sequence(items)
    seq.is_undefined_length = raw.length == _UNDEFINED
    return DataElement(tag, "SQ", seq, is_undefined_length=raw.length == _UNDEFINED)


_CHARSET_TAG = BaseTag(0x00080005)
_PIXEL_REP_TAG = BaseTag(0x00280103)


def _encoding(ds: FileDataset) -> tuple[bool, bool]:
    """The encoding the dataset was actually read with.

    pydicom detects a dataset that is not encoded as its transfer syntax says
    and reads it correctly; the raw elements record what was used.
    """
    for elem in ds._dict.values():
        if getattr(elem, "is_raw", False):
            return bool(getattr(elem, "is_implicit_VR", True)), bool(getattr(elem, "is_little_endian", True))
    implicit = getattr(ds, "_read_implicit", None)
    little = getattr(ds, "_read_little", None)
    if implicit is not None and little is not None:
        return bool(implicit), bool(little)
    enc = getattr(ds, "original_encoding", None)
    if enc and enc[0] is not None:
        return bool(enc[0]), bool(enc[1])
    return True, True


def _mismatched(ts: str, implicit: bool, little: bool) -> bool:
    uid = UID(ts)
    if not uid.is_transfer_syntax:
        return False
    return (uid.is_implicit_VR, uid.is_little_endian) != (implicit, little)


def _transfer_syntax(ds: FileDataset, implicit: bool, little: bool) -> str:
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if ts:
        return ts
    if implicit:
        return str(ImplicitVRLittleEndian)
    return str(ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _tag_bytes(tag: int, little: bool) -> bytes:
    return struct.pack("<HH" if little else ">HH", tag >> 16, tag & 0xFFFF)


def _spans(ds: Dataset, header: bytes, stop: int, implicit: bool, little: bool) -> dict[int, tuple[int, int]]:
    """Byte range of each top-level element, verified against the tag bytes in the file.

    An element starts 8 or 12 bytes before its value (implicit VR, explicit
    short VR, explicit long VR) and ends where the next one starts. If any
    start cannot be verified the file is not spliced (empty result).
    """
    starts: list[tuple[int, int]] = []
    for tag, elem in ds._dict.items():
        t = int(tag)
        tell = getattr(elem, "value_tell", None)
        if tell is None:
            tell = getattr(elem, "file_tell", None)
        if tell is None:
            return {}
        tb = _tag_bytes(t, little)
        cands = (8,) if implicit else (8, 12)
        for n in cands:
            s = tell - n
            if s < 0 or header[s : s + 4] != tb:
                continue
            if not implicit:
                vr = header[s + 4 : s + 6]
                if (n == 12) != (vr in LONG_VRS):
                    continue
            starts.append((s, t))
            break
        else:
            return {}
    starts.sort()
    spans: dict[int, tuple[int, int]] = {}
    for i, (s, t) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else stop
        spans[t] = (s, end)
    return spans


def _check_complete(ds: Dataset, spans: dict[int, tuple[int, int]], size: int) -> None:
    """Refuse a file whose header elements run past its end (a truncated file)."""
    for _, elem in ds._dict.items():
        tell = getattr(elem, "value_tell", None)
        length = getattr(elem, "length", None)
        if tell is not None and length is not None and length != 0xFFFFFFFF and tell + length > size:
            raise InputError("the file is truncated: a header element runs past the end of the file")
        value = getattr(elem, "value", None)
        if isinstance(value, bytes) and length is not None and length != 0xFFFFFFFF and len(value) < length:
            raise InputError("the file is truncated: a header element is shorter than declared")


_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_MAX_DEPTH = 64


def check_sequences(ds: Dataset, implicit: bool, little: bool) -> None:
    """Check the structure of every top-level sequence still held as raw bytes.

    pydicom parses sequences leniently and only when they are accessed, so a
    sequence whose items overrun it would go unnoticed (or be parsed into
    garbage). privguard refuses such a file: items must tile their sequence,
    elements their item, lengths must stay within bounds.
    """
    from pydicom.datadict import dictionary_VR

    for tag, elem in ds._dict.items():
        if not getattr(elem, "is_raw", False) or elem.value is None:
            continue
        vr = elem.VR
        if vr is None:
            try:
                vr = dictionary_VR(int(tag))
            except KeyError:
                continue
        if vr != "SQ":
            continue
        value = elem.value
        try:
            end = _items(value, 0, len(value), implicit, little, 0)
        except (struct.error, IndexError, ValueError):
            end = -1
        if end < 0:
            raise InputError(f"a sequence is malformed (items do not fit in {_tag_text(int(tag))})")


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _items(buf: bytes, pos: int, end: int | None, implicit: bool, little: bool, depth: int) -> int:
    """Walk sequence items from ``pos``; return where they end, or -1 if malformed."""
    if depth > _MAX_DEPTH:
        return -1
    e = "<" if little else ">"
    limit = len(buf) if end is None else end
    while pos < limit:
        if pos + 8 > limit:
            return -1
        g, el, length = struct.unpack_from(e + "HHI", buf, pos)
        tag = (g << 16) | el
        if tag == _SEQ_END:
            return pos + 8 if end is None else -1
        if tag != _ITEM:
            return -1
        if length == _UNDEFINED:
            pos = _elements(buf, pos + 8, None, implicit, little, depth + 1)
        else:
            item_end = pos + 8 + length
            if item_end > limit or _elements(buf, pos + 8, item_end, implicit, little, depth + 1) != item_end:
                return -1
            pos = item_end
        if pos < 0:
            return -1
    return pos if end is not None else -1


def _elements(buf: bytes, pos: int, end: int | None, implicit: bool, little: bool, depth: int) -> int:
    """Walk an item's elements from ``pos``; return where the item ends, or -1 if malformed."""
    from pydicom.datadict import dictionary_VR

    e = "<" if little else ">"
    limit = len(buf) if end is None else end
    while pos < limit:
        if pos + 8 > limit:
            return -1
        g, el = struct.unpack_from(e + "HH", buf, pos)
        tag = (g << 16) | el
        if tag == _ITEM_END:
            return pos + 8 if end is None else -1
        if implicit:
            (length,) = struct.unpack_from(e + "I", buf, pos + 4)
            hdr = 8
            try:
                vr = "SQ" if length == _UNDEFINED else dictionary_VR(tag)
            except KeyError:
                vr = "UN"
        else:
            vr_bytes = buf[pos + 4 : pos + 6]
            if not (len(vr_bytes) == 2 and vr_bytes.isalpha() and vr_bytes.isupper()):
                return -1
            vr = vr_bytes.decode()
            if vr_bytes in LONG_VRS:
                if pos + 12 > limit:
                    return -1
                (length,) = struct.unpack_from(e + "I", buf, pos + 8)
                hdr = 12
            else:
                (length,) = struct.unpack_from(e + "H", buf, pos + 6)
                hdr = 8
        start = pos + hdr
        if length == _UNDEFINED:
            if vr not in ("SQ", "UN"):
                return -1
            pos = _items(buf, start, None, implicit, little, depth + 1)
            if pos < 0:
                return -1
            continue
        stop = start + length
        if stop > limit:
            return -1
        if vr == "SQ" and _items(buf, start, stop, implicit, little, depth + 1) != stop:
            return -1
        pos = stop
    return pos if end is not None else -1


def _locate_pixels(fh: BinaryIO, start: int, size: int, implicit: bool, little: bool) -> PixelSpan:
    e = "<" if little else ">"
    fh.seek(start)
    head = fh.read(12)
    if len(head) < 8:
        raise InputError("the file is truncated inside the pixel data element header")
    group, elem = struct.unpack(e + "HH", head[:4])
    tag = (group << 16) | elem
    if tag not in PIXEL_TAGS:
        raise InputError("unexpected data after the header (not a pixel data element)")
    if implicit:
        (length,) = struct.unpack(e + "I", head[4:8])
        value_start = start + 8
    else:
        if len(head) < 12:
            raise InputError("the file is truncated inside the pixel data element header")
        (length,) = struct.unpack(e + "I", head[8:12])
        value_start = start + 12
    if length != 0xFFFFFFFF:
        end = value_start + length
        if end > size:
            raise InputError(
                f"the pixel data is truncated (declared {length} bytes, {size - value_start} present)"
            )
        return PixelSpan(start, end, tag)
    # Encapsulated: walk the items to the sequence delimiter.
    pos = value_start
    while True:
        fh.seek(pos)
        item = fh.read(8)
        if len(item) < 8:
            raise InputError("the encapsulated pixel data is truncated (no sequence delimiter)")
        ig, ie, ilen = struct.unpack(e + "HHI", item)
        itag = (ig << 16) | ie
        if itag == 0xFFFEE0DD:
            return PixelSpan(start, pos + 8, tag)
        if itag != 0xFFFEE000 or ilen == 0xFFFFFFFF:
            raise InputError("the encapsulated pixel data is malformed (unexpected item)")
        pos += 8 + ilen
        if pos > size:
            raise InputError("the encapsulated pixel data is truncated (a fragment runs past the end)")


def _read_trailing(fh: BinaryIO, start: int, implicit: bool, little: bool, ds: Dataset) -> Dataset:
    fh.seek(start)
    data = fh.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trailing = read_dataset(io.BytesIO(data), implicit, little)
    except Exception as exc:  # pydicom raises many kinds on garbage
        raise InputError(f"the data after the pixel data cannot be parsed ({type(exc).__name__})") from None
    trailing.set_original_encoding(implicit, little, ds._character_set)
    return trailing


# -- writing --------------------------------------------------------------------------------


_UID_CHARS = frozenset("0123456789.")


def _check_uid(value: str, what: str) -> None:
    if not value or len(value) > 64 or not set(value) <= _UID_CHARS:
        raise InputError(f"the {what} is not a valid UID")


_MULTI_BYTE_G0 = frozenset({"ISO 2022 IR 87", "ISO 2022 IR 159", "ISO 2022 IR 149", "ISO 2022 IR 58"})


def check_character_set(ds: Dataset) -> None:
    """Refuse a Specific Character Set privguard does not know: its text could not be decoded safely."""
    from pydicom.charset import python_encoding

    elem = ds._dict.get(_CHARSET_TAG)
    if elem is None:
        return
    raw = elem.value
    if isinstance(raw, bytes):
        terms = raw.decode("latin-1").split("\\")
    elif isinstance(raw, str):
        terms = raw.split("\\")
    else:
        terms = [str(v) for v in raw] if raw is not None else []
    terms = [t.strip(" \x00") for t in terms]
    for i, term in enumerate(terms):
        if not term and i == 0:
            continue  # the default repertoire, with code extensions after it
        if term not in python_encoding:
            raise InputError("the Specific Character Set names an unknown character set")
    # PS3.3 C.12.1.1.2: a multi-byte set is never the first (default) value, and several
    # values are only allowed with code extensions (ISO 2022 terms).
    if terms and terms[0] in _MULTI_BYTE_G0:
        raise InputError("the Specific Character Set starts with a multi-byte character set")
    if len(terms) > 1 and not all(not t or t.startswith("ISO 2022") for t in terms):
        raise InputError("the Specific Character Set combines character sets without code extensions")


def build_meta(ds: Dataset, transfer_syntax: str) -> FileMetaDataset:
    """A fresh File Meta group: nothing of the input's meta (source AE titles, private info) survives."""
    sop_class = ds.get("SOPClassUID")
    sop_instance = ds.get("SOPInstanceUID")
    if not sop_class or not sop_instance:
        raise InputError("the dataset has no SOP Class UID or SOP Instance UID; a Part 10 file needs both")
    _check_uid(str(sop_class), "SOP Class UID")
    _check_uid(str(sop_instance), "SOP Instance UID")
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(str(sop_class))
    meta.MediaStorageSOPInstanceUID = UID(str(sop_instance))
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    return meta


_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "SH", "ST", "TM", "UC", "UR", "UT", "UI"}
)
_LONG_VR_STR = frozenset(v.decode() for v in LONG_VRS)


def _encode_text_element(elem: object, implicit: bool, little: bool) -> bytes | None:
    """Encode a plain ASCII text element directly; None if pydicom must do it.

    De-identification sets many such values (UIDs, pseudonyms, dummies, empty
    values); encoding them here avoids most of pydicom's per-element cost. Any
    value that is not plain ASCII text goes through pydicom, which handles
    character sets.
    """
    vr = getattr(elem, "VR", None)
    if vr not in _TEXT_VRS:
        return None
    value = getattr(elem, "value", None)
    if value is None or value == "":
        data = b""
    elif isinstance(value, str):
        if not value.isascii():
            return None
        data = value.encode("ascii")
    elif isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        if not all(isinstance(v, str) and v.isascii() for v in value):
            return None
        data = "\\".join(value).encode("ascii")
    else:
        return None
    if len(data) & 1:
        data += b"\x00" if vr == "UI" else b" "
    head = _element_header(int(elem.tag), vr, len(data), implicit, little)  # type: ignore[attr-defined]
    return None if head is None else head + data


def _element_header(tag: int, vr: str | None, length: int, implicit: bool, little: bool) -> bytes | None:
    """An element's tag, VR and length in the given encoding; None if they cannot be written so."""
    e = "<" if little else ">"
    if implicit:
        return struct.pack(e + "HHI", tag >> 16, tag & 0xFFFF, length)
    if vr is None:
        return None
    if vr in _LONG_VR_STR:
        return struct.pack(e + "HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    if length > 0xFFFF:
        return None
    return struct.pack(e + "HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def encode_sequence(elem: DataElement, implicit: bool, little: bool, encodings: object) -> bytes | None:
    """Encode a sequence element (tag, VR, length, items); None if pydicom must do it.

    Unchanged raw elements in the items are copied as they were read, changed
    ASCII text is encoded directly, nested sequences recurse and anything else
    goes through pydicom one element at a time. Items and the sequence get
    explicit lengths. An item with its own Specific Character Set, or a raw
    element read with another encoding, makes the whole sequence go to pydicom.
    """
    e = "<" if little else ">"
    items = []
    for item in elem.value:
        if _CHARSET_TAG in item._dict:
            return None
        parts: list[bytes] = []
        for tag in sorted(item._dict, key=int):
            sub = item._dict[tag]
            if isinstance(sub, RawDataElement):
                data = _raw_bytes(sub, implicit, little)
            elif sub.VR == "SQ":
                data = encode_sequence(sub, implicit, little, encodings)
            else:
                data = _encode_text_element(sub, implicit, little)
                if data is None:
                    fp = DicomBytesIO()
                    fp.is_implicit_VR, fp.is_little_endian = implicit, little
                    write_data_element(fp, sub, encodings)  # type: ignore[arg-type]
                    data = fp.getvalue()
            if data is None:
                return None
            parts.append(data)
        body = b"".join(parts)
        items.append(struct.pack(e + "HHI", 0xFFFE, 0xE000, len(body)) + body)
    value = b"".join(items)
    head = _element_header(int(elem.tag), "SQ", len(value), implicit, little)
    assert head is not None  # SQ has a 32-bit length in every encoding
    return head + value


def _raw_bytes(raw: RawDataElement, implicit: bool, little: bool) -> bytes | None:
    """A raw element's bytes as read (tag, VR, length, value); None when that is not possible."""
    value = raw.value
    if value is None or raw.is_implicit_VR != implicit or raw.is_little_endian != little:
        return None
    if raw.length == _UNDEFINED and raw.VR != "SQ":
        return None
    head = _element_header(int(raw.tag), raw.VR, len(value), implicit, little)
    return None if head is None else head + value


def _short(tag: int, vr: bytes, data: bytes) -> bytes:
    if len(data) & 1:
        data += b"\x00" if vr == b"UI" else b" "
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(data)) + data


def meta_bytes(ds: Dataset, transfer_syntax: str) -> bytes:
    """A fresh File Meta group (explicit VR little endian, with its group length).

    Nothing of the input's meta survives (source AE titles, private information):
    the Media Storage UIDs follow the dataset, the implementation is privguard's.
    """
    sop_class = ds.get("SOPClassUID")
    sop_instance = ds.get("SOPInstanceUID")
    if not sop_class or not sop_instance:
        raise InputError("the dataset has no SOP Class UID or SOP Instance UID; a Part 10 file needs both")
    _check_uid(str(sop_class), "SOP Class UID")
    _check_uid(str(sop_instance), "SOP Instance UID")
    body = b"".join(
        (
            struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\x00\x01",
            _short(0x00020002, b"UI", str(sop_class).encode("ascii")),
            _short(0x00020003, b"UI", str(sop_instance).encode("ascii")),
            _short(0x00020010, b"UI", transfer_syntax.encode("ascii")),
            _short(0x00020012, b"UI", IMPLEMENTATION_CLASS_UID.encode("ascii")),
            _short(0x00020013, b"SH", IMPLEMENTATION_VERSION.encode("ascii")),
        )
    )
    return struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(body)) + body


def write_output(
    src: Source,
    ds: Dataset,
    dirty: set[int],
    out: BinaryIO,
    *,
    pixel_element: bytes | None = None,
    transfer_syntax: str | None = None,
    encoded: dict[int, bytes] | None = None,
    copies: list[tuple[int, int, int]] | None = None,
) -> None:
    """Write the de-identified file to ``out`` (see the module docstring).

    ``pixel_element`` replaces the input's Pixel Data element with already
    encoded bytes (tag, VR, length and value in the output encoding);
    ``transfer_syntax`` is the output's, when the pixel stage changed it;
    ``encoded`` gives ready-made bytes for some changed elements (constant ones
    the caller encodes once per run); ``copies``, when given, receives
    ``(output offset, input offset, length)`` for each range of header bytes copied
    from the input (the verifier checks them byte for byte, see
    :func:`privguard.dicom.verify.verify_output`).
    """
    ts = transfer_syntax or src.transfer_syntax
    implicit, little = src.implicit, src.little
    if transfer_syntax is not None and transfer_syntax != src.transfer_syntax:
        from pydicom.uid import UID

        uid = UID(transfer_syntax)
        if (uid.is_implicit_VR, uid.is_little_endian) != (implicit, little):
            raise OutputError("the pixel stage changed the VR encoding; write the dataset whole instead")
    out.write(b"\x00" * 128 + b"DICM")
    out.write(meta_bytes(ds, ts))
    fp = DicomFileLike(out)
    fp.is_little_endian = little
    fp.is_implicit_VR = implicit
    encodings = ds._character_set
    header = src.header
    run_start = run_end = -1
    elements = ds._dict
    for tag in sorted(elements, key=int):  # int keys: C comparisons, not BaseTag.__lt__
        t = int(tag)
        # Fail closed: original bytes are copied only for an element that is still the very
        # raw element read from that byte range (kept as read), never for one the
        # de-identification replaced, whether or not it was marked dirty.
        span = src.spans.get(t) if t not in dirty and type(elements[tag]) is RawDataElement else None
        if span is not None:
            if span[0] == run_end:
                run_end = span[1]
                continue
            if run_end > run_start:
                _copy(out, header, run_start, run_end, copies)
            run_start, run_end = span
            continue
        if run_end > run_start:
            _copy(out, header, run_start, run_end, copies)
            run_start = run_end = -1
        cached = encoded.get(t) if encoded else None
        if cached is not None:
            out.write(cached)
            continue
        elem = ds.get_item(tag)
        if getattr(elem, "VR", None) == "SQ" and isinstance(elem, DataElement):
            data = encode_sequence(elem, implicit, little, encodings)
        else:
            data = _encode_text_element(elem, implicit, little)
        if data is not None:
            out.write(data)
        else:
            write_data_element(fp, elem, encodings)
    if run_end > run_start:
        _copy(out, header, run_start, run_end, copies)
    if pixel_element is not None:
        out.write(pixel_element)
    elif src.pixel is not None and src.data is not None:
        out.write(memoryview(src.data)[src.pixel.start : src.pixel.end])
    elif src.pixel is not None:
        with open(src.path, "rb") as fh:
            fh.seek(src.pixel.start)
            remaining = src.pixel.end - src.pixel.start
            while remaining > 0:
                chunk = fh.read(min(remaining, 1 << 22))
                if not chunk:
                    raise InputError("the input file changed while it was being read")
                out.write(chunk)
                remaining -= len(chunk)
    if src.trailing is not None and len(src.trailing):
        write_dataset(fp, src.trailing)


def _copy(
    out: BinaryIO, header: bytes, start: int, end: int, copies: list[tuple[int, int, int]] | None
) -> None:
    if copies is not None:
        copies.append((out.tell(), start, end - start))
    out.write(header[start:end])


def encode_pixel_element(value: bytes, transfer_syntax: UID, bits_allocated: int) -> bytes:
    """Encode a Pixel Data element (tag, VR, length, value) for ``transfer_syntax``.

    ``value`` is the native pixel bytes, or for an encapsulated syntax the
    items (Basic Offset Table and fragments, e.g. from ``pydicom.encaps.encapsulate``)
    without the sequence delimiter, which is added here.
    """
    e = "<" if transfer_syntax.is_little_endian else ">"
    if transfer_syntax.is_encapsulated:
        vr, length = b"OB", 0xFFFFFFFF
        tail = struct.pack(e + "HHI", 0xFFFE, 0xE0DD, 0)
    else:
        vr, length = (b"OB" if bits_allocated <= 8 else b"OW"), len(value)
        if length & 1:
            value += b"\x00"
            length += 1
        tail = b""
    if transfer_syntax.is_implicit_VR:
        head = struct.pack(e + "HHI", 0x7FE0, 0x0010, length)
    else:
        head = struct.pack(e + "HH2sHI", 0x7FE0, 0x0010, vr, 0, length)
    return head + value + tail


def write_whole(ds: FileDataset | Dataset, out: BinaryIO, transfer_syntax: str) -> None:
    """Write ``ds`` whole with pydicom (for files that cannot be spliced)."""
    ds.file_meta = build_meta(ds, transfer_syntax)
    ds.preamble = b"\x00" * 128
    uid = UID(transfer_syntax)
    if uid == DeflatedExplicitVRLittleEndian:
        pydicom.dcmwrite(out, ds, enforce_file_format=True)
        return
    # Convert every raw element so that pydicom re-encodes it (with its dictionary VR,
    # if it was read as implicit VR) in the output's encoding.
    ds.walk(lambda _ds, _elem: None)
    ds.set_original_encoding(uid.is_implicit_VR, uid.is_little_endian, ds._character_set)
    pydicom.dcmwrite(
        out, ds, enforce_file_format=True, implicit_vr=uid.is_implicit_VR, little_endian=uid.is_little_endian
    )
