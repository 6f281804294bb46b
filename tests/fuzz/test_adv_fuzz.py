"""The fail-closed invariant under the new mutation operators, on the library and the CLI path.

``fresh_mutants`` applies the operators of :data:`fuzz.mutants.NEW_OPS` (PHI in nested items,
spoofed private creators, character sets, fragments, overlays, UN, order, padding, delimiters,
group lengths, file meta) to the planted seeds. Every mutant must be refused with a PHI-free
reason or written clean (:func:`fuzz.mutants.violations`). ``make test`` runs a few hundred;
``make test-nightly`` thousands, and the CLI campaign.
"""

from __future__ import annotations

import collections
import io
import tempfile
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from fuzz import mutants as mu
from fuzz.cli_campaign import run as cli_run
from fuzz.test_fuzz import _run as run_mutants
from privguard.deidentifier import Deidentifier
from privguard.dicom.verify import (
    IDENTIFYING,
    Forbidden,
    identifying_values,
    verify_output,
)
from privguard.errors import OutputError
from privguard.pseudonym.keys import ProjectKey

KEY = ProjectKey.from_bytes(bytes(range(32)))


def _run(deid: Deidentifier, ms: list[mu.Mutant], root: Path) -> tuple[collections.Counter[str], list[str]]:
    return run_mutants(deid, ms, root, validator=False)  # no dciodvfy: thousands of mutants


@pytest.mark.parametrize("profile", ["basic", "research"])
def test_fresh_mutants_are_refused_or_clean(tmp_path: Path, profile: str) -> None:
    ms = list(mu.fresh_mutants(seed=20261208 + len(profile), count=260))
    assert {op.__name__ for op in mu.NEW_OPS} <= {name for m in ms for name in m.ops}
    statuses, problems = _run(Deidentifier(profile, KEY), ms, tmp_path)
    assert problems == []
    assert statuses["ok"] > 40 and statuses["failed"] > 40


@pytest.mark.nightly
@pytest.mark.parametrize("seed", range(6))
def test_many_fresh_mutants_nightly(tmp_path: Path, seed: int) -> None:
    profile = "research" if seed % 2 else "basic"
    statuses, problems = _run(Deidentifier(profile, KEY), list(mu.fresh_mutants(seed, 1500)), tmp_path)
    assert problems == []
    assert statuses["ok"] > 0


@pytest.mark.parametrize("profile", ["basic", "research"])
def test_cli_scrub_of_mutants_is_refused_or_clean(tmp_path: Path, profile: str) -> None:
    """``privguard scrub --ocr off`` on a folder of mutants: exit 0/1, no traceback, every input
    reported once, outputs clean, no marker in the console, audit log, manifest or output paths."""
    assert cli_run(7100 + len(profile), 120, profile, False, tmp_path, 600) == []


@pytest.mark.nightly
@pytest.mark.parametrize(("seed", "old"), [(7200, False), (7201, False), (7202, True), (7203, True)])
def test_cli_scrub_of_many_mutants_nightly(tmp_path: Path, seed: int, old: bool) -> None:
    assert cli_run(seed, 1500, "research" if seed % 2 else "basic", old, tmp_path, 1800) == []


# -- regressions for what the new operators found -----------------------------------------


def _seed(name: str = "CT_small.dcm") -> mu.Planted:
    return next(p for p in mu.planted_seeds() if p.name == name)


def _scrub(data: bytes, profile: str, tmp: Path) -> tuple[str, str | None, bytes]:
    (tmp / "out").mkdir(parents=True, exist_ok=True)
    (tmp / "in.dcm").write_bytes(data)
    res = Deidentifier(profile, KEY).file(tmp / "in.dcm", tmp / "out")
    out = (tmp / "out" / res.output).read_bytes() if res.status == "ok" and res.output else b""
    return res.status, res.reason, out


@pytest.mark.parametrize("seed_file", ["CT_small.dcm", "MR_small_bigendian.dcm"])
def test_a_utf16_copy_of_the_name_in_a_kept_safe_private_value_is_refused(
    tmp_path: Path, seed_file: str
) -> None:
    """Found by op_private_spoof (seed 9403 #67, liver_1frame.dcm, research): a UTF-16 copy of
    PatientName in Philips Imaging DD 097 (2001,xx2F) OB, a safe private attribute kept under
    research, was written; the output check searched the header for the ASCII bytes only."""
    p = _seed(seed_file)
    wide = p.markers[0].decode().encode("utf-16-le")
    body = mu._element(p, 0x20010010, b"LO", b"Philips Imaging DD 097") + mu._element(
        p, 0x2001102F, b"OB", wide
    )
    data = mu._insert_top(p, p.data, 0x20010010, body)
    status, reason, out = _scrub(data, "research", tmp_path)
    assert wide not in out
    assert (
        status == "failed"
        and reason == "the output still holds the input's PatientName as UTF-16 text; nothing written"
    )


