"""Synthetic DICOM files with burned-in text and exact ground truth.

Each case renders text items (names, IDs, dates in several formats, places,
non-PHI markers) with several fonts (DejaVu and STIX TrueType fonts shipped with
matplotlib, OpenCV's Hershey fonts), sizes, colours and positions onto a
synthetic image (CT body, CR chest, ultrasound sector with speckle, screen
capture), maps it to stored values (MONOCHROME1 12-bit, signed 16-bit with a
window, RGB, multi-frame), encodes it (native, RLE, JPEG-LS, JPEG 2000
lossless, lossy JPEG) and writes the header the text comes from.

Ground truth uses the region format of ``tests/data/pseudo-phi/ground_truth.json``
(``text, frame, left, top, width, height, phi, kind, header_match, header_field``);
each region also carries the exact mask of its text pixels (not written to JSON),
so scoring can say whether every text pixel of a PHI box changed.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

TTF = [
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSerif.ttf",
    "STIXGeneral.ttf",
    "DejaVuSansMono-Bold.ttf",
]
#: More faces for the adversarial set (``hard=True``): obliques, italics, bold serif, STIX bold/italic.
HARD_TTF = [
    *TTF,
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
]
#: Names with diacritics, apostrophes and particles (the header holds them as written, UTF-8).
HARD_FAMILIES = [
    "MÜLLER",
    "NÚÑEZ",
    "ØSTERGAARD",
    "GONÇALVES",
    "DVOŘÁK",
    "LEFÈVRE",
    "SZŐKE",
    "O'BRIEN",
    "DE LA CRUZ",
    "WÓJCIK",
]
HARD_GIVENS = ["JOSÉ", "RENÉE", "ZOË", "BJÖRN", "ÅSA", "FRANÇOIS", "JÜRGEN", "MARÍA", "ŁUKASZ", "INÊS"]
HERSHEY = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX]
FAMILIES = [
    "KOWALSKI",
    "OKAFOR",
    "MARTINEZ",
    "HALVORSEN",
    "NAKAMURA",
    "FITZGERALD",
    "BRENNAN",
    "ABERNATHY",
    "DESROCHES",
    "VANTERPOOL",
    "LINDQVIST",
    "PETRAKIS",
    "OYELARAN",
    "MCALLISTER",
    "RAVENSCROFT",
]
GIVENS = [
    "MARGARET",
    "THEODORE",
    "BEATRIZ",
    "OLUWASEUN",
    "HENRIK",
    "YUKI",
    "CORNELIUS",
    "PRISCILLA",
    "DMITRI",
    "ESPERANZA",
    "GWENDOLYN",
    "RAFAEL",
    "SIOBHAN",
    "AUGUSTIN",
]
INSTITUTIONS = [
    "Brookhaven Regional Hospital",
    "St. Benedict Medical Center",
    "Whitfield Valley Clinic",
    "Larkspur County Hospital",
    "Children's Hospital of Eastbrook",
    "University Hospital Marrowgate",
    "Mercy General Imaging Institute",
]
#: Side-panel parameters and per-frame overlays of ultrasound and fluoroscopy (never PHI).
PANEL = ["Gn 60", "DR 65", "FR 30", "MI 1.2", "TIS 0.4", "PRF 2.5k", "WF 100", "D 12cm", "3.5MHz", "C5-1"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
NON_PHI = {
    "CR": [
        "PORTABLE",
        "AP",
        "PA",
        "L",
        "R",
        "SUPINE",
        "UPRIGHT",
        "SEMI-UPRIGHT",
        "ERECT",
        "CHEST",
        "LATERAL",
    ],
    "DX": ["PORTABLE", "AP", "L", "R", "STANDING", "LATERAL", "OBLIQUE"],
    "US": [
        "ABDOMEN",
        "LIVER",
        "C5-1",
        "L12-5",
        "5.0cm",
        "Gn 60",
        "MI 1.2",
        "TIS 0.4",
        "2D",
        "RT KIDNEY",
        "TRANS",
        "SAG",
        "30 Hz",
        "12 cm",
    ],
    "CT": ["SCOUT", "AXIAL", "120 kV", "250 mA", "W 400", "L 40", "SUPINE", "HFS"],
    "OT": ["CHEST", "AXIAL", "5.0 mm", "FOV 350", "ZOOM x2.0", "R", "L"],
}


def font_dir() -> Path | None:
    """matplotlib's bundled TrueType fonts (matplotlib comes with deid), or None."""
    try:
        import matplotlib
    except ImportError:
        return None
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return path if path.is_dir() else None


