"""``privguard request draft``: the ``dataset`` section of a request, from the files' headers.

The officer approves what the files really hold: for every PatientID its age
(at the latest study), and for every study (named by AccessionNumber, else by
StudyInstanceUID) the modality, body part, BurnedInAnnotation and whether it
is defaced (every file says RecognizableVisualFeatures NO). ZIP3 is not read:
DICOM has no field for it (addresses are free text), so it is left for the
sender to state. The draft holds local ids: it stays at the sender.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from privguard.errors import ConfigError
from privguard.export.headers import Header, read_header

HEADER_COMMENT = """\
# DRAFT export request written by `privguard request draft` from the files' DICOM headers.
# It holds local patient ids and study ids (accession numbers or Study Instance UIDs):
# it STAYS AT THE SENDER and is never shipped with the export.
# Check the dataset section against the files, fill in every other section
# (requester, recipient, purpose, regimes, transfers...), then: privguard check THIS-FILE
"""


@dataclass
class _Study:
    modality: str
    body_part: str
    burned_in: set[str] = field(default_factory=set)
    recognizable: set[str] = field(default_factory=set)


def _study_entry(sid: str, s: _Study) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": sid, "modality": s.modality or "OT"}
    if s.body_part:
        entry["body_part"] = s.body_part
    if s.recognizable == {"NO"}:
        entry["defaced"] = True
    if "YES" in s.burned_in:
        entry["burned_in_annotation"] = "YES"
    elif s.burned_in == {"NO"}:
        entry["burned_in_annotation"] = "NO"
    return entry


def dataset_from_headers(headers: Iterable[Header]) -> dict[str, Any]:
    """The request's ``dataset`` mapping from file headers (patients and studies sorted by id)."""
    ages: dict[str, int | None] = {}
    studies: dict[str, dict[str, _Study]] = {}
    for h in headers:
        if not h.patient_id:
            continue
        sid = h.accession or h.study_uid
        if not sid:
            continue
        pat = studies.setdefault(h.patient_id, {})
        st = pat.setdefault(sid, _Study(h.modality, h.body_part))
        st.burned_in.add(h.burned_in or "?")
        st.recognizable.add(h.recognizable or "?")
        if h.age is not None:
            ages[h.patient_id] = max(h.age, ages.get(h.patient_id) or 0)
        else:
            ages.setdefault(h.patient_id, None)
    patients = []
    for pid in sorted(studies):
        entry: dict[str, Any] = {"id": pid}
        if ages.get(pid) is not None:
            entry["age"] = ages[pid]
        entry["studies"] = [_study_entry(sid, s) for sid, s in sorted(studies[pid].items())]
        patients.append(entry)
    return {"patients": patients}


def draft_request(inputs: list[Path], template: Path | None = None) -> str:
    """The YAML text of a draft request for the DICOM files under ``inputs``.

    ``template`` is a request file whose other sections are kept (its ``dataset``
    is replaced); without it only ``schema_version`` and ``dataset`` are written.
    """
    from privguard.batch import iter_files

    for inp in inputs:
        if not inp.exists():
            raise ConfigError(f"input {inp} does not exist")
    headers = [h for h in (read_header(p) for p in iter_files(inputs)) if h is not None]
    if not headers:
        raise ConfigError("no readable DICOM file under the inputs; nothing to draft")
    doc: dict[str, Any] = {"schema_version": 1}
    if template is not None:
        try:
            loaded = yaml.safe_load(template.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            raise ConfigError(f"template {template} cannot be read as YAML") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"template {template} is not a request mapping")
        doc = {k: v for k, v in loaded.items() if k != "dataset"}
    doc["dataset"] = dataset_from_headers(headers)
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)
    return HEADER_COMMENT + body
