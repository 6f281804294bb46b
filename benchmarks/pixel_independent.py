"""A second, independent held-out set for the burned-in text stage (issue 11).

``benchmarks/pixel_heldout.py`` scores the stage on ``tests/pixels/synth.py``, the generator the
stage was tuned against. This one shares none of its code, names, layouts or rendering: a viewer-
style overlay in the four corners of CT and MR slices, a CR/DX label block with an orientation
marker, an ultrasound screen capture (RGB, banner, side parameters, a cine counter), and a
mammography side label written bottom-to-top. Text is drawn with PIL, anti-aliased or as hard
one-bit strokes (older devices), in any of the DejaVu faces, in white, grey, yellow or green.
The header holds the same identity as the burned-in text, as a real file would.

PHI lines: the patient's name (several orders and separators), ID, date of birth, study date
with time, accession number, institution and the referring physician. Non-PHI lines: technique
(kV, mA, slice thickness, window), series/image numbers, orientation markers, probe and depth,
frame counters and frame rates, body part.

Scored with ``tests/pixels/scoring.py`` (exact glyph masks): PHI lines redacted, non-PHI lines
kept, pixels changed outside text lines, and files left BurnedInAnnotation NO with PHI readable.

    .venv/bin/python benchmarks/pixel_independent.py --count 16 --seed 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "pixels"))

import scoring  # noqa: E402

FONTS = Path("/usr/share/fonts/truetype/dejavu")
FACES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSerifCondensed-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
)
SURNAMES = (
    "HARGREAVES",
    "OYELARAN",
    "LINDQVIST",
    "CASTELLANOS",
    "NAKAMURA",
    "PETROVIC",
    "OKONKWO",
    "VANDERBILT",
    "FITZGERALD",
    "ABERNATHY",
    "KOWALCZYK",
    "MONTGOMERY",
    "DELACROIX",
    "BRANNIGAN",
    "SØRENSEN",
    "QUINTERO",
)
FORENAMES = (
    "ROSALIND",
    "TOBIAS",
    "EVANGELINE",
    "MAXIMILIAN",
    "PRISCILLA",
    "AUGUSTIN",
    "MARGUERITE",
    "DESMOND",
    "CORNELIA",
    "LEOPOLD",
    "ISADORA",
    "BARNABY",
    "GWENDOLYN",
    "OSWALD",
    "HENRIETTA",
    "THADDEUS",
)
HOSPITALS = (
    "ST. BARTHOLOMEW MEDICAL CENTER",
    "Riverside Regional Hospital",
    "NORTHGATE CLINIC IMAGING",
    "Mercy Heights Health System",
    "LAKEVIEW UNIVERSITY HOSPITAL",
    "Kingsbridge Children's Clinic",
)


@dataclass
class Person:
    family: str
    given: str
    pid: str
    accession: str
    birth: dt.date
    study: dt.datetime
    hospital: str
    referring: str
    sex: str

    @classmethod
    def draw(cls, r: random.Random) -> Person:
        return cls(
            family=r.choice(SURNAMES),
            given=r.choice(FORENAMES),
            pid=r.choice(
                (
                    f"MRN{r.randint(100000, 999999)}",
                    str(r.randint(10**7, 10**9)),
                    f"{r.randint(10, 99)}-{r.randint(1000, 9999)}-{r.randint(10, 99)}",
                )
            ),
            accession=f"A{r.randint(10**6, 10**7)}",
            birth=dt.date(r.randint(1930, 2012), r.randint(1, 12), r.randint(1, 28)),
            study=dt.datetime(
                r.randint(2010, 2025), r.randint(1, 12), r.randint(1, 28), r.randint(6, 20), r.randint(0, 59)
            ),
            hospital=r.choice(HOSPITALS),
            referring=f"DR {r.choice(SURNAMES)}",
            sex=r.choice("MF"),
        )

    def name(self, r: random.Random) -> str:
        return r.choice(
            (
                f"{self.family}, {self.given}",
                f"{self.family}^{self.given}",
                f"{self.given} {self.family}",
                f"{self.family.title()}, {self.given.title()}",
            )
        )

    def birth_text(self, r: random.Random) -> str:
        b = self.birth
        return r.choice((f"DOB: {b:%m/%d/%Y}", f"Born {b:%d-%b-%Y}", f"{b:%Y.%m.%d}", f"DOB {b:%d.%m.%Y}"))

    def study_text(self, r: random.Random) -> str:
        s = self.study
        return r.choice(
            (f"{s:%m/%d/%Y %H:%M}", f"{s:%d %b %Y} {s:%H:%M:%S}", f"{s:%Y-%m-%d}", f"Exam {s:%d/%m/%y}")
        )


@dataclass
class Line:
    text: str
    phi: bool
    kind: str
    vertical: bool = False
    label: str = ""
    """Drawn before the text ("DOB: "); scored neither way, as a label may stay."""


@dataclass
class Case:
    name: str
    path: Path
    truths: list[scoring.Truth] = field(default_factory=list)


def _font(r: random.Random, size: int):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    return ImageFont.truetype(str(FONTS / r.choice(FACES)), size)


def _glyphs(text: str, font, aa: bool, vertical: bool) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The line's alpha (0..1), tight, rotated for a bottom-to-top line."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(text)
    im = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    d = ImageDraw.Draw(im)
    d.fontmode = "L" if aa else "1"
    d.text((2 - left, 2 - top), text, font=font, fill=255)
    a = np.asarray(im, dtype=np.float32) / 255.0
    if vertical:
        a = np.rot90(a)  # bottom-to-top
    ys, xs = np.nonzero(a > 0.05)
    return a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _background(kind: str, rows: int, cols: int, g: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = rows / 2, cols / 2
    if kind in ("CT", "MR"):
        body = (((yy - cy) / (rows * 0.38)) ** 2 + ((xx - cx) / (cols * 0.42)) ** 2) < 1
        img = np.where(body, 0.35 + 0.1 * np.sin(xx / 9) * np.cos(yy / 13), 0.0)
    elif kind == "US":
        ang = np.arctan2(xx - cx, yy - rows * 0.12)
        rad = np.hypot(xx - cx, yy - rows * 0.12)
        fan = (np.abs(ang) < 0.6) & (rad > rows * 0.08) & (rad < rows * 0.85)
        img = np.where(fan, 0.25 + 0.25 * g.random((rows, cols)), 0.0)
    else:  # CR, DX, MG: a broad exposure field
        img = 0.2 + 0.45 * np.exp(-(((yy - cy) / (rows * 0.45)) ** 2) - ((xx - cx) / (cols * 0.35)) ** 2)
        img = img + 0.03 * g.standard_normal((rows, cols))
    return np.clip(img, 0, 1).astype(np.float32)


def _split_label(text: str) -> tuple[str, str]:
    """("04/24/1994", "DOB: ") from "DOB: 04/24/1994": the words before the first digit are a label."""
    i = next((k for k, ch in enumerate(text) if ch.isdigit()), 0)
    j = text.rfind(" ", 0, i) + 1 if i else 0
    return text[j:], text[:j]


def _layout(kind: str, p: Person, r: random.Random, frames: int) -> dict[str, list[Line]]:
    """Lines per corner ("tl", "tr", "bl", "br", "side")."""
    name = Line(p.name(r), True, "name")
    pid = Line(p.pid, True, "id", label=r.choice(("ID: ", "Pat ID ", "")))
    b_text, b_label = _split_label(p.birth_text(r))
    s_text, s_label = _split_label(p.study_text(r))
    dob = Line(b_text, True, "birth", label=b_label)
    when = Line(s_text, True, "date", label=s_label)
    acc = Line(p.accession, True, "accession", label="Acc# ")
    hosp = Line(p.hospital, True, "institution")
    ref = Line(p.referring, True, "physician", label="Ref: ")
    tech = {
        "CT": [
            "KV 120",
            f"mA {r.randint(80, 400)}",
            f"{r.choice((0.625, 1.25, 2.5, 5.0))} mm",
            "W 400 L 40",
            f"Se {r.randint(1, 9)}",
            f"Im {r.randint(1, 300)}",
        ],
        "MR": [
            f"TR {r.randint(400, 5000)}",
            f"TE {r.randint(10, 120)}",
            "AX T2 FLAIR",
            f"Se {r.randint(1, 12)}",
            f"Im {r.randint(1, 40)}/40",
        ],
        "US": [
            "C5-1",
            f"Depth {r.randint(8, 22)} cm",
            f"FR {r.randint(12, 60)} Hz",
            "MI 0.9  TIS 0.3",
            "GAIN 52%",
            "ABDOMEN",
        ],
        "CR": [
            "PA",
            f"{r.randint(60, 125)} kVp",
            f"{r.choice((1.6, 2.5, 3.2, 4.0))} mAs",
            "CHEST",
            "STANDING",
        ],
        "MG": ["R CC", "28 kV", f"{r.randint(40, 140)} mAs", "Comp 12 mm", "Force 90 N"],
    }[kind]
    tech_lines = [Line(t, False, "technique") for t in r.sample(tech, min(len(tech), r.randint(2, 4)))]
    phi = [name, pid, dob, when, acc, hosp, ref]
    r.shuffle(phi)
    phi = phi[: r.randint(4, 7)]
    if kind == "US":
        out = {"tl": phi[:3], "tr": phi[3:], "side": [], "bl": tech_lines, "br": []}
    elif kind == "MG":
        side = [Line(x.text, True, x.kind, True) for x in phi[:2]]
        out = {"tl": [], "tr": tech_lines, "bl": [], "br": phi[2:], "side": side}
    else:
        out = {"tl": phi[:4], "tr": phi[4:], "bl": tech_lines[:2], "br": tech_lines[2:]}
    if kind == "CR":
        out.setdefault("marker", []).append(Line(r.choice(("L", "R")), False, "marker"))
    if frames > 1:
        out["br"] = [*out.get("br", []), Line("1/{n}", False, "counter")]
    return out


#: How the text is set off from the image (``--style``): ``plain``; ``shadow`` (a black copy one
#: pixel down and right, as viewers draw it to stay readable on any background); ``outline`` (a
#: black rim all round each letter); ``plate`` (a darkened box behind each line).
STYLES = ("plain", "shadow", "outline", "plate")


def _set_off(region: np.ndarray, alpha: np.ndarray, style: str) -> np.ndarray:
    """``region`` (h, w, 3) with the style's dark set-off drawn for the text ``alpha`` (h, w)."""
    import cv2

    if style == "plain":
        return region
    if style == "plate":
        return region * 0.35
    if style == "shadow":
        rim = np.zeros_like(alpha)
        rim[1:, 1:] = alpha[:-1, :-1]
    else:
        rim = cv2.dilate(alpha, np.ones((3, 3), np.uint8))
    return region * (1 - rim[..., None])


