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
