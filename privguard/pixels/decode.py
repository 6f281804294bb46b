"""Decode Pixel Data into stored values, frame by frame, through pydicom's pixel backends.

Every transfer syntax pydicom can decode is supported: native (any bit depth,
signed or unsigned, either byte order), RLE Lossless, the JPEG family
(baseline, extended, lossless), JPEG-LS and JPEG 2000, with pylibjpeg and its
libjpeg / openjpeg / rle plugins or pyjpegls installed. The arrays hold the
*stored* values: no modality or VOI LUT is applied here (see
:mod:`privguard.pixels.render` for the display view) so that masks can be
applied at the native depth and nothing else changes.

Colour: native and lossless data keep their colour space (a native
YBR_FULL_422 image comes back as full-resolution YBR_FULL, which is an exact
expansion); lossy colour JPEG is converted to RGB, because it is written back
natively (see :mod:`privguard.pixels.encode`) and RGB is the usual native form.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from privguard.errors import InputError, UnsupportedEncodingError

logger = logging.getLogger(__name__)

#: Transfer syntaxes whose decoded values differ from what was encoded.
LOSSY_SYNTAXES = frozenset(
    {
        "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
        "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
        "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
        "1.2.840.10008.1.2.4.91",  # JPEG 2000 (lossy allowed)
        "1.2.840.10008.1.2.4.93",  # JPEG 2000 Part 2 multi-component (lossy allowed)
        "1.2.840.10008.1.2.4.203",  # HTJ2K (lossy allowed)
    }
)
#: Video transfer syntaxes (MPEG-2, MPEG-4/H.264, HEVC): pydicom has no decoder for them.
_VIDEO_PREFIX = ("1.2.840.10008.1.2.4.10", "1.2.840.10008.1.2.4.11")
#: Packages to name when no plugin can decode a transfer syntax.
_CODEC_HINT = (
    "install the codecs extra: pip install 'privguard[codecs]' (pylibjpeg, pylibjpeg-libjpeg, "
    "pylibjpeg-openjpeg, pylibjpeg-rle, pyjpegls)"
)


@dataclass(frozen=True)
class PixelInfo:
    """How the decoded frames are laid out, and where they came from."""

    transfer_syntax: str
    rows: int
    columns: int
    samples: int
    frames: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    """Photometric interpretation of the decoded arrays (RGB for converted lossy colour)."""
    source_photometric: str
    """Photometric interpretation in the input header."""
    planar_configuration: int
    big_endian: bool

    @property
    def encapsulated(self) -> bool:
        return UID(self.transfer_syntax).is_encapsulated

    @property
    def lossy(self) -> bool:
        """True when the input transfer syntax is lossy (output is then written losslessly)."""
        return self.transfer_syntax in LOSSY_SYNTAXES

    @property
    def color(self) -> bool:
        return self.samples == 3

    @property
    def value_range(self) -> tuple[int, int]:
        """The stored values' representable range, from Bits Stored and Pixel Representation."""
        bits = max(1, min(self.bits_stored, self.bits_allocated))
        if self.pixel_representation == 1:
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1


@dataclass
class DecodedImage:
    """Stored values of every frame: shape (frames, rows, columns[, samples])."""

    info: PixelInfo
    frames: np.ndarray
    dataset: Dataset


def _int(ds: Dataset, keyword: str, default: int) -> int:
    value = ds.get(keyword, default)
    try:
        return int(value if value not in (None, "") else default)
    except (TypeError, ValueError):
        return default


def check_codec(transfer_syntax: str) -> None:
    """Raise :class:`UnsupportedEncodingError` if no installed plugin decodes this syntax."""
    from pydicom.pixels.decoders.base import get_decoder

    uid = UID(transfer_syntax)
    if transfer_syntax.startswith(_VIDEO_PREFIX):
        raise UnsupportedEncodingError(
            f"video pixel data ({uid.name}) cannot be decoded by pydicom; convert it to frames first "
            "or run with --ocr off"
        )
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise UnsupportedEncodingError(f"no pixel data decoder exists for {uid.name}") from None
    if not decoder.is_available:
        raise UnsupportedEncodingError(f"no installed codec decodes {uid.name}; {_CODEC_HINT}")


def load(path: str | Path) -> DecodedImage:
    """Read ``path`` whole and decode every frame to stored values.

    Raises
    ------
    UnsupportedEncodingError
        When no installed codec handles the transfer syntax (the message names the packages).
    InputError
        When the pixel data is missing or malformed.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(str(path), force=True)
        except Exception as exc:  # pydicom raises many kinds on damaged files
            raise InputError(f"the file cannot be read for pixel decoding ({type(exc).__name__})") from None
    return decode_dataset(ds)


def decode_dataset(ds: Dataset) -> DecodedImage:
    """Decode the Pixel Data of a dataset that was read whole (see :func:`load`)."""
    from pydicom.pixels.decoders.base import get_decoder

    if "PixelData" not in ds:
        raise InputError("the file has no Pixel Data element")
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not ts:
        ts = str(
            pydicom.uid.ImplicitVRLittleEndian if ds.is_implicit_VR else pydicom.uid.ExplicitVRLittleEndian
        )
    check_codec(ts)
    uid = UID(ts)
    raw = ts not in LOSSY_SYNTAXES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            arr, out_meta = get_decoder(uid).as_array(ds, raw=raw)
        except (ValueError, RuntimeError, NotImplementedError, KeyError, AttributeError, TypeError) as exc:
            raise InputError(f"the pixel data cannot be decoded ({uid.name}: {type(exc).__name__})") from None
    frames = _int(ds, "NumberOfFrames", 1) or 1
    samples = _int(ds, "SamplesPerPixel", 1)
    if frames == 1 and arr.ndim == (3 if samples > 1 else 2):
        arr = arr[np.newaxis]
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    photometric = str(out_meta.get("photometric_interpretation", ds.get("PhotometricInterpretation", "")))
    source_photometric = str(ds.get("PhotometricInterpretation", "") or "")
    if photometric == "YBR_FULL_422" and source_photometric == "YBR_FULL_422" and not uid.is_encapsulated:
        photometric = "YBR_FULL"  # pydicom expands native 4:2:2 to full resolution
    if uid.is_encapsulated and ts not in LOSSY_SYNTAXES and photometric == "YBR_FULL_422":
        photometric = "YBR_FULL"
    info = PixelInfo(
        transfer_syntax=ts,
        rows=int(arr.shape[1]),
        columns=int(arr.shape[2]),
        samples=samples,
        frames=int(arr.shape[0]),
        bits_allocated=_int(ds, "BitsAllocated", 8),
        bits_stored=_int(ds, "BitsStored", _int(ds, "BitsAllocated", 8)),
        pixel_representation=_int(ds, "PixelRepresentation", 0),
        photometric=photometric,
        source_photometric=source_photometric,
        planar_configuration=_int(ds, "PlanarConfiguration", 0),
        big_endian=not uid.is_little_endian,
    )
    logger.debug("decoded %d frame(s) of %dx%d (%s)", info.frames, info.columns, info.rows, uid.name)
    return DecodedImage(info, arr, ds)
