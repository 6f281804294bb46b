"""Which images need OCR, decided from the header alone, and known burned-in regions.

Rules, in order (the first that decides wins):

1. no Pixel Data (or only float pixel data) -> not processed;
2. ``--ocr on`` -> every image;
3. a device of the *known-device catalogue* -> processed, and its known regions are
   masked whatever OCR says. The catalogue is the ``%filter graylist`` of the recipe
   ``deid.dicom`` that the ``deid`` package ships (RSNA CTP's pixel-anonymizer
   signatures: GE dose reports, Siemens/Philips/Toshiba screen layouts ...);
4. Burned In Annotation = YES -> processed;
5. modalities and SOP classes that are screen-like by nature (US, IVUS, SC, OT, ES, XC,
   GM, XA, RF, OP; Secondary Capture, video and photographic storage) -> processed,
   even when the header claims there is no burned-in text;
6. Burned In Annotation = NO, or a ``%filter whitelist`` match -> not processed;
7. projection radiography (CR, DX, MG, PX, IO), ImageType SECONDARY, DERIVED, SCREEN
   SAVE, LOCALIZER or REPORT, or a ``%filter blacklist`` match -> processed;
8. everything else (an ordinary CT/MR/PET/NM series) -> not processed: it costs nothing.

The recipe is parsed here (a few dozen lines), not through ``deid.config``, so that
importing the catalogue neither patches pydicom's Dataset nor prints deid's debug log,
and ``+`` / ``||`` are evaluated left to right as CTP intends.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from pydicom.dataset import Dataset

from privguard.pixels.boxes import Box

logger = logging.getLogger(__name__)

STRONG_MODALITIES = frozenset({"US", "IVUS", "SC", "OT", "ES", "XC", "GM", "XA", "RF", "OP", "OPT", "SM"})
RADIOGRAPHY = frozenset({"CR", "DX", "MG", "PX", "IO", "DG"})
IMAGE_TYPES = ("SECONDARY", "DERIVED", "SCREEN SAVE", "LOCALIZER", "REPORT", "SCREEN", "SAVE")
#: SOP class UID prefixes of captured screens, video and photographs.
STRONG_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture (and its multi-frame variants)
    "1.2.840.10008.5.1.4.1.1.77.1",  # VL / video endoscopic / microscopic / photographic
    "1.2.840.10008.5.1.4.1.1.6.",  # Ultrasound (multi-frame) image storage
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound multi-frame (retired)
    "1.2.840.10008.5.1.4.1.1.12.",  # X-ray angiographic / radiofluoroscopic
)
_ACTIONS = ("contains", "notcontains", "equals", "notequals", "missing", "present", "empty")
_SPLIT = re.compile(r"\s*(\|\||\+)\s*(?=(?:" + "|".join(_ACTIONS) + r")\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    action: str
    field: str
    value: str | None
    op: str | None
    """How this condition joins the ones before it: 'and', 'or' or None (first)."""


@dataclass(frozen=True)
class Rule:
    """One LABEL of a deid recipe filter section."""

    label: str
    groups: tuple[tuple[Condition, ...], ...]
    """Lines of the rule; each line's first condition carries how the line joins the previous ones."""
    regions: tuple[Box, ...] = ()
    keep_regions: tuple[Box, ...] = ()
    whole_image: bool = False


@dataclass(frozen=True)
class Catalogue:
    """The filter sections of a deid recipe."""

    whitelist: tuple[Rule, ...] = ()
    graylist: tuple[Rule, ...] = ()
    blacklist: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Triage:
    """The triage decision for one file (reason and labels are PHI-free)."""

    wanted: bool
    reason: str
    regions: tuple[Box, ...] = ()
    """Known burned-in regions to mask whatever OCR says (stored-pixel coordinates)."""
    labels: tuple[str, ...] = field(default_factory=tuple)


def _coordinates(text: str, ctp: bool) -> Box | None:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts):
        return None
    a, b, c, d = (int(p) for p in parts)
    return Box(a, b, a + c, b + d) if ctp else Box(a, b, c, d)


def _line(text: str) -> tuple[Condition, ...]:
    op: str | None = None
    text = text.strip()
    if text.startswith("+"):
        op, text = "and", text[1:].strip()
    elif text.startswith("||"):
        op, text = "or", text[2:].strip()
    pieces = _SPLIT.split(text)
    out = []
    current_op = op
    i = 0
    while i < len(pieces):
        piece = pieces[i].strip()
        if piece in ("||", "+"):
            current_op = "or" if piece == "||" else "and"
            i += 1
            continue
        words = piece.split(None, 2)
        if not words or words[0].lower() not in _ACTIONS:
            i += 1
            continue
        action = words[0].lower()
        fld = words[1] if len(words) > 1 else ""
        value = words[2].split("#")[0].strip() if len(words) > 2 else None
        out.append(Condition(action, fld, value, current_op))
        current_op = None
        i += 1
    return tuple(out)


