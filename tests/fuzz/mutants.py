"""A seeded mutation fuzzer over pydicom's bundled files, with planted PHI markers.

Each seed file gets unique markers planted (with pydicom) in identifying
attributes at the top level, inside sequence items and in the method
attributes; :func:`mutants` then applies byte-level mutations to the planted
file. :func:`violations` checks the fail-closed invariant on what privguard
made of a mutant: it was refused with a reason, or its output parses strictly
in pydicom, DCMTK's dcmdump and privguard's own scanner and holds none of the
markers.
"""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import pydicom
from conftest import dciodvfy_errors
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from privguard.dicom.scan import LONG_VRS, IndexEntry, Scan, ScanError, scan
from privguard.models import FileResult

HAVE_DCMDUMP = shutil.which("dcmdump") is not None
HAVE_DCIODVFY = shutil.which("dciodvfy") is not None

#: Seeds: small files covering every encoding pydicom ships (explicit/implicit/big endian,
#: deflated, encapsulated, no meta, SR, RT, character sets, multi-frame, waveforms).
SEEDS = (
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "ExplVR_BigEnd.dcm",
    "ExplVR_BigEndNoMeta.dcm",
    "no_meta.dcm",
    "image_dfl.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "rtdose.dcm",
    "JPEG2000.dcm",
    "SC_rgb_rle.dcm",
    "emri_small.dcm",
    "waveform_ecg.dcm",
    "reportsi.dcm",
    "SC_rgb_jpeg.dcm",
    "liver_1frame.dcm",
    "OBXXXX1A.dcm",
    "test-SR.dcm",
)
CHARSET_SEEDS = ("chrH31.dcm", "chrX1.dcm", "chrArab.dcm")

#: Identifying attributes (every profile removes or replaces them) -> a short label.
PLANT_TOP = (
    ("PatientName", "PN"),
    ("PatientID", "PI"),
    ("AccessionNumber", "AN"),
    ("ReferringPhysicianName", "RP"),
    ("OtherPatientIDs", "OI"),
    ("PatientBirthName", "BN"),
    ("PatientMotherBirthName", "MN"),
    ("PatientAddress", "PA"),
    ("PatientTelephoneNumbers", "PT"),
    ("PerformingPhysicianName", "PP"),
    ("OperatorsName", "ON"),
    ("RequestingPhysician", "RQ"),
    ("InstitutionAddress", "IA"),
)


@dataclass
class Planted:
    name: str
    data: bytes
    markers: tuple[bytes, ...]
    scan: Scan