@dataclass
class Identity:
    family: str
    given: str
    initial: str
    patient_id: str
    accession: str
    birth: dt.date
    study: dt.date
    institution: str
    referring: tuple[str, str]
    sex: str

    @classmethod
    def random(cls, rng: random.Random) -> Identity:
        birth = dt.date(rng.randint(1925, 2015), rng.randint(1, 12), rng.randint(1, 28))
        study = dt.date(rng.randint(2005, 2024), rng.randint(1, 12), rng.randint(1, 28))
        return cls(
            family=rng.choice(FAMILIES),
            given=rng.choice(GIVENS),
            initial=rng.choice("ABCDEJKMPRSTW"),
            patient_id=str(rng.randint(10**6, 10**10 - 1)),
            accession=f"{study:%Y%m%d}E{rng.randint(100000, 999999)}",
            birth=birth,
            study=study,
            institution=rng.choice(INSTITUTIONS),
            referring=(rng.choice(FAMILIES), rng.choice(GIVENS)),
            sex=rng.choice("MF"),
        )


def date_text(d: dt.date, rng: random.Random) -> str:
    fmt = rng.choice(["iso", "us", "eu", "dot", "mon", "compact", "us2"])
    if fmt == "iso":
        return f"{d:%Y-%m-%d}"
    if fmt == "us":
        return f"{d:%m/%d/%Y}"
    if fmt == "eu":
        return f"{d:%d/%m/%Y}"
    if fmt == "dot":
        return f"{d:%m.%d.%Y}"
    if fmt == "mon":
        return f"{d.day:02d}-{MONTHS[d.month - 1].title()}-{d.year}"
    if fmt == "compact":
        return f"{d:%Y%m%d}"
    return f"{d:%m/%d/%y}"


def hard_date_text(d: dt.date, rng: random.Random) -> str:
    """Date formats beyond :func:`date_text`: month names, two-digit years, other separators."""
    month = MONTHS[d.month - 1]
    return rng.choice(
        [
            f"{d.day} {month.title()} {d.year}",
            f"{month.title()} {d.day}, {d.year}",
            f"{d:%Y/%m/%d}",
            f"{d:%d.%m.%y}",
            f"{d:%d-%m-%Y}",
            f"{d:%Y.%m.%d}",
            f"{d.day:02d}{month}{d.year}",
            f"{d:%d/%m/%Y}",
        ]
    )


@dataclass
class Font:
    kind: str  # "ttf" or "hershey"
    name: str | int
    size: float
    thickness: int = 1
    antialias: bool = True


@dataclass
class Item:
    text: str
    phi: bool
    kind: str
    header_match: str = "none"
    header_field: str | None = None
    frames: str | list[int] = "all"
    label: str | None = None
    """A label drawn one space before the value ("DOB:"); scored as neither PHI nor non-PHI."""


@dataclass
class Region:
    text: str
    frame: str | int
    left: int
    top: int
    width: int
    height: int
    phi: bool
    kind: str
    header_match: str
    header_field: str | None
    mask: np.ndarray = field(repr=False)
    frames: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "frame": self.frame,
            "left": self.left,
            "top": self.top,
            "width": self.width,
            "height": self.height,
            "phi": self.phi,
            "kind": self.kind,
            "header_match": self.header_match,
            "header_field": self.header_field,
        }


@dataclass
class Case:
    name: str
    path: Path
    modality: str
    frames: int
    rows: int
    columns: int
    transfer_syntax: str
    regions: list[Region]
    identity: Identity


def _alpha(text: str, font: Font, x: int, y: int, rows: int, cols: int) -> np.ndarray:
    if font.kind == "ttf":
        fdir = font_dir()
        assert fdir is not None
        img = Image.new("L", (cols, rows), 0)
        draw = ImageDraw.Draw(img)
        draw.fontmode = "L" if font.antialias else "1"
        draw.text((x, y), text, fill=255, font=ImageFont.truetype(str(fdir / str(font.name)), int(font.size)))
        return np.asarray(img, dtype=np.float32) / 255.0
    canvas = np.zeros((rows, cols), dtype=np.uint8)
    (_, h), _base = cv2.getTextSize(text, int(font.name), font.size, font.thickness)
    cv2.putText(
        canvas,
        text,
        (x, y + h),
        int(font.name),
        font.size,
        255,
        font.thickness,
        cv2.LINE_AA if font.antialias else cv2.LINE_8,
    )
    return canvas.astype(np.float32) / 255.0


def _text_size(text: str, font: Font, rows: int, cols: int) -> tuple[int, int]:
    a = _alpha(text, font, 4, 4, max(rows, 400), max(cols, 2000))
    ys, xs = np.nonzero(a > 0.02)
    if xs.size == 0:
        return 0, 0
    return int(xs.max() - 4 + 1), int(ys.max() - 4 + 1)


