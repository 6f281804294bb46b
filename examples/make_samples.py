#!/usr/bin/env python3
"""Generate the synthetic sample set in examples/sample (committed; rerun to refresh).

Everything here is invented: names, IDs, dates, institutions. PHI is planted
where real files carry it: the header (top level, sequences, private blocks),
free-text descriptions, SR text, character sets used under PIPL and in Japan
and Korea, burned-in text in an ultrasound screen capture, and the folder and
file names themselves. A non-DICOM file and a truncated file show how a batch
copes with bad input.

Usage: python examples/make_samples.py [--out examples/sample]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, generate_uid

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from study_gen import ct_instance  # noqa: E402

# Deterministic UIDs so that regenerating gives the same files.
_counter = [0]


def uid() -> str:
    _counter[0] += 1
    return generate_uid(entropy_srcs=["privguard-sample", str(_counter[0])])


def ct_study(
    folder: Path,
    patient: tuple[str, str, str],
    study_date: str,
    series: int,
    per: int,
    charset: str = "ISO_IR 100",
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    study, frame = uid(), uid()
    for s in range(series):
        series_uid = uid()
        prev: list[str] = []
        for i in range(per):
            sop = uid()
            ds = ct_instance(patient, study, series_uid, frame, sop, i + 1, prev[-1:], study_date)
            ds.SpecificCharacterSet = charset
            ds.Rows = ds.Columns = 64
            y, x = np.mgrid[0:64, 0:64]
            ds.PixelData = (
                (((x - 32) ** 2 + (y - 32) ** 2 < (20 + i) ** 2) * 900 + 24).astype(np.uint16).tobytes()
            )
            ds.OperatorsName = "Tech^Terry"
            ds.add_new(0x00090010, "LO", "ACME_PRIVATE")
            ds.add_new(0x00091001, "LO", f"scanned for {patient[0].replace('^', ' ')}")
            ds.ImageComments = f"MRN {patient[1]} reviewed by Dr. Gregory House"
            ds.save_as(folder / f"IMG{s}{i:03d}.dcm", enforce_file_format=True)
            prev.append(sop)


def _instance(
    path: Path, sop_class: str, patient: tuple[str, str, str], modality: str, sex: str, date: str, time: str
) -> Dataset:
    """The Patient, General Study/Series/Equipment and SOP Common modules of a new instance."""
    from pydicom.dataset import FileDataset, FileMetaDataset

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = uid()
    meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1")
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\x00" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = patient
    ds.PatientSex = sex
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid(), uid()
    ds.StudyDate = ds.ContentDate = date
    ds.StudyTime = ds.ContentTime = time
    ds.AccessionNumber = f"ACC{date}"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.StudyID = f"{modality}1"
    ds.Modality = modality
    ds.SeriesNumber = ds.InstanceNumber = 1
    ds.Manufacturer = "ACME"
    return ds


def sr_document(path: Path, patient: tuple[str, str, str]) -> None:
    basic_text_sr = "1.2.840.10008.5.1.4.1.1.88.11"
    ds = _instance(path, basic_text_sr, patient, "SR", "M", "20240106", "093000")
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning = (
        "18748-4",
        "LN",
        "Diagnostic Imaging Report",
    )
    ds.ConceptNameCodeSequence = Sequence([title])
    finding = Dataset()
    finding.RelationshipType = "CONTAINS"
    finding.ValueType = "TEXT"
    name = Dataset()
    name.CodeValue, name.CodingSchemeDesignator, name.CodeMeaning = "121071", "DCM", "Finding"
    finding.ConceptNameCodeSequence = Sequence([name])
    finding.TextValue = (
        f"{patient[0].split('^')[1]} {patient[0].split('^')[0]} (MRN {patient[1]}, DOB 12/24/1961): "
        "8 mm nodule, right upper lobe. Compared with 01/05/2024. Call 555-201-3344."
    )
    ds.ContentSequence = Sequence([finding])
    ds.save_as(path, enforce_file_format=True)


def us_screen_capture(path: Path, patient: tuple[str, str, str]) -> None:
    """An ultrasound RGB frame with the patient's name, ID and date burned in, plus markers to keep."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (320, 240), (0, 0, 0))
    draw = ImageDraw.Draw(img)
    for r in range(10, 90, 6):
        draw.arc((100 - r, 60 - r, 220 + r, 180 + r), 200, 340, fill=(90 + r, 90 + r, 90 + r))
    font = ImageFont.load_default(size=14)
    family, given = patient[0].split("^")[:2]
    draw.text((6, 4), f"{family.upper()} {given.upper()}", fill=(255, 255, 255), font=font)
    draw.text((6, 22), f"ID {patient[1]}  01/05/2024", fill=(255, 255, 255), font=font)
    draw.text((280, 4), "L", fill=(255, 255, 0), font=font)
    draw.text((250, 220), "C5-1", fill=(255, 255, 0), font=font)
    ds = _instance(path, "1.2.840.10008.5.1.4.1.1.6.1", patient, "US", "F", "20240105", "101500")  # US Image
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "YES"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = img.height, img.width
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.asarray(img, dtype=np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "examples" / "sample")
    args = ap.parse_args()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    john = ("Example^John^Q", "MRN1234567", "19611224")
    ct_study(out / "Example_John_MRN1234567" / "2024-01-05 CT CHEST", john, "20240105", series=2, per=3)
    ct_study(out / "Example_John_MRN1234567" / "2024-06-30 CT FOLLOW-UP", john, "20240630", series=1, per=2)
    sr_document(out / "Example_John_MRN1234567" / "report.dcm", john)  # folder made by ct_study
    wang = ("Wang^XiaoDong=王^小東", "GZ20240001", "19750312")
    ct_study(out / "王小東" / "胸部CT", wang, "20240220", series=1, per=2, charset="ISO_IR 192")
    yamada = ("Yamada^Tarou=山田^太郎=やまだ^たろう", "JP-778812", "19580101")
    ct_study(out / "yamada", yamada, "20240301", series=1, per=1, charset=["", "ISO 2022 IR 87"])  # type: ignore[arg-type]
    (out / "ultrasound").mkdir()
    us_screen_capture(out / "ultrasound" / "US0001.dcm", ("Doe^Jane", "MRN7654321", "19800202"))
    (out / "notes.txt").write_text("Exported from PACS for the lung-nodule cohort. Not a DICOM file.\n")
    good = next((out / "Example_John_MRN1234567").rglob("IMG0000.dcm")).read_bytes()
    (out / "broken_transfer.dcm").write_bytes(good[: len(good) - 1000])
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {sum(1 for p in out.rglob('*') if p.is_file())} files, {size / 1024:.0f} KB, to {out}")


if __name__ == "__main__":
    main()
