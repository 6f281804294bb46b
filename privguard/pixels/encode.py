"""Write masked frames back: same transfer syntax when lossless, native otherwise.

* **Native input**: the stored values are written back natively in the input's
  byte order and planar configuration (bit-packed data repacked). A native
  YBR_FULL_422 image was expanded exactly to YBR_FULL on decoding and is
  written as YBR_FULL (PhotometricInterpretation changes accordingly).
* **Lossless compressed input** with an installed encoder (RLE Lossless,
  JPEG-LS Lossless, JPEG 2000 Lossless): only the frames that changed are
  re-encoded, in the input's transfer syntax; the other frames keep their
  original fragments. Every re-encoded frame is decoded again and compared
  with the masked values; any difference falls back to native output.
* **Lossy input** (JPEG baseline/extended, JPEG-LS near-lossless, JPEG 2000)
  and lossless syntaxes without an encoder (JPEG Lossless, HTJ2K): written as
  Explicit VR Little Endian from the decoded values, with no second lossy
  step. LossyImageCompression stays "01" for lossy input.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.uid import UID, ExplicitVRLittleEndian

from privguard.pixels.decode import DecodedImage, PixelInfo

logger = logging.getLogger(__name__)

#: Lossless transfer syntaxes re-encoded in place (when the encoder is installed).
REENCODE = frozenset(
    {
        "1.2.840.10008.1.2.5",  # RLE Lossless
        "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    }
)


@dataclass
class Encoded:
    """The new Pixel Data value and what the header needs to describe it."""

    pixel_data: bytes
    transfer_syntax: str | None
    """The output transfer syntax when it differs from the input's."""
    elements: dict[str, Any] = field(default_factory=dict)
    output: str = "same-syntax"
    """'same-syntax' or 'explicit-vr-little-endian' (for the report)."""


def _dtype(info: PixelInfo, big_endian: bool) -> np.dtype[Any]:
    bits = 8 if info.bits_allocated <= 8 else (16 if info.bits_allocated <= 16 else 32)
    kind = "i" if info.pixel_representation == 1 else "u"
    return np.dtype(f"{'>' if big_endian else '<'}{kind}{bits // 8}")


def native_bytes(frames: np.ndarray, info: PixelInfo, *, big_endian: bool = False, planar: int = 0) -> bytes:
    """Stored values as native Pixel Data bytes (frame after frame)."""
    if info.bits_allocated == 1:
        from pydicom.pixels.utils import pack_bits

        return bytes(pack_bits(frames.astype(np.uint8).ravel(), pad=False))
    data = frames.astype(_dtype(info, big_endian), copy=False)
    if info.samples > 1 and planar == 1:
        data = np.ascontiguousarray(np.moveaxis(data, -1, 1))  # (N, S, R, C)
    return np.ascontiguousarray(data).tobytes()


def _native(image: DecodedImage, frames: np.ndarray) -> Encoded:
    info = image.info
    elements: dict[str, Any] = {}
    planar = info.planar_configuration if info.samples > 1 else 0
    if info.photometric != info.source_photometric:
        elements["PhotometricInterpretation"] = info.photometric
        planar = 0
        if info.samples > 1:
            elements["PlanarConfiguration"] = 0
    return Encoded(
        native_bytes(frames, info, big_endian=info.big_endian, planar=planar), None, elements, "same-syntax"
    )


def _explicit_le(image: DecodedImage, frames: np.ndarray) -> Encoded:
    info = image.info
    elements: dict[str, Any] = {}
    if info.photometric != info.source_photometric:
        elements["PhotometricInterpretation"] = info.photometric
    if info.samples > 1:
        elements["PlanarConfiguration"] = 0
    if info.lossy:
        elements["LossyImageCompression"] = "01"
    return Encoded(
        native_bytes(frames, info), str(ExplicitVRLittleEndian), elements, "explicit-vr-little-endian"
    )


def _encoder_kwargs(info: PixelInfo) -> dict[str, Any]:
    return {
        "rows": info.rows,
        "columns": info.columns,
        "samples_per_pixel": info.samples,
        "bits_allocated": info.bits_allocated,
        "bits_stored": info.bits_stored,
        "pixel_representation": info.pixel_representation,
        "photometric_interpretation": info.source_photometric,
        "number_of_frames": 1,
        "planar_configuration": 0,
    }


def _reencode(image: DecodedImage, frames: np.ndarray, changed: set[int]) -> Encoded | None:
    """Re-encode changed frames in the input's lossless syntax; None if that is not possible exactly."""
    from pydicom.encaps import encapsulate, generate_frames
    from pydicom.pixels.decoders.base import get_decoder
    from pydicom.pixels.encoders.base import get_encoder

    info = image.info
    uid = UID(info.transfer_syntax)
    try:
        encoder = get_encoder(uid)
    except NotImplementedError:
        return None
    if not encoder.is_available:
        return None
    decoder = get_decoder(uid)
    kwargs = _encoder_kwargs(info)
    original = list(generate_frames(image.dataset.PixelData, number_of_frames=info.frames))
    out: list[bytes] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(info.frames):
            if i not in changed:
                out.append(original[i])
                continue
            arr = np.ascontiguousarray(frames[i])
            try:
                data = encoder.encode(arr, **kwargs)
                back, _meta = decoder.as_array(
                    encapsulate([data]), raw=True, **{**kwargs, "transfer_syntax_uid": uid}
                )
            except Exception as exc:  # an encoder refusing this layout: go native instead
                logger.info("re-encoding in %s failed (%s); writing natively", uid.name, type(exc).__name__)
                return None
            if back.shape != arr.shape or not np.array_equal(back, arr):
                logger.info("re-encoding in %s was not exact; writing natively", uid.name)
                return None
            out.append(bytes(data))
    total = sum(len(f) for f in out)
    return Encoded(bytes(encapsulate(out, has_bot=total < 0xFFFFFFF0)), None, {}, "same-syntax")


def encode(image: DecodedImage, frames: np.ndarray, changed: set[int]) -> Encoded:
    """Encode masked ``frames`` of ``image`` for writing (see the module docstring)."""
    info = image.info
    if not info.encapsulated:
        return _native(image, frames)
    if info.transfer_syntax in REENCODE and not info.lossy:
        done = _reencode(image, frames, changed)
        if done is not None:
            return done
    return _explicit_le(image, frames)
