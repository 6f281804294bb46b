"""Property tests: for any dataset, no planted token survives the Basic Profile."""

from __future__ import annotations

import io

import pydicom
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from privguard.deidentifier import Deidentifier
from privguard.header.standard import e1_1
from privguard.pseudonym.keys import ProjectKey

KEY = ProjectKey.from_bytes(bytes(range(32)))
TEXT_VRS = ("LO", "SH", "LT", "ST", "UT", "UC", "PN", "CS", "AE")


def _table_tags() -> list[tuple[int, str]]:
    out = []
    for tag, row in e1_1().by_tag.items():
        if not row.keyword or tag >> 16 in (0, 2):
            continue
        vr = dictionary_VR(tag)
        if vr in TEXT_VRS or vr in ("SQ", "UI", "DA", "DT"):
            out.append((tag, vr))
    return sorted(out)


TABLE = _table_tags()
TEXT_TAGS = [t for t in TABLE if t[1] != "SQ"]
SEQ_TAGS = [t for t in TABLE if t[1] == "SQ"]

tokens = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=8, max_size=10).map(lambda s: "Q" + s)


@st.composite
def datasets(draw: st.DrawFn, depth: int = 0) -> tuple[Dataset, set[str]]:
    ds = Dataset()
    planted: set[str] = set()
    for tag, vr in draw(st.lists(st.sampled_from(TEXT_TAGS), min_size=1, max_size=25, unique=True)):
        if vr in ("DA", "DT"):
            n = draw(st.integers(min_value=0, max_value=40000))
            import datetime as dt

            value = (dt.date(1850, 1, 1) + dt.timedelta(days=n)).strftime("%Y%m%d")
        elif vr == "UI":
            value = "1.2.826.0.1.3680043.10.77." + str(draw(st.integers(min_value=10**9, max_value=10**12)))
        else:
            value = draw(tokens)[: 16 if vr in ("SH", "CS", "AE") else 64]
        ds[tag] = DataElement(tag, vr, value)
        planted.add(value)
    if draw(st.booleans()):
        creator = draw(st.sampled_from(["ACME 1.0", "SIEMENS CSA HEADER", "GEMS_IDEN_01"]))
        group = draw(st.sampled_from([0x0009, 0x0019, 0x0029, 0x0043]))
        ds.private_block(group, creator, create=True).add_new(0x01, "LO", value := draw(tokens))
        planted.add(value)
    if depth < 3:
        for tag, _ in draw(st.lists(st.sampled_from(SEQ_TAGS), max_size=3, unique=True)):
            items = []
            for _ in range(draw(st.integers(min_value=1, max_value=2))):
                item, sub = draw(datasets(depth + 1))
                items.append(item)
                planted |= sub
            ds[tag] = DataElement(tag, "SQ", Sequence(items))
    return ds, planted


def _file(ds: Dataset, implicit: bool) -> bytes:
    ds.SOPClassUID = CTImageStorage
    if "SOPInstanceUID" not in ds:  # a generated (planted) one stays, so it is checked too
        ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.78.1"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True, implicit_vr=implicit)
    return buf.getvalue()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
def _planted_sop_instance() -> tuple[Dataset, set[str]]:
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.77.1000000000"
    return ds, {ds.SOPInstanceUID}


@given(datasets(), st.booleans())
@example(_planted_sop_instance(), False)  # found by hypothesis: a planted SOP Instance UID
def test_no_planted_token_survives(
    tmp_path_factory: object, sample: tuple[Dataset, set[str]], implicit: bool
) -> None:
    ds, planted = sample
    tmp = tmp_path_factory.mktemp("prop")  # type: ignore[attr-defined]
    src = tmp / "in.dcm"
    data = _file(ds, implicit)
    src.write_bytes(data)
    planted.add(ds.SOPInstanceUID)
    assert all(t.encode() in data for t in planted)
    res = Deidentifier("basic", KEY).file(src, tmp / "out")
    assert res.status == "ok", res.reason
    out = (tmp / "out" / res.output).read_bytes()
    assert [t for t in planted if t.encode() in out] == []
    pydicom.dcmread(io.BytesIO(out))  # and the output parses


@settings(max_examples=30, deadline=None)
@given(
    st.text(min_size=1, max_size=64).filter(lambda s: s.strip() != ""),
    st.text(min_size=1, max_size=8),
    st.text(min_size=1, max_size=8),
)
def test_pseudonyms_are_deterministic_and_project_scoped(value: str, p1: str, p2: str) -> None:
    from privguard.pseudonym.pseudonymizer import KeyedPseudonymizer

    a, b = KeyedPseudonymizer(KEY, p1), KeyedPseudonymizer(KEY, p1)
    assert a.identifier("patient", value) == b.identifier("patient", value)
    assert a.uid(value) == b.uid(value) and len(a.uid(value)) <= 64
    if p1 != p2:
        c = KeyedPseudonymizer(KEY, p2)
        assert c.identifier("patient", value) != a.identifier("patient", value)
        assert c.uid(value) != a.uid(value)
