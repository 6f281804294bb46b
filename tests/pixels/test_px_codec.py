"""Decoding every encoding to stored values, masking at native depth, and writing back (no OCR)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.uid import UID

from privguard.errors import InputError, UnsupportedEncodingError
from privguard.pixels.boxes import Box
from privguard.pixels.decode import DecodedImage, check_codec, decode_dataset, load
from privguard.pixels.encode import encode
from privguard.pixels.mask import Fills, MaskBox, apply, changed_outside, fills
from privguard.pixels.render import render, rerender

#: (pydicom test file, expected output: "same-syntax" or "explicit-vr-little-endian")
FILES = [
    ("MR_small.dcm", "same-syntax"),  # 16-bit signed native
    ("MR_small_bigendian.dcm", "same-syntax"),  # Explicit VR Big Endian
    ("MR_small_implicit.dcm", "same-syntax"),
    ("CT_small.dcm", "same-syntax"),
    ("MR_small_RLE.dcm", "same-syntax"),  # RLE Lossless, re-encoded
    ("MR_small_jp2klossless.dcm", "same-syntax"),  # JPEG 2000 Lossless, re-encoded
    ("MR_small_jpeg_ls_lossless.dcm", "same-syntax"),  # JPEG-LS Lossless, re-encoded
    ("GDCMJ2K_TextGBR.dcm", "same-syntax"),  # J2K lossless YBR_RCT colour
    ("SC_rgb_rle_2frame.dcm", "same-syntax"),  # multi-frame RGB RLE
    ("SC_rgb_rle_16bit.dcm", "same-syntax"),
    ("SC_rgb_small_odd.dcm", "same-syntax"),
    ("SC_ybr_full_422_uncompressed.dcm", "same-syntax"),  # native 4:2:2, written as YBR_FULL
    ("examples_palette.dcm", "same-syntax"),  # PALETTE COLOR
    ("liver_1frame.dcm", "same-syntax"),
    ("SC_rgb_jpeg_gdcm.dcm", "explicit-vr-little-endian"),  # JPEG Lossless: no encoder
    ("SC_rgb_jpeg_dcmtk.dcm", "explicit-vr-little-endian"),  # JPEG baseline (lossy)
    ("examples_ybr_color.dcm", "explicit-vr-little-endian"),  # lossy YBR_FULL_422 cine, 30 frames
    ("JPGExtended.dcm", "explicit-vr-little-endian"),  # 12-bit lossy JPEG
    ("JPEGLSNearLossless_08.dcm", "explicit-vr-little-endian"),
]


def _path(name: str) -> Path:
    p = get_testdata_file(name, download=False)  # never fetch: these ship inside pydicom
    assert p is not None, f"pydicom's bundled test file {name} is missing"
    return Path(str(p))


def _write_back(
    image: DecodedImage, pixel_data: bytes, ts: str | None, elements: dict[str, object]
) -> DecodedImage:
    """What the core does with a PixelOutcome, then decode again."""
    ds = image.dataset
    out_ts = ts or image.info.transfer_syntax
    for k, v in elements.items():
        setattr(ds, k, v)
    ds.file_meta.TransferSyntaxUID = out_ts
    ds.PixelData = pixel_data
    uid = UID(out_ts)
    if uid.is_encapsulated:
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds["PixelData"].VR = "OB" if image.info.bits_allocated <= 8 else "OW"
    bio = io.BytesIO()
    ds.save_as(
        bio, enforce_file_format=True, implicit_vr=uid.is_implicit_VR, little_endian=uid.is_little_endian
    )
    bio.seek(0)
    return decode_dataset(pydicom.dcmread(bio))


@pytest.mark.parametrize(("name", "expected"), FILES, ids=[f for f, _ in FILES])
def test_mask_and_write_back_changes_only_the_boxes(name: str, expected: str) -> None:
    image = load(_path(name))
    original = image.frames.copy()
    n, rows, cols = original.shape[:3]
    box = Box(cols // 4, rows // 4, cols // 4 + max(2, cols // 5), rows // 4 + max(2, rows // 6))
    masks = [MaskBox(box, None if n == 1 else n - 1, dark=False)]
    changed = apply(image.frames, masks, fills(image))
    assert changed_outside(original, image.frames, [box]) == 0
    enc = encode(image, image.frames, changed)
    assert enc.output == expected
    if expected == "same-syntax":
        assert enc.transfer_syntax is None
    else:
        assert enc.transfer_syntax == "1.2.840.10008.1.2.1"
        if image.info.lossy:
            assert enc.elements["LossyImageCompression"] == "01"
    info = image.info
    back = _write_back(image, enc.pixel_data, enc.transfer_syntax, enc.elements)
    # nothing outside the box changed by a single value, inside it is the fill, losslessly written
    assert np.array_equal(back.frames, image.frames)
    assert changed_outside(original, back.frames, [box]) == 0
    assert back.info.photometric == info.photometric


def test_unchanged_frames_keep_their_fragments() -> None:
    from pydicom.encaps import generate_frames

    image = load(_path("SC_rgb_rle_2frame.dcm"))
    before = list(generate_frames(image.dataset.PixelData, number_of_frames=2))
    apply(image.frames, [MaskBox(Box(0, 0, 10, 10), 1, True)], fills(image))
    enc = encode(image, image.frames, {1})
    after = list(generate_frames(enc.pixel_data, number_of_frames=2))
    assert after[0] == before[0]
    assert after[1] != before[1]


def test_native_422_becomes_ybr_full() -> None:
    image = load(_path("SC_ybr_full_422_uncompressed.dcm"))
    enc = encode(image, image.frames, {0})
    assert enc.elements["PhotometricInterpretation"] == "YBR_FULL"
    assert len(enc.pixel_data) == image.info.rows * image.info.columns * 3


def test_monochrome1_fill_is_display_black_for_bright_text() -> None:
    image = load(_path("MR_small.dcm"))
    image.dataset.PhotometricInterpretation = "MONOCHROME1"
    decoded = decode_dataset(image.dataset)
    f = fills(decoded)
    assert f.dark == (int(decoded.frames.max()),)
    assert f.bright == (int(decoded.frames.min()),)


def test_palette_fills_are_palette_entries() -> None:
    image = load(_path("examples_palette.dcm"))
    f = fills(image)
    present = set(np.unique(image.frames).tolist())
    assert f.dark[0] in present and f.bright[0] in present


def test_video_and_unknown_syntaxes_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedEncodingError, match="video"):
        check_codec("1.2.840.10008.1.2.4.100")
    with pytest.raises(UnsupportedEncodingError, match="no pixel data decoder"):
        check_codec("1.2.3.4.5")


def test_missing_codec_names_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom.pixels.decoders.base import Decoder

    monkeypatch.setattr(Decoder, "is_available", property(lambda self: False))
    with pytest.raises(UnsupportedEncodingError) as info:
        check_codec("1.2.840.10008.1.2.5")
    assert "pylibjpeg" in str(info.value) and "privguard[codecs]" in str(info.value)


def test_file_without_pixels_is_an_input_error(tmp_path: Path) -> None:
    ds = pydicom.dcmread(_path("CT_small.dcm"))
    del ds.PixelData
    out = tmp_path / "nopix.dcm"
    ds.save_as(out)
    with pytest.raises(InputError):
        load(out)


def test_rerender_matches_a_fresh_rendering_outside_masks() -> None:
    image = load(_path("CT_small.dcm"))
    r = render(image)
    first = r.gray.copy()
    apply(image.frames, [MaskBox(Box(5, 5, 30, 20), None, True)], fills(image))
    rerender(image, r, [0])
    diff = first != r.gray
    assert diff[0, 5:20, 5:30].any()
    diff[0, 5:20, 5:30] = False
    assert not diff.any()


def test_monochrome1_renders_inverted() -> None:
    image = load(_path("MR_small.dcm"))
    mono2 = render(image).gray
    image.dataset.PhotometricInterpretation = "MONOCHROME1"
    mono1 = render(decode_dataset(image.dataset)).gray
    assert np.array_equal(255 - mono2.astype(int), mono1.astype(int))


def test_degenerate_window_falls_back_to_the_value_range() -> None:
    image = load(_path("CT_small.dcm"))
    image.dataset.WindowCenter = 100000
    image.dataset.WindowWidth = 10
    g = render(image).gray
    assert len(np.unique(g)) > 50


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-10, 80), st.integers(-10, 80), st.integers(1, 40), st.integers(1, 40), st.booleans()
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([np.uint8, np.uint16, np.int16]),
)
def test_masks_never_touch_pixels_outside_their_boxes(
    boxes: list[tuple[int, int, int, int, bool]], dtype: type[np.integer]
) -> None:
    rng = np.random.default_rng(0)
    info_range = (0, 255) if dtype is np.uint8 else (-1000, 3000) if dtype is np.int16 else (0, 4095)
    frames = rng.integers(*info_range, size=(2, 64, 72)).astype(dtype)
    before = frames.copy()
    masks = [
        MaskBox(Box.from_xywh(x, y, w, h), None if i % 2 else 1, d) for i, (x, y, w, h, d) in enumerate(boxes)
    ]
    apply(frames, masks, Fills((int(info_range[0]),), (int(info_range[1]),)))
    assert changed_outside(before, frames, [m.box for m in masks]) == 0