def parse_recipe(text: str) -> Catalogue:
    """Parse the ``%filter`` sections of a deid recipe (other sections are ignored)."""
    sections: dict[str, list[Rule]] = {"whitelist": [], "graylist": [], "blacklist": []}
    section: str | None = None
    label: str | None = None
    groups: list[tuple[Condition, ...]] = []
    regions: list[Box] = []
    keeps: list[Box] = []
    whole = False

    def flush() -> None:
        nonlocal label, groups, regions, keeps, whole
        if section in sections and label is not None:
            sections[section].append(Rule(label, tuple(groups), tuple(regions), tuple(keeps), whole))
        label, groups, regions, keeps, whole = None, [], [], [], False

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("%"):
            flush()
            parts = line[1:].split()
            section = parts[1].lower() if len(parts) > 1 and parts[0].lower() == "filter" else None
            continue
        if section is None:
            continue
        low = line.lower()
        if low.startswith("label"):
            flush()
            label = line[5:].split("#")[0].strip()
            continue
        if label is None:
            continue
        for key, ctp, keep in (
            ("ctpkeepcoordinates", True, True),
            ("ctpcoordinates", True, False),
            ("keepcoordinates", False, True),
            ("coordinates", False, False),
        ):
            if low.startswith(key):
                value = line[len(key) :].strip()
                if value.lower() == "all":
                    whole = True
                elif not value.startswith("from:"):
                    box = _coordinates(value, ctp)
                    if box is not None:
                        (keeps if keep else regions).append(box)
                break
        else:
            conds = _line(line)
            if conds:
                groups.append(conds)
    flush()
    return Catalogue(tuple(sections["whitelist"]), tuple(sections["graylist"]), tuple(sections["blacklist"]))


@lru_cache(maxsize=1)
def deid_catalogue() -> Catalogue:
    """The known-device catalogue of the installed ``deid`` package (empty if deid is absent)."""
    spec = find_spec("deid")
    if spec is None or not spec.submodule_search_locations:
        logger.warning(
            "the deid package is not installed: no known-device regions (pip install 'privguard[ocr]')"
        )
        return Catalogue()
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "deid.dicom"
    try:
        return parse_recipe(path.read_text(encoding="utf-8"))
    except OSError:
        logger.warning("the deid recipe deid.dicom cannot be read: no known-device regions")
        return Catalogue()


def _values(ds: Dataset, fld: str) -> list[str] | None:
    try:
        elem = ds[int(fld, 16)] if fld.lower().startswith("0x") else ds.data_element(fld)
    except (KeyError, ValueError, TypeError):
        return None
    if elem is None:
        return None
    value = elem.value
    if value is None:
        return []
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    if elem.VR == "SQ":
        return [] if not value else ["<sequence>"]
    return [str(value)]


def _check(ds: Dataset, c: Condition) -> bool:
    values = _values(ds, c.field)
    if c.action == "missing":
        return values is None
    if c.action == "present":
        return values is not None
    if c.action == "empty":
        return values is not None and not any(v.strip() for v in values)
    if values is None:
        return c.action in ("notcontains", "notequals")
    term = (c.value or "").strip()
    if c.action in ("contains", "notcontains"):
        text = "\\".join(values)
        try:
            hit = re.search(term, text, re.IGNORECASE) is not None
        except re.error:
            hit = term.lower() in text.lower()
        return hit if c.action == "contains" else not hit
    hit = any(v.strip().lower() == term.lower() for v in values)
    return hit if c.action == "equals" else not hit


def _fold(items: list[tuple[str | None, bool]]) -> bool:
    result = False
    for i, (op, value) in enumerate(items):
        if i == 0:
            result = value
        elif op == "or":
            result = result or value
        else:
            result = result and value
    return result


def matches(rule: Rule, ds: Dataset) -> bool:
    """Evaluate a rule on a header, ``+`` and ``||`` left to right."""
    if not rule.groups:
        return bool(rule.regions) or rule.whole_image
    lines = []
    for conds in rule.groups:
        lines.append(
            (conds[0].op, _fold([(None if k == 0 else c.op, _check(ds, c)) for k, c in enumerate(conds)]))
        )
    return _fold(lines)


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value).upper()
    return str(value or "").strip().upper()


def triage(ds: Dataset, *, has_pixels: bool, ocr: str = "auto", catalogue: Catalogue | None = None) -> Triage:
    """Decide from the header whether a file needs the pixel stage (see the module docstring)."""
    if not has_pixels:
        return Triage(False, "no-pixel-data")
    cat = catalogue if catalogue is not None else deid_catalogue()
    known = [r for r in cat.graylist if (r.regions or r.whole_image) and matches(r, ds)]
    regions = tuple(b for r in known for b in r.regions)
    labels = tuple(r.label for r in known)
    if any(r.whole_image for r in known):
        rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        if rows and cols:
            regions += (Box(0, 0, cols, rows),)
    if ocr == "on":
        return Triage(True, "ocr-on", regions, labels)
    if known:
        return Triage(True, "known-device", regions, labels)
    burned = _text(ds, "BurnedInAnnotation")
    if burned == "YES":
        return Triage(True, "burned-in-annotation")
    modality = _text(ds, "Modality")
    sop = str(ds.get("SOPClassUID", "") or "")
    if modality in STRONG_MODALITIES:
        return Triage(True, f"modality:{modality}")
    if sop.startswith(STRONG_SOP_PREFIXES):
        return Triage(True, "sop-class")
    if burned == "NO":
        return Triage(False, "marked-clean")
    white = [r.label for r in cat.whitelist if matches(r, ds)]
    if white:
        return Triage(False, "deid-whitelist", labels=tuple(white))
    if modality in RADIOGRAPHY:
        return Triage(True, f"modality:{modality}")
    image_type = _text(ds, "ImageType")
    for t in IMAGE_TYPES:
        if re.search(rf"(^|\\){re.escape(t)}($|\\)", image_type):
            return Triage(True, f"image-type:{t}")
    black = [r.label for r in cat.blacklist if matches(r, ds)]
    if black:
        return Triage(True, "deid-blacklist", labels=tuple(black))
    return Triage(False, "not-flagged")
