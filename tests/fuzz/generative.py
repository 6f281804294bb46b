"""A generative fuzzer: DICOM files built from scratch out of the data dictionary, PHI markers planted.

The mutation fuzzer (:mod:`fuzz.mutants`) starts from pydicom's bundled files, so it only ever
sees the attributes those files hold. This one draws the attributes themselves: any tag of the
data dictionary (retired ones too, with either of its VRs where it has two), at any depth of
nesting, in any of the four encodings (explicit and implicit VR little endian, explicit big
endian, deflated), with private blocks (unknown creators, and the safe creators of PS3.15
Table E.3.10-1 with values that do or do not fit the table's VR), overlays, empty values,
multi-valued strings, a character set, and sometimes native pixel data.

Markers are planted only where the profile must not keep them, which is read from PS3.15
Table E.1-1 (the generated table, never the engine's plan) and the profile's options:

* every person name (PN), at every depth;
* every text value of an attribute the table lists whose action under the profile is not K
  or C (X, Z, D, U);
* every value of a private element whose creator is not a safe creator of the table;
* copies of the patient's own name in text the profile keeps (:attr:`Mutant.copies`): the
  output check must refuse them.

Every other value is benign. A generated file may then go through one or two of the mutation
operators (``--mutate``), so near-valid files are covered too. The invariant is
:func:`fuzz.mutants.violations`; on top of it, no instance UID of the input may be in an output.

    cd tests && ../.venv/bin/python -m fuzz.generative --seed 1 --count 500 --profile basic
"""

from __future__ import annotations

import argparse
import collections
import random
import shutil
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from fuzz.mutants import NEW_OPS, OPS, Mutant, Planted, marker, violations
from privguard.deidentifier import Deidentifier
from privguard.dicom.scan import scan
from privguard.header.profile import load_profile
from privguard.header.standard import e1_1, safe_private
from privguard.models import FileResult
from privguard.pseudonym.keys import ProjectKey

_LONG = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
_TEXT = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"}
_PACK = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_DRAWN = _LONG | _TEXT | set(_PACK) | {"DA", "DT", "TM", "DS", "IS", "AS", "AT", "UI"}
_BYTES = {"OB": 1, "UN": 1, "OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
#: Groups not drawn at random: command, file meta, the image pixel module (written consistently
#: when there are pixels), pixel data, items and delimiters, and the trailing padding.
_SKIP_GROUPS = {0x0000, 0x0002, 0x0028, 0x7FE0, 0xFFFE, 0xFFFA, 0xFFFC}
_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound
)
_CHARSETS = (b"", b"ISO_IR 100", b"ISO_IR 192", b"ISO_IR 6", b"\\ISO 2022 IR 100")
_WORDS = ("AXIAL", "HELICAL", "CHEST", "ROUTINE", "CONTRAST", "LEFT", "HEAD", "PHANTOM", "SERIES", "PROTOCOL")


@cache
def _dictionary() -> tuple[tuple[int, tuple[str, ...]], ...]:
    from pydicom._dicom_dict import DicomDictionary

    out = []
    for tag, entry in DicomDictionary.items():
        if tag >> 16 in _SKIP_GROUPS:
            continue
        vrs = tuple(v.strip() for v in entry[0].replace(" or ", "/").split("/") if v.strip())
        if not vrs or any(v not in _DRAWN for v in vrs):
            continue
        out.append((tag, vrs))
    return tuple(sorted(out))


@cache
def _kept_by(profile: str) -> frozenset[int]:
    """Tags of Table E.1-1 the profile keeps or cleans (K or C under one of its options)."""
    p = load_profile(profile)
    codes = {str(o) for o in p.options}
    kept = set()
    for row in e1_1().rows:
        if row.tag is None:
            continue
        for opt, action in row.options.items():
            if opt in codes and action in ("K", "C"):
                kept.add(row.tag)
    return frozenset(kept)


@cache
def _uid_tags() -> frozenset[int]:
    """Tags whose UIDs Table E.1-1 replaces (U in the Basic Profile's action)."""
    return frozenset(r.tag for r in e1_1().rows if r.tag is not None and "U" in r.basic)


@cache
def _table_tags() -> frozenset[int]:
    return frozenset(r.tag for r in e1_1().rows if r.tag is not None)


