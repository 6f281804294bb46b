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

from privguard.dicom.scan import LONG_VRS, IndexEntry, Scan, ScanError, scan, transfer_syntax_info
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
    new = rng.choice(
        (
            big,
            big - 1,
            0,
            cur + 1,
            max(cur - 1, 0),
            cur + 2,
            max(cur - 2, 0),
            cur * 2 + 2,
            rng.randrange(big + 1),
            0x7FFFFFFF & big,
            cur + 64,
            max(cur - 64, 0),
        )
    )
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
    uid = rng.choice(
        (
            b"1.2.840.10008.1.2",
            b"1.2.840.10008.1.2.1",
            b"1.2.840.10008.1.2.2",
            b"1.2.840.10008.1.2.1.99",
            b"1.2.840.10008.1.2.4.50",
            b"1.2.3.4.5.6",
            b"garbage!",
            b"",
            b"1.2.840.10008.1.2.5",
        )
    )
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


# -- new mutation operators (issue 8, second pass) --------------------------------------------
#
# Kept apart from OPS so that the seeds of the existing tests draw exactly what they drew before.
# Each plants markers of its own (see EXTRA_LABELS), all sharing the seed file's marker prefix, in
# places the planter above does not reach; where the profile keeps a place by design (CodeMeaning
# in a sequence the table does not list, a safe private attribute under ``research``, pixel data),
# they plant a copy of an identifying value instead, which must then be removed or refused.

#: Labels of the markers the new operators plant (each ``QZX<4 letters><label>``).
EXTRA_LABELS = (
    "NP", "NC", "NT", "NO", "NV", "NQ", "NM", "NR", "NL", "NU", "NS", "NG", "NW", "NA", "NB", "NX", "NI",
)  # fmt: skip
#: Non-ASCII name parts planted under other character sets (with the marker prefix after them).
_CJK = "山田"
_KOREAN = "홍길동"
_LATIN = "Müller"
CHARSETS: tuple[tuple[bytes, str, str], ...] = (
    # (SpecificCharacterSet value, Python codec, name part)
    (b"ISO_IR 192", "utf-8", _CJK),
    (b"GB18030 ", "gb18030", _CJK),
    (b"ISO_IR 100", "latin-1", _LATIN),
    (b"\\ISO 2022 IR 87", "iso2022_jp", _CJK),
    (b"\\ISO 2022 IR 149", "euc_kr", _KOREAN),
)


def _encode(cs: bytes, codec: str, part: str) -> bytes:
    """``part`` as DICOM writes it under ``cs`` (ISO 2022: with its escape sequences, 8-bit for Korean)."""
    if codec == "euc_kr":
        return b"\x1b$)C" + part.encode(codec)
    return part.encode(codec)


def _prefix(p: Planted) -> bytes:
    return p.markers[0][:7]


def extra_markers(p: Planted) -> tuple[bytes, ...]:
    """The markers the new operators may plant in ``p``, with their encoded variants."""
    pre = _prefix(p)
    out = [pre + lab.encode() for lab in EXTRA_LABELS]
    name = p.markers[0].decode()
    out += [name.encode("utf-16-le"), name.encode("utf-16-be")]
    # The non-ASCII names, as planted in each character set (ISO 2022: with their escapes).
    out += [_encode(cs, codec, part) + pre + b"NX" for cs, codec, part in CHARSETS]
    return tuple(dict.fromkeys(out))


def _m(p: Planted, label: str) -> bytes:
    return _prefix(p) + label.encode()


def _pad(value: bytes, pad: bytes = b" ") -> bytes:
    return value + pad * (len(value) & 1)


def _item(p: Planted, body: bytes, *, undefined: bool = False, implicit: bool | None = None) -> bytes:
    e = "<" if implicit else _e(p)  # items inside a UN value are implicit VR little endian
    if undefined:
        end = struct.pack(e + "HHI", 0xFFFE, 0xE00D, 0)
        return struct.pack(e + "HHI", 0xFFFE, 0xE000, UNDEF) + body + end
    return struct.pack(e + "HHI", 0xFFFE, 0xE000, len(body)) + body


UNDEF = 0xFFFFFFFF


def _sq(
    p: Planted, tag: int, items: list[bytes], *, undefined: bool = False, implicit: bool | None = None
) -> bytes:
    e = "<" if implicit else _e(p)
    body = b"".join(items)
    n = UNDEF if undefined else len(body)
    tail = struct.pack(e + "HHI", 0xFFFE, 0xE0DD, 0) if undefined else b""
    if implicit or (implicit is None and p.scan.implicit):
        return struct.pack(e + "HHI", tag >> 16, tag & 0xFFFF, n) + body + tail
    return struct.pack(e + "HH2sHI", tag >> 16, tag & 0xFFFF, b"SQ", 0, n) + body + tail


def _el_any(p: Planted, tag: int, vr: bytes, value: bytes, implicit: bool | None = None) -> bytes:
    if implicit:
        return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value
    return _element(p, tag, vr, value)


