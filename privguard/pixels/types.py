"""The pixel stage's contract with the de-identifier: options, outcome, stage protocol.

These types live below both :mod:`privguard.deidentifier` (which runs the stage)
and the stage's implementation (:mod:`privguard.pixels.stage`), so neither
imports the other. ``privguard.deidentifier`` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from privguard.dicomio import Source
    from privguard.text.context import PhiContext


@dataclass(frozen=True)
class PixelOptions:
    """How the burned-in text stage runs (the Clean Pixel Data option)."""

    ocr: str = "auto"
    """auto: OCR what triage flags; on: every image; off: never (the option is then not claimed)."""
    device: str = "auto"
    """auto, cpu or cuda."""
    previews: Path | None = None
    """Write a before/after PNG per redacted image here (for the privacy officer)."""
    redact: str | None = None
    """Override the profile's ``pixels.redact`` (phi | all-text)."""
    allowlist: tuple[Path, ...] = ()
    """Site allow-list files, added to the shipped one and the profile's."""
    ultrasound_regions: bool = True
    """Apply deid's ultrasound recipe: on ultrasound images with ``SequenceOfUltrasoundRegions``,
    mask everything outside the ultrasound regions (OCR still runs inside them)."""


@dataclass
class PixelOutcome:
    """What the pixel stage did to one file (see :mod:`privguard.pixels`)."""

    report: dict[str, Any]
    """JSON-able, PHI-free: triage reason, boxes found / redacted / kept, verification."""
    pixel_data: bytes | None = None
    """The new Pixel Data value (native or encapsulated), or None if the pixels are unchanged."""
    transfer_syntax: str | None = None
    """The output transfer syntax, when it differs from the input's."""
    elements: dict[str, Any] = field(default_factory=dict)
    """Header attributes the new pixel encoding needs (keyword -> value), e.g. PhotometricInterpretation."""
    verified: bool = False
    """True when the post-redaction OCR found no readable PHI (BurnedInAnnotation may become NO)."""
    failed: str | None = None
    """A PHI-free reason if the file must not be written (e.g. PHI still readable after redaction)."""


class PixelStage(Protocol):
    """The burned-in text stage, implemented in :mod:`privguard.pixels`."""

    def wants(self, src: Source) -> bool:
        """Triage: does this file need the pixel stage (from its header alone)?"""

    def process_many(self, items: list[tuple[Source, PhiContext]]) -> list[PixelOutcome]:
        """Process several files at once (OCR batched across them)."""

    def close(self) -> None:
        """Release the model."""
