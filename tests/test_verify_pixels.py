"""The output check finds the input's identifiers in large pixel data, through its prefilter too."""

from __future__ import annotations

import random

import pytest
from conftest import part10
from pydicom.dataset import Dataset

from privguard.dicom.verify import Forbidden, _pixels_may_hold, verify_output
from privguard.errors import OutputError

NAME = b"DOEWILLIAMS^JONATHAN"
ROWS, COLS = 256, 256  # 128 KiB of 16-bit samples: above the size where needles are deduplicated


def _file(pixels: bytes) -> bytes:
    ds = Dataset()
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = ROWS, COLS
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels
    return part10(ds)


def _ct_like(seed: int) -> bytearray:
    """12-bit samples, little endian: high bytes 0x00-0x0F, like CT."""
    rng = random.Random(seed)
    out = bytearray()
    for _ in range(ROWS * COLS):
        out += rng.randrange(0, 4096).to_bytes(2, "little")
    return out


@pytest.mark.parametrize(
    "needle",
    [NAME, b"12345678", "MÜLLER^JÖRG".encode(), b"\x1b$B8+\x1b(B^TARO", b"AAAAAAAAAAAA"],
)
@pytest.mark.parametrize("at", [0, 1, 7, 2 * ROWS * COLS - 24])
def test_a_value_spelled_out_in_the_pixel_data_is_found(needle: bytes, at: int) -> None:
    pixels = _ct_like(1)
    pixels[at : at + len(needle)] = needle
    forbidden = Forbidden(((needle, "PatientName"), (b"OTHERVALUE99", "PatientID")))
    with pytest.raises(OutputError, match="pixel data holds the input's PatientName"):
        verify_output(_file(bytes(pixels)), forbidden)


def test_clean_ct_like_samples_pass_and_need_no_search() -> None:
    data = _file(bytes(_ct_like(2)))
    needles = (NAME, b"12345678")
    assert not _pixels_may_hold(data, needles, len(data) - 2 * ROWS * COLS, len(data))
    verify_output(data, Forbidden(((NAME, "PatientName"), (b"12345678", "PatientID"))))


def test_samples_that_look_like_text_are_searched_and_pass_when_clean() -> None:
    # 8-bit-like mid-grey bytes: every byte in the needles' range, so the search runs.
    rng = random.Random(3)
    pixels = bytes(rng.randrange(0x41, 0x5A) for _ in range(2 * ROWS * COLS))
    data = _file(pixels)
    assert _pixels_may_hold(data, (NAME,), len(data) - len(pixels), len(data))
    verify_output(data, Forbidden(((NAME, "PatientName"),)))


def test_the_prefilter_never_misses_a_needle() -> None:
    # Property: wherever a needle is planted in random bytes, the prefilter says "may hold".
    rng = random.Random(4)
    for _ in range(300):
        hay = bytearray(rng.randbytes(rng.randrange(64, 4096)))
        needles = tuple(rng.randbytes(rng.randrange(8, 24)) for _ in range(rng.randrange(1, 4)))
        n = rng.choice(needles)
        at = rng.randrange(0, len(hay) - len(n) + 1) if len(hay) >= len(n) else 0
        hay[at : at + len(n)] = n
        assert _pixels_may_hold(bytes(hay), needles, 0, len(hay))
