"""Which images need OCR, decided from the header alone, and known burned-in regions.

Rules, in order (the first that decides wins):

1. no Pixel Data (or only float pixel data) -> not processed;
2. ``--ocr on`` -> every image;
3. a device of the *known-device catalogue* -> processed, and its known regions are
   masked whatever OCR says. The catalogue is the ``%filter graylist`` of the recipe
   ``deid.dicom`` that the ``deid`` package ships (RSNA CTP's pixel-anonymizer
   signatures: GE dose reports, Siemens/Philips/Toshiba screen layouts ...) and, for
   ultrasound images, that of ``deid.dicom.ultrasound`` (everything but the ultrasound
   regions of ``SequenceOfUltrasoundRegions``). A rule's ``coordinates`` add regions,
   its ``keepcoordinates`` take regions out again, in the recipe's order; either may
   read its boxes from a header attribute (``from:SequenceOfUltrasoundRegions``);
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
class Coordinates:
    """One ``coordinates`` / ``keepcoordinates`` line of a graylist rule (CTP's ``ctp...``
    forms, ``x,y,width,height``, are converted to boxes when parsed)."""

    keep: bool
    """``keepcoordinates``: take the region out of the masks found so far."""
    box: Box | None = None
    whole: bool = False
    """``coordinates all``: the whole image."""
    source: str | None = None
    """``from:KEYWORD``: the boxes are read from this header attribute (a sequence of items with
    ``RegionLocationMinX0`` / ``MinY0`` / ``MaxX1`` / ``MaxY1``, as deid reads them)."""


@dataclass(frozen=True)
class Rule:
    """One LABEL of a deid recipe filter section."""

    label: str
    groups: tuple[tuple[Condition, ...], ...]
    """Lines of the rule; each line's first condition carries how the line joins the previous ones."""
    regions: tuple[Box, ...] = ()
    keep_regions: tuple[Box, ...] = ()
    whole_image: bool = False
    coordinates: tuple[Coordinates, ...] = ()
    """Every coordinate line, in the recipe's order (fixed boxes, ``all`` and ``from:`` alike)."""


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
    coords: list[Coordinates] = []

    def flush() -> None:
        nonlocal label, groups, regions, keeps, whole, coords
        if section in sections and label is not None:
            sections[section].append(
                Rule(label, tuple(groups), tuple(regions), tuple(keeps), whole, tuple(coords))
            )
        label, groups, regions, keeps, whole, coords = None, [], [], [], False, []

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
                value = line[len(key) :].split("#")[0].strip()
                if value.lower() == "all":
                    whole = whole or not keep
                    coords.append(Coordinates(keep, whole=True))
                elif value.lower().startswith("from:"):
                    source = value[5:].strip()
                    if source:
                        coords.append(Coordinates(keep, source=source))
                else:
                    box = _coordinates(value, ctp)
                    if box is not None:
                        (keeps if keep else regions).append(box)
                        coords.append(Coordinates(keep, box=box))
                break
        else:
            conds = _line(line)
            if conds:
                groups.append(conds)
    flush()
    return Catalogue(tuple(sections["whitelist"]), tuple(sections["graylist"]), tuple(sections["blacklist"]))


@lru_cache(maxsize=4)
def deid_catalogue(recipe: str = "deid.dicom") -> Catalogue:
    """A filter catalogue of the installed ``deid`` package (empty if deid is absent): the
    known-device recipe ``deid.dicom`` by default, or ``deid.dicom.ultrasound``."""
    spec = find_spec("deid")
    if spec is None or not spec.submodule_search_locations:
        logger.warning(
            "the deid package is not installed: no known-device regions (pip install 'privguard[ocr]')"
        )
        return Catalogue()
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / recipe
    try:
        return parse_recipe(path.read_text(encoding="utf-8"))
    except OSError:
        logger.warning("the deid recipe %s cannot be read: no known-device regions", recipe)
        return Catalogue()


def ultrasound_catalogue() -> Catalogue:
    """deid's ultrasound recipe: blank the image but for its ultrasound regions."""
    return deid_catalogue("deid.dicom.ultrasound")


_REGION_KEYS = ("RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1", "RegionLocationMaxY1")


def header_boxes(ds: Dataset, source: str, *, keep: bool) -> list[Box]:
    """The boxes a ``from:`` coordinate line reads from the header, as deid reads them: every
    item of the attribute (a sequence, or the dataset it names) that has all four
    ``RegionLocation...`` values gives one box. Items without them, or whose values are not
    whole numbers with min below max, give none.

    The DICOM maxima are inclusive. A region to *keep* ends at them, exclusive (as deid slices
    it: one row and column less is kept); a region to *mask* includes them (one more is masked).
    """
    try:
        value = ds.get(source)
    except (KeyError, ValueError, TypeError):
        return []
    if value is None:
        return []
    items = list(value) if isinstance(value, list | tuple) or type(value).__name__ == "Sequence" else [value]
    out: list[Box] = []
    for item in items:
        if not isinstance(item, Dataset) or not all(k in item for k in _REGION_KEYS):
            continue
        try:
            x0, y0, x1, y1 = (int(item.get(k)) for k in _REGION_KEYS)
        except (TypeError, ValueError):
            continue
        if x0 < 0 or y0 < 0 or x1 < x0 or y1 < y0:
            continue
        out.append(Box(x0, y0, x1, y1) if keep else Box(x0, y0, x1 + 1, y1 + 1))
    return out