def random_font(rng: random.Random, height: int) -> Font:
    """A font whose capital letters are about ``height`` pixels tall."""
    if font_dir() is not None and rng.random() < 0.7:
        return Font("ttf", rng.choice(TTF), max(8, round(height * 1.38)), antialias=rng.random() < 0.8)
    face = rng.choice(HERSHEY)
    scale = height / 22.0
    return Font("hershey", face, scale, max(1, round(height / 11)), antialias=rng.random() < 0.6)


# -- backgrounds (display domain, float 0..255) -------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, rows: int, cols: int, scale: int) -> np.ndarray:
    small = rng.normal(0, 1, (max(2, rows // scale), max(2, cols // scale))).astype(np.float32)
    return cv2.resize(small, (cols, rows), interpolation=cv2.INTER_CUBIC)


def background(kind: str, rows: int, cols: int, rng: np.random.Generator, shift: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    if kind == "CT":
        body = ((xx - cols / 2) / (0.42 * cols)) ** 2 + ((yy - rows / 2) / (0.36 * rows)) ** 2 < 1
        img = np.where(body, 95 + 12 * _smooth_noise(rng, rows, cols, 24), 4).astype(np.float32)
        img += rng.normal(0, 3, (rows, cols)).astype(np.float32)
        return np.clip(img, 0, 255)
    if kind in ("CR", "DX"):
        img = 150 - 60 * (((xx - cols / 2) / cols) ** 2 * 4) + 15 * _smooth_noise(rng, rows, cols, 40)
        for cx in (0.33, 0.67):
            lung = ((xx - cx * cols) / (0.14 * cols)) ** 2 + ((yy - 0.5 * rows) / (0.3 * rows)) ** 2 < 1
            img = np.where(lung, img - 70, img)
        img += rng.normal(0, 2, (rows, cols)).astype(np.float32)
        return np.clip(img, 20, 235)
    if kind == "US":
        cx, top = cols / 2, 0.12 * rows
        ang = np.degrees(np.arctan2(xx - cx, yy - top + 1e-3))
        rad = np.hypot(xx - cx, yy - top)
        sector = (np.abs(ang) < 35) & (rad > 0.05 * rows) & (rad < 0.85 * rows)
        speck = rng.rayleigh(1.0, (rows, cols + 64)).astype(np.float32)[:, shift % 64 : shift % 64 + cols]
        tissue = 70 + 35 * np.roll(_smooth_noise(rng, rows, cols, 30), shift, axis=1)
        img = np.where(sector, np.clip(tissue * speck * 0.8, 0, 200), 0)
        return img.astype(np.float32)
    # screen capture: flat panel with a framed image area
    img = np.full((rows, cols), 30, dtype=np.float32)
    img[rows // 6 : rows - rows // 8, cols // 8 : cols - cols // 8] = 90 + 20 * _smooth_noise(
        rng, rows - rows // 6 - rows // 8, cols - 2 * (cols // 8), 20
    )
    return img


# -- building a case ---------------------------------------------------------------------------------


def _layout(
    items: list[tuple[Item, Font]],
    rows: int,
    cols: int,
    rng: random.Random,
    corners: list[str],
    margin: int = 3,
) -> list[tuple[Item, Font, int, int]]:
    """Put items in lines at the image corners, items of a line separated by 1-3 spaces."""
    placed: list[tuple[Item, Font, int, int]] = []
    by_corner: dict[str, list[tuple[Item, Font]]] = {c: [] for c in corners}
    for k, it in enumerate(items):
        by_corner[corners[k % len(corners)]].append(it)
    occupied: list[tuple[int, int, int, int]] = []

    def free(x0: int, y0: int, x1: int, y1: int) -> bool:
        return all(x1 + 6 <= a or b + 6 <= x0 or y1 + 4 <= c or d + 4 <= y0 for a, c, b, d in occupied)

    for corner, group in by_corner.items():
        lines: list[list[tuple[Item, Font]]] = []
        for it in group:
            # PHI and non-PHI never share a line: an identifier makes its whole phrase PHI, so a
            # marker glued to a name on one line is (rightly) masked with it
            if lines and len(lines[-1]) < 3 and rng.random() < 0.5 and lines[-1][0][0].phi == it[0].phi:
                lines[-1].append(it)
            else:
                lines.append([it])
        top = corner.startswith("t")
        y = margin if top else rows - margin
        for line in lines:
            sizes = [
                _text_size((it.label + " " if it.label else "") + it.text, f, rows, cols) for it, f in line
            ]
            height = max(h for _, h in sizes)
            gaps = [int(rng.choice([0.45, 0.9, 1.4]) * height) + 4 for _ in line]
            width = sum(w for w, _ in sizes) + sum(gaps[1:])
            x0 = margin if corner.endswith("l") else cols - margin - width
            x0 = max(0, x0)
            y0 = y if top else y - height
            while not free(x0, y0, x0 + width, y0 + height) and 0 <= y0 <= rows - height:
                y0 += 3 if top else -3
            if y0 < 0 or y0 > rows - height or x0 + width > cols:
                continue
            occupied.append((x0, y0, x0 + width, y0 + height))
            x = x0
            for (it, f), (w, _), g in zip(line, sizes, [0, *gaps[1:]], strict=True):
                x += g
                placed.append((it, f, x, y0))
                x += w
            gap_y = max(4, int(height * rng.choice([0.3, 0.6])))
            y = y0 + height + gap_y if top else y0 - gap_y
    return placed


def build(
    name: str,
    out_dir: Path,
    *,
    modality: str,
    rows: int,
    cols: int,
    frames: int = 1,
    encoding: str = "native",
    seed: int = 0,
    text_height: tuple[int, int] = (9, 16),
    phi_items: int = 5,
    nonphi_items: int = 3,
    foreign: bool = False,
    transient: bool = False,
    no_text: bool = False,
    color_text: bool = True,
    vertical: int = 0,
    big_institution: bool = False,
    counters: bool = False,
    side_panel: bool = False,
    hard: bool = False,
) -> Case:
    """Render one case and write it to ``out_dir/name.dcm``.

    ``hard`` makes it adversarial (its own random stream, so the other cases of a seed are
    unchanged): names with diacritics, more date formats and faces, text at the very edge,
    inverse-video labels, low-contrast text, a scale bar across a line, lossy JPEG at lower
    quality, and other stored representations (MONOCHROME1, 16-bit with a window)."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    hrng = random.Random(f"hard-{seed}")
    ident = Identity.random(rng)
    if hard:
        if hrng.random() < 0.7:
            ident.family = hrng.choice(HARD_FAMILIES)
        if hrng.random() < 0.7:
            ident.given = hrng.choice(HARD_GIVENS)
    _ = rng.random()  # (kept so that seeds give the same cases)
    candidates = [
        (Item(f"{ident.family} {ident.given}", True, "name", "format", "PatientName"), 1.0),
        (Item(f"{ident.family}, {ident.given} {ident.initial}", True, "name", "format", "PatientName"), 0.5),
        (Item(f"{ident.given} {ident.family}", True, "name", "format", "PatientName"), 0.5),
        (Item(f"{ident.family}^{ident.given}", True, "name", "exact", "PatientName"), 0.4),
        (Item(ident.patient_id, True, "id", "exact", "PatientID"), 1.0),
        (Item(ident.patient_id, True, "id", "exact", "PatientID", label="MRN:"), 0.4),
        (Item(ident.accession, True, "accession", "exact", "AccessionNumber"), 0.6),
        (Item(date_text(ident.birth, rng), True, "dob", "format", "PatientBirthDate", label="DOB:"), 0.8),
        (Item(date_text(ident.study, rng), True, "date", "format", "StudyDate"), 1.0),
        (Item(ident.institution, True, "institution", "exact", "InstitutionName"), 0.6),
        (
            Item(
                ident.referring[0].title(), True, "physician", "format", "ReferringPhysicianName", label="Dr."
            ),
            0.4,
        ),
        (Item(f"[{ident.sex}]", True, "sex", "format", "PatientSex"), 0.3),
    ]
    chosen: list[Item] = []
    pool = list(candidates)
    while pool and len(chosen) < phi_items:
        total = sum(w for _, w in pool)
        r = rng.random() * total
        for k, (it, w) in enumerate(pool):
            r -= w
            if r <= 0:
                chosen.append(it)
                pool.pop(k)
                break
    if foreign:
        # A script the English weights do not cover (Georgian/Armenian/Hebrew in DejaVu Sans).
        chosen.append(
            Item(rng.choice(["ბაგრატიონი", "Հովհաննիսյան", "ישראלי שרה"]), True, "name", "none", None)
        )
    nonphi = rng.sample(
        NON_PHI.get(modality, NON_PHI["OT"]), k=min(nonphi_items, len(NON_PHI.get(modality, NON_PHI["OT"])))
    )
    if hard:
        for it in chosen:
            if it.kind in ("dob", "date") and hrng.random() < 0.7:
                it.text = hard_date_text(ident.birth if it.kind == "dob" else ident.study, hrng)
    items = chosen + [Item(t, False, "marker") for t in nonphi]
    if no_text:
        items = []
    fonts = []
    for it in items:
        h = rng.randint(*text_height)
        f = random_font(rng, h)
        if foreign and it.header_match == "none" and it.kind == "name":
            f = Font("ttf", "DejaVuSans.ttf", max(10, round(h * 1.38))) if font_dir() else f
        if hard and font_dir() is not None and hrng.random() < 0.5:
            f = Font("ttf", hrng.choice(HARD_TTF), max(8, round(h * 1.38)), antialias=hrng.random() < 0.8)
        fonts.append(f)
    pairs = list(zip(items, fonts, strict=True))
    rng.shuffle(pairs)
    corners = ["tl", "tr", "bl", "br"] if modality != "US" else ["tl", "tr", "bl"]
    placed = _layout(pairs, rows, cols, rng, corners, hrng.choice([0, 1, 3]) if hard else 3)
    if transient and frames > 3:
        lo = rng.randint(1, frames // 2)
        extra = Item(
            date_text(ident.study, rng) + " " + ident.family,
            True,
            "name",
            "format",
            "PatientName",
            frames=list(range(lo, min(frames, lo + 3))),
        )
        f = random_font(rng, rng.randint(*text_height))
        placed.append((extra, f, cols // 4, rows // 2))
    # colours (display domain)
    color = modality in ("US", "OT") and color_text
    palette = (
        [(255, 255, 255), (255, 255, 0), (0, 255, 0), (0, 255, 255), (255, 160, 40)]
        if color
        else [(255, 255, 255)]
    )
    regions: list[Region] = []
    layers = []
    expanded = []
    for it, f, x, y in placed:
        if it.label:
            _lw, _ = _text_size(it.label + " ", f, rows, cols)
            full, _ = _text_size(it.label + " " + it.text, f, rows, cols)
            vw, _ = _text_size(it.text, f, rows, cols)
            expanded.append((Item(it.label, False, "label", frames=it.frames), f, x, y))
            expanded.append(
                (
                    Item(it.text, it.phi, it.kind, it.header_match, it.header_field, it.frames),
                    f,
                    x + full - vw,
                    y,
                )
            )
        else:
            expanded.append((it, f, x, y))
    drawn = [(it, _alpha(it.text, f, x, y, rows, cols)) for it, f, x, y in expanded]
    if not no_text:
        drawn += _extras(
            drawn,
            ident,
            modality,
            rows,
            cols,
            frames,
            rng,
            text_height,
            vertical,
            big_institution,
            counters,
            side_panel,
        )
    for it, a in drawn:
        ys, xs = np.nonzero(a > 0.02)
        if xs.size == 0:
            continue
        rgb = rng.choice(palette) if color else (255, 255, 255)
        if not color and modality in ("CR", "DX") and rng.random() < 0.2:
            rgb = (0, 0, 0)  # dark text
        if hard:
            style = hrng.random()
            if style < 0.2:
                # inverse video: a label box in the text's colour, the text in black
                by0, by1 = max(0, int(ys.min()) - 3), min(rows, int(ys.max()) + 4)
                bx0, bx1 = max(0, int(xs.min()) - 3), min(cols, int(xs.max()) + 4)
                plate = np.zeros((rows, cols), dtype=np.float32)
                plate[by0:by1, bx0:bx1] = 1.0
                fr_all = list(range(frames)) if it.frames == "all" else list(it.frames)
                light = rgb if sum(rgb) > 300 else (255, 255, 255)
                layers.append((plate, np.asarray(light, dtype=np.float32), fr_all))
                rgb = (0, 0, 0)
            elif style < 0.4 and modality not in ("CR", "DX"):
                # low contrast: the text at about half the display range (on the dark margins of
                # US, CT and screens; on a radiograph's mid-grey it would be invisible to a reader
                # too, so not PHI a person could read)
                rgb = tuple(int(40 + 0.45 * c) for c in rgb)
        left, t = max(0, int(xs.min()) - 2), max(0, int(ys.min()) - 2)
        r, b = min(cols, int(xs.max()) + 3), min(rows, int(ys.max()) + 3)
        fr = list(range(frames)) if it.frames == "all" else list(it.frames)
        regions.append(
            Region(
                it.text,
                "all" if it.frames == "all" else fr[0],
                left,
                t,
                r - left,
                b - t,
                it.phi,
                it.kind,
                it.header_match,
                it.header_field,
                a >= 0.5,
                fr,
            )
        )
        layers.append((a, np.asarray(rgb, dtype=np.float32), fr))
    # frames
    if hard and regions and hrng.random() < 0.4:
        # a scale bar with ticks drawn across one line of text (partly hiding it)
        target = hrng.choice(regions)
        bar = np.zeros((rows, cols), dtype=np.float32)
        if hrng.random() < 0.5:
            x = target.left + target.width // 3
            bar[max(0, target.top - 20) : min(rows, target.top + target.height + 20), x : x + 2] = 1.0
            for ty in range(max(0, target.top - 20), min(rows, target.top + target.height + 20), 8):
                bar[ty : ty + 1, max(0, x - 3) : x + 5] = 1.0
        else:
            y = target.top + target.height // 2
            bar[y : y + 2, max(0, target.left - 20) : min(cols, target.left + target.width + 20)] = 1.0
        layers.append((bar, np.asarray((200, 200, 200), dtype=np.float32), list(range(frames))))
    disp = np.zeros((frames, rows, cols, 3), dtype=np.float32)
    base_kind = modality if modality in ("CT", "CR", "DX", "US") else "OT"
    static = background(base_kind, rows, cols, nrng)
    for i in range(frames):
        bg = (
            background(base_kind, rows, cols, np.random.default_rng(seed * 1000 + i), shift=3 * i)
            if frames > 1
            else static
        )
        img = np.repeat(bg[:, :, np.newaxis], 3, axis=2)
        if frames > 1 and base_kind != "US":
            # a moving blob: the anatomy moves, the overlay does not
            cy, cx = rows // 2 + int(10 * np.sin(i / 2)), cols // 2 + 3 * i - frames
            yy, xx = np.ogrid[0:rows, 0:cols]
            blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < (min(rows, cols) // 6) ** 2
            img[blob] = np.clip(img[blob] + 60, 0, 255)
        for a, rgb, fr in layers:
            if i in fr:
                img = img * (1 - a[:, :, np.newaxis]) + rgb[np.newaxis, np.newaxis, :] * a[:, :, np.newaxis]
        disp[i] = img
    if hard:
        encoding = hrng.choice(["native", "rle", "jpegls", "j2k", "jpeg", "jpeg"])
        quality = hrng.randint(60, 88)
        stored_kind = hrng.choice(["default", "mono1", "window16"])
        return _write(
            name, out_dir, ident, modality, disp, encoding, regions, color, rng, quality, stored_kind, hrng
        )
    return _write(name, out_dir, ident, modality, disp, encoding, regions, color, rng)


def _free(drawn: list[tuple[Item, np.ndarray]], a: np.ndarray, margin: int = 5) -> bool:
    """True when the text of ``a`` stays ``margin`` pixels away from every text already drawn."""
    if not (a > 0.02).any():
        return False
    taken = np.zeros(a.shape, dtype=np.uint8)
    for _, b in drawn:
        taken |= (b > 0.02).astype(np.uint8)
    grown = cv2.dilate(taken, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0
    return not bool((grown & (a > 0.02)).any())


def _rotated_alpha(text: str, font: Font, angle: int, x: int, y: int, rows: int, cols: int) -> np.ndarray:
    """``text`` drawn upright, turned by ``angle`` (90: reads bottom to top, 270: top to bottom),
    with its top-left corner at (x, y)."""
    w, h = _text_size(text, font, rows, cols)
    canvas = _alpha(text, font, 4, 4, h + 12, w + 12)
    turned = np.rot90(canvas, 1 if angle == 90 else -1)
    out = np.zeros((rows, cols), dtype=np.float32)
    th, tw = turned.shape
    if y + th > rows or x + tw > cols or x < 0 or y < 0:
        return out
    out[y : y + th, x : x + tw] = turned
    return out


def _extras(
    drawn: list[tuple[Item, np.ndarray]],
    ident: Identity,
    modality: str,
    rows: int,
    cols: int,
    frames: int,
    rng: random.Random,
    text_height: tuple[int, int],
    vertical: int,
    big_institution: bool,
    counters: bool,
    side_panel: bool,
) -> list[tuple[Item, np.ndarray]]:
    """Vertical lines, a large institution banner, cine counters and a side panel, where they fit."""
    out: list[tuple[Item, np.ndarray]] = []

    def place(item: Item, make: Any, tries: int = 12) -> None:
        for _ in range(tries):
            a = make()
            if a is not None and _free(drawn + out, a):
                out.append((item, a))
                return

    if big_institution:
        text = ident.institution
        h = rng.randint(20, 30)  # capital height; the font is about 1.4 times that (25-40 px)
        f = random_font(rng, h)
        w, th = _text_size(text, f, rows, cols)
        while w > cols - 8 and h > 10:
            h -= 2
            f = random_font(rng, h)
            w, th = _text_size(text, f, rows, cols)

        def banner() -> np.ndarray | None:
            if w > cols - 8:
                return None
            x = rng.randint(4, max(4, cols - w - 4))
            y = rng.choice(
                [rng.randint(4, max(4, rows // 5)), rng.randint(max(4, rows - rows // 5 - th), rows - th - 4)]
            )
            return _alpha(text, f, x, y, rows, cols)

        place(Item(text, True, "institution", "exact", "InstitutionName"), banner)
    pool = [
        Item(f"{ident.family} {ident.given}", True, "vertical", "format", "PatientName"),
        Item(ident.patient_id, True, "vertical", "exact", "PatientID"),
        Item(f"{ident.birth:%d.%m.%Y}", True, "vertical", "format", "PatientBirthDate"),
        Item(ident.institution, True, "vertical", "exact", "InstitutionName"),
    ]
    markers = {"CR": ["PORTABLE", "UPRIGHT", "SUPINE"], "DX": ["STANDING", "PORTABLE"], "MG": ["RCC", "LMLO"]}
    for k in range(vertical):
        if k % 3 == 2 and modality in markers:
            it = Item(rng.choice(markers[modality]), False, "vertical-marker")
        else:
            it = pool[rng.randrange(len(pool))]
        angle = rng.choice([90, 270])
        f = random_font(rng, rng.randint(max(10, text_height[0]), max(12, text_height[1])))
        tw, th = _text_size(it.text, f, rows, cols)

        def side(
            it: Item = it, f: Font = f, tw: int = tw, th: int = th, angle: int = angle
        ) -> np.ndarray | None:
            if tw + 24 > rows:
                return None
            x = rng.choice([3, cols - th - 16])
            y = rng.randint(rows // 6, max(rows // 6, rows - tw - rows // 6))
            return _rotated_alpha(it.text, f, angle, x, y, rows, cols)

        place(it, side)
    if side_panel:
        n = rng.randint(3, 5)
        texts = rng.sample(PANEL, k=n)
        h = rng.randint(max(8, text_height[0]), max(10, text_height[1]))
        f = random_font(rng, h)
        widths = [_text_size(t, f, rows, cols)[0] for t in texts]
        x = cols - max(widths) - 6 if rng.random() < 0.7 else 4
        y = rows // 4
        for t in texts:
            a = _alpha(t, f, x, y, rows, cols)
            if _free(drawn + out, a, 3):
                out.append((Item(t, False, "panel"), a))
            y += int(h * 1.9)
    if counters and frames > 1:
        h = rng.randint(max(9, text_height[0]), max(11, text_height[1]))
        f = random_font(rng, h)
        x = rng.randint(4, max(4, cols // 3))
        y = rows - 3 * h - 6
        step = rng.choice([0.033, 0.05, 0.1])
        for i in range(frames):
            for text, dx, kind in (
                (f"{i + 1}/{frames}", 0, "counter"),
                (f"{i * step:05.2f}s", int(5 * h), "timer"),
            ):
                a = _alpha(text, f, x + dx, y, rows, cols)
                if _free(drawn + [o for o in out if o[0].frames == "all"], a, 3):
                    out.append((Item(text, False, kind, frames=[i]), a))
    return out


def _write(
    name: str,
    out_dir: Path,
    ident: Identity,
    modality: str,
    disp: np.ndarray,
    encoding: str,
    regions: list[Region],
    color: bool,
    rng: random.Random,
    quality: int = 92,
    stored_kind: str = "default",
    hrng: random.Random | None = None,
) -> Case:
    frames, rows, cols = disp.shape[:3]
    ds = Dataset()
    # names with diacritics beyond Latin-1 (Ř, Ő, Ł) need UTF-8
    ds.SpecificCharacterSet = "ISO_IR 192" if hrng is not None else "ISO_IR 100"
    ds.PatientName = f"{ident.family}^{ident.given}^{ident.initial}"
    ds.PatientID = ident.patient_id
    ds.PatientBirthDate = f"{ident.birth:%Y%m%d}"
    ds.PatientSex = ident.sex
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = f"{ident.study:%Y%m%d}"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101530"
    ds.AccessionNumber = ident.accession
    ds.InstitutionName = ident.institution
    ds.ReferringPhysicianName = f"{ident.referring[0]}^{ident.referring[1]}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
        generate_uid(),
        generate_uid(),
        generate_uid(),
    )
    ds.StudyID = str(rng.randint(1, 9999))
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.Modality = modality
    ds.Manufacturer = "SYNTHETIC"
    ds.PatientOrientation = ""
    ds.BurnedInAnnotation = "YES"
    ds.Rows, ds.Columns = rows, cols
    if modality == "US":
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1" if frames > 1 else "1.2.840.10008.5.1.4.1.1.6.1"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL"]
    elif modality == "CR":
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
        ds.ImageType = ["DERIVED", "PRIMARY"]
        ds.ViewPosition = "AP"
        ds.BodyPartExamined = "CHEST"
    elif modality == "CT":
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.KVP = "120"
        ds.SliceThickness = "1.0"
        ds.ImagePositionPatient = [0, 0, 0]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [1, 1]
        ds.FrameOfReferenceUID = generate_uid()
        ds.PositionReferenceIndicator = ""
        ds.AcquisitionNumber = 1
    else:
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.ConversionType = "WSD"
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameIncrementPointer = 0x00181063
        ds.FrameTime = "33.3"
    if color:
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        stored = np.clip(np.rint(disp), 0, 255).astype(np.uint8)
    else:
        gray = disp[..., 0]
        ds.SamplesPerPixel = 1
        if stored_kind == "mono1":
            ds.PhotometricInterpretation = "MONOCHROME1"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            stored = np.rint((255.0 - gray) * 4095.0 / 255.0).astype(np.uint16)
        elif stored_kind == "window16":
            # signed 16-bit, a rescale and a window that maps the display range back exactly
            assert hrng is not None
            slope = hrng.choice([2, 4, 8])
            offset = hrng.randint(-2000, 500)
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            stored = (np.rint(gray * slope) + offset).astype(np.int16)
            ds.RescaleIntercept, ds.RescaleSlope = "0", "1"
            lo, hi = offset, offset + 255 * slope
            ds.WindowCenter, ds.WindowWidth = str((lo + hi) / 2), str(hi - lo + 1)
        elif modality in ("CR", "DX"):
            ds.PhotometricInterpretation = "MONOCHROME1"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            stored = np.rint((255.0 - gray) * 4095.0 / 255.0).astype(np.uint16)
        elif modality == "CT":
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            stored = (np.rint(gray * 8.0) - 1024).astype(np.int16)
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "HU"
            ds.WindowCenter, ds.WindowWidth = "-4", "2040"
        else:
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
            stored = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    if frames == 1:
        stored = stored[0]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    fds = FileDataset(str(out_dir / f"{name}.dcm"), ds, file_meta=meta, preamble=b"\0" * 128)
    fds.PixelData = stored.tobytes()
    fds["PixelData"].VR = "OB" if fds.BitsAllocated == 8 else "OW"
    if encoding == "jpeg" and stored.dtype != np.uint8:
        encoding = "j2k"  # baseline JPEG holds 8 bits only
    ts = _encode(fds, stored, encoding, quality)
    path = out_dir / f"{name}.dcm"
    out_dir.mkdir(parents=True, exist_ok=True)
    fds.save_as(path, enforce_file_format=True)
    return Case(name, path, modality, frames, rows, cols, str(ts), regions, ident)


def _encode(ds: FileDataset, stored: np.ndarray, encoding: str, quality: int = 92) -> UID:
    if encoding == "native":
        return UID(ExplicitVRLittleEndian)
    if encoding in ("rle", "jpegls", "j2k"):
        uid = {"rle": RLELossless, "jpegls": JPEGLSLossless, "j2k": JPEG2000Lossless}[encoding]
        ds.compress(uid, stored)
        return uid
    if encoding == "jpeg":
        from pydicom.encaps import encapsulate

        frames = (
            stored
            if ds.get("NumberOfFrames", 1) and stored.ndim == (4 if ds.SamplesPerPixel == 3 else 3)
            else stored[np.newaxis]
        )
        out = []
        for fr in frames:
            bio = io.BytesIO()
            Image.fromarray(fr).save(
                bio, format="JPEG", quality=quality, subsampling=1 if fr.ndim == 3 else 0
            )
            out.append(bio.getvalue())
        ds.PixelData = encapsulate(out)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        if ds.SamplesPerPixel == 3:
            ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        return UID(JPEGBaseline8Bit)
    raise ValueError(encoding)


def decode_stored(path: Path) -> np.ndarray:
    """Stored values (frames, rows, columns[, samples]) of a file, lossy colour converted to RGB."""
    from privguard.pixels.decode import load

    return load(path).frames


def write_ground_truth(cases: list[Case], path: Path) -> None:
    import json

    data = {
        "format": "burned-in-text-gt/1",
        "source": "tests/pixels/synth.py",
        "files": {
            c.path.name: {
                "modality": c.modality,
                "frames": c.frames,
                "regions": [r.to_json() for r in c.regions],
            }
            for c in cases
        },
    }
    path.write_text(json.dumps(data, indent=1))


def dataset(path: Path) -> Dataset:
    return pydicom.dcmread(path)