def build(name: str, out_dir: Path, seed: int, style: str = "plain") -> Case:
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    r = random.Random(seed)
    g = np.random.default_rng(seed)
    kind = r.choice(("CT", "MR", "US", "US", "CR", "MG"))
    frames = r.choice((1, 1, 6)) if kind == "US" else 1
    rows, cols = {
        "CT": (512, 512),
        "MR": (r.choice((256, 384)),) * 2,
        "US": (480, 640),
        "CR": (1024, 880),
        "MG": (1024, 768),
    }[kind]
    p = Person.draw(r)
    lines = _layout(kind, p, r, frames)
    rgb = kind == "US" and r.random() < 0.7
    base = _background(kind, rows, cols, g)
    size = {"CT": (11, 16), "MR": (10, 14), "US": (12, 18), "CR": (18, 30), "MG": (18, 28)}[kind]
    aa = r.random() < 0.6
    colour = np.array(r.choice(((1, 1, 1), (1, 1, 0.2), (0.4, 1, 0.4), (0.85, 0.85, 0.85))), np.float32)
    level = r.choice((1.0, 0.8, 0.65))
    stack = np.repeat(base[None, ..., None], frames, 0) * np.ones(3, np.float32)
    truths: list[scoring.Truth] = []
    margin = r.randint(4, 14)
    used = np.zeros((rows, cols), bool)

    def place(line: Line, y: int, x: int, alpha: np.ndarray, frames_of: list[int]) -> None:
        h, w = alpha.shape
        for f in frames_of:
            if style != "plain":
                d = 3 if style == "plate" else 1
                y0, x0, y1, x1 = max(0, y - d), max(0, x - d), min(rows, y + h + d), min(cols, x + w + d)
                pad = np.zeros((y1 - y0, x1 - x0), np.float32)
                pad[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = alpha
                stack[f, y0:y1, x0:x1] = _set_off(stack[f, y0:y1, x0:x1], pad, style)
            region = stack[f, y : y + h, x : x + w]
            c = colour * level if not rgb else colour
            stack[f, y : y + h, x : x + w] = region * (1 - alpha[..., None]) + c * alpha[..., None]
        mask = np.zeros((rows, cols), bool)
        mask[y : y + h, x : x + w] = alpha > 0.5
        used[max(0, y - 2) : y + h + 2, max(0, x - 2) : x + w + 2] = True
        truths.append(scoring.Truth(line.text, line.phi, line.kind, x, y, w, h, frames_of, mask))

    for corner, items in lines.items():
        if not items:
            continue
        fsize = r.randint(*size)
        y = margin if corner in ("tl", "tr", "marker") else rows - margin
        if corner in ("bl", "br"):
            y -= int(len(items) * fsize * 1.35)
        corner_font = _font(r, fsize)
        for line in items:
            font = corner_font if r.random() < 0.8 else _font(r, fsize)
            if line.kind == "counter":
                alphas = [
                    _glyphs(line.text.format(n=frames).replace("1/", f"{k + 1}/"), font, aa, False)
                    for k in range(frames)
                ]
                h = max(a.shape[0] for a in alphas)
                w = max(a.shape[1] for a in alphas)
                x = cols - margin - w
                for k, a in enumerate(alphas):
                    place(Line(f"{k + 1}/{frames}", False, "counter"), y, x, a, [k])
                y += int(h * 1.4)
                continue
            a = _glyphs(line.label + line.text, font, aa, line.vertical)
            h, w = a.shape
            if corner == "side":
                x, yy = margin, rows // 2 - h // 2 + (0 if line is items[0] else -h - 12)
                if x + w < cols and yy >= 0 and yy + h < rows and not used[yy : yy + h, x : x + w].any():
                    place(line, yy, x, a, list(range(frames)))
                continue
            if corner == "marker":
                x, yy = cols // 2 + r.randint(-cols // 4, cols // 4), rows // 5
                x = min(x, cols - margin - w)  # a wide marker stays inside the image
                place(line, yy, x, a, list(range(frames)))
                continue
            x = margin if corner in ("tl", "bl") else cols - margin - w
            if x < 0 or x + w > cols or y + h >= rows or used[y : y + h, x : x + w].any():
                y += int(h * 1.4)
                continue
            if line.label:
                # The label and the text as two regions: split where the label's advance ends.
                cut = round(font.getlength(line.label)) - max(0, font.getbbox(line.label + line.text)[0]) + 2
                cut = max(1, min(w - 1, cut))
                place(Line(line.label.strip(), False, "label"), y, x, a[:, :cut], list(range(frames)))
                place(line, y, x + cut, a[:, cut:], list(range(frames)))
            else:
                place(line, y, x, a, list(range(frames)))
            y += int(max(h, fsize) * 1.35)

    meta = FileMetaDataset()
    sop_class = {
        "CT": "1.2.840.10008.5.1.4.1.1.2",
        "MR": "1.2.840.10008.5.1.4.1.1.4",
        "US": "1.2.840.10008.5.1.4.1.1.6.1",
        "CR": "1.2.840.10008.5.1.4.1.1.1",
        "MG": "1.2.840.10008.5.1.4.1.1.1.2",
    }[kind]
    if kind == "US" and frames > 1:
        sop_class = "1.2.840.10008.5.1.4.1.1.3.1"
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = out_dir / f"{name}.dcm"
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = kind
    ds.PatientName = f"{p.family}^{p.given}"
    ds.PatientID = p.pid
    ds.PatientBirthDate = f"{p.birth:%Y%m%d}"
    ds.PatientSex = p.sex
    ds.StudyDate = f"{p.study:%Y%m%d}"
    ds.StudyTime = f"{p.study:%H%M%S}"
    ds.AccessionNumber = p.accession
    ds.InstitutionName = p.hospital
    ds.ReferringPhysicianName = p.referring.replace("DR ", "") + "^"
    ds.ImageType = ["DERIVED", "SECONDARY"] if kind in ("US",) else ["ORIGINAL", "PRIMARY"]
    ds.Rows, ds.Columns = rows, cols
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameTime = "66.7"
    if rgb:
        px = (np.clip(stack, 0, 1) * 255).astype(np.uint8)
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        arr = px if frames > 1 else px[0]
    else:
        grey = stack.mean(axis=-1)
        bits = 8 if kind == "US" else 12
        px = (np.clip(grey, 0, 1) * (2**bits - 1)).astype(np.uint8 if bits == 8 else np.uint16)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (
            (8, 8, 7, 0) if bits == 8 else (16, 12, 11, 0)
        )
        arr = px if frames > 1 else px[0]
    ds.PixelData = arr.tobytes()
    ds.BurnedInAnnotation = "YES"
    ds.save_as(path, enforce_file_format=True)
    pydicom.dcmread(path)  # readable
    return Case(name, path, truths)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", help="comma-separated file numbers to run (debugging one case)")
    ap.add_argument("--report", action="store_true", help="print each file's pixel report")
    ap.add_argument("--keep", type=Path, help="copy the inputs and outputs here (debugging)")
    ap.add_argument("--style", choices=STYLES, default="plain", help="how the text is set off (see STYLES)")
    args = ap.parse_args(argv)
    only = {int(k) for k in args.only.split(",")} if args.only else None
    import pydicom

    from privguard.deidentifier import Deidentifier, PixelOptions
    from privguard.pixels.decode import load
    from privguard.pseudonym.keys import ProjectKey

    with tempfile.TemporaryDirectory(prefix="privguard-indep-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        cases = [
            build(f"indep_{args.seed}_{i}", root / "in", args.seed * 1000 + i, args.style)
            for i in range(args.count)
            if only is None or i in only
        ]
        deid = Deidentifier("basic", ProjectKey.generate(), pixels=PixelOptions(ocr="auto", device="cpu"))
        t0 = time.perf_counter()
        try:
            results = deid.files([c.path for c in cases], root / "out")
        finally:
            deid.close()
        seconds = time.perf_counter() - t0
        if args.keep:
            shutil.copytree(root, args.keep, dirs_exist_ok=True)
        scores, false_no, review, misses, failed = [], 0, 0, [], []
        for c, res in zip(cases, results, strict=True):
            if res.status != "ok" or res.output is None:
                failed.append(f"{c.name}: {res.status} {res.reason}")
                continue
            before = load(c.path).frames
            after = load(root / "out" / res.output).frames
            s = scoring.score(c.name, before, after, c.truths)
            scores.append(s)
            if args.report:
                print(c.name, json.dumps(res.pixels, default=str))
            ds = pydicom.dcmread(root / "out" / res.output, stop_before_pixels=True)
            leaked = [x for x in s.regions if x.phi and not x.ok]
            if leaked and ds.get("BurnedInAnnotation") == "NO":
                false_no += 1
            if (res.pixels or {}).get("verification") == "needs_review" or res.status == "needs_review":
                review += 1
            misses += [
                f"{c.name} {'PHI' if x.phi else 'non-PHI'} {x.kind} {x.text!r} {x.changed:.2f}"
                for x in s.regions
                if not x.ok
            ]
        summary = scoring.summary(scores)
        out = {
            "seconds": round(seconds, 1),
            "files": len(cases),
            "summary": summary,
            "false_clean_claims": false_no,
            "needs_review": review,
            "failed": failed,
            "misses": misses,
            "hidden_not_changed": [
                f"{s.name} {x.kind} {x.text!r} {x.strict:.2f}"
                for s in scores
                for x in s.regions
                if x.phi and x.ok and x.strict < scoring.REDACTED
            ],
            "outside_over_floor": {
                s.name: round(100 * s.outside_share, 3) for s in scores if s.outside_share >= 0.002
            },
        }
        print(json.dumps(out, indent=1))
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
