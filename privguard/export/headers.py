"""The few header facts an export binds and checks, read without the pixel data.

Values read here (patient ids, accession numbers, UIDs) stay in memory at the
sender: they are compared with the request, never written anywhere.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

TAGS = (
    "PatientID",
    "AccessionNumber",
    "StudyInstanceUID",
    "Modality",
    "BodyPartExamined",
    "PatientAge",
    "PatientBirthDate",
    "StudyDate",
    "BurnedInAnnotation",
    "RecognizableVisualFeatures",
)
_AGE = re.compile(r"^(\d{3})([DWMY])$")


@dataclass(frozen=True)
class Header:
    """What an export needs to know of one file."""

    path: Path
    patient_id: str
    accession: str
    study_uid: str
    modality: str
    body_part: str
    age: int | None
    burned_in: str
    recognizable: str


def _text(ds: object, keyword: str) -> str:
    value = getattr(ds, keyword, "")
    return str(value).strip() if value is not None else ""


def age_years(age: str, birth: str, study: str) -> int | None:
    """Age in whole years from PatientAge (``093Y``), else from the birth and study dates."""
    m = _AGE.match(age)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return {"Y": n, "M": n // 12, "W": n // 52, "D": n // 365}[unit]
    try:
        b = dt.datetime.strptime(birth[:8], "%Y%m%d").date()
        s = dt.datetime.strptime(study[:8], "%Y%m%d").date()
    except ValueError:
        return None
    return s.year - b.year - ((s.month, s.day) < (b.month, b.day))


def read_header(path: Path) -> Header | None:
    """The header facts of ``path``, or None when it is not a readable DICOM file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from privguard.deidentifier import quiet_pydicom
    from privguard.dicomio import sniff

    if not sniff(path):
        return None
    quiet_pydicom()
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(TAGS), force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError):
        return None
    return Header(
        path=path,
        patient_id=_text(ds, "PatientID"),
        accession=_text(ds, "AccessionNumber"),
        study_uid=_text(ds, "StudyInstanceUID"),
        modality=_text(ds, "Modality").upper(),
        body_part=_text(ds, "BodyPartExamined").upper(),
        age=age_years(_text(ds, "PatientAge"), _text(ds, "PatientBirthDate"), _text(ds, "StudyDate")),
        burned_in=_text(ds, "BurnedInAnnotation").upper(),
        recognizable=_text(ds, "RecognizableVisualFeatures").upper(),
    )
