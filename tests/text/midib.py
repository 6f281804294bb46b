"""A MIDI-B-style scorer for the research profile's free-text cleaning.

The MIDI-B challenge (MICCAI 2024) scores a de-identifier per attribute on two
counts: PHI that must be **removed** and research data that must be
**retained**. This module generates such a corpus and scores outputs the same way:

* every text attribute that ``research`` keeps and cleans (Clean Descriptors,
  patient characteristics, items of RequestAttributesSequence) gets a value that
  mixes **PHI** (a person name that occurs nowhere else in the header, of varied
  origin and casing, with or without a title; phone numbers valid or not; codes
  after identifier keywords; street addresses and postcodes; e-mail; dates; ages
  over 89) with **clinical words that must stay** (anatomy, sequences, devices,
  eponyms, words that are also names: ``CHEST``, ``Hodgkin lymphoma``, ``Will``);
* each planted PHI item counts as removed when none of its identifying words or
  digit groups is left in the output value; each clinical word counts as
  retained when it is still there;
* linkage and retention checks: UIDs replaced and consistent across files of
  a study, dates shifted by one offset per patient, patient characteristics and
  device identity kept.

Nothing is random at scoring time: the corpus is a function of the seed.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

#: (given, family) of many origins; none is used in a file's own PN attributes.
NAMES: list[tuple[str, str]] = [
    ("Maria", "Gonzalez"),
    ("Kevin", "O'Brien"),
    ("Aisha", "Bello"),
    ("Wei", "Zhang"),
    ("Priya", "Raghunathan"),
    ("Mohammed", "Al-Farsi"),
    ("Olga", "Ivanova"),
    ("Thanh", "Nguyen"),
    ("Jürgen", "Müller"),
    ("Sophie", "Lefèvre"),
    ("Kwame", "Mensah"),
    ("Yuki", "Tanaka"),
    ("Ji-woo", "Park"),
    ("Carlos", "Hernandez"),
    ("Fatima", "Khan"),
    ("Sean", "McCarthy"),
    ("Ingrid", "Johansson"),
    ("Marek", "Kowalczyk"),
    ("Giulia", "Bianchi"),
    ("Tomasz", "Nowak"),
    ("Chinedu", "Okafor"),
    ("Emily", "Thompson"),
    ("Rahul", "Sharma"),
    ("Ana", "Silva"),
    ("Lars", "Andersen"),
    ("Mei", "Chen"),
    ("Dmitri", "Volkov"),
    ("Aylin", "Yilmaz"),
    ("Pedro", "Alvarez"),
    ("Hannah", "Schmidt"),
    ("Oluwaseun", "Adeyemi"),
    ("Siobhan", "Murphy"),
    ("Javier", "Ramirez"),
    ("Svetlana", "Petrova"),
    ("Nadia", "Haddad"),
    ("Brandon", "Fitzgerald"),
    ("Keiko", "Watanabe"),
    ("Tariq", "Rahman"),
    ("Lucia", "Moreno"),
    ("Bogdan", "Popescu"),
]
#: Names with no dictionary entry: found only through context (titles, ``by``).
RARE_SURNAMES = ["Xyloquist", "Brackenthorpe", "Quennevaux", "Zwirblewicz", "Ottavanelli", "Drummelsby"]
TITLED = [
    "Dr. {g} {f}",
    "Dr {f}",
    "tech {g} {f}",
    "by {g} {f}",
    "per {f}, {g}",
    "RN {g} {f}",
    "Prof. {f}",
    "{g} {f} MD",
    "{f}, {g}, RN",
    "Referring: {F}, {G} MD",
    "seen by {lg} {lf}",
    "{gi}. {f}",
    "Sonographer: {g}",
]
BARE = ["{g} {f}", "{F}, {G}", "{F}^{G}", "{G} {F}", "{g}", "{f}, {g}", "{g} {f} called", "Pt {g} {f}"]
#: Clinical phrases that must survive (words that are also names included).
CLINICAL = [
    "CT CHEST W CONTRAST",
    "AX T1 POST GAD",
    "MRI BRAIN WO",
    "HEAD CT ROUTINE",
    "Hodgkin lymphoma staging",
    "Colles fracture left wrist",
    "Hill-Sachs lesion",
    "Siemens Vida 3T",
    "Omnipaque 350 IV",
    "Chest X-Ray PA",
    "T2 FLAIR SAG",
    "Parkinson disease",
    "Baker cyst",
    "follow-up nodule",
    "Will repeat in 6 months",
    "May need sedation",
    "Rose Bengal stain",
    "Mark on skin",
    "ABDOMEN PELVIS",
    "Graves disease",
    "KNEE LEFT",
    "portable AP supine",
    "Crohn disease",
    "low dose protocol",
    "Grace period",
    "CTPA",
]
PHONES_INVALID = [
    "+1 555 248 3435",
    "(555) 010-4477",
    "555-301-9822",
    "+44 20 0000 1111",
    "06 00 11 22 33",
    "001-507-843-9150x00806",
    "(874)289-0682x883",
    "351.839.6937",
]
PHONES_VALID = ["+1 617 253 3435", "617-555-0199", "+49 30 1234567", "(212) 639-2000", "+1-412-438-8675"]
CODES = [
    "Ref UXQTYG",
    "order RQ48213",
    "case 2019-4432",
    "acc A7X9KQ",
    "protocol P2024X7",
    "Ref: KDPWZT",
    "MRN 88412",
    "order# ORD-99812",
]
ADDRESSES = [
    "12 Elm Street",
    "4410 N. Oak Park Ave",
    "77 Sunset Blvd, Apt 4",
    "Boston, MA 02115",
    "900 Lakeview Drive",
    "Hauptstraße 12",
]
EMAILS = ["j.doe@stmarys.org", "kowalczyk@clinic.local", "tech7@hospital.example.com"]
DATES = ["3 May 2021", "05/03/2021", "2021-05-03", "March 4th, 2019", "04-MAR-2019"]
AGES = ["92 yo", "age 95", "93-year-old"]

#: Text attributes research keeps and cleans, with their VR and length limit.
ATTRIBUTES: dict[str, tuple[str, int]] = {
    "StudyDescription": ("LO", 64),
    "SeriesDescription": ("LO", 64),
    "ImageComments": ("LT", 10240),
    "AcquisitionComments": ("LT", 10240),
    "PatientComments": ("LT", 10240),
    "StudyComments": ("LT", 10240),
    "AdditionalPatientHistory": ("LT", 10240),
    "ReasonForStudy": ("LO", 64),
    "RequestingService": ("LO", 64),
    "ProtocolName": ("LO", 64),
    "PerformedProcedureStepDescription": ("LO", 64),
    "Occupation": ("SH", 16),
    "PatientState": ("LO", 64),
    "AcquisitionDeviceProcessingDescription": ("LO", 64),
    "AdmittingDiagnosesDescription": ("LO", 64),
    "MedicalAlerts": ("LO", 64),
    "Allergies": ("LO", 64),
    "RequestedProcedureDescription": ("LO", 64),
    "ReasonForVisit": ("UT", 10240),
    "DerivationDescription": ("ST", 1024),
    "IdentifyingComments": ("LT", 10240),
    "RequestAttributesSequence.RequestedProcedureDescription": ("LO", 64),
    "RequestAttributesSequence.ScheduledProcedureStepDescription": ("LO", 64),
}


@dataclass
class Plant:
    """One planted item: the attribute, the kind, and the strings that must (not) survive."""

    attribute: str
    kind: str  # "name", "phone", "code", "address", "email", "date", "age" or "clinical"
    text: str
    must_go: tuple[str, ...] = ()
    must_stay: tuple[str, ...] = ()


@dataclass
class Case:
    ds: FileDataset
    plants: list[Plant] = field(default_factory=list)
    study: str = ""


def _name_text(rng: random.Random, used: set[str]) -> tuple[str, tuple[str, ...]]:
    g, f = rng.choice(NAMES)
    if rng.random() < 0.2:
        f = rng.choice(RARE_SURNAMES)
        form = rng.choice(TITLED)
    else:
        form = rng.choice(TITLED + BARE)
    casing = rng.random()
    fields = {"g": g, "f": f, "G": g.upper(), "F": f.upper(), "lg": g.lower(), "lf": f.lower(), "gi": g[0]}
    text = form.format(**fields)
    if casing < 0.2 and "{g}" in form:
        text = form.format(**{**fields, "g": g.upper(), "f": f.upper()})
    has_given = any(k in form for k in ("{g}", "{G}", "{lg}"))
    has_family = any(k in form for k in ("{f}", "{F}", "{lf}"))
    parts = [
        w
        for w in re.split(r"[\s,^]+", (g if has_given else "") + " " + (f if has_family else ""))
        if len(w) > 1
    ]
    if form in ("{g}",):
        parts = [g]
    used.update(p.lower() for p in parts)
    return text, tuple(parts)


def _phi(kind: str, rng: random.Random, used: set[str]) -> tuple[str, tuple[str, ...]]:
    if kind == "name":
        return _name_text(rng, used)
    if kind == "phone":
        p = rng.choice(PHONES_INVALID + PHONES_VALID)
        prefix = rng.choice(["call ", "tel ", "", "phone: ", "contact "])
        return prefix + p, tuple(re.findall(r"\d{3,}", p))
    if kind == "code":
        c = rng.choice(CODES)
        return c, (re.split(r"[\s:#]+", c)[-1],)
    if kind == "address":
        a = rng.choice(ADDRESSES)
        return a, tuple(
            w
            for w in re.findall(r"[A-Za-zß]{3,}|\d{2,}", a)
            if w.lower() not in ("apt", "ave", "street", "drive", "blvd")
        )
    if kind == "email":
        e = rng.choice(EMAILS)
        return e, (e,)
    if kind == "date":
        d = rng.choice(DATES)
        return d, tuple(re.findall(r"\d{2,}", d))
    a = rng.choice(AGES)
    return a, tuple(re.findall(r"\d+", a))


def _value(attr: str, vr: str, limit: int, rng: random.Random, used: set[str]) -> tuple[str, list[Plant]]:
    short = limit <= 16
    if short:
        kind = rng.choice(["code", "name"])
        text, go = (
            _phi(kind, rng, used)
            if kind == "name"
            else (rng.choice(["Ref UXQTYG", "acc A7X9KQ"]), ("UXQTYG", "A7X9KQ"))
        )
        if kind == "code":
            go = tuple(g for g in go if g in text)
        if len(text) > limit:
            _given, f = rng.choice(NAMES)
            text, go = f, (f,)
            used.add(f.lower())
        return text, [Plant(attr, kind, text, must_go=go)]
    kinds = ["name", "phone", "code", "address", "email", "date", "age"]
    k1 = rng.choice(kinds)
    phi1, go1 = _phi(k1, rng, used)
    clin = rng.choice(CLINICAL)
    stay = tuple(w for w in re.findall(r"[A-Za-z][A-Za-z\-]+|\d+[A-Za-z]*", clin))
    templates = ["{c} {p}", "{c}, {p}", "{p}: {c}", "{c} - {p}", "{c} ({p})"]
    text = rng.choice(templates).format(c=clin, p=phi1)
    plants = [Plant(attr, k1, phi1, must_go=go1), Plant(attr, "clinical", clin, must_stay=stay)]
    if limit > 64:
        k2 = rng.choice(kinds)
        phi2, go2 = _phi(k2, rng, used)
        clin2 = rng.choice(CLINICAL)
        text += f". {clin2}; {phi2}."
        plants += [
            Plant(attr, k2, phi2, must_go=go2),
            Plant(
                attr,
                "clinical",
                clin2,
                must_stay=tuple(re.findall(r"[A-Za-z][A-Za-z\-]+|\d+[A-Za-z]*", clin2)),
            ),
        ]
    if len(text) > limit:  # keep within the VR: drop the clinical part rather than truncate PHI
        text = phi1[:limit]
        plants = [Plant(attr, k1, text, must_go=tuple(g for g in go1 if g in text))]
    return text, plants


def make_case(seed: int, study: int, instance: int) -> Case:
    """One CT file of study ``study``; PHI planted in every kept text attribute."""
    rng = random.Random(seed * 1000 + study * 37 + instance)
    srng = random.Random(seed * 7919 + study)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    sop = generate_uid(entropy_srcs=[str(seed), str(study), str(instance)])
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("case.dcm", {}, file_meta=meta, preamble=b"\x00" * 128)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[str(seed), str(study), "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[str(seed), str(study), "series"])
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[str(seed), str(study), "for"])
    ds.Modality = "CT"
    ds.PatientName = f"Patientson^Study{study:03d}"
    ds.PatientID = f"MRN{seed:02d}{study:05d}"
    ds.PatientBirthDate = "19600412"
    ds.PatientSex = srng.choice(["F", "M"])
    ds.PatientAge = f"0{srng.randint(30, 80)}Y"
    ds.PatientSize = "1.72"
    ds.PatientWeight = "71.5"
    ds.StudyDate = (dt.date(2015, 1, 1) + dt.timedelta(days=study * 11)).strftime("%Y%m%d")
    ds.SeriesDate = ds.StudyDate
    ds.ContentDate = (dt.date(2015, 1, 1) + dt.timedelta(days=study * 11 + 2)).strftime("%Y%m%d")
    ds.StudyTime = "101500"
    ds.AccessionNumber = f"ACN{study:06d}"
    ds.StudyID = f"{study}"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance + 1
    ds.Manufacturer = "SIEMENS"
    ds.ManufacturerModelName = "SOMATOM Force"
    ds.DeviceSerialNumber = "88213"
    ds.SoftwareVersions = "VB20A"
    ds.InstitutionName = "Lakeside General Hospital"
    ds.ReferringPhysicianName = "Referrer^Robin"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(128)
    case = Case(ds, study=ds.StudyInstanceUID)
    used: set[str] = set()
    item = Dataset()
    for attr, (vr, limit) in ATTRIBUTES.items():
        text, plants = _value(attr, vr, limit, rng, used)
        case.plants += [p for p in plants if p.must_go or p.must_stay]
        if attr.startswith("RequestAttributesSequence."):
            setattr(item, attr.split(".", 1)[1], text)
        else:
            setattr(ds, attr, text)
    item.RequestedProcedureID = f"RP{study:05d}"
    ds.RequestAttributesSequence = Sequence([item])
    return case


def corpus(seed: int, studies: int, per_study: int) -> list[Case]:
    return [make_case(seed, s, i) for s in range(studies) for i in range(per_study)]


# -- scoring --------------------------------------------------------------------------------


def _value_of(ds: Dataset, attr: str) -> str:
    if "." in attr:
        seq, kw = attr.split(".", 1)
        items = ds.get(seq) or []
        return " ".join(str(getattr(i, kw, "") or "") for i in items)
    v = ds.get(attr)
    if v is None:
        return ""
    return str(v.value if hasattr(v, "value") else v)


def _present(word: str, text: str) -> bool:
    if re.fullmatch(r"[\d\-]+", word):
        digits = re.sub(r"\D", "", word)
        if len(digits) >= 3:
            return digits in re.sub(r"\D", "", text)
        return re.search(rf"(?<!\d){digits}(?!\d)", text) is not None
    return re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text, re.IGNORECASE) is not None


@dataclass
class Score:
    removed: dict[str, list[int]] = field(default_factory=dict)  # attribute -> [removed, planted]
    retained: dict[str, list[int]] = field(default_factory=dict)  # attribute -> [retained, planted]
    by_kind: dict[str, list[int]] = field(default_factory=dict)
    leaks: list[tuple[str, str]] = field(default_factory=list)  # (attribute, kind): never values
    lost: list[tuple[str, str]] = field(default_factory=list)
    checks: dict[str, list[int]] = field(default_factory=dict)  # linkage/retention check -> [passed, total]

    @staticmethod
    def _rate(d: dict[str, list[int]]) -> float:
        a = sum(v[0] for v in d.values())
        b = sum(v[1] for v in d.values())
        return a / b if b else 1.0

    @property
    def removed_rate(self) -> float:
        return self._rate(self.removed)

    @property
    def retained_rate(self) -> float:
        return self._rate(self.retained)

    def check(self, name: str, ok: bool) -> None:
        c = self.checks.setdefault(name, [0, 0])
        c[0] += int(ok)
        c[1] += 1

    def table(self) -> str:
        lines = ["| attribute | text removed | text retained |", "|---|---|---|"]
        for attr in sorted(set(self.removed) | set(self.retained)):
            r = self.removed.get(attr, [0, 0])
            k = self.retained.get(attr, [0, 0])
            lines.append(f"| {attr} | {r[0]}/{r[1]} | {k[0]}/{k[1]} |")
        return "\n".join(lines)


def _da(v: str) -> dt.date:
    return dt.date(int(v[:4]), int(v[4:6]), int(v[6:8]))


def score(cases: Seq[Case], outputs: Seq[Dataset]) -> Score:
    """Score de-identified ``outputs`` (same order as ``cases``)."""
    sc = Score()
    study_uids: dict[str, set[str]] = {}
    for case, out in zip(cases, outputs, strict=True):
        for p in case.plants:
            value = _value_of(out, p.attribute)
            if p.kind == "clinical":
                ok = all(_present(w, value) for w in p.must_stay)
                r = sc.retained.setdefault(p.attribute, [0, 0])
                if not ok:
                    sc.lost.append((p.attribute, p.text))  # clinical text: not PHI
            else:
                ok = not any(_present(w, value) for w in p.must_go)
                r = sc.removed.setdefault(p.attribute, [0, 0])
                if not ok:
                    sc.leaks.append((p.attribute, p.kind))
                k = sc.by_kind.setdefault(p.kind, [0, 0])
                k[0] += int(ok)
                k[1] += 1
            r[0] += int(ok)
            r[1] += 1
        src = case.ds
        sc.check("SOPInstanceUID changed", str(out.SOPInstanceUID) != str(src.SOPInstanceUID))
        sc.check("StudyInstanceUID changed", str(out.StudyInstanceUID) != str(src.StudyInstanceUID))
        study_uids.setdefault(case.study, set()).add(str(out.StudyInstanceUID))
        sc.check("StudyDate shifted", bool(out.get("StudyDate")) and out.StudyDate != src.StudyDate)
        if out.get("StudyDate") and out.get("ContentDate"):
            d = _da
            sc.check(
                "date interval kept",
                d(out.ContentDate) - d(out.StudyDate) == d(src.ContentDate) - d(src.StudyDate),
            )
        else:
            sc.check("date interval kept", False)
        for kw in ("PatientSex", "PatientAge", "PatientSize", "PatientWeight"):
            sc.check(f"{kw} kept", str(out.get(kw, "")) == str(src.get(kw)) and kw in out)
        for kw in ("Manufacturer", "ManufacturerModelName", "DeviceSerialNumber"):
            sc.check(f"{kw} kept", kw in out and str(out.get(kw)) == str(src.get(kw)))
        sc.check("PatientName replaced", "Patientson" not in str(out.get("PatientName", "")))
    for uids in study_uids.values():
        sc.check("StudyInstanceUID consistent", len(uids) == 1)
    return sc


def write_corpus(cases: list[Case], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, c in enumerate(cases):
        p = folder / f"IM{i:05d}.dcm"
        c.ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    return paths