@cache
def _safe_creators() -> tuple[tuple[str, int, int, str], ...]:
    return tuple((c, g, e, vr) for (c, g, e), vr in safe_private().items())


@dataclass
class _Gen:
    rng: random.Random
    n: int
    profile: str
    implicit: bool
    little: bool
    markers: list[bytes] = field(default_factory=list)
    copies: list[bytes] = field(default_factory=list)
    uids: list[bytes] = field(default_factory=list)
    patient: bytes = b""
    k: int = 0
    copy_rate: float = 0.0

    def mark(self, label: str) -> bytes:
        self.k += 1
        m = marker(self.n, f"{label}{self.k:03d}").encode()
        self.markers.append(m)
        return m

    # -- encoding ----------------------------------------------------------------------------
    def el(self, tag: int, vr: str, value: bytes) -> bytes:
        e = "<" if self.little else ">"
        g, n = tag >> 16, tag & 0xFFFF
        if self.implicit:
            return struct.pack(e + "HHI", g, n, len(value)) + value
        if vr in _LONG:
            return struct.pack(e + "HH2sHI", g, n, vr.encode(), 0, len(value)) + value
        return struct.pack(e + "HH2sH", g, n, vr.encode(), len(value)) + value

    def sq(self, tag: int, items: list[bytes]) -> bytes:
        e = "<" if self.little else ">"
        undefined = self.rng.random() < 0.4
        body = b""
        for it in items:
            if undefined or self.rng.random() < 0.3:
                body += struct.pack(e + "HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + it
                body += struct.pack(e + "HHI", 0xFFFE, 0xE00D, 0)
            else:
                body += struct.pack(e + "HHI", 0xFFFE, 0xE000, len(it)) + it
        if undefined:
            body += struct.pack(e + "HHI", 0xFFFE, 0xE0DD, 0)
            g, n = tag >> 16, tag & 0xFFFF
            if self.implicit:
                return struct.pack(e + "HHI", g, n, 0xFFFFFFFF) + body
            return struct.pack(e + "HH2sHI", g, n, b"SQ", 0, 0xFFFFFFFF) + body
        return self.el(tag, "SQ", body)

    # -- values ------------------------------------------------------------------------------
    def text(self, vr: str, tag: int, must_go: bool, depth: int) -> bytes:
        r = self.rng
        if vr == "PN" or (vr in ("LO", "SH", "ST", "LT", "UT", "UC") and must_go):
            m = self.mark("P" if vr == "PN" else "T")
            if vr == "PN":
                forms = (
                    m,
                    m + b"^" + self.mark("G"),
                    m + b"^" + self.mark("G") + b"^^DR",
                    m + b"\\" + self.mark("V"),
                )
                v = r.choice(forms)
            else:
                v = r.choice((m, b"ABOUT " + m + b" HERE", m + b"\\" + self.mark("V")))
            return v  # may run past the VR's maximum, as real files do
        if (
            vr in ("LO", "ST", "LT", "UT", "UC")
            and tag not in _table_tags()
            and self.patient
            and not self.copies
            and r.random() < self.copy_rate
        ):
            # A copy of the patient's name in text the profile keeps: the output check must refuse it.
            self.copies += [self.patient, *self.patient.split(b"^")]
            return b"SEEN WITH " + self.patient
        if vr == "CS":
            return r.choice((b"ORIGINAL\\PRIMARY", b"YES", b"NO", b"M", b"F", b"AXIAL", b"A_1", b""))
        if vr == "AE":
            return b"STATION" + str(r.randrange(100)).encode()
        if vr == "UR":
            return b"http://example.org/x"
        return " ".join(r.choice(_WORDS) for _ in range(r.randint(1, 3))).encode()

    def value(self, tag: int, vr: str, must_go: bool, depth: int) -> bytes:
        r = self.rng
        if r.random() < 0.05:
            return b""
        if vr in _TEXT:
            v = self.text(vr, tag, must_go, depth)
            return v + b" " if len(v) & 1 else v
        if vr == "UI":
            v = ("2.25." + str(r.getrandbits(100))).encode()
            if tag in _uid_tags() and tag not in _kept_by(self.profile):
                self.uids.append(v)
            return v + b"\x00" if len(v) & 1 else v
        if vr == "DA":
            return b"20%02d%02d%02d" % (r.randrange(25), r.randint(1, 12), r.randint(1, 28))
        if vr == "DT":
            return b"20240102030405.000000 "[: r.choice((8, 14, 22))]
        if vr == "TM":
            return r.choice((b"120000", b"123456.789 ", b"0930"))
        if vr == "DS":
            return r.choice((b"1.5 ", b"-0.25", b"100 ", b"1\\2 "))
        if vr == "IS":
            return r.choice((b"42", b"-7", b"1\\2 ", b"0 "))
        if vr == "AS":
            return r.choice((b"045Y", b"003M"))
        if vr == "AT":
            return struct.pack("<HH" if self.little else ">HH", 0x0010, 0x0010)
        if vr in _PACK:
            fmt = ("<" if self.little else ">") + _PACK[vr]
            return b"".join(struct.pack(fmt, r.randrange(0, 100)) for _ in range(r.randint(1, 3)))
        unit = _BYTES.get(vr, 1)
        data = bytes(r.randrange(256) for _ in range(unit * r.randint(1, 8)))
        if len(data) & 1:
            data += b"\x00"
        return data

    # -- data sets ---------------------------------------------------------------------------
    def dataset(self, depth: int, count: int) -> bytes:
        r = self.rng
        d = _dictionary()
        kept = _kept_by(self.profile)
        elements: dict[int, bytes] = {}
        for _ in range(count):
            tag, vrs = r.choice(d)
            vr = vrs[0] if len(vrs) == 1 or r.random() < 0.7 else r.choice(vrs)
            if vr == "SQ":
                if depth >= 4:
                    continue
                items = [self.dataset(depth + 1, r.randint(0, 6)) for _ in range(r.randint(0, 3))]
                elements[tag] = self.sq(tag, items)
                continue
            if tag in (0x00080005,):
                continue
            # DeidentificationMethod may hold a name (a file de-identified in part before):
            # privguard replaces it at every depth, so it gets a marker, never a common word.
            must_go = (tag in _table_tags() and tag not in kept) or tag == 0x00120063
            elements[tag] = self.el(tag, vr, _even(self.value(tag, vr, must_go, depth), vr))
        if r.random() < 0.3:
            self.private(elements, depth)
        return b"".join(elements[t] for t in sorted(elements))

    def private(self, elements: dict[int, bytes], depth: int) -> None:
        r = self.rng
        if r.random() < 0.5 and _safe_creators():
            creator, group, elem, vr = r.choice(_safe_creators())
            block = r.randint(0x10, 0xFF)
            cr = creator.encode()
            elements[(group << 16) | block] = self.el(
                (group << 16) | block, "LO", cr + b" " if len(cr) & 1 else cr
            )
            tag = (group << 16) | (block << 8) | elem
            if vr in ("", "OW/OB", "UN", "OB", "OW") or r.random() < 0.3:
                return  # a safe value the profile may keep: nothing planted in it
            write_vr = vr if vr in _PACK or vr in _TEXT or vr in ("DS", "IS", "DA", "TM", "UI") else "UN"
            raw = self.text("PN", tag, True, depth) if vr == "PN" else self.value(tag, vr, False, depth)
            elements[tag] = self.el(tag, write_vr, _even(raw, vr))
            return
        group = r.choice((0x0009, 0x0011, 0x0019, 0x0029, 0x0043, 0x7FD1))
        block = r.randint(0x10, 0xFF)
        name = b"ACME FUZZ " + str(r.randrange(1000)).encode()
        elements[(group << 16) | block] = self.el(
            (group << 16) | block, "LO", name + b" " if len(name) & 1 else name
        )
        for i in range(r.randint(1, 3)):
            tag = (group << 16) | (block << 8) | (0x10 + i)
            vr = r.choice(("LO", "UN", "OB", "SH", "LT"))
            m = self.mark("X")
            v = m if vr != "OB" else b"\x01\x02" + m + b"\x00\x00"
            elements[tag] = self.el(tag, vr, v + b" " if len(v) & 1 else v)


def _even(v: bytes, vr: str) -> bytes:
    if not len(v) & 1:
        return v
    return v + (b"\x00" if vr in _BYTES or vr in ("UI", "OB") else b" ")


def _meta(ts: str, sop_class: bytes, sop_uid: bytes) -> bytes:
    def el(tag: int, vr: str, v: bytes) -> bytes:
        if vr in _LONG:
            return struct.pack("<HH2sHI", 2, tag, vr.encode(), 0, len(v)) + v

        return struct.pack("<HH2sH", 2, tag, vr.encode(), len(v)) + v

    def ui(s: bytes) -> bytes:
        return s + b"\x00" if len(s) & 1 else s

    body = (
        el(0x0001, "OB", b"\x00\x01")
        + el(0x0002, "UI", ui(sop_class))
        + el(0x0003, "UI", ui(sop_uid))
        + el(0x0010, "UI", ui(ts.encode()))
        + el(0x0012, "UI", ui(b"1.2.826.0.1.3680043.9.7433.1"))
    )
    return b"\x00" * 128 + b"DICM" + el(0x0000, "UL", struct.pack("<I", len(body))) + body


def generate(seed: int, n: int, profile: str) -> tuple[bytes, _Gen]:
    """One file and what was planted in it."""
    rng = random.Random(seed * 1_000_003 + n)
    enc = rng.choices(("ex", "im", "be", "dfl"), (50, 25, 10, 15))[0]
    ts = {"ex": "1.2.840.10008.1.2.1", "im": "1.2.840.10008.1.2", "be": "1.2.840.10008.1.2.2",
          "dfl": "1.2.840.10008.1.2.1.99"}[enc]  # fmt: skip
    g = _Gen(rng, n, profile, implicit=enc == "im", little=enc != "be")
    g.copy_rate = 0.1 if rng.random() < 0.3 else 0.0  # some files hold one copy of the name in kept text
    fam, giv = g.mark("F"), g.mark("N")
    g.patient = fam + b"^" + giv
    sop_class = rng.choice(_SOP_CLASSES).encode()
    sop_uid = ("2.25." + str(rng.getrandbits(110))).encode()
    g.uids += [sop_uid]
    top: dict[int, bytes] = {}

    def put(tag: int, vr: str, v: bytes) -> None:
        pad = b"\x00" if vr == "UI" else b" "
        top[tag] = g.el(tag, vr, v + pad if len(v) & 1 else v)

    cs = rng.choice(_CHARSETS)
    if cs:
        put(0x00080005, "CS", cs)
    put(0x00080016, "UI", sop_class)
    put(0x00080018, "UI", sop_uid)
    put(0x00100010, "PN", g.patient)
    put(0x00100020, "LO", g.mark("I"))
    for tag in (0x0020000D, 0x0020000E):
        u = ("2.25." + str(rng.getrandbits(110))).encode()
        g.uids.append(u)
        put(tag, "UI", u)
    body = g.dataset(0, rng.randint(5, 60))
    # Split the drawn elements back into tags so the fixed ones win and order holds.
    drawn = _split_top(body, g)
    for tag, raw in drawn.items():
        top.setdefault(tag, raw)
    if rng.random() < 0.2:  # an overlay, its comments planted
        put(0x60000010, "US", struct.pack("<H" if g.little else ">H", 8))
        put(0x60000011, "US", struct.pack("<H" if g.little else ">H", 8))
        put(0x60000100, "US", struct.pack("<H" if g.little else ">H", 1))
        put(0x60004000, "LT", g.mark("O"))
        top[0x60003000] = g.el(0x60003000, "OW", bytes(8))
    if rng.random() < 0.5:
        rows, cols = rng.randint(2, 24), rng.randint(2, 24)
        u = "<H" if g.little else ">H"
        put(0x00280002, "US", struct.pack(u, 1))
        put(0x00280004, "CS", b"MONOCHROME2 ")
        put(0x00280010, "US", struct.pack(u, rows))
        put(0x00280011, "US", struct.pack(u, cols))
        put(0x00280100, "US", struct.pack(u, 16))
        put(0x00280101, "US", struct.pack(u, 12))
        put(0x00280102, "US", struct.pack(u, 11))
        put(0x00280103, "US", struct.pack(u, 0))
        px = bytes(rng.randrange(256) for _ in range(rows * cols * 2))
        top[0x7FE00010] = g.el(0x7FE00010, "OW", px)
    data = b"".join(top[t] for t in sorted(top))
    if enc == "dfl":
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = c.compress(data) + c.flush()
        if len(data) & 1:
            data += b"\x00"
    return _meta(ts, sop_class, sop_uid) + data, g


def _split_top(body: bytes, g: _Gen) -> dict[int, bytes]:
    """The top-level elements of ``body`` (which the generator wrote itself) by tag."""
    ts = "1.2.840.10008.1.2" if g.implicit else ("1.2.840.10008.1.2.1" if g.little else "1.2.840.10008.1.2.2")
    prefix = _meta(ts, b"1.2.3", b"1.2.3")
    out: dict[int, bytes] = {}
    if not body:
        return out
    sc = scan(prefix + body)
    base = sc.meta_end
    whole = prefix + body
    for e in sc.elements:
        out[e.tag] = whole[base + e.start : base + e.end]
    return out


@dataclass
class Generated(Mutant):
    """A generated file; ``uids`` are its instance UIDs, none of which may be in an output."""

    uids: tuple[bytes, ...] = ()
    clean_input: bool = True
    """No operator touched it, and no copy of the patient's name was planted: valid DICOM with
    nothing the output check must refuse, so it must be written."""


def generated(seed: int, count: int, profile: str, mutate: float = 0.0) -> Iterator[Generated]:
    """``count`` generated files (a share ``mutate`` also mutated), reproducible from ``seed``."""
    rng = random.Random(seed)
    for i in range(count):
        data, g = generate(seed, i, profile)
        ops: tuple[str, ...] = ("generated",)
        if mutate and rng.random() < mutate:
            p = Planted(f"gen{i}", data, tuple(g.markers), scan(data, with_index=True))
            for op in rng.sample(OPS + NEW_OPS, rng.choice((1, 1, 2))):
                try:
                    data = op(rng, p, data)
                except Exception:  # an operator that does not apply to this file
                    continue
                ops += (op.__name__,)
        yield Generated(
            f"gen{i}",
            ops,
            data,
            tuple(g.markers),
            tuple(g.copies),
            tuple(g.uids),
            clean_input=len(ops) == 1 and not g.copies,
        )


def check(deid: Deidentifier, m: Generated, work: Path) -> tuple[FileResult, list[str]]:
    """Scrub ``m`` in ``work`` (emptied afterwards); what was wrong (see :func:`fuzz.mutants.violations`)."""
    src = work / "in.dcm"
    out_dir = work / "out"
    out_dir.mkdir(parents=True)
    src.write_bytes(m.data)
    try:
        res = deid.file(src, out_dir)
        found = violations(m, res, out_dir)
        if res.status == "ok":
            out = next(f for f in out_dir.rglob("*") if f.is_file())
            data = out.read_bytes()
            if any(u in data for u in m.uids):
                found.append("an input instance UID in the output")
        return res, found
    finally:
        shutil.rmtree(work)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--profile", default="basic")
    ap.add_argument("--mutate", type=float, default=0.0, help="share of files also mutated (0..1)")
    ap.add_argument("--show", action="store_true", help="print each refusal of a file that must be written")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pggen-"))
    deid = Deidentifier(args.profile, ProjectKey.from_bytes(bytes(range(32))), vault=root / "vault.sqlite")
    reasons: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    n_ok = wrongly_refused = 0
    t0 = time.monotonic()
    try:
        for i, m in enumerate(generated(args.seed, args.count, args.profile, args.mutate)):
            res, found = check(deid, m, root / str(i))
            if res.status == "ok":
                n_ok += 1
            else:
                reasons[(res.reason or "")[:90]] += 1
                if m.clean_input:
                    wrongly_refused += 1
                    if args.show:
                        print(f"refused #{i} though valid: {res.reason}")
            problems += [f"seed {args.seed} #{i} {m.ops}: {f}" for f in found]
    finally:
        deid.close()
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{args.count} generated ({args.profile}, mutate {args.mutate}): {n_ok} ok, "
        f"{args.count - n_ok} refused "
        f"({wrongly_refused} of them valid files), {len(problems)} problems, {time.monotonic() - t0:.0f} s"
    )
    for r, c in reasons.most_common(15):
        print(f"  refused {c:4d}: {r}")
    for p in problems[:40]:
        print("PROBLEM", p)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