def _code_item(p: Planted, meaning: bytes, inner: bytes = b"", *, implicit: bool | None = None) -> bytes:
    """The elements of a coded item, CodeMeaning ``meaning``; ``inner`` (sorted after them) appended."""
    return (
        _el_any(p, 0x00080100, b"SH", b"T-D1100 ", implicit)
        + _el_any(p, 0x00080102, b"SH", b"SRT ", implicit)
        + _el_any(p, 0x00080104, b"LO", _pad(meaning), implicit)
        + inner
    )


#: Sequences to plant nested text in: tag -> whether the profile dummies their items' free text.
_NEST_OUTER = {
    0x0040A730: True,  # ContentSequence, D
    0x0040A073: True,  # VerifyingObserverSequence, D
    0x00700001: True,  # GraphicAnnotationSequence, D
    0x00082112: True,  # SourceImageSequence, X/Z/U* (kept as U*)
    0x00081140: True,  # ReferencedImageSequence, X/Z/U*
    0x00401101: True,  # PersonIdentificationCodeSequence, D
    0x00082218: False,  # AnatomicRegionSequence: not in the table, kept
    0x00081032: False,  # ProcedureCodeSequence: not in the table, kept
}


def _nested_body(
    p: Planted, depth: int, dummied: bool, rng: random.Random, implicit: bool | None = None
) -> bytes:
    """One item's elements, ``depth`` levels of nesting below, markers at every level."""
    # Where free text is kept by design, it holds a copy of the PatientName family name instead.
    meaning = _m(p, "NC") if dummied else p.markers[0]
    text = _m(p, "NT") if dummied else p.markers[2]  # PatientID's marker
    inner = b""
    if depth > 1:
        sub = _nested_body(p, depth - 1, dummied, rng, implicit)
        inner = _sq(p, 0x0040A730, [_item(p, sub, undefined=rng.random() < 0.3, implicit=implicit)],
                    undefined=rng.random() < 0.3, implicit=implicit)  # fmt: skip
    body = (
        _el_any(p, 0x00080100, b"SH", b"121071", implicit)
        + _el_any(p, 0x00080102, b"SH", b"DCM ", implicit)
        + _el_any(p, 0x00080104, b"LO", _pad(meaning), implicit)
        + _sq(
            p,
            0x0040A043,
            [_item(p, _code_item(p, meaning, implicit=implicit), implicit=implicit)],
            implicit=implicit,
        )
        + _el_any(p, 0x0040A123, b"PN", _pad(_m(p, "NP") + b"^" + _m(p, "NQ")), implicit)
        + _el_any(p, 0x0040A160, b"UT", _pad(text), implicit)
        + inner
    )
    return body