def _philips_sequence(p: mu.Planted, tag: int, marker: bytes) -> bytes:
    """``p`` with Philips Imaging DD 001 (2001,xx5F), a safe private sequence, naming a person."""
    inner = mu._element(p, tag, b"PN", marker + b"^XY")
    creator = mu._element(p, 0x20010010, b"LO", b"Philips Imaging DD 001")
    return mu._insert_top(p, p.data, 0x20010010, creator + mu._sq(p, 0x2001105F, [mu._item(p, inner)]))


def _nested(tag: int, value: bytes) -> bytes:
    """An explicit VR little endian data set with ``tag`` = ``value`` inside a private sequence's item."""
    import struct

    def el(t: int, vr: bytes, v: bytes) -> bytes:
        if vr in (b"SQ", b"OB"):
            return struct.pack("<HH2sHI", t >> 16, t & 0xFFFF, vr, 0, len(v)) + v
        return struct.pack("<HH2sH", t >> 16, t & 0xFFFF, vr, len(v)) + v

    creator, name = el(0x00290010, b"LO", b"ACME 1.0"), el(tag, b"PN", value)
    inner = name + creator if tag < 0x00290010 else creator + name
    item = struct.pack("<HHI", 0xFFFE, 0xE000, len(inner)) + inner
    return (
        el(0x00080016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\x00")
        + el(0x00080018, b"UI", b"2.25.12345678\x00")
        + el(0x20010010, b"LO", b"Philips Imaging DD 001")
        + el(0x2001105F, b"SQ", item)
    )


@pytest.mark.parametrize(
    ("tag", "keyword"),
    [(0x00081070, "OperatorsName"), (0x0040A123, "PersonName"), (0x00291001, "private person name")],
)
def test_the_output_check_finds_a_nested_person_name(tag: int, keyword: str) -> None:
    """Found by op_private_spoof: OperatorsName, PersonName and a private PN inside an item of
    Philips Imaging DD 001 (2001,xx5F), a safe private sequence kept whole under research, were
    written. The output check now searches for the value of every PN attribute of the input at
    every depth the scanner walks, and of private elements of VR PN (explicit VR)."""
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO

    from privguard.dicom.scan import scan

    data = b"\x00" * 128 + b"DICM" + _meta() + _nested(tag, b"QZXNESTED^NAME")
    sc = scan(data, collect=frozenset(IDENTIFYING))
    ds = dcmread(DicomBytesIO(data))
    forbidden = identifying_values(ds, nested=sc.collected)
    assert (b"QZXNESTED^NAME", keyword) in forbidden.values
    with pytest.raises(OutputError, match=keyword):
        verify_output(data, forbidden)


def _meta() -> bytes:
    import struct

    ts = b"1.2.840.10008.1.2.1\x00"
    body = struct.pack("<HH2sH", 2, 0x0010, b"UI", len(ts)) + ts
    return struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(body)) + body


@pytest.mark.parametrize("seed_file", ["CT_small.dcm", "MR_small_bigendian.dcm"])
def test_a_private_person_name_in_a_safe_private_sequence_is_not_written(
    tmp_path: Path, seed_file: str
) -> None:
    p = _seed(seed_file)
    marker = mu._m(p, "NQ")
    inner = mu._element(p, 0x00290010, b"LO", b"ACME 1.0")
    inner += mu._element(p, 0x00291001, b"PN", marker + b"^XY")
    creator = mu._element(p, 0x20010010, b"LO", b"Philips Imaging DD 001")
    data = mu._insert_top(p, p.data, 0x20010010, creator + mu._sq(p, 0x2001105F, [mu._item(p, inner)]))
    status, reason, out = _scrub(data, "research", tmp_path)
    assert marker not in out
    assert (
        status == "ok" or reason == "the output still holds the input's private person name; nothing written"
    )


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("seed_file", ["JPEG2000.dcm", "SC_rgb_rle.dcm"])
def test_a_utf16_name_in_an_encapsulated_fragment_is_refused(
    tmp_path: Path, encoding: str, seed_file: str
) -> None:
    """Found by op_fragments (seeds 9400 #200, 9401 #377): a UTF-16 copy of PatientName in an
    encapsulated pixel data fragment (an EXIF UserComment is UTF-16) was written with --ocr off;
    the pixel data was searched for ASCII only."""
    p = _seed(seed_file)
    wide = p.markers[0].decode().encode(encoding)
    for at in (0, 1):  # at an even and at an odd offset of the fragment
        data = mu._fragment_pixels(p, p.data, [b"", b"\xff" * at + b"JFIF" + wide + b"\xff" * (1 - at)])
        status, reason, out = _scrub(data, "basic", tmp_path / str(at))
        assert wide not in out
        assert status == "failed"
        assert (
            reason == "the output's pixel data holds the input's PatientName as UTF-16 text; nothing written"
        )