def marker(seed: int, label: str) -> str:
    # Upper-case letters only: valid in every text VR, never produced by privguard.
    letters = "".join(chr(65 + (seed // 26**i) % 26) for i in range(4))
    return f"QZX{letters}{label}"


def _testdata(name: str) -> Path | None:
    from pydicom.data import get_testdata_file

    try:
        path = get_testdata_file(name, download=False)
    except Exception:
        path = None
    if path is None:
        from pydicom.data import get_charset_files

        found = get_charset_files(name)
        return Path(found[0]) if found else None
    return Path(str(path))


def plant(name: str, n: int) -> Planted | None:
    """Read a seed, plant unique markers, write it back in its own encoding."""
    path = _testdata(name)
    if path is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        markers: list[str] = []
        for kw, label in PLANT_TOP:
            m = marker(n, label)
            if kw.endswith("Name") or kw in ("RequestingPhysician",):
                setattr(ds, kw, f"{m}^{marker(n, label + 'G')}")
                markers += [m, marker(n, label + "G")]
            else:
                setattr(ds, kw, m)
                markers.append(m)
        other = Dataset()
        other.PatientID = marker(n, "SQ1")
        other.IssuerOfPatientID = marker(n, "SQ2")
        other.TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence = Sequence([other])
        person = Dataset()
        person.PersonName = marker(n, "SQ3")
        person.InstitutionName = marker(n, "SQ4")
        ds.ReferringPhysicianIdentificationSequence = Sequence([person])
        markers += [marker(n, "SQ1"), marker(n, "SQ2"), marker(n, "SQ3"), marker(n, "SQ4")]
        # A file touched by an earlier, partial de-identification.
        ds.PatientIdentityRemoved = "NO"
        ds.DeidentificationMethod = marker(n, "DM")
        markers.append(marker(n, "DM"))
        ds.add_new(0x00291010, "LO", marker(n, "PV"))  # private, no creator
        markers.append(marker(n, "PV"))
        bio = io.BytesIO()
        try:
            ds.save_as(bio, enforce_file_format=False)
        except Exception:
            return None
    data = bio.getvalue()
    try:
        sc = scan(data, with_index=True)
    except ScanError:
        return None
    return Planted(name, data, tuple(m.encode() for m in markers), sc)


@cache
def planted_seeds() -> tuple[Planted, ...]:
    out = []
    for i, name in enumerate(SEEDS + CHARSET_SEEDS):
        p = plant(name, 1000 + i)
        if p is not None:
            out.append(p)
    return tuple(out)


# -- mutation operators ---------------------------------------------------------------------

Op = Callable[[random.Random, Planted, bytes], bytes]
_VRS = (
    b"OB", b"UT", b"LO", b"UC", b"SQ", b"AT", b"UN", b"US", b"PN", b"SH", b"FD", b"XX", b"\x00\x00", b"lo",
)  # fmt: skip


def _header_end(p: Planted) -> int:
    px = p.scan.pixel
    return p.scan.meta_end + (px.start if px is not None else len(p.scan.data))


def _pick(
    rng: random.Random, p: Planted, pred: Callable[[IndexEntry], bool] | None = None
) -> IndexEntry | None:
    idx = [e for e in (p.scan.index or []) if pred is None or pred(e)]
    return rng.choice(idx) if idx else None


def _e(p: Planted) -> str:
    return "<" if p.scan.little else ">"


def _length_field(p: Planted, e: IndexEntry) -> tuple[int, str]:
    """Offset (in the file) and struct format of an element's length field."""
    base = p.scan.meta_end + e.start
    if p.scan.implicit:
        return base + 4, "I"
    if e.value_start - e.start == 12:
        return base + 8, "I"
    return base + 6, "H"


def op_flip(rng: random.Random, p: Planted, b: bytes) -> bytes:
    out = bytearray(b)
    hi = min(len(out), _header_end(p))
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(0, hi)
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def op_byteset(rng: random.Random, p: Planted, b: bytes) -> bytes:
    out = bytearray(b)
    hi = min(len(out), _header_end(p))
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(0, hi)] = rng.choice((0, 0xFF, 0x20, 0x5C, rng.randrange(256)))
    return bytes(out)


def op_truncate(rng: random.Random, p: Planted, b: bytes) -> bytes:
    return b[: rng.randrange(1, len(b))]


def op_zero_tail(rng: random.Random, p: Planted, b: bytes) -> bytes:
    cut = rng.randrange(p.scan.meta_end, len(b))
    return b[:cut] + b"\x00" * (len(b) - cut)


def op_length(rng: random.Random, p: Planted, b: bytes) -> bytes:
    e = _pick(rng, p)
    if e is None:
        return b
    off, fmt = _length_field(p, e)
    (cur,) = struct.unpack_from(_e(p) + fmt, b, off)
    big = 0xFFFF if fmt == "H" else 0xFFFFFFFF
    new = rng.choice((big, big - 1, 0, cur + 1, max(cur - 1, 0), cur + 2, max(cur - 2, 0), cur * 2 + 2,
                      rng.randrange(big + 1), 0x7FFFFFFF & big, cur + 64, max(cur - 64, 0)))
    out = bytearray(b)
    struct.pack_into(_e(p) + fmt, out, off, new & big)
    return bytes(out)


def op_vr(rng: random.Random, p: Planted, b: bytes) -> bytes:
    if p.scan.implicit:
        return op_length(rng, p, b)
    e = _pick(rng, p)
    if e is None:
        return b
    off = p.scan.meta_end + e.start + 4
    return b[:off] + rng.choice(_VRS) + b[off + 2 :]


def _element(p: Planted, tag: int, vr: bytes, value: bytes, *, implicit: bool | None = None) -> bytes:
    e = _e(p)
    implicit = p.scan.implicit if implicit is None else implicit
    if implicit:
        return struct.pack(e + "HHI", tag >> 16, tag & 0xFFFF, len(value)) + value
    if vr in LONG_VRS:
        return struct.pack(e + "HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, len(value)) + value
    return struct.pack(e + "HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value) & 0xFFFF) + value


def _replace(p: Planted, b: bytes, e: IndexEntry, new: bytes) -> bytes:
    s, t = p.scan.meta_end + e.start, p.scan.meta_end + e.end
    return b[:s] + new + b[t:]


def _insert_top(p: Planted, b: bytes, tag: int, new: bytes) -> bytes:
    """Insert ``new`` at the top level where ``tag`` belongs in order."""
    pos = p.scan.meta_end + len(p.scan.data)
    for el in p.scan.elements:
        if el.tag > tag:
            pos = p.scan.meta_end + el.start
            break
    return b[:pos] + new + b[pos:]


def _top_named(p: Planted, tag: int) -> IndexEntry | None:
    for e in p.scan.index or []:
        if e.tag == tag and e.depth == 0:
            return e
    return None


def op_duplicate(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """A tag that occurs twice: a copy with another marker next to the original."""
    e = _pick(rng, p, lambda x: x.tag in (0x00100010, 0x00100020, 0x00080050)) or _pick(rng, p)
    if e is None:
        return b
    s, t = p.scan.meta_end + e.start, p.scan.meta_end + e.end
    copy = b[s:t]
    return b[:s] + copy + copy + b[t:] if rng.random() < 0.5 else b[:t] + copy + b[t:]


def op_swap(rng: random.Random, p: Planted, b: bytes) -> bytes:
    els = p.scan.elements
    if len(els) < 3:
        return b
    i = rng.randrange(len(els) - 1)
    a, c = els[i], els[i + 1]
    m = p.scan.meta_end
    return b[: m + a.start] + b[m + c.start : m + c.end] + b[m + a.start : m + a.end] + b[m + c.end :]


def op_move(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Move an element elsewhere in the data set (out of order, or into another item)."""
    e = _pick(rng, p)
    if e is None:
        return b
    m = p.scan.meta_end
    chunk = b[m + e.start : m + e.end]
    rest = b[: m + e.start] + b[m + e.end :]
    cand = [x.start for x in p.scan.index or [] if x.start != e.start]
    if not cand:
        return b
    at = m + rng.choice(cand)
    at = at if at < m + e.start else at - len(chunk)
    return rest[:at] + chunk + rest[at:]


def op_seq_length(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """A sequence (or item) with length 0, too short, too long, or delimiters removed."""
    e = _pick(rng, p, lambda x: x.vr in ("SQ", "UN") and x.end - x.value_start > 8)
    if e is None:
        return op_length(rng, p, b)
    off, fmt = _length_field(p, e)
    out = bytearray(b)
    vlen = e.end - e.value_start
    if e.undefined:
        # Remove the sequence delimiter (an unclosed sequence) or turn it into garbage.
        end = p.scan.meta_end + e.end
        return b[: end - 8] + b[end:] if rng.random() < 0.5 else b[: end - 8] + b"\x00" * 8 + b[end:]
    choice = rng.randrange(4)
    if choice == 0:
        struct.pack_into(_e(p) + fmt, out, off, 0)
    elif choice == 1:
        struct.pack_into(_e(p) + fmt, out, off, max(vlen - rng.choice((2, 8, 10, vlen // 2 * 2)), 0))
    elif choice == 2:
        struct.pack_into(_e(p) + fmt, out, off, 0xFFFFFFFF)  # undefined, no delimiter
    else:
        # The first item's length.
        ioff = p.scan.meta_end + e.value_start + 4
        struct.pack_into(_e(p) + "I", out, ioff, rng.choice((0, 2, 0xFFFFFFFF, vlen + 8)))
    return bytes(out)


def op_wrong_vr_table(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """A table attribute (or a sequence) rewritten with a VR from another class."""
    if p.scan.implicit:
        return op_length(rng, p, b)
    e = _pick(rng, p, lambda x: x.tag in (0x00100010, 0x00100020, 0x00080050, 0x00101002, 0x00081048))
    if e is None:
        return b
    m = p.scan.meta_end
    value = b[m + e.value_start : m + e.end]
    vr = rng.choice((b"AT", b"OB", b"UT", b"LO", b"UC", b"UN", b"US", b"SH", b"FD", b"ST", b"SQ"))
    if len(value) > 0xFFFF and vr not in LONG_VRS:
        return b
    return _replace(p, b, e, _element(p, e.tag, vr, value))


def op_un_sequence(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """A sequence written as UN (its items in the file's own byte order, or implicit LE)."""
    e = _pick(rng, p, lambda x: x.vr == "SQ" and not x.undefined)
    if e is None or p.scan.implicit:
        return op_seq_length(rng, p, b)
    m = p.scan.meta_end
    value = b[m + e.value_start : m + e.end]
    return _replace(p, b, e, _element(p, e.tag, b"UN", value))


def op_deep(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Sequences nested up to 10,000 deep, a marker in the innermost item."""
    depth = rng.choice((40, 200, 10_000))
    e = _e(p)
    implicit = p.scan.implicit
    tag = 0x0040A730  # ContentSequence
    sq = (
        struct.pack(e + "HHI", 0x0040, 0xA730, 0xFFFFFFFF)
        if implicit
        else struct.pack(e + "HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF)
    )
    item = struct.pack(e + "HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    item_end = struct.pack(e + "HHI", 0xFFFE, 0xE00D, 0)
    seq_end = struct.pack(e + "HHI", 0xFFFE, 0xE0DD, 0)
    inner = _element(p, 0x00100010, b"PN", p.markers[0] + b"^X")
    body = (sq + item) * depth + inner + (item_end + seq_end) * (depth if rng.random() < 0.7 else depth - 1)
    return _insert_top(p, b, tag, body)


def op_meta_in_dataset(rng: random.Random, p: Planted, b: bytes) -> bytes:
    value = p.markers[1] + b"  "
    tag = rng.choice((0x00020016, 0x00020100, 0x00020013, 0x00020010))
    vr = b"UI" if tag in (0x00020100, 0x00020010) else (b"AE" if tag == 0x00020016 else b"SH")
    el = _element(p, tag, vr, value[: len(value) & ~1])
    if rng.random() < 0.5:
        return _insert_top(p, b, tag, el)
    return b + el  # after the pixel data


def op_item_outside(rng: random.Random, p: Planted, b: bytes) -> bytes:
    inner = _element(p, 0x00100010, b"PN", p.markers[0] + b"^Y")
    e = _e(p)
    item = struct.pack(e + "HHI", 0xFFFE, 0xE000, len(inner)) + inner
    if rng.random() < 0.5:
        return _insert_top(p, b, rng.choice((0x00080000, 0x00100000, 0x00200000, 0x7FE00000)), item)
    return b + item


def op_after_pixels(rng: random.Random, p: Planted, b: bytes) -> bytes:
    choice = rng.randrange(5)
    if choice == 0:
        return b + _element(p, 0x00100010, b"PN", p.markers[0] + b"^Z")
    if choice == 1:
        return b + _element(p, 0xFFFAFFFA, b"SQ", b"") + _element(p, 0x00100020, b"LO", p.markers[1])
    if choice == 2:
        return b + rng.randbytes(rng.randrange(1, 64))
    if choice == 3:
        return b + b"\x00" * rng.randrange(1, 4096)
    return b + _element(p, 0x7FE10010, b"LO", p.markers[0] + b"  ")


def op_private(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """A private block holding a marker, with and without its creator, as UN or as a sequence."""
    creator = _element(p, 0x00090010, b"LO", b"ACME 1.0")
    val = _element(p, 0x00091001, rng.choice((b"LO", b"UN", b"OB", b"SQ")), p.markers[0] + b"  ")
    return _insert_top(p, b, 0x00090010, (creator if rng.random() < 0.7 else b"") + val)


def _meta_ts(b: bytes) -> tuple[int, int] | None:
    """Offset and length of the Transfer Syntax UID value in a Part 10 file."""
    pos = 132 if b[128:132] == b"DICM" else (0 if b[:2] == b"\x02\x00" else -1)
    if pos < 0:
        return None
    while pos + 8 <= len(b):
        g, el, vr, ln = struct.unpack_from("<HH2sH", b, pos)
        if g != 2:
            return None
        if vr in LONG_VRS:
            (ln,) = struct.unpack_from("<I", b, pos + 8)
            pos += 12
        else:
            pos += 8
        if el == 0x0010:
            return pos, ln
        pos += ln
    return None


def op_bad_ts(rng: random.Random, p: Planted, b: bytes) -> bytes:
    found = _meta_ts(b)
    if found is None:
        return op_no_preamble(rng, p, b)
    off, ln = found
    uid = rng.choice((b"1.2.840.10008.1.2", b"1.2.840.10008.1.2.1", b"1.2.840.10008.1.2.2",
                      b"1.2.840.10008.1.2.1.99", b"1.2.840.10008.1.2.4.50", b"1.2.3.4.5.6",
                      b"garbage!", b"", b"1.2.840.10008.1.2.5"))
    uid = uid + b"\x00" * (len(uid) & 1)
    if rng.random() < 0.6:
        uid = (uid + b"\x00" * ln)[:ln]  # the same length: the meta stays consistent
        return b[:off] + uid + b[off + ln :]
    return b[: off - 2] + struct.pack("<H", len(uid)) + uid + b[off + ln :]


def op_no_meta(rng: random.Random, p: Planted, b: bytes) -> bytes:
    return b[p.scan.meta_end :] if p.scan.meta_end and not p.scan.deflated else b[128:]


def op_no_preamble(rng: random.Random, p: Planted, b: bytes) -> bytes:
    if b[128:132] != b"DICM":
        return b[rng.randrange(1, 16) :]
    return b[128:] if rng.random() < 0.5 else b[132:]


@lru_cache(maxsize=2)
def _bomb(little_size: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    # A valid start (one element) followed by a huge padding element of zeros.
    head = struct.pack("<HH2sH", 0x0008, 0x0016, b"UI", 4) + b"1.2\x00"
    pad = struct.pack("<HH2sHI", 0xFFFC, 0xFFFC, b"OB", 0, little_size)
    chunks = [c.compress(head + pad)]
    zeros = b"\x00" * (1 << 20)
    for _ in range(little_size >> 20):
        chunks.append(c.compress(zeros))
    chunks.append(c.flush())
    return b"".join(chunks)


def op_deflate(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """A deflated file: a bomb, or the planted data set deflated and then damaged."""
    meta = bytearray(b"\x00" * 128 + b"DICM")
    uid = b"1.2.840.10008.1.2.1.99\x00"[:22]
    body = struct.pack("<HH2sH", 2, 0x0010, b"UI", len(uid)) + uid
    meta += struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(body)) + body
    if rng.random() < 0.4 or p.scan.implicit or not p.scan.little:
        return bytes(meta) + _bomb(80 << 20)
    data = bytes(p.scan.data)
    comp = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = bytearray(comp.compress(data) + comp.flush())
    for _ in range(rng.randrange(0, 3)):
        stream[rng.randrange(len(stream))] ^= 1 << rng.randrange(8)
    if rng.random() < 0.3:
        stream = stream[: rng.randrange(1, len(stream))]
    return bytes(meta) + bytes(stream)


def op_splice(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Copy a random chunk of the header over another place (structure-aware garbage)."""
    hi = min(len(b), _header_end(p))
    if hi < 16:
        return b
    s = rng.randrange(0, hi - 8)
    n = rng.randrange(4, min(64, hi - s))
    chunk = b[s : s + n]
    at = rng.randrange(0, hi)
    return b[:at] + chunk + b[at:] if rng.random() < 0.5 else b[:at] + chunk + b[at + n :]


def op_into_pixels(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Copy an identifying element's bytes (a marker) over the start of the pixel data value."""
    px = p.scan.pixel
    e = _pick(rng, p, lambda x: x.tag in (0x00100010, 0x00100020, 0x00080050))
    if px is None or e is None:
        return op_splice(rng, p, b)
    m = p.scan.meta_end
    chunk = b[m + e.start : m + e.end]
    at = m + px.start + 12 + rng.randrange(0, max(1, min(64, px.end - px.start - 12 - len(chunk))))
    if at + len(chunk) > m + px.end:
        return b
    return b[:at] + chunk + b[at + len(chunk) :]


def op_charset(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Another Specific Character Set: a valid one, a misspelt one, or code extensions."""
    value = rng.choice((b"ISO_IR 192", b"ISO_IR 100", b"ISO-IR 100", b"ISO 2022 IR 87", b"\\ISO 2022 IR 149",
                        b"GB18030 ", b"XYZ_IR 1", b"ISO_IR 13\\ISO_IR 87 "))  # fmt: skip
    value = value + b" " * (len(value) & 1)
    e = _top_named(p, 0x00080005)
    new = _element(p, 0x00080005, b"CS", value)
    return _replace(p, b, e, new) if e is not None else _insert_top(p, b, 0x00080005, new)


def op_known_un(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """An identifying attribute written as UN (explicit files): decoded by its dictionary VR."""
    if p.scan.implicit:
        return op_length(rng, p, b)
    e = _pick(rng, p, lambda x: x.tag in (0x00100010, 0x00100020, 0x00080050, 0x00101001, 0x00081070))
    if e is None:
        return b
    m = p.scan.meta_end
    return _replace(p, b, e, _element(p, e.tag, b"UN", b[m + e.value_start : m + e.end]))


def op_nested_duplicate(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Inside an item: a duplicated element, or an element moved out of order."""
    e = _pick(rng, p, lambda x: x.depth > 0 and x.end - x.start < 200)
    if e is None:
        return op_duplicate(rng, p, b)
    m = p.scan.meta_end
    chunk = b[m + e.start : m + e.end]
    if rng.random() < 0.5:
        return b[: m + e.end] + chunk + b[m + e.end :]  # parent lengths now short by len(chunk)
    # Keep parent lengths: overwrite the element with a copy of itself under a smaller tag.
    new = bytearray(chunk)
    struct.pack_into(_e(p) + "H", new, 2, max(0, (e.tag & 0xFFFF) - 1))
    return b[: m + e.start] + bytes(new) + b[m + e.end :]


OPS: tuple[Op, ...] = (
    op_flip, op_byteset, op_truncate, op_zero_tail, op_length, op_vr, op_duplicate, op_swap, op_move,
    op_seq_length, op_wrong_vr_table, op_un_sequence, op_deep, op_meta_in_dataset, op_item_outside,
    op_after_pixels, op_private, op_bad_ts, op_no_meta, op_no_preamble, op_deflate, op_splice,
    op_into_pixels, op_charset, op_known_un, op_nested_duplicate,
)  # fmt: skip


@dataclass
class Mutant:
    seed_file: str
    ops: tuple[str, ...]
    data: bytes
    markers: tuple[bytes, ...]


def mutants(seed: int, count: int) -> Iterator[Mutant]:
    """``count`` mutants, reproducible from ``seed``; one to three operators each."""
    rng = random.Random(seed)
    seeds = planted_seeds()
    for i in range(count):
        p = seeds[i % len(seeds)] if i < len(seeds) else rng.choice(seeds)
        data = p.data
        names = []
        # Go through every operator in turn first, then pick at random.
        ops = [OPS[i % len(OPS)]] if i < 2 * len(OPS) else rng.sample(OPS, rng.choice((1, 1, 2, 3)))
        for op in ops:
            try:
                data = op(rng, p, data)
            except (struct.error, IndexError, ValueError):
                continue  # an earlier operator moved what this one targets
            names.append(op.__name__)
        yield Mutant(p.name, tuple(names), data, p.markers)


# -- the invariant --------------------------------------------------------------------------


def dcmdump_problems(path: Path) -> str | None:
    if not HAVE_DCMDUMP:
        return None
    r = subprocess.run(["dcmdump", "-q", str(path)], capture_output=True, timeout=60)
    err = r.stderr.decode("latin-1")
    if r.returncode != 0 or "E:" in err or "W:" in err:
        return f"dcmdump rc={r.returncode}: {err[:300]}"
    return None


def pydicom_problem(path: Path) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = pydicom.dcmread(path)
            for elem in ds.iterall():
                _ = elem.value
    except Exception as exc:
        return f"pydicom: {type(exc).__name__}: {exc}"[:300]
    return None


def violations(m: Mutant, result: FileResult, out_dir: Path, input_path: Path | None = None) -> list[str]:
    """What is wrong with privguard's handling of one mutant (empty: the invariant holds).

    With ``input_path`` (the mutant on disk) and dciodvfy installed, the output must not have
    validator errors the input did not have.
    """
    problems: list[str] = []
    text = (result.reason or "") + (result.output or "") + " ".join(result.warnings)
    for mk in m.markers:
        if mk.decode() in text:
            problems.append("a marker reached the result")
    files = [f for f in out_dir.rglob("*") if f.is_file()]
    if result.status != "ok":
        if not result.reason:
            problems.append("refused without a reason")
        if (result.reason or "").startswith("unexpected error"):
            problems.append(f"unexpected error: {result.reason}")
        if files:
            problems.append("a refused file left output behind")
        return problems
    if len(files) != 1:
        return [*problems, f"{len(files)} output files for one ok input"]
    out = files[0]
    data = out.read_bytes()
    for mk in m.markers:
        if mk in data:
            problems.append(f"marker {mk.decode()[-3:]} in the output")
    deflated = False
    try:
        deflated = scan(data, require_part10=True).deflated
    except ScanError as exc:
        problems.append(f"privguard's scanner refuses the output: {exc}")
    for check in (pydicom_problem, dcmdump_problems):
        problem = check(out)
        if problem:
            problems.append(problem)
    if HAVE_DCIODVFY and input_path is not None and not deflated:  # dciodvfy cannot inflate
        new = dciodvfy_errors(out) - dciodvfy_errors(input_path)
        if new:
            problems.append(f"dciodvfy: new errors {sorted(new)[:3]}")
    return problems