def subtract(box: Box, cut: Box) -> list[Box]:
    """``box`` less ``cut``: up to four boxes (above, below, left and right of the cut)."""
    inner = box.intersect(cut)
    if inner.x1 <= inner.x0 or inner.y1 <= inner.y0:
        return [box]
    pieces = [
        Box(box.x0, box.y0, box.x1, inner.y0),
        Box(box.x0, inner.y1, box.x1, box.y1),
        Box(box.x0, inner.y0, inner.x0, inner.y1),
        Box(inner.x1, inner.y0, box.x1, inner.y1),
    ]
    return [p for p in pieces if p.x1 > p.x0 and p.y1 > p.y0]


def resolve_regions(rules: list[Rule], ds: Dataset) -> tuple[tuple[Box, ...], bool]:
    """The regions to mask for the matched graylist rules, their coordinate lines applied in
    order as deid does (``coordinates`` mask, ``keepcoordinates`` unmask what is masked so far),
    clipped to the image; and whether any ``keepcoordinates`` line took something out."""
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    masked: list[Box] = []
    kept_any = False
    for rule in rules:
        for c in rule.coordinates:
            if c.whole:
                boxes = [Box(0, 0, cols, rows)] if rows and cols else []
            elif c.source is not None:
                boxes = header_boxes(ds, c.source, keep=c.keep)
            else:
                boxes = [c.box] if c.box is not None else []
            if not c.keep:
                masked += boxes
                continue
            for cut in boxes:
                after: list[Box] = []
                for m in masked:
                    pieces = subtract(m, cut)
                    kept_any = kept_any or pieces != [m]
                    after += pieces
                masked = after
    if rows and cols:
        masked = [m.clip(cols, rows) for m in masked]
    return tuple(m for m in masked if m.x1 > m.x0 and m.y1 > m.y0), kept_any


def is_ultrasound(ds: Dataset) -> bool:
    """Modality US / IVUS, or an ultrasound SOP class."""
    sop = str(ds.get("SOPClassUID", "") or "")
    return _text(ds, "Modality") in ("US", "IVUS") or sop.startswith(
        ("1.2.840.10008.5.1.4.1.1.6.", "1.2.840.10008.5.1.4.1.1.3.1")
    )


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


def known_regions(
    ds: Dataset, catalogue: Catalogue, ultrasound: Catalogue | None
) -> tuple[tuple[Box, ...], tuple[str, ...]]:
    """Known burned-in regions and the labels of the graylist rules that gave them.

    The device catalogue's matching rules with coordinates are resolved first. For an
    ultrasound image, the ultrasound catalogue's matching rules are resolved on their own and
    added only when a ``keepcoordinates`` line kept something: its ``coordinates all`` alone
    (an ultrasound image without usable ``SequenceOfUltrasoundRegions``) would blank the whole
    image, so OCR decides there instead.
    """
    rules = [r for r in catalogue.graylist if any(not c.keep for c in r.coordinates) and matches(r, ds)]
    regions, _ = resolve_regions(rules, ds)
    labels = tuple(r.label for r in rules)
    if ultrasound is not None and ultrasound.graylist and is_ultrasound(ds):
        us_rules = [r for r in ultrasound.graylist if r.coordinates and matches(r, ds)]
        us_regions, kept = resolve_regions(us_rules, ds)
        if kept and us_regions:
            regions += us_regions
            labels += tuple(r.label for r in us_rules)
    return regions, labels


def triage(
    ds: Dataset,
    *,
    has_pixels: bool,
    ocr: str = "auto",
    catalogue: Catalogue | None = None,
    ultrasound: Catalogue | None = None,
    ultrasound_regions: bool = True,
) -> Triage:
    """Decide from the header whether a file needs the pixel stage (see the module docstring).

    ``catalogue`` defaults to deid's ``deid.dicom`` and ``ultrasound`` to its
    ``deid.dicom.ultrasound`` (applied to ultrasound images unless ``ultrasound_regions`` is
    False)."""
    if not has_pixels:
        return Triage(False, "no-pixel-data")
    cat = catalogue if catalogue is not None else deid_catalogue()
    us_cat = None
    if ultrasound_regions:
        us_cat = ultrasound if ultrasound is not None else ultrasound_catalogue()
    regions, labels = known_regions(ds, cat, us_cat)
    known = bool(labels)
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
