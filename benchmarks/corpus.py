"""A deterministic, realistic CT corpus for the header benchmarks (issue 2).

``ensure_corpus(CorpusSpec(n_files=2000))`` writes (or reuses) a folder of
CT Image Storage files, Explicit VR Little Endian, 512x512 16-bit
MONOCHROME2, about 0.5 MB each, with a header like a scanner's: about 130
public attributes (patient, study, series, equipment, acquisition, image,
request modules), a GE-like or Siemens-like private block set, and
sequences (ProcedureCodeSequence, ReferencedPerformedProcedureStepSequence,
RequestAttributesSequence, ReferencedImageSequence, SourceImageSequence,
CTDIPhantomTypeCodeSequence).

Layout: one patient per study; each study has ``series_per_study`` series of
``per_series`` instances sharing one FrameOfReferenceUID. Series 1 is an
ORIGINAL axial series, later series are DERIVED reconstructions whose
SourceImageSequence points at the matching instance of series 1; every image's
ReferencedImageSequence points at instance 1 of series 1 (instance 1 itself
points at instance 2), so cross-file references can be checked after
de-identification.

PHI is planted the way it turns up in real data: names (patient, staff),
identifiers (MRN, accession, station, device serial), birth and study
dates, addresses and telephone numbers, the patient's name inside
descriptions ("CT CHEST W/O CONTRAST for Marianne Kowalczyk"), comments, a
private text element and a binary private blob. Everything is synthetic
(seeded random choices from fixed lists); the planted tokens of every study
are recorded in ``manifest.json`` for the leak audit. Every file's pixel
data is different (seeded noise on a phantom), which lets the audit map an
output file back to its input whatever the tool named it.

Files go to ``<repo>/.bench/corpus-<N>/dicom/IM000001.dcm ...`` (``.bench``
is git-ignored) and are reused when the manifest matches the spec.

    python -m benchmarks.corpus --files 2000
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import shutil
import struct
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / ".bench"
FORMAT_VERSION = 3
#: Changes to this generator invalidate cached corpora.
GENERATOR = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
MPPS_SOP_CLASS = "1.2.840.10008.3.1.2.3.3"
ROWS = COLS = 512

_SURNAMES = [
    "Kowalczyk", "Abernathy", "Okonkwo", "Vasquez", "Lindqvist", "Thibodeaux", "Nakamura", "Oyelaran",
    "Fitzgerald", "Haverford", "Castellano", "Yamaguchi", "Petrovic", "Gallagher", "Szymanski", "Delacroix",
    "Rasmussen", "Achterberg", "Quintero", "Pemberton", "Whitfield", "Obradovic", "Iglesias", "Marchetti",
    "Holloway", "Kaczmarek", "Beaumont", "Lundgren", "Ferreira", "Brückner", "Sørensen", "Gómez-Ortega",
]  # fmt: skip
_GIVEN = [
    "Marianne", "Theodore", "Chidinma", "Evangeline", "Leopold", "Rosalind", "Ignatius", "Priyanka",
    "Augustin", "Wilhelmina", "Bartholomew", "Genevieve", "Cornelius", "Henrietta", "Maximilian", "Philippa",
    "Oluwaseun", "Josephine", "Thaddeus", "Ottoline", "Hélène", "Bogdana", "Severin", "Marguerite",
]  # fmt: skip
_STAFF = [
    "Alvarado", "Whitcombe", "Ngatai", "Ferencz", "Traskell", "Oduya", "Halvorsen", "Penhaligon", "Ruelas",
    "Vukovic", "Abeyta", "Carrodus", "Mbeki-Lowe", "Strathearn", "Quarshie", "Ellingsen", "Dragomir",
    "Featherly", "Ancheta", "Rosenthorpe",
]  # fmt: skip
_STAFF_GIVEN = ["Ines", "Tobias", "Farida", "Ruairi", "Solveig", "Emeka", "Perpetua", "Anselm", "Mireille"]
# (name, distinctive word, street, city)
_INSTITUTIONS = [
    ("SAINT BRIGID MEMORIAL HOSPITAL", "Brigid", "Tollgate", "Fallsworth"),
    ("WREXFORD COUNTY GENERAL HOSPITAL", "Wrexford", "Quarrybank", "Eastmere"),
    ("MOUNT CALDERWOOD UNIVERSITY HOSPITAL", "Calderwood", "Pellingham", "Quillby"),
    ("HARROWGATE VALLEY MEDICAL CENTER", "Harrowgate", "Ostermoor", "Linfarne"),
]
_STREETS = [
    "Wrenfield", "Marlowe", "Ashcombe", "Kestrelmoor", "Tannery", "Bramblecote", "Giltspur", "Oakhanger",
]  # fmt: skip
_CITIES = ["Brookhollow", "Greyhaven", "Millbridge", "Thornwick", "Saltcombe", "Ravensby"]
_REASONS = ["cough, r/o PE", "follow-up nodule", "chest pain", "staging", "dyspnea", "trauma"]


@dataclass(frozen=True)
class CorpusSpec:
    """What to generate. Same spec -> same bytes."""

    n_files: int = 2000
    per_series: int = 50
    series_per_study: int = 2
    seed: int = 20240611

    @property
    def per_study(self) -> int:
        return self.per_series * self.series_per_study


@dataclass
class Corpus:
    """A generated corpus on disk."""

    root: Path
    spec: CorpusSpec
    manifest: dict[str, Any]

    @property
    def dicom_dir(self) -> Path:
        return self.root / "dicom"

    @property
    def files(self) -> list[Path]:
        return [self.dicom_dir / f["name"] for f in self.manifest["files"]]

    @property
    def total_bytes(self) -> int:
        return int(self.manifest["total_bytes"])


# -- studies --------------------------------------------------------------------------------


def _uid(root: str, *parts: int) -> str:
    uid = root + ".".join(str(p) for p in parts)
    assert len(uid) <= 64, uid
    return uid


def _person(family: str, given: str) -> str:
    return f"{family.upper()}^{given.upper()}"


def _make_study(spec: CorpusSpec, index: int) -> dict[str, Any]:
    """The per-study facts (patient, staff, dates, UIDs) and its planted PHI tokens."""
    rng = random.Random(f"{spec.seed}:study:{index}")
    ge = index % 2 == 0
    family, given = rng.choice(_SURNAMES), rng.choice(_GIVEN)
    staff = rng.sample(_STAFF, 5)
    inst = _INSTITUTIONS[index % len(_INSTITUTIONS)]
    birth = dt.date(1935, 1, 1) + dt.timedelta(days=rng.randrange(65 * 365))
    study_date = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(5 * 365))
    calib = study_date - dt.timedelta(days=rng.randrange(1, 30))
    start = dt.datetime.combine(study_date, dt.time(7, 0)) + dt.timedelta(seconds=rng.randrange(12 * 3600))
    age = (study_date - birth).days // 365
    mrn = str(rng.randrange(10_000_000, 99_999_999))
    accession = f"CT{rng.randrange(10_000_000, 99_999_999)}"
    street = f"{rng.randrange(10, 9999)} {rng.choice(_STREETS)} Ave"
    city = rng.choice(_CITIES)
    phone = f"555-{rng.randrange(1000, 9999)}"
    station = f"{inst[1][:4].upper()}CT{rng.randrange(10, 99)}"
    serial = f"CT{rng.randrange(100000, 999999)}GX"
    root = "1.2.840.113619.2.416." if ge else "1.3.12.2.1107.5.1.4."
    stamp = int(start.strftime("%Y%m%d%H%M%S"))
    study = {
        "index": index,
        "vendor": "GE" if ge else "SIEMENS",
        "family": family,
        "given": given,
        "sex": rng.choice("FM"),
        "age": age,
        "birth": birth.strftime("%Y%m%d"),
        "date": study_date.strftime("%Y%m%d"),
        "calibration": calib.strftime("%Y%m%d"),
        "start": start.isoformat(),
        "mrn": mrn,
        "accession": accession,
        "street": street,
        "city": city,
        "phone": phone,
        "staff": staff,
        "staff_given": rng.sample(_STAFF_GIVEN, 5),
        "institution": list(inst),
        "station": station,
        "serial": serial,
        "reason": rng.choice(_REASONS),
        "size": round(rng.uniform(1.5, 1.95), 2),
        "weight": rng.randrange(45, 120),
        "study_id": str(rng.randrange(1000, 99999)),
        "study_uid": _uid(root, spec.seed, 1, index, stamp),
        "frame_uid": _uid(root, spec.seed, 2, index, stamp),
        "mpps_uid": _uid(root, spec.seed, 3, index, stamp),
        "equipment_uid": _uid(root, spec.seed, 4, index),
        "creator_uid": _uid(root, spec.seed, 5, index),
        "irradiation_uid": _uid(root, spec.seed, 6, index, stamp),
        "series_uids": [_uid(root, spec.seed, 7, index, s + 1, stamp) for s in range(spec.series_per_study)],
        "root": root,
        "stamp": stamp,
    }
    study["tokens"] = {
        "patient_name": [family, given],
        "patient_id": [mrn],
        "accession": [accession],
        "patient_address": [street.split(" ")[1], city],
        "patient_phone": [phone],
        "staff_names": staff,
        "institution": [inst[1], inst[2], inst[3]],
        "equipment_ids": [station, serial],
    }
    study["dates"] = sorted({study["birth"], study["date"], study["calibration"]})
    return study


def _sop_uid(spec: CorpusSpec, study: dict[str, Any], series: int, instance: int) -> str:
    return _uid(study["root"], spec.seed, 8, study["index"], series + 1, instance + 1, study["stamp"])


# -- one file -------------------------------------------------------------------------------


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _ref(sop_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = CTImageStorage
    item.ReferencedSOPInstanceUID = sop_uid
    return item


def _private(ds: Dataset, study: dict[str, Any], instance: int, rng: random.Random) -> None:
    name = _person(study["family"], study["given"])
    if study["vendor"] == "GE":
        ds.add_new(0x00090010, "LO", "GEMS_IDEN_01")
        ds.add_new(0x00091001, "LO", "GE_GENESIS_FF")
        ds.add_new(0x00091002, "SH", "CT01")
        ds.add_new(0x00091004, "SH", "LightSpeed VCT")
        ds.add_new(0x00091027, "SL", study["stamp"] % 2_000_000_000)
        ds.add_new(0x000910F0, "LO", f"{name} {study['mrn']}")  # planted: PHI in a private text value
        ds.add_new(0x000910E3, "UI", study["equipment_uid"])
        ds.add_new(0x00190010, "LO", "GEMS_ACQU_01")
        ds.add_new(0x00191002, "SL", 888)
        ds.add_new(0x00191003, "DS", "1.0")
        ds.add_new(0x00191018, "LO", "I")
        ds.add_new(0x00191023, "DS", "39.375")
        ds.add_new(0x00191024, "DS", f"{rng.uniform(0, 20):.3f}")
        ds.add_new(0x00191026, "SL", 1)
        ds.add_new(0x00191027, "DS", "0.5")
        ds.add_new(0x00430010, "LO", "GEMS_PARM_01")
        ds.add_new(0x00431010, "US", 400)
        ds.add_new(0x00431012, "SS", [14, 1, 3])
        ds.add_new(0x00431028, "OB", bytes(rng.randrange(256) for _ in range(80)))
    else:
        csa = (
            b"SV10\x04\x03\x02\x01"
            + struct.pack("<II", 3, 77)
            + b"ImaComments\x00"
            + f"tech note {study['family']} {study['given']} - {study['accession']}".encode("latin-1")
            + b"\x00" * 32
        )
        if len(csa) & 1:
            csa += b"\x00"
        ds.add_new(0x00190010, "LO", "SIEMENS CT VA1 DUMMY")
        ds.add_new(0x00191090, "DS", "0.6")
        ds.add_new(0x00191092, "DS", f"{rng.uniform(-5, 5):.2f}")
        ds.add_new(0x00290010, "LO", "SIEMENS CSA HEADER")
        ds.add_new(0x00290011, "LO", "SIEMENS MEDCOM HEADER")
        ds.add_new(0x00291008, "CS", "SOM 7")
        ds.add_new(0x00291009, "LO", "VA48A")
        ds.add_new(0x00291010, "OB", csa)  # planted: PHI inside a binary private blob
        ds.add_new(0x00291018, "CS", "SOM 7")
        ds.add_new(0x00291019, "LO", "VA48A")
        ds.add_new(0x00291131, "LO", "4.0.163088300")
        ds.add_new(0x00291134, "CS", "DB TO DICOM")


def _dataset(spec: CorpusSpec, study: dict[str, Any], series: int, instance: int) -> Dataset:
    rng = random.Random(f"{spec.seed}:file:{study['index']}:{series}:{instance}")
    ge = study["vendor"] == "GE"
    family, given = study["family"], study["given"]
    full = f"{given} {family}"
    staff, staff_given = study["staff"], study["staff_given"]
    inst_name, _word, inst_street, inst_city = study["institution"]
    start = dt.datetime.fromisoformat(study["start"])
    series_start = start + dt.timedelta(minutes=2 + series)
    acq = start + dt.timedelta(seconds=30 + instance // 2)
    content = series_start + dt.timedelta(seconds=instance * 0.4)
    derived = series > 0
    thickness = 5.0 if series == 0 else 1.25 * series
    z = -40.0 - instance * thickness

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"] if derived else ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate = study["date"]
    ds.InstanceCreationTime = content.strftime("%H%M%S")
    ds.InstanceCreatorUID = study["creator_uid"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = _sop_uid(spec, study, series, instance)
    ds.StudyDate = study["date"]
    ds.SeriesDate = study["date"]
    ds.AcquisitionDate = study["date"]
    ds.ContentDate = study["date"]
    ds.AcquisitionDateTime = acq.strftime("%Y%m%d%H%M%S.%f")
    ds.StudyTime = start.strftime("%H%M%S")
    ds.SeriesTime = series_start.strftime("%H%M%S")
    ds.AcquisitionTime = acq.strftime("%H%M%S.%f")
    ds.ContentTime = content.strftime("%H%M%S.%f")
    ds.AccessionNumber = study["accession"]
    ds.Modality = "CT"
    ds.Manufacturer = "GE MEDICAL SYSTEMS" if ge else "SIEMENS"
    ds.InstitutionName = inst_name
    ds.InstitutionAddress = f"{rng.randrange(1, 400)} {inst_street} Road, {inst_city}"
    ds.ReferringPhysicianName = f"{staff[0].upper()}^{staff_given[0].upper()}^^DR"
    ds.ReferringPhysicianTelephoneNumbers = f"(617) {study['phone'][:3]}-01{instance % 10}0"
    ds.StationName = study["station"]
    ds.StudyDescription = f"CT CHEST W/O CONTRAST for {full}"
    ds.ProcedureCodeSequence = Sequence([_code("CTCHWO", "GEHC" if ge else "SMS", "CT CHEST W/O CONTRAST")])
    ds.SeriesDescription = "AXIAL 5.0 STND" if not derived else f"LUNG {thickness:.2f} MIP"
    ds.InstitutionalDepartmentName = "RADIOLOGY CT"
    ds.PhysiciansOfRecord = f"{staff[1].upper()}^{staff_given[1].upper()}"
    ds.PerformingPhysicianName = f"{staff[2].upper()}^{staff_given[2].upper()}"
    ds.NameOfPhysiciansReadingStudy = f"{staff[3].upper()}^{staff_given[3].upper()}"
    ds.OperatorsName = f"{staff[4].upper()}^{staff_given[4].upper()}"
    ds.AdmittingDiagnosesDescription = f"{study['reason']} ({family})"
    ds.ManufacturerModelName = "LightSpeed VCT" if ge else "SOMATOM Definition AS+"
    rpps = Dataset()
    rpps.ReferencedSOPClassUID = MPPS_SOP_CLASS
    rpps.ReferencedSOPInstanceUID = study["mpps_uid"]
    ds.ReferencedPerformedProcedureStepSequence = Sequence([rpps])
    # Every image points at instance 1 of series 1 (a localizer-like reference); instance 1 at instance 2.
    first = 1 if series == 0 and instance == 0 else 0
    ds.ReferencedImageSequence = Sequence([_ref(_sop_uid(spec, study, 0, first))])
    if derived:
        ds.DerivationDescription = f"MIP {thickness:.2f} mm from series 2"
        ds.SourceImageSequence = Sequence([_ref(_sop_uid(spec, study, 0, instance))])
    ds.IrradiationEventUID = study["irradiation_uid"]

    ds.PatientName = _person(family, given)
    ds.PatientID = study["mrn"]
    ds.IssuerOfPatientID = f"{_word.upper()}MRN"
    ds.PatientBirthDate = study["birth"]
    ds.PatientSex = study["sex"]
    ds.PatientAge = f"{study['age']:03d}Y"
    ds.PatientSize = f"{study['size']:.2f}"
    ds.PatientWeight = str(study["weight"])
    ds.PatientAddress = f"{study['street']}, {study['city']}"
    ds.PatientTelephoneNumbers = f"(617) {study['phone']}"
    ds.AdditionalPatientHistory = f"{study['reason']}; pt {family}, {given} - prior CT {study['date'][:4]}"
    ds.PatientComments = f"MRN {study['mrn']} - call {study['phone']} before results"

    ds.BodyPartExamined = "CHEST"
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = f"{thickness:.2f}"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500.0"
    ds.DeviceSerialNumber = study["serial"]
    ds.SoftwareVersions = "07MW18.4" if ge else "syngo CT 2012B"
    ds.ProtocolName = "5.1 CHEST ROUTINE"
    ds.ReconstructionDiameter = "360.0"
    ds.DistanceSourceToDetector = "949.075"
    ds.DistanceSourceToPatient = "541.0"
    ds.GantryDetectorTilt = "0.0"
    ds.TableHeight = f"{rng.uniform(120, 180):.1f}"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = str(rng.randrange(80, 400))
    ds.Exposure = str(rng.randrange(40, 200))
    ds.FilterType = "BODY FILTER"
    ds.GeneratorPower = "48000"
    ds.FocalSpots = "0.7"
    ds.ConvolutionKernel = "STANDARD" if ge else "B31f"
    ds.PatientPosition = "FFS"
    ds.RevolutionTime = 0.5
    ds.SingleCollimationWidth = 0.625
    ds.TotalCollimationWidth = 40.0
    ds.TableSpeed = 78.75
    ds.TableFeedPerRotation = 39.375
    ds.SpiralPitchFactor = 0.984375
    ds.DateOfLastCalibration = study["calibration"]
    ds.TimeOfLastCalibration = "061500"
    ds.DataCollectionCenterPatient = [0.0, -180.0, z]
    ds.ReconstructionTargetCenterPatient = [0.0, -180.0, z]
    ds.ExposureModulationType = "NONE"
    ds.CTDIvol = round(rng.uniform(4, 15), 3)
    ds.CTDIPhantomTypeCodeSequence = Sequence([_code("113691", "DCM", "IEC Body Dosimetry Phantom")])

    ds.StudyInstanceUID = study["study_uid"]
    ds.SeriesInstanceUID = study["series_uids"][series]
    ds.StudyID = study["study_id"]
    ds.SeriesNumber = str(2 + series)
    ds.AcquisitionNumber = "1"
    ds.InstanceNumber = str(instance + 1)
    ds.ImagePositionPatient = ["-180.0", "-360.0", f"{z:.2f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = study["frame_uid"]
    ds.PositionReferenceIndicator = "SN"
    ds.SliceLocation = f"{z:.2f}"
    ds.ImagesInAcquisition = str(spec.per_series)
    if instance % 7 == 0:
        ds.ImageComments = f"{family} {given[0]}. motion artifact slice {instance + 1}"

    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ROWS
    ds.Columns = COLS
    ds.PixelSpacing = ["0.703125", "0.703125"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if ge else 12
    ds.HighBit = 15 if ge else 11
    ds.PixelRepresentation = 1 if ge else 0
    if ge:
        ds.add_new(0x00280120, "SS", -2000)  # PixelPaddingValue
    ds.WindowCenter = "40" if not derived else "-600"
    ds.WindowWidth = "400" if not derived else "1500"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenterWidthExplanation = "MEDIASTINUM" if not derived else "LUNG"
    ds.LossyImageCompression = "00"

    ds.RequestingPhysician = f"{staff[0].upper()}^{staff_given[0].upper()}"
    ds.RequestingService = "EMERGENCY DEPT"
    ds.RequestedProcedureDescription = f"CT CHEST for {full}"
    ds.PerformedProcedureStepStartDate = study["date"]
    ds.PerformedProcedureStepStartTime = start.strftime("%H%M%S")
    ds.PerformedProcedureStepID = f"PPS{study['accession'][2:]}"
    ds.PerformedProcedureStepDescription = f"CT CHEST {family.upper()}"
    req = Dataset()
    req.RequestedProcedureID = study["accession"]
    req.ScheduledProcedureStepID = f"SPS{study['accession'][2:]}"
    req.ScheduledProcedureStepDescription = f"CT CHEST W/O for {full}"
    req.ReasonForTheRequestedProcedure = study["reason"]
    ds.RequestAttributesSequence = Sequence([req])
    ds.CommentsOnThePerformedProcedureStep = f"pt {family} cooperative; tech {staff[4]}"
    _private(ds, study, instance, rng)
    return ds


def _phantom(ge: bool) -> np.ndarray:
    """A chest-like slice in HU: air, body ellipse, lungs, spine."""
    y, x = np.mgrid[0:ROWS, 0:COLS].astype(np.float32)
    cx, cy = COLS / 2, ROWS / 2 + 20
    hu = np.full((ROWS, COLS), -1000.0, np.float32)
    body = ((x - cx) / 220) ** 2 + ((y - cy) / 150) ** 2 < 1
    hu[body] = 40
    for lx in (cx - 95, cx + 95):
        hu[((x - lx) / 70) ** 2 + ((y - cy + 10) / 105) ** 2 < 1] = -850
    hu[((x - cx) / 28) ** 2 + ((y - cy - 95) / 28) ** 2 < 1] = 700
    if ge:
        hu[(x - COLS / 2) ** 2 + (y - ROWS / 2) ** 2 > (COLS / 2) ** 2] = np.nan  # outside the FOV
    return hu


def _pixels(base: np.ndarray, ge: bool, seed: tuple[int, ...]) -> bytes:
    rng = np.random.default_rng(list(seed))
    noise = rng.normal(0, 12, base.shape).astype(np.float32)
    hu = base + noise
    if ge:
        raw = np.where(np.isnan(hu), -2000, np.clip(hu + 1024, -1024, 3071)).astype("<i2")
    else:
        raw = np.clip(np.nan_to_num(hu, nan=-1000) + 1024, 0, 4095).astype("<u2")
    return raw.tobytes()


def _write(path: Path, ds: Dataset, pixels: bytes) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.840.113619.6.408"
    meta.ImplementationVersionName = "BENCH_CORPUS_3"
    meta.SourceApplicationEntityTitle = ds.StationName
    ds.file_meta = meta
    ds.add_new(0x7FE00010, "OW", pixels)
    ds.save_as(path, enforce_file_format=True)


# -- the corpus -----------------------------------------------------------------------------


def default_root(spec: CorpusSpec) -> Path:
    return BENCH_DIR / f"corpus-{spec.n_files}"


def _manifest_ok(root: Path, spec: CorpusSpec) -> dict[str, Any] | None:
    path = root / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if (manifest.get("format"), manifest.get("generator"), manifest.get("spec")) != (
        FORMAT_VERSION,
        GENERATOR,
        asdict(spec),
    ):
        return None
    dicom = root / "dicom"
    for f in manifest["files"]:
        p = dicom / f["name"]
        if not p.is_file() or p.stat().st_size != f["size"]:
            return None
    return manifest  # type: ignore[no-any-return]


def ensure_corpus(
    spec: CorpusSpec, root: Path | None = None, *, force: bool = False, quiet: bool = False
) -> Corpus:
    """Generate the corpus into ``root`` (default ``.bench/corpus-N``), or reuse a matching one."""
    root = root or default_root(spec)
    if not force:
        manifest = _manifest_ok(root, spec)
        if manifest is not None:
            return Corpus(root, spec, manifest)
    if root.exists():
        shutil.rmtree(root)
    dicom = root / "dicom"
    dicom.mkdir(parents=True)
    n_studies = -(-spec.n_files // spec.per_study)
    studies = [_make_study(spec, i) for i in range(n_studies)]
    bases = {True: _phantom(True), False: _phantom(False)}
    files: list[dict[str, Any]] = []
    total = 0
    k = 0
    for study in studies:
        ge = study["vendor"] == "GE"
        for series in range(spec.series_per_study):
            for instance in range(spec.per_series):
                if k >= spec.n_files:
                    break
                k += 1
                name = f"IM{k:06d}.dcm"
                ds = _dataset(spec, study, series, instance)
                pixels = _pixels(bases[ge], ge, (spec.seed, study["index"], series, instance))
                _write(dicom / name, ds, pixels)
                size = (dicom / name).stat().st_size
                total += size
                files.append(
                    {
                        "name": name,
                        "study": study["index"],
                        "series": series,
                        "instance": instance,
                        "sop_uid": ds.SOPInstanceUID,
                        "size": size,
                    }
                )
                if not quiet and k % 250 == 0:
                    print(f"  corpus: {k}/{spec.n_files} files", file=sys.stderr)
    manifest = {
        "format": FORMAT_VERSION,
        "generator": GENERATOR,
        "spec": asdict(spec),
        "total_bytes": total,
        "studies": [
            {k: s[k] for k in ("index", "vendor", "study_uid", "frame_uid", "series_uids", "tokens", "dates")}
            for s in studies
        ],
        "files": files,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return Corpus(root, spec, manifest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--per-series", type=int, default=50)
    ap.add_argument("--series-per-study", type=int, default=2)
    ap.add_argument("--seed", type=int, default=CorpusSpec.seed)
    ap.add_argument("--out", type=Path, default=None, help="default: .bench/corpus-N")
    ap.add_argument("--force", action="store_true", help="regenerate even if a matching corpus exists")
    args = ap.parse_args(argv)
    spec = CorpusSpec(args.files, args.per_series, args.series_per_study, args.seed)
    corpus = ensure_corpus(spec, args.out, force=args.force)
    print(
        f"{corpus.dicom_dir}: {len(corpus.files)} files, {corpus.total_bytes / 1e6:.1f} MB, "
        f"{len(corpus.manifest['studies'])} studies"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())


# -- heavier headers: enhanced multi-frame and SR (issue 8) -----------------------------------


def enhanced_dataset(index: int, frames: int = 40, sr_items: int = 60) -> Dataset:
    """An enhanced CT-like multi-frame header with an SR-like content tree (seeded by ``index``).

    Per-frame functional groups (plane position and orientation, frame content,
    pixel measures, CT acquisition details), a referenced image per frame, and a
    content sequence of coded TEXT/PNAME/CODE items with names in them: the
    header-heavy shape of enhanced multi-frame and structured report objects.
    """
    rng = random.Random(7000 + index)
    root = "1.2.826.0.1.3680043.10.543"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT Image Storage
    ds.SOPInstanceUID = _uid(root, 1, index)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = _uid(root, 2, index // 10)
    ds.SeriesInstanceUID = _uid(root, 3, index // 5)
    ds.FrameOfReferenceUID = _uid(root, 4, index // 10)
    ds.PatientName = _person(f"FAMILY{index:04d}", "GIVEN")
    ds.PatientID = f"MRN{index:07d}"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "F"
    ds.StudyDate = ds.ContentDate = "20240105"
    ds.StudyTime = ds.ContentTime = "101500"
    ds.AccessionNumber = f"ACC{index:06d}"
    ds.ReferringPhysicianName = "REFERRER^ANNA"
    ds.InstitutionName = "St. Example Hospital"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.NumberOfFrames = frames
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = ["0.7", "0.7"]
    measures.SliceThickness = "1.0"
    shared.PixelMeasuresSequence = Sequence([measures])
    orient = Dataset()
    orient.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    shared.PlaneOrientationSequence = Sequence([orient])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for f in range(frames):
        group = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = ["-100", "-100", f"{f * 1.0:.1f}"]
        group.PlanePositionSequence = Sequence([pos])
        content = Dataset()
        content.FrameAcquisitionNumber = f
        content.StackID = "1"
        content.InStackPositionNumber = f + 1
        content.FrameAcquisitionDateTime = "20240105101500"
        group.FrameContentSequence = Sequence([content])
        acq = Dataset()
        acq.ExposureTime = 500
        acq.KVP = "120"
        group.CTAcquisitionDetailsSequence = Sequence([acq])
        deriv = Dataset()
        deriv.SourceImageSequence = Sequence([_ref(_uid(root, 5, index, f))])
        group.DerivationImageSequence = Sequence([deriv])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    items = []
    for i in range(sr_items):
        item = Dataset()
        item.RelationshipType = "CONTAINS"
        kind = i % 3
        item.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", "Finding")])
        if kind == 0:
            item.ValueType = "TEXT"
            item.TextValue = f"Finding {i} reviewed with {rng.choice(['Dr Smith', 'Dr Jones'])}"
        elif kind == 1:
            item.ValueType = "PNAME"
            item.PersonName = _person(f"OBSERVER{i}", "X")
        else:
            item.ValueType = "CODE"
            item.ConceptCodeSequence = Sequence([_code("T-28000", "SRT", "Lung")])
        items.append(item)
    ds.ContentSequence = Sequence(items)
    ds.PixelData = bytes(8 * 8 * 2 * frames)
    return ds


def ensure_enhanced(root: Path, n: int) -> list[Path]:
    """Write ``n`` enhanced/SR-heavy files under ``root`` (reused when already there)."""
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"enh{i:04d}.dcm" for i in range(n)]
    for i, p in enumerate(paths):
        if not p.exists():
            enhanced_dataset(i).save_as(p, enforce_file_format=True)
    return paths
