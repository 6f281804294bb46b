"""The strict bytes parser's sequence decoder agrees with pydicom on real files."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
from conftest import charset_files, pydicom_test_files
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from privguard.dicomio import decode_sequence, read_source
from privguard.errors import PrivguardError


def _raw_sequences(ds: Dataset) -> list[object]:
    return [
        tag
        for tag, elem in ds._dict.items()
        if isinstance(elem, RawDataElement) and elem.value and (elem.VR == "SQ" or elem.VR is None)
    ]


def _codecs(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _sources() -> list[Path]:
    return pydicom_test_files() + charset_files()


def test_decoded_sequences_equal_pydicoms() -> None:
    """Every raw sequence of every parsable real file: same items, values and encodings."""
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in _sources():
            try:
                src = read_source(path)
            except PrivguardError:
                continue
            for tag in _raw_sequences(src.ds):
                fast = decode_sequence(src.ds, tag)  # type: ignore[arg-type]
                if fast is None:
                    continue
                slow = copy.deepcopy(src.ds)[tag]  # type: ignore[index]
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
    tag = 0x00081140
    from pydicom.tag import BaseTag

    ds._dict[BaseTag(tag)] = RawDataElement(BaseTag(tag), "SQ", len(value), value, 0, False, True)
    assert decode_sequence(ds, BaseTag(tag)) is None


def test_encoded_sequences_read_back_equal() -> None:
    """Every sequence of every parsable real file, encoded by privguard, reads back the same in pydicom."""
    import io

    from pydicom.filereader import read_dataset

    from privguard.dicomio import encode_sequence

    encoded = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in _sources():
            try:
                src = read_source(path)
            except PrivguardError:
                continue
            ds = src.ds
            for tag in _raw_sequences(ds):
                fast = decode_sequence(ds, tag)  # type: ignore[arg-type]
                if fast is None:
                    continue
                ds._dict[tag] = fast  # type: ignore[index]
                for item in fast.value:  # a changed value inside, as de-identification makes
                    if "ReferencedSOPInstanceUID" in item:
                        item.ReferencedSOPInstanceUID = "2.25.1234567890"
                data = encode_sequence(fast, src.implicit, src.little, ds._character_set)
                if data is None:
                    continue
                back = read_dataset(
                    io.BytesIO(data), src.implicit, src.little, parent_encoding=ds._character_set
                )
                assert back[tag].value == fast.value, f"{path.name} {tag}"
                encoded += 1
    assert encoded >= 40
