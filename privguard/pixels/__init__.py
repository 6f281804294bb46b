"""Burned-in text: find text in the pixels, redact what is PHI, keep what is not, and prove it.

The DICOM Clean Pixel Data option (PS3.15 E.3.1), done with OCR:

* :mod:`~privguard.pixels.triage` decides from the header which images need OCR;
* :mod:`~privguard.pixels.decode` / :mod:`~privguard.pixels.render` give stored values
  and an 8-bit display view;
* :mod:`~privguard.pixels.textfind` runs the OCR engine (:mod:`~privguard.pixels.ocr`)
  in batches and returns words with their readings;
* :mod:`~privguard.pixels.phi_text` decides which words are PHI;
* :mod:`~privguard.pixels.mask`, :mod:`~privguard.pixels.verify`,
  :mod:`~privguard.pixels.encode` and :mod:`~privguard.pixels.preview` apply, check,
  write and show the result;
* :mod:`~privguard.pixels.stage` ties them into the stage the core calls.

The core builds the stage with :func:`build_stage`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from privguard.header.profile import DeidProfile
    from privguard.pixels.ocr import OCREngine
    from privguard.pixels.stage import OCRPixelStage
    from privguard.pixels.types import PixelOptions

__all__ = ["build_stage"]


def build_stage(
    profile: DeidProfile,
    options: PixelOptions,
    *,
    allowlist: Iterable[str | Path] | None = None,
    engine: OCREngine | None = None,
) -> OCRPixelStage:
    """Build the burned-in text stage for a profile and the run's pixel options.

    Parameters
    ----------
    profile
        The de-identification profile (``profile.pixels`` holds ``ocr`` and ``redact``).
    options
        The run's options (``ocr``, ``device``, ``previews``, ``redact`` override).
    allowlist
        Site allow-list files added to the shipped one. When None: the profile's
        ``pixels.allowlist``, the run's ``options.allowlist`` (``scrub --allowlist``) and the
        ``PRIVGUARD_PIXEL_ALLOWLIST`` environment variable (``os.pathsep``-separated).
    engine
        An OCR engine to use instead of EasyOCR (tests and benchmarks).

    Raises
    ------
    OCRUnavailableError
        When EasyOCR or its offline weights are not installed.
    ConfigError
        When ``--device cuda`` is asked for without CUDA, or an option is invalid.
    PolicyError
        When an allow-list file is missing or invalid.
    """
    import os

    from privguard.errors import ConfigError
    from privguard.pixels.allowlist import load_allowlist
    from privguard.pixels.stage import OCRPixelStage

    # An explicit --ocr on wins; with the default (auto) the profile's setting applies, so a
    # profile with `ocr: off` gives a stage that wants no file (and never loads the model).
    ocr = options.ocr if options.ocr != "auto" else profile.pixels.ocr
    if ocr not in ("auto", "on", "off"):
        raise ConfigError(f"unknown --ocr value '{options.ocr}' (use auto, on or off)")
    redact = options.redact or profile.pixels.redact
    if redact not in ("phi", "all-text"):
        raise ConfigError(f"unknown redact mode '{redact}' (use phi or all-text)")
    if options.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown --device value '{options.device}' (use auto, cpu or cuda)")
    extra: list[str | Path] = []
    if allowlist is not None:
        extra = list(allowlist)
    else:
        extra += list(profile.pixels.allowlist)
        extra += list(options.allowlist)
        env = os.environ.get("PRIVGUARD_PIXEL_ALLOWLIST", "")
        extra += [p for p in env.split(os.pathsep) if p.strip()]
    return OCRPixelStage(
        ocr=ocr,
        device=options.device,
        redact=redact,
        allowlist=load_allowlist(extra),
        previews=options.previews,
        engine=engine,
        ultrasound_regions=options.ultrasound_regions,
    )
