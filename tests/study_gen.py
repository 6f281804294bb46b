"""A small multi-series study with cross-file references, for integrity tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid


def ct_instance(
    patient: tuple[str, str, str],
    study_uid: str,
    series_uid: str,
    frame_uid: str,
    sop_uid: str,
    number: int,
    refs: list[str],
    study_date: str = "20240105",
    implicit: bool = False,
) -> FileDataset:
    name, pid, birth = patient
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds = FileDataset("x", {}, file_meta=meta, preamble=b"\x00" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.ContentDate = study_date
    ds.StudyTime = "101500"
    ds.ContentTime = "101512"
    ds.AccessionNumber = f"ACC{pid[-5:]}"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    ds.InstitutionName = "St. Benedict Medical Center"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.StudyDescription = f"CT chest for {name.replace('^', ' ')}"
    ds.SeriesDescription = "AXIAL 5MM"
    ds.PatientName = name
    ds.PatientID = pid
    ds.PatientBirthDate = birth
    ds.PatientSex = "F"
    ds.PatientAge = "061Y"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "4711"
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [0, 0, number * 5]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceThickness = "5"
    ds.KVP = "120"
    ds.PatientPosition = "HFS"
    ds.Laterality = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 8
    ds.Columns = 8
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.AcquisitionNumber = 1
    if refs:
        items = []
        for r in refs:
            item = Dataset()
            item.ReferencedSOPClassUID = CTImageStorage
            item.ReferencedSOPInstanceUID = r
            items.append(item)
        ds.ReferencedImageSequence = Sequence(items)
        src = Dataset()
        src.ReferencedSOPClassUID = CTImageStorage
        src.ReferencedSOPInstanceUID = refs[0]
        ds.SourceImageSequence = Sequence([src])
    ds.PixelData = (np.arange(64, dtype=np.uint16) * (number + 1)).tobytes()
    return ds


def write_study(
    root: Path,
    patient: tuple[str, str, str] = ("Example^John^Q", "MRN1234567", "19611224"),
    series: int = 2,
    per_series: int = 3,
    study_date: str = "20240105",
) -> list[Path]:
    """Write a study: ``series`` series of ``per_series`` slices; each slice references the previous."""
    root.mkdir(parents=True, exist_ok=True)
    study_uid = generate_uid()
    frame_uid = generate_uid()
    paths = []
    for s in range(series):
        series_uid = generate_uid()
        prev: list[str] = []
        for i in range(per_series):
            sop = generate_uid()
            ds = ct_instance(
                patient,
                study_uid,
                series_uid,
                frame_uid,
                sop,
                i + 1,
                prev[-1:],
                study_date,
                implicit=s % 2 == 1,
            )
            path = root / f"{patient[0].split('^')[0]}_{s}_{i}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
            prev.append(sop)
    return paths