@pytest.mark.parametrize("vr", [b"PN", b"LO", b"SH"])
def test_a_character_set_with_another_text_vr_is_refused_with_a_reason(tmp_path: Path, vr: bytes) -> None:
    """Found by the nightly run (seed 1 #1362, chrH31.dcm, op_fragments+op_vr, research): Specific
    Character Set written as PN was accepted (a VR of the same class) and pydicom then decoded it
    into a PersonName: 'unexpected error (TypeError)' instead of a reason."""
    p = _seed("chrH31.dcm")
    e = mu._top_named(p, 0x00080005)
    assert e is not None
    m = p.scan.meta_end
    data = mu._replace(p, p.data, e, mu._element(p, 0x00080005, vr, p.data[m + e.value_start : m + e.end]))
    for profile in ("basic", "research"):
        status, reason, _ = _scrub(data, profile, tmp_path / profile)
        assert (status, reason) == (
            "failed",
            f"element (0008,0005) has VR {vr.decode()}, the data dictionary says CS",
        )


def test_a_person_name_the_table_does_not_list_is_not_kept(tmp_path: Path) -> None:
    """EvaluatorName (0014,2006) and SecondaryReviewerName (0014,0104) are PN attributes outside
    Table E.1-1: at the top level the engine keeps them; the output check refuses the file."""
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.add_new(0x00142006, "PN", "Evalina^Whitcombe")
    bio = io.BytesIO()
    ds.save_as(bio)
    for profile in ("basic", "research"):
        status, reason, out = _scrub(bio.getvalue(), profile, tmp_path / profile)
        assert b"Whitcombe" not in out and b"Evalina" not in out
        assert status == "ok" or reason == "the output still holds the input's EvaluatorName; nothing written"


@pytest.mark.parametrize("name", ["Long^Jane", "Modi^Ravi", "Date^Ann", "Option^Lee"])
def test_a_patient_named_like_a_word_of_the_method_attributes_is_not_refused(
    tmp_path: Path, name: str
) -> None:
    """Name parts were searched as substrings everywhere, privguard's own DeidentificationMethod
    and its code meanings included: a patient named Long ("Retain Longitudinal Temporal ...") or
    Modi ("... Modified Dates Option") could not be de-identified under research. Then a name part
    counted there only as a whole word, which still refused a patient named Option; now nothing in
    the method attributes counts when they hold exactly what privguard writes
    (tests/test_hdr_method_names.py)."""
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.PatientName = name
    bio = io.BytesIO()
    ds.save_as(bio)
    for profile in ("basic", "research"):
        status, reason, _ = _scrub(bio.getvalue(), profile, tmp_path / profile)
        assert status == "ok", reason


def test_a_name_part_written_into_the_method_attributes_is_still_refused() -> None:
    """The whole-word rule inside the method attributes does not let a copied name through."""
    from pydicom.dataset import Dataset

    src = Dataset()
    src.PatientName = "Smithfield^Jo"
    forbidden = identifying_values(src, written_methods=["privguard 0.1.0 profile basic"])
    assert b"Smithfield" in forbidden.parts
    for method, bad in ((b"removed by Smithfield ", True), (b"privguard 0.1.0 profile basic ", False)):
        out = _part10_with_method(method)
        if bad:
            with pytest.raises(OutputError, match="PatientName"):
                verify_output(out, forbidden)
        else:
            verify_output(out, forbidden)
    verify_output(_part10_with_method(b"privguard 0.1.0 profile basic "), Forbidden(()))


def _part10_with_method(method: bytes) -> bytes:
    from conftest import part10
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = method.decode().strip()
    return part10(ds)


def test_campaign_tools_import() -> None:
    """The campaign scripts (run by hand for thousands of seeds) stay importable."""
    import fuzz.campaign

    assert callable(fuzz.campaign.main)
    assert tempfile.gettempdir()


@pytest.mark.parametrize("name", ["Smithson Johnny", "Smithson, Johnny", "Smithson^Johnny"])
def test_name_parts_split_at_spaces_and_commas_too(name: str) -> None:
    """Found by the nightly property run: PatientName 'NAME GIVEN' in one component (common in real
    files) was searched for whole only, so a copy of the family name in kept text got through."""
    from pydicom.dataset import Dataset

    src = Dataset()
    src.PatientName = name
    forbidden = identifying_values(src)
    assert {b"Smithson", b"Johnny"} <= forbidden.parts
