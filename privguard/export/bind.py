"""Binding an approved request to files, and the facts the files contradict.

A file belongs to the export only if

1. its PatientID is a patient of the request's dataset,
2. its study is one of that patient's ``studies[].id``: a study id names the
   study by its AccessionNumber (0008,0050) or its StudyInstanceUID
   (0020,000D), whichever matches, and
3. the patient is on both the approval's inclusion list and today's.

Every other file is counted by reason (``not-dicom``, ``unreadable``,
``patient-not-in-request``, ``study-not-in-request``, ``patient-excluded``),
never named. Facts the request asserted that the bound files contradict stop
the export (:data:`CONTRADICTIONS`): the approval was given for something else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from privguard.compliance.request import ExportRequest, Patient, Study
from privguard.errors import ConfigError
from privguard.export.headers import Header, read_header

#: rule id -> what the files contradict (messages carry no values).
CONTRADICTIONS: dict[str, str] = {
    "EXPORT-MODALITY": "the files' Modality (0008,0060) differs from the study's modality in the request",
    "EXPORT-BODY-PART": "the files' BodyPartExamined (0018,0015) differs from the study's body_part "
    "in the request",
    "EXPORT-AGE-OVER-89": "the files show an age over 89, but the request states the patient's age "
    "as 89 or less (or not at all)",
    "EXPORT-BURNED-IN": "the files say BurnedInAnnotation (0028,0301) YES, but the request says NO",
    "EXPORT-NOT-DEFACED": "the request claims the study is defaced, but the files do not say "
    "RecognizableVisualFeatures (0028,0302) NO",
}


@dataclass(frozen=True)
class Contradiction:
    """One rule the bound files break: how many files, of how many studies."""

    rule_id: str
    message: str
    files: int
    studies: int


@dataclass
class Bound:
    """Files bound to the request, and the rest counted by reason."""

    files: list[Path] = field(default_factory=list)
    patients: set[str] = field(default_factory=set)
    studies: set[tuple[str, str]] = field(default_factory=set)
    excluded: Counter[str] = field(default_factory=Counter)
    contradictions: list[Contradiction] = field(default_factory=list)


def _study_of(patient: Patient, h: Header) -> Study | None:
    for s in patient.studies:
        if s.id in (h.accession, h.study_uid) and s.id:
            return s
    return None


def contradicts(patient: Patient, study: Study, h: Header) -> list[str]:
    """The contradiction rules one bound file breaks."""
    rules = []
    if h.modality and h.modality != study.modality:
        rules.append("EXPORT-MODALITY")
    if study.body_part and h.body_part and h.body_part != study.body_part:
        rules.append("EXPORT-BODY-PART")
    if h.age is not None and h.age > 89 and (patient.age is None or patient.age <= 89):
        rules.append("EXPORT-AGE-OVER-89")
    if h.burned_in == "YES" and study.burned_in_annotation == "NO":
        rules.append("EXPORT-BURNED-IN")
    if study.defaced and h.recognizable != "NO":
        rules.append("EXPORT-NOT-DEFACED")
    return rules


def bind(request: ExportRequest, included: set[str], paths: Iterable[Path]) -> Bound:
    """Bind ``paths`` to ``request`` for the ``included`` patient ids (see the module docstring)."""
    listed = request.dataset.patients
    if not listed:
        raise ConfigError(
            "the request names its patients in a table; privguard export binds files only to a request "
            "that lists its patients inline (dataset.patients)"
        )
    patients = {p.id: p for p in listed}
    out = Bound()
    broken: Counter[str] = Counter()
    broken_studies: dict[str, set[tuple[str, str]]] = {}
    for path in paths:
        h = read_header(path)
        if h is None:
            out.excluded["not-dicom-or-unreadable"] += 1
            continue
        patient = patients.get(h.patient_id)
        if patient is None:
            out.excluded["patient-not-in-request"] += 1
            continue
        study = _study_of(patient, h)
        if study is None:
            out.excluded["study-not-in-request"] += 1
            continue
        if patient.id not in included:
            out.excluded["patient-excluded"] += 1
            continue
        for rule in contradicts(patient, study, h):
            broken[rule] += 1
            broken_studies.setdefault(rule, set()).add((patient.id, study.id))
        out.files.append(path)
        out.patients.add(patient.id)
        out.studies.add((patient.id, study.id))
    out.contradictions = [
        Contradiction(rule, CONTRADICTIONS[rule], broken[rule], len(broken_studies[rule]))
        for rule in sorted(broken)
    ]
    return out