def op_nested_text(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """CodeMeaning, TextValue and a PersonName at depth 2 to 4 inside a D, U* or kept sequence."""
    free = [t for t in _NEST_OUTER if _top_named(p, t) is None]
    if not free:
        return b
    tag = rng.choice(free)
    depth = rng.randint(2, 4)
    body = _nested_body(p, depth - 1, _NEST_OUTER[tag], rng)
    items = [_item(p, body, undefined=rng.random() < 0.5)]
    if rng.random() < 0.3:
        items.insert(0, _item(p, _code_item(p, b"Chest")))
    return _insert_top(p, b, tag, _sq(p, tag, items, undefined=rng.random() < 0.5))


def op_nested_un(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """The nested text of :func:`op_nested_text` in a sequence written as UN (explicit files)."""
    if p.scan.implicit:
        return op_nested_text(rng, p, b)
    free = [t for t in _NEST_OUTER if _top_named(p, t) is None]
    if not free:
        return b
    tag = rng.choice(free)
    body = _nested_body(p, rng.randint(1, 3), _NEST_OUTER[tag], rng, implicit=True)
    value = _sq(p, tag, [_item(p, body, implicit=True)], implicit=True)[8:]  # the items only
    undefined = rng.random() < 0.5
    if undefined:
        value += struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    e = _e(p)
    head = struct.pack(e + "HH2sHI", tag >> 16, tag & 0xFFFF, b"UN", 0, UNDEF if undefined else len(value))
    return _insert_top(p, b, tag, head + value)


#: Safe private attributes (Table E.3.10-1) used below: (creator, group, element byte, VR).
_SAFE = (
    (b"GEMS_ACQU_01", 0x0019, 0x9E, b"LO"),
    (b"GEMS_PARM_01", 0x0043, 0x27, b"SH"),
    (b"Philips Imaging DD 001", 0x2001, 0x5F, b"SQ"),
    (b"SIEMENS MR HEADER", 0x0019, 0x0C, b"IS"),
    (b"Philips Imaging DD 097", 0x2001, 0x2F, b"OB"),
)


def _unsafe_element(creator: bytes, group: int, elem: int) -> int:
    """An element byte after ``elem`` in the creator's block that Table E.3.10-1 does not list."""
    from privguard.header.standard import safe_private

    listed = {e for c, g, e in safe_private() if c == creator.decode().upper() and g == group}
    return next(e for e in range(elem + 1, 0x100) if e not in listed)


def op_private_spoof(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Private blocks with spoofed, missing, misplaced or look-alike creators of safe private names."""
    creator, group, elem, vr = rng.choice(_SAFE)
    choice = rng.randrange(7)
    block = rng.choice((0x10, 0x11, 0x20, 0xFF))
    cr_tag = (group << 16) | block
    data_tag = (group << 16) | (block << 8) | elem
    name = p.markers[0] + b"^" + p.markers[1]  # a copy of PatientName: kept only if safe, then refused
    if vr == b"SQ":
        # Person names in a safe private sequence's item: each there or not.
        inner = b"".join(
            el
            for el in (
                _el_any(p, 0x00081070, b"PN", _pad(_m(p, "NO"))),
                _el_any(p, 0x00100010, b"PN", _pad(name)),
                # a private person name, its creator in the item
                _el_any(p, 0x00290010, b"LO", b"ACME 1.0") + _el_any(p, 0x00291001, b"PN", _pad(_m(p, "NQ"))),
                _el_any(p, 0x0040A123, b"PN", _pad(_m(p, "NP"))),
            )
            if rng.random() < 0.5
        ) or _el_any(p, 0x00081070, b"PN", _pad(_m(p, "NO")))
        value_el = _sq(p, data_tag, [_item(p, inner)], undefined=rng.random() < 0.5)
    elif vr == b"IS":
        value_el = _element(p, data_tag, vr, _pad(name))  # a name where a number belongs: a copy
    elif vr == b"OB":
        value_el = _element(p, data_tag, vr, _pad(p.markers[0].decode().encode("utf-16-le") + b"\x00\x00"))
    else:
        value_el = _element(p, data_tag, vr, _pad(name)[:16] if vr == b"SH" else _pad(name))
    unsafe = _element(p, data_tag - elem + _unsafe_element(creator, group, elem), b"LO", _pad(_m(p, "NV")))
    cr = _element(p, cr_tag, b"LO", _pad(creator))
    if choice == 0:  # the genuine creator, a safe element and an unsafe one after it
        return _insert_top(p, b, cr_tag, cr + value_el + unsafe)
    if choice == 1:  # no creator at all
        return _insert_top(p, b, data_tag, value_el + unsafe)
    if choice == 2:  # the creator names another block than the data's
        other = (group << 16) | (block + 1 if block < 0xFF else 0x12)
        return _insert_top(p, b, other, _element(p, other, b"LO", _pad(creator)) + value_el + unsafe)
    if choice == 3:  # a look-alike creator: other case, trailing NUL or spaces, a prefix
        fake = rng.choice((creator.lower(), creator + b"\x00", creator + b"  ", b" " + creator, creator[:-1]))
        return _insert_top(p, b, cr_tag, _element(p, cr_tag, b"LO", _pad(fake, b"\x00")) + value_el + unsafe)
    if choice == 4:  # the creator as UN, or in the wrong VR
        cvr = rng.choice((b"UN", b"SH", b"UT", b"OB"))
        return _insert_top(p, b, cr_tag, _element(p, cr_tag, cvr, _pad(creator)) + value_el + unsafe)
    if choice == 5:  # a private element outside a block's range (gggg,0001-000F) or (gggg,01xx)
        odd = (group << 16) | rng.choice((0x0001, 0x000F, 0x0100, 0x0FFF))
        return _insert_top(p, b, odd, _element(p, odd, b"LO", _pad(_m(p, "NV"))))
    # the same creator twice, in two blocks
    cr2 = _element(p, cr_tag + 1, b"LO", _pad(creator)) if block < 0xFF else b""
    return _insert_top(p, b, cr_tag, cr + cr2 + value_el + unsafe)


def op_safe_private_values(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Text no safe private attribute may hold, under its genuine creator.

    A name (not one the header holds) in an IS attribute of Table E.3.10-1, or in the
    CodeMeaning of an item of a safe private sequence.
    """
    block = 0x7A  # a block no seed file uses
    if rng.random() < 0.5:
        creator, group, elem, _ = _SAFE[3]  # SIEMENS MR HEADER (0019,xx0C) IS
        value = _element(p, (group << 16) | block << 8 | elem, b"IS", _pad(_m(p, "NI")))
    else:
        creator, group, elem, _ = _SAFE[2]  # Philips Imaging DD 001 (2001,xx5F) SQ
        inner = _code_item(p, _pad(_m(p, "NM")))
        value = _sq(p, (group << 16) | block << 8 | elem, [_item(p, inner)])
    cr = _element(p, (group << 16) | block, b"LO", _pad(creator))
    # Each in its place (the file may have other blocks in the group): the later one first.
    out = _insert_top(p, b, (group << 16) | block << 8 | elem, value)
    return _insert_top(p, out, (group << 16) | block, cr)


def op_pn_forms(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Person names with several values, component groups, odd padding, NULs and escape sequences."""
    forms = (
        b"ANON^X\\" + _m(p, "NA") + b"^" + _m(p, "NB"),
        _m(p, "NA") + b"^J=" + _m(p, "NB") + b"=",
        b"\\\\" + _m(p, "NA"),
        _m(p, "NA") + b"^" + _m(p, "NB") + b"\x00",
        _m(p, "NA") + b"\x1b$B" + "山田".encode("iso2022_jp")[3:-3] + b"\x1b(B^" + _m(p, "NB"),
        _m(p, "NA") + b"^^^^",
    )
    value = rng.choice(forms)
    value = value + (b"\x00" if rng.random() < 0.5 else b" ") * (len(value) & 1)
    # Not PatientName: other operators plant copies of its value, which must stay its value.
    tag = rng.choice((0x00101005, 0x00101001, 0x00081060, 0x00321032, 0x00081070))
    e = _top_named(p, tag)
    el = _element(p, tag, b"PN", value)
    return _replace(p, b, e, el) if e is not None else _insert_top(p, b, tag, el)


def op_charset_names(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """A character set and a non-ASCII PatientName (its copy in a kept, cleaned or nested place)."""
    cs, codec, part = rng.choice(CHARSETS)
    raw = _encode(cs, codec, part) + _prefix(p) + b"NX"
    # The old family name stays a name part: copies of it planted by other operators stay identifying.
    name = raw + b"^" + p.markers[0]
    out = b
    # Edits from the highest offset down, so that each one's offsets (from the scan) stay valid.
    where = rng.randrange(3)
    if where == 2 and _top_named(p, 0x0040A073) is None:  # a PN in an item of a D sequence
        inner = _el_any(p, 0x0040A075, b"PN", _pad(name))
        out = _insert_top(p, out, 0x0040A073, _sq(p, 0x0040A073, [_item(p, inner)]))
    e = _top_named(p, 0x00100010)
    if e is not None:
        out = _replace(p, out, e, _element(p, 0x00100010, b"PN", _pad(name)))
    if where == 0 and _top_named(p, 0x00082218) is None:  # a kept sequence's CodeMeaning
        out = _insert_top(p, out, 0x00082218, _sq(p, 0x00082218, [_item(p, _code_item(p, _pad(raw)))]))
    elif where == 1 and _top_named(p, 0x00081030) is None:  # a descriptor: cleaned (research) or removed
        out = _insert_top(p, out, 0x00081030, _element(p, 0x00081030, b"LO", _pad(b"CT " + raw)))
    e = _top_named(p, 0x00080005)
    new = _element(p, 0x00080005, b"CS", _pad(cs))
    return _replace(p, out, e, new) if e is not None else _insert_top(p, out, 0x00080005, new)


def _fragment_pixels(p: Planted, b: bytes, frags: list[bytes]) -> bytes:
    px = p.scan.pixel
    assert px is not None
    m = p.scan.meta_end
    e = _e(p)
    head = (
        struct.pack(e + "HHI", 0x7FE0, 0x0010, UNDEF)
        if p.scan.implicit
        else struct.pack(e + "HH2sHI", 0x7FE0, 0x0010, b"OB", 0, UNDEF)
    )
    body = b"".join(struct.pack(e + "HHI", 0xFFFE, 0xE000, len(f)) + f for f in frags)
    return b[: m + px.start] + head + body + struct.pack(e + "HHI", 0xFFFE, 0xE0DD, 0) + b[m + px.end :]


def op_fragments(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Encapsulated pixel data: a text fragment, a marker in the offset table, a split element,
    a JPEG comment or a UTF-16 EXIF-like comment naming the patient."""
    px = p.scan.pixel
    if px is None:
        return op_overlay_curve(rng, p, b)
    name = p.markers[0]  # PatientName's family marker (9 characters: searched in pixel data too)
    choice = rng.randrange(5)
    if not transfer_syntax_info(p.scan.transfer_syntax)[3]:
        # A native file: a text value spliced into its pixel data instead.
        m = p.scan.meta_end
        at = m + px.end - len(name) - rng.randrange(0, 32)
        return b[:at] + name + b[at + len(name) :]
    if choice == 0:
        frags = [b"", _pad(b"Patient: " + name + b" " + p.markers[2])]
    elif choice == 1:
        frags = [name + b"\x00" * 3, _pad(b"\xff\xd8\xff\xd9")]  # a marker in the basic offset table
    elif choice == 2:
        # An identifying element split over two fragments: header in one, value in the next.
        el = _element(p, 0x00100010, b"PN", _pad(name + b"^" + p.markers[1]))
        cut = rng.randrange(4, len(el) - 1) & ~1
        frags = [b"", el[:cut], el[cut:] + b"\x00" * (len(el[cut:]) & 1)]
    elif choice == 4:
        # An EXIF-like UserComment: "UNICODE" and the name in UTF-16, in an APP1 segment.
        text = b"UNICODE\x00" + name.decode().encode(rng.choice(("utf-16-le", "utf-16-be")))
        frags = [b"", _pad(b"\xff\xd8\xff\xe1" + struct.pack(">H", len(text) + 2) + text + b"\xff\xd9")]
    else:
        # A JPEG stream with a comment segment naming the patient (text in a compressed stream).
        com = b"Patient " + name + b"^" + p.markers[1]
        frags = [b"", _pad(b"\xff\xd8\xff\xfe" + struct.pack(">H", len(com) + 2) + com + b"\xff\xd9")]
    return _fragment_pixels(p, b, frags)


def op_overlay_curve(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Overlay (60xx) and curve (50xx) groups holding text: in their data, labels and comments."""
    g = rng.choice((0x6000, 0x6002, 0x601E, 0x5000, 0x501E))
    if g >= 0x6000:
        els = [
            (0x0010, b"US", struct.pack(_e(p) + "H", 8)),
            (0x0011, b"US", struct.pack(_e(p) + "H", 8)),
            (0x0022, b"LO", _pad(_m(p, "NL"))),  # OverlayDescription: not in the table
            (0x0040, b"CS", b"G "),
            (0x0050, b"SS", struct.pack(_e(p) + "hh", 1, 1)),
            (0x0100, b"US", struct.pack(_e(p) + "H", 1)),
            (0x0102, b"US", struct.pack(_e(p) + "H", 0)),
            (0x1500, b"LO", _pad(p.markers[0])),  # OverlayLabel: kept by design, so a copy of the name
            (0x3000, rng.choice((b"OW", b"OB")), _pad(_m(p, "NW") + b"\x00" * 2)),
            (0x4000, b"LT", _pad(_m(p, "NR"))),  # OverlayComments
        ]
        if rng.random() < 0.4:
            els = [x for x in els if x[0] != 0x3000]  # no overlay data: the group stays
            els = [x if x[0] != 0x0022 else (0x0022, b"LO", _pad(p.markers[2])) for x in els]
    else:
        els = [
            (0x0005, b"US", struct.pack(_e(p) + "H", 2)),
            (0x0010, b"US", struct.pack(_e(p) + "H", 1)),
            (0x0022, b"LO", _pad(_m(p, "NR"))),  # CurveDescription
            (0x2500, b"LO", _pad(_m(p, "NL"))),  # CurveLabel
            (0x3000, b"OB", _pad(_m(p, "NW"))),  # CurveData
        ]
    new = b"".join(_element(p, (g << 16) | el, vr, v) for el, vr, v in els)
    return _insert_top(p, b, g << 16, new)


def op_un_known(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Known tags written as UN in an explicit VR file: text, a character set, a PN at depth, a creator."""
    if p.scan.implicit:
        return op_nested_text(rng, p, b)
    choice = rng.randrange(4)
    if choice == 0:  # kept-by-design text attributes as UN, holding a copy of the name
        tag = rng.choice((0x00081090, 0x00181030, 0x00204000, 0x00081030))
        e = _top_named(p, tag)
        el = _element(p, tag, b"UN", _pad(p.markers[0] + b"^" + p.markers[1]))
        return _replace(p, b, e, el) if e is not None else _insert_top(p, b, tag, el)
    if choice == 1:  # PersonName as UN inside an item of a kept sequence
        if _top_named(p, 0x00082218) is not None:
            return b
        inner = _code_item(p, b"Chest ", _element(p, 0x0040A123, b"UN", _pad(_m(p, "NU"))))
        return _insert_top(p, b, 0x00082218, _sq(p, 0x00082218, [_item(p, inner)]))
    if choice == 2:  # SpecificCharacterSet as UN
        e = _top_named(p, 0x00080005)
        el = _element(p, 0x00080005, b"UN", _pad(rng.choice((b"ISO_IR 192", b"GB18030", b"ISO_IR 100"))))
        return _replace(p, b, e, el) if e is not None else _insert_top(p, b, 0x00080005, el)
    # a private creator as UN, with a safe name, and a marker in its block
    creator, group, elem, _ = _SAFE[0]
    cr = _element(p, (group << 16) | 0x10, b"UN", creator)
    data = _element(p, (group << 16) | 0x1000 | elem, b"UN", _pad(p.markers[0]))
    data += _element(p, (group << 16) | 0x1000 | (elem + 1), b"UN", _pad(_m(p, "NU")))
    return _insert_top(p, b, (group << 16) | 0x10, cr + data)


def op_order(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Tags out of order: an OperatorsName before a smaller tag, at the top or inside an item."""
    el = _element(p, 0x00081070, b"PN", _pad(_m(p, "NO")))
    if rng.random() < 0.5:
        els = p.scan.elements
        at = p.scan.meta_end + els[rng.randrange(len(els))].start
        return b[:at] + el + b[at:]
    if _top_named(p, 0x00082218) is not None:
        return b
    bad = el + _code_item(p, b"Chest ")  # (0008,1070) before (0008,0100) inside the item
    return _insert_top(p, b, 0x00082218, _sq(p, 0x00082218, [_item(p, bad)]))


_PADDED = ("PN", "LO", "SH", "CS", "UI", "DA", "LT")


def op_padding(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Text values of odd length, padded with NUL instead of a space, or with NULs in the middle."""
    e = _pick(
        rng,
        p,
        lambda x: x.depth == 0 and x.vr in _PADDED and x.end - x.value_start >= 4,
    )
    if e is None:
        return b
    m = p.scan.meta_end
    value = b[m + e.value_start : m + e.end]
    choice = rng.randrange(4)
    if choice == 0:
        new = value.rstrip(b" \x00")  # odd length, no padding
        if len(new) % 2 == 0:
            new = new[:-1]
    elif choice == 1:
        new = _pad(value.rstrip(b" \x00"), b"\x00")
    elif choice == 2:
        new = value.rstrip(b" \x00") + b"\x00\x00\x00\x00" + _m(p, "NS")
        new = _pad(new)
    else:
        new = value + b" " * rng.choice((1, 2, 64))
    return _replace(p, b, e, _element(p, e.tag, e.vr.encode(), new))


def op_after_delimiter(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Bytes after a sequence or item delimiter: an item, an element, or garbage with a marker."""
    e = _pick(rng, p, lambda x: x.vr in ("SQ", "UN") and x.undefined)
    inner = _element(p, 0x00081070, b"PN", _pad(_m(p, "NO")))
    if e is None:
        # Make one: a kept sequence with an undefined length, then something after its delimiter.
        if _top_named(p, 0x00082218) is not None:
            return b
        seq = _sq(p, 0x00082218, [_item(p, _code_item(p, b"Chest "), undefined=True)], undefined=True)
    else:
        m = p.scan.meta_end
        seq = b[m + e.start : m + e.end]
    choice = rng.randrange(4)
    if choice == 0:
        extra = _item(p, inner)  # an item after the sequence delimiter
    elif choice == 1:
        extra = struct.pack(_e(p) + "HHI", 0xFFFE, 0xE00D, 0) + inner  # a stray item delimiter
    elif choice == 2:
        extra = struct.pack(_e(p) + "HHI", 0xFFFE, 0xE0DD, 0)  # a second sequence delimiter
    else:
        extra = _m(p, "NS") + b"\x00"
    if e is None:
        return _insert_top(p, b, 0x00082218, seq + extra)
    m = p.scan.meta_end
    return b[: m + e.end] + extra + b[m + e.end :]


def op_group_length(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """Group length elements (gggg,0000) with wrong values: too short, too long, huge, as another VR."""
    groups = sorted({x.tag >> 16 for x in p.scan.elements if x.tag >> 16 not in (0x7FE0,)})
    if not groups:
        return b
    g = rng.choice(groups)
    size = sum(x.end - x.start for x in p.scan.elements if x.tag >> 16 == g)
    value = rng.choice((0, 4, size - 2, size + 64, 0xFFFFFFFF, size))
    vr = rng.choice((b"UL", b"UL", b"UN", b"OB"))
    el = _element(p, g << 16, vr, struct.pack(_e(p) + "I", value & 0xFFFFFFFF))
    if rng.random() < 0.3:
        # One inside an item, and a marker after it in that item.
        if _top_named(p, 0x00082218) is not None:
            return b
        gl = _element(p, 0x00080000, vr, struct.pack(_e(p) + "I", value & 0xFFFFFFFF))
        inner = gl + _code_item(p, b"Chest ", _element(p, 0x00081070, b"PN", _pad(_m(p, "NO"))))
        return _insert_top(p, b, 0x00082218, _sq(p, 0x00082218, [_item(p, inner)]))
    return _insert_top(p, b, g << 16, el)


def op_meta_fields(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """File meta: markers in its text fields, a duplicate, a wrong group length, an attribute twice."""
    if b[128:132] != b"DICM" or p.scan.deflated:
        return op_meta_in_dataset(rng, p, b)
    pos = 132
    # The end of the meta group.
    while pos + 8 <= len(b):
        g, _, vr, ln = struct.unpack_from("<HH2sH", b, pos)
        if g != 2:
            break
        if vr in LONG_VRS:
            (ln,) = struct.unpack_from("<I", b, pos + 8)
            pos += 12 + ln
        else:
            pos += 8 + ln
    meta = b[132:pos]
    choice = rng.randrange(5)
    extra = {
        0: struct.pack("<HH2sH", 2, 0x0016, b"AE", 10) + _m(p, "NA")[:10].ljust(10),
        1: struct.pack("<HH2sH", 2, 0x0013, b"SH", 10) + _m(p, "NA")[:10].ljust(10),
        2: struct.pack("<HH2sHI", 2, 0x0102, b"OB", 0, 10) + _m(p, "NA")[:10].ljust(10),
        3: struct.pack("<HH2sH", 2, 0x0010, b"UI", 20) + b"1.2.840.10008.1.2.1\x00",  # duplicate TS
        4: b"",
    }[choice]
    # Insert in tag order (roughly: at the end of the meta).
    new_meta = meta + extra
    if meta[:4] == b"\x02\x00\x00\x00":  # fix up (or break) the group length
        (gl,) = struct.unpack_from("<I", meta, 8)
        fixed = gl + len(extra) if rng.random() < 0.7 else rng.choice((gl, gl + 2, 0, 0xFFFFFFFF))
        new_meta = new_meta[:8] + struct.pack("<I", fixed & 0xFFFFFFFF) + new_meta[12:]
    if choice == 4:
        # The data set repeats a meta attribute that is also a data set attribute (SOP Instance UID):
        # the meta's MediaStorageSOPInstanceUID differs from the data set's SOPInstanceUID.
        e = _top_named(p, 0x00080018)
        if e is None:
            return b[:132] + new_meta + b[pos:]
        uid = b"1.2.826.0.1.3680043.9.7777." + str(rng.randrange(10**6)).encode()
        changed = _replace(p, b, e, _element(p, 0x00080018, b"UI", _pad(uid, b"\x00")))
        return b[:132] + new_meta + changed[pos:]
    return b[:132] + new_meta + b[pos:]


def op_deflate_dataset(rng: random.Random, p: Planted, b: bytes) -> bytes:
    """The data set as it stands (after the other operators) deflated, under a new meta.

    Applied last (see :func:`fresh_mutants`): the new operators' PHI inside a deflated file.
    """
    if p.scan.implicit or not p.scan.little or p.scan.deflated:
        return op_nested_text(rng, p, b)
    uid = b"1.2.840.10008.1.2.1.99"
    meta_body = struct.pack("<HH2sH", 2, 0x0010, b"UI", len(uid)) + uid
    meta = b"\x00" * 128 + b"DICM" + struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(meta_body)) + meta_body
    comp = zlib.compressobj(rng.choice((1, 6, 9)), zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = comp.compress(b[p.scan.meta_end :]) + comp.flush()
    return meta + stream + b"\x00" * (len(stream) & 1)


NEW_OPS: tuple[Op, ...] = (
    op_nested_text, op_nested_un, op_private_spoof, op_pn_forms, op_charset_names, op_fragments,
    op_overlay_curve, op_un_known, op_order, op_padding, op_after_delimiter, op_group_length,
    op_meta_fields, op_safe_private_values, op_deflate_dataset,
)  # fmt: skip


@dataclass
class Mutant:
    seed_file: str
    ops: tuple[str, ...]
    data: bytes
    markers: tuple[bytes, ...]
    copies: tuple[bytes, ...] = ()
    """Markers the operators also plant as copies of an identifying value in places a profile keeps
    (see :func:`_orphan_copy`)."""


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


def fresh_mutants(seed: int, count: int) -> Iterator[Mutant]:
    """``count`` mutants of the new operators (:data:`NEW_OPS`), reproducible from ``seed``.

    The first ``len(NEW_OPS) * len(seeds)`` apply each new operator alone to each seed file
    in turn; after that, one new operator and up to two others (old or new), at random.
    """
    rng = random.Random(seed)
    # The new operators edit the data set's bytes in place: not the deflated seed.
    seeds = tuple(p for p in planted_seeds() if not p.scan.deflated)
    every = len(NEW_OPS) * len(seeds)
    for i in range(count):
        if i < every:
            p, ops = seeds[i % len(seeds)], [NEW_OPS[i // len(seeds)]]
        else:
            p = rng.choice(seeds)
            ops = [rng.choice(NEW_OPS), *rng.sample(OPS + NEW_OPS, rng.choice((0, 0, 1, 2)))]
            rng.shuffle(ops)
            if op_deflate_dataset in ops:  # it deflates what the others made: last
                ops = [op for op in ops if op is not op_deflate_dataset] + [op_deflate_dataset]
        data = p.data
        names = []
        for op in ops:
            try:
                data = op(rng, p, data)
            except (struct.error, IndexError, ValueError):
                continue
            names.append(op.__name__)
        # PatientName's family and given names and PatientID: copied into kept places.
        yield Mutant(p.name, tuple(names), data, p.markers + extra_markers(p), p.markers[:3])


# -- the invariant --------------------------------------------------------------------------


def dcmdump_problems(path: Path) -> str | None:
    if not HAVE_DCMDUMP:
        return None
    r = subprocess.run(["dcmdump", "-q", str(path)], capture_output=True, timeout=60)
    err = r.stderr.decode("latin-1")
    if r.returncode != 0 or "E:" in err or "W:" in err:
        return f"dcmdump rc={r.returncode}: {err[:300]}"
    return None


def _pydicom_warnings(src: Path | bytes, *, force: bool = False) -> set[str] | str:
    """The warnings pydicom gives reading every value of ``src`` (validation on), or why it fails.

    privguard switches pydicom's value validation off in-process (see ``quiet_pydicom``):
    it is switched on here for the check, whatever ran before in this process.
    """
    from pydicom import config

    mode = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.WARN
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(io.BytesIO(src) if isinstance(src, bytes) else src, force=force)
            for elem in ds.iterall():
                _ = elem.value
    except Exception as exc:
        return f"pydicom: {type(exc).__name__}: {exc}"[:300]
    finally:
        config.settings.reading_validation_mode = mode
    return {str(w.message) for w in caught}


def pydicom_problem(path: Path, source: bytes | None = None) -> str | None:
    """Why pydicom does not read ``path`` cleanly: an error, or a warning ``source`` (the input) lacks.

    A warning about a value the input holds too (an over-long LO kept verbatim, say) is the
    input's, not privguard's: with ``source`` given, only new warnings count.
    """
    found = _pydicom_warnings(path)
    if isinstance(found, str):
        return found
    if found and source is not None:
        before = _pydicom_warnings(source, force=True)
        found -= before if isinstance(before, set) else set()
    return f"pydicom: UserWarning: {sorted(found)[0]}"[:300] if found else None


def _orphan_copy(mk: bytes, src: bytes) -> bool:
    """Whether no identifying element of the input (found wherever it lies) holds ``mk`` any more.

    An operator plants a copy of PatientName's value where a profile keeps text, which the
    output check must then refuse; another operator may then have cut, replaced or broken
    PatientName itself. The copy is then no value of the file, just text in a kept place.
    """
    from privguard.dicom.verify import _split, hidden_identifiers

    data = src
    try:
        sc = scan(src)
        if sc.deflated:
            data = bytes(sc.data)
    except Exception:
        pass
    found = hidden_identifiers(data, 0, len(data), True) + hidden_identifiers(data, 0, len(data), False)
    # Still identifying if a whole value or name part of an identifying element (as the output
    # check splits them) lies within the copy; a damaged separator ("NAME!GIVEN") leaves none.
    return not any(value in mk for _, v in found for value, _ in _split(v, name=True))


def _pixel_span(data: bytes) -> tuple[int, int] | None:
    try:
        sc = scan(data)
    except Exception:
        return None
    px = sc.pixel
    if px is None or sc.deflated:
        return None
    return sc.meta_end + px.start, sc.meta_end + px.end


def _only_unmentioned_pixel_text(
    mk: bytes, out: bytes, out_px: tuple[int, int] | None, src: bytes, in_px: tuple[int, int] | None
) -> bool:
    """A marker that lies only in the output's pixel data, and that the input's header never holds.

    Operators combine: a name spliced into the pixel data by one and then replaced in the
    header by another is no longer a value of the file, just text in its pixels, which only
    the burned-in text stage (off in these runs) could find. A copy of a value the header
    still holds (in ASCII, or the UTF-16 form of one) is not excused.
    """
    if out_px is None or in_px is None:
        return False
    i = out.find(mk)
    while i >= 0:
        if not out_px[0] <= i < out_px[1]:
            return False
        i = out.find(mk, i + 1)
    text = mk.replace(b"\x00", b"") if mk.count(b"\x00") * 2 >= len(mk) else mk
    header = src[: in_px[0]] + src[in_px[1] :]
    return text not in header


def violations(m: Mutant, result: FileResult, out_dir: Path, input_path: Path | None = None) -> list[str]:
    """What is wrong with privguard's handling of one mutant (empty: the invariant holds).

    With ``input_path`` (the mutant on disk) and dciodvfy installed, the output must not have
    validator errors the input did not have.
    """
    problems: list[str] = []
    text = (result.reason or "") + (result.output or "") + " ".join(result.warnings)
    for mk in m.markers:
        if mk.decode("utf-8", "replace") in text:
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
    return problems + output_problems(m, files[0], input_path)


def output_problems(m: Mutant, out: Path, input_path: Path | None = None) -> list[str]:
    """What is wrong with the output privguard wrote for ``m`` (see :func:`violations`)."""
    problems: list[str] = []
    data = out.read_bytes()
    out_px, in_px = _pixel_span(data), _pixel_span(m.data)
    for mk in m.markers:
        if mk in data and not _only_unmentioned_pixel_text(mk, data, out_px, m.data, in_px):
            if mk in m.copies and _orphan_copy(mk, m.data):
                continue
            problems.append(f"marker {mk.decode('utf-8', 'replace')[-3:]} in the output")
    deflated = False
    try:
        deflated = scan(data, require_part10=True).deflated
    except ScanError as exc:
        problems.append(f"privguard's scanner refuses the output: {exc}")
    for problem in (pydicom_problem(out, m.data), dcmdump_problems(out)):
        if problem:
            problems.append(problem)
    if HAVE_DCIODVFY and input_path is not None and not deflated:  # dciodvfy cannot inflate
        new = dciodvfy_errors(out) - dciodvfy_errors(input_path)
        if new:
            problems.append(f"dciodvfy: new errors {sorted(new)[:3]}")
    return problems
