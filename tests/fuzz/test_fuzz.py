"""The fail-closed invariant under a mutation fuzzer and under hypothesis.

Every mutant of a planted file is either refused with a PHI-free reason
(leaving nothing behind), or written as an output that parses strictly in
pydicom, DCMTK's dcmdump (where installed) and privguard's own scanner, and
holds none of the planted markers. ``make test`` runs a few hundred mutants;
``make test-nightly`` runs thousands (marker ``nightly``).
"""

from __future__ import annotations

import collections
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.mutants import OPS, Mutant, mutants, planted_seeds, violations
from privguard.deidentifier import Deidentifier
from privguard.dicom.scan import ScanError, scan
from privguard.pseudonym.keys import ProjectKey

KEY = ProjectKey.from_bytes(bytes(range(32)))


def _run(
    deid: Deidentifier, ms: list[Mutant], root: Path, *, validator: bool = True
) -> tuple[collections.Counter[str], list[str]]:
    """Scrub each mutant; with ``validator``, outputs may not add dciodvfy errors (when installed)."""
    statuses: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    for i, m in enumerate(ms):
        d = root / str(i)
        (d / "out").mkdir(parents=True)
        src = d / "in.dcm"
        src.write_bytes(m.data)
        res = deid.file(src, d / "out")
        statuses[res.status] += 1
        assert src.read_bytes() == m.data  # the input is never modified
        for v in violations(m, res, d / "out", src if validator else None):
            problems.append(f"mutant {i} ({m.seed_file}, {'+'.join(m.ops)}): {v}")
    return statuses, problems


def test_the_seeds_are_planted_and_scrubbed_clean(tmp_path: Path) -> None:
    seeds = planted_seeds()
    assert len(seeds) >= 15
    ms = [Mutant(p.name, (), p.data, p.markers) for p in seeds]
    statuses, problems = _run(Deidentifier("basic", KEY), ms, tmp_path)
    assert problems == []
    assert statuses["ok"] == len(seeds)  # unmutated, every seed is de-identified


@pytest.mark.parametrize("profile", ["basic", "research"])
def test_mutants_are_refused_or_clean(tmp_path: Path, profile: str) -> None:
    ms = list(mutants(seed=20261207 + len(profile), count=200))
    assert {op.__name__ for op in OPS} <= {name for m in ms for name in m.ops}
    statuses, problems = _run(Deidentifier(profile, KEY), ms, tmp_path)
    assert problems == []
    # Both outcomes occur: the fuzzer is neither all-fatal nor all-harmless.
    assert statuses["ok"] > 10 and statuses["failed"] > 100


@pytest.mark.nightly
@pytest.mark.parametrize("seed", range(8))
def test_many_mutants_nightly(tmp_path: Path, seed: int) -> None:
    profile = "research" if seed % 2 else "basic"
    statuses, problems = _run(Deidentifier(profile, KEY), list(mutants(seed=seed, count=1000)), tmp_path)
    assert problems == []
    assert statuses["ok"] > 0


def test_the_method_attributes_of_a_partly_deidentified_file_are_replaced(tmp_path: Path) -> None:
    """CT_small.dcm with PatientIdentityRemoved NO and a name in DeidentificationMethod, via the file path."""
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.PatientIdentityRemoved = "NO"
    ds.DeidentificationMethod = "Smith^Jane removed the names"
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    deid = Deidentifier("basic", KEY)
    res = deid.file(src, tmp_path / "out")
    assert res.status == "ok", res.reason
    out = tmp_path / "out" / str(res.output)
    data = out.read_bytes()
    assert b"Smith" not in data
    back = pydicom.dcmread(out)
    assert back.PatientIdentityRemoved == "YES"
    assert any("privguard" in m for m in back.DeidentificationMethod)


@pytest.mark.parametrize("profile", ["basic", "research"])
def test_an_output_of_privguard_can_be_deidentified_again(tmp_path: Path, profile: str) -> None:
    """privguard's own DeidentificationMethod in the input is not mistaken for a leak on a second pass,
    while a name planted beside it is still refused or replaced."""
    import pydicom
    from pydicom.data import get_testdata_file

    deid = Deidentifier(profile, KEY)
    first = deid.file(Path(str(get_testdata_file("CT_small.dcm"))), tmp_path / "once")
    assert first.status == "ok", first.reason
    once = tmp_path / "once" / str(first.output)
    second = deid.file(once, tmp_path / "twice")
    assert second.status == "ok", second.reason
    back = pydicom.dcmread(tmp_path / "twice" / str(second.output))
    assert any("privguard" in m for m in back.DeidentificationMethod)

    ds = pydicom.dcmread(once)
    ds.DeidentificationMethod = [*ds.DeidentificationMethod, "Smithers^Janet"]
    planted = tmp_path / "planted.dcm"
    ds.save_as(planted)
    third = deid.file(planted, tmp_path / "thrice")
    if third.status == "ok":
        assert b"Smithers" not in (tmp_path / "thrice" / str(third.output)).read_bytes()


def _part10(body: bytes, ts: bytes = b"1.2.840.10008.1.2.1\x00") -> bytes:
    meta = struct.pack("<HH2sH", 2, 0x0010, b"UI", len(ts)) + ts
    return b"\x00" * 128 + b"DICM" + struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(meta)) + meta + body


def _el(tag: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


_GOOD = (
    _el(0x00080016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\x00")
    + _el(0x00080018, b"UI", b"1.2.3.4.5.6.7.8\x00")
    + _el(0x00100010, b"PN", b"QZXHYPOTHESIS^ONE ")
    + _el(0x00100020, b"LO", b"QZXHYPOID2")
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=len(_GOOD)),
    junk=st.binary(max_size=48),
    drop=st.integers(min_value=0, max_value=8),
)
def test_hypothesis_raw_bytes_are_refused_or_clean(tmp_path: Path, cut: int, junk: bytes, drop: int) -> None:
    """Arbitrary bytes spliced into a tiny valid data set: refused, or written clean."""
    body = _GOOD[:cut] + junk + _GOOD[cut + drop :]
    m = Mutant("hypothesis", ("splice",), _part10(body), (b"QZXHYPOTHESIS", b"QZXHYPOID2"))
    d = tmp_path / f"h{abs(hash((cut, junk, drop)))}"
    (d / "out").mkdir(parents=True)
    (d / "in.dcm").write_bytes(m.data)
    res = Deidentifier("basic", KEY).file(d / "in.dcm", d / "out")
    assert violations(m, res, d / "out") == []


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400))
def test_hypothesis_scanner_never_crashes(data: bytes) -> None:
    """The scanner answers any bytes with an index or a ScanError/InputError, never anything else."""
    from privguard.errors import InputError

    try:
        sc = scan(_part10(data))
    except (ScanError, InputError):
        return
    assert all(a.end <= b.start for a, b in zip(sc.elements, sc.elements[1:], strict=False))
