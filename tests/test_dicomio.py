"""The strict bytes parser's sequence decoder and encoder agree with pydicom on real files."""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import charset_files, pydicom_test_files
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag

from privguard.dicomio import Source, decode_sequence, encode_sequence, read_source
from privguard.errors import PrivguardError


def _raw_sequences(ds: Dataset) -> list[BaseTag]:
    return [
        tag
        for tag, elem in ds._dict.items()
        if isinstance(elem, RawDataElement) and elem.value and (elem.VR == "SQ" or elem.VR is None)
    ]


def _codecs(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _decoded() -> Iterator[tuple[Path, Source, BaseTag, DataElement]]:
    """(file, source, tag, fast decoding) for every raw sequence of every parsable real file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in pydicom_test_files() + charset_files():
            try:
                src = read_source(path)
            except PrivguardError:
                continue
            for tag in _raw_sequences(src.ds):
                fast = decode_sequence(src.ds, tag)
                if fast is not None:
                    yield path, src, tag, fast


def test_decoded_sequences_equal_pydicoms() -> None:
    """Every raw sequence of every parsable real file: same items, values and encodings."""
    compared = 0
    for path, src, tag, fast in _decoded():
        slow = copy.deepcopy(src.ds)[tag]
        assert len(fast.value) == len(slow.value), path.name
        for a, b in zip(fast.value, slow.value, strict=True):
            assert a == b, f"{path.name} {tag}"
            assert _codecs(a.original_character_set) == _codecs(b.original_character_set)
            assert (a.is_implicit_VR, a.is_little_endian) == (b.is_implicit_VR, b.is_little_endian)
        compared += 1
    assert compared >= 40  # the corpus really exercises the fast path


@pytest.mark.parametrize("value", [b"\xfe\xff\x00\xe0\x10\x00\x00\x00", b"\x01\x02", b"\xfe\xff\x00\xe0"])
def test_malformed_sequences_fall_back(value: bytes) -> None:
    ds = Dataset()
    tag = BaseTag(0x00081140)
    ds._dict[tag] = RawDataElement(tag, "SQ", len(value), value, 0, False, True)
    assert decode_sequence(ds, tag) is None


def test_encoded_sequences_read_back_equal() -> None:
    """Every sequence of every parsable real file, encoded by privguard, reads back the same in pydicom."""
    encoded = 0
    for path, src, tag, fast in _decoded():
        ds = src.ds
        ds._dict[tag] = fast
        for item in fast.value:  # a changed value inside, as de-identification makes
            if "ReferencedSOPInstanceUID" in item:
                item.ReferencedSOPInstanceUID = "2.25.1234567890"
        data = encode_sequence(fast, src.implicit, src.little, ds._character_set)
        if data is None:
            continue
        back = read_dataset(io.BytesIO(data), src.implicit, src.little, parent_encoding=ds._character_set)
        assert back[tag].value == fast.value, f"{path.name} {tag}"
        encoded += 1
    assert encoded >= 40


def test_large_files_are_scanned_and_verified_through_mmap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files over the in-memory limit take the mmap path, on reading and on verifying: same output."""
    from pydicom.data import get_testdata_file

    import privguard.deidentifier as deid_mod
    import privguard.dicomio as dicomio
    from privguard.deidentifier import Deidentifier
    from privguard.pseudonym.keys import ProjectKey

    key = ProjectKey.from_bytes(bytes(range(32)))
    src = Path(str(get_testdata_file("CT_small.dcm")))
    small = Deidentifier("basic", key).file(src, tmp_path / "a")
    monkeypatch.setattr(dicomio, "WHOLE_FILE_LIMIT", 1024)
    monkeypatch.setattr(dicomio, "_FIRST_READ", 512)
    monkeypatch.setattr(deid_mod, "WHOLE_FILE_LIMIT", 1024)
    big = Deidentifier("basic", key).file(src, tmp_path / "b")
    assert small.status == big.status == "ok"
    out_a, out_b = tmp_path / "a" / str(small.output), tmp_path / "b" / str(big.output)
    assert out_a.read_bytes() == out_b.read_bytes()
    # A truncated large file is refused through the same path.
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(src.read_bytes()[:-100])
    res = Deidentifier("basic", key).file(cut, tmp_path / "c")
    assert res.status == "failed" and "truncated" in (res.reason or "")


def test_the_scanner_refuses_each_anomaly_with_its_reason() -> None:
    """One hand-made case per refusal rule, each with the reason it must give."""
    import struct

    from privguard.dicom.scan import ScanError, scan

    def el(tag: int, vr: bytes, value: bytes) -> bytes:
        if vr in (b"OB", b"SQ", b"UN", b"UT", b"OW"):
            return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, len(value)) + value
        return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value

    def part10(body: bytes, ts: bytes = b"1.2.840.10008.1.2.1\x00") -> bytes:
        meta = struct.pack("<HH2sH", 2, 0x10, b"UI", len(ts)) + ts
        return b"\0" * 128 + b"DICM" + struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(meta)) + meta + body

    sop = el(0x00080016, b"UI", b"1.2.3\x00") + el(0x00080018, b"UI", b"1.2.4\x00")
    name = el(0x00100010, b"PN", b"DOE^JO")
    item = struct.pack("<HHI", 0xFFFE, 0xE000, len(name)) + name
    cases = {
        "occurs twice": sop + name + name,
        "out of order": sop + el(0x00200010, b"SH", b"AB") + name,
        "file meta": el(0x00020016, b"AE", b"AETITLE ") + sop,  # meta group length no longer matches
        "outside its sequence": sop + item,
        "unknown VR": sop + el(0x00100010, b"QQ", b"DOE^JO"),
        "odd length": sop + el(0x00100010, b"PN", b"DOE"),
        "the data dictionary says SQ": sop + el(0x00101002, b"OB", item),
        "contradicts the data dictionary": sop + el(0x00100010, b"AT", b"\x01\x00\x02\x00"),
        "runs past the end": sop + name[:-2],
        "invalid element tag": sop + name + b"\0" * 16,
        "ends inside an element header": sop + name + b"\x10\x00",
        "runs past the end of its sequence": sop
        + el(0x00101002, b"SQ", struct.pack("<HHI", 0xFFFE, 0xE000, len(name) + 8) + name),
    }
    for reason, body in cases.items():
        with pytest.raises(ScanError) as err:
            scan(part10(body))
        assert reason in str(err.value), (reason, str(err.value))
    # 10,000-deep nesting is refused, not a recursion error.
    deep = sop + (struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF)
                  + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)) * 10_000
    with pytest.raises(ScanError, match="nested deeper"):
        scan(part10(deep))
    assert scan(part10(sop + name)).tags == [0x00080016, 0x00080018, 0x00100010]
