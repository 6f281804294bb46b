"""Cohorts: the patients of an export and their consents, listed inline or streamed from tables.

A request may list its patients inline (``dataset.patients``) or point to a
patient table (``dataset.table``); a consent file may list its records or
point to a consent table (``table``). Tables are CSV (UTF-8, a header row),
read row by row: memory does not grow with the number of patients, apart
from the ids of the included patients the decision lists.

Patient table, one row per study, rows of one patient together, patients in
strictly increasing id order (byte order, e.g. ``sort -t, -k1,1``)::

    patient_id,age,zip3,study_id,modality,body_part,defaced,burned_in_annotation
    P0000001,54,021,S1,CT,CHEST,false,NO

``age``, ``zip3``, ``body_part``, ``defaced`` (default false) and
``burned_in_annotation`` may be empty. Consent table, one row per patient,
same order (patients without a row have no record; rows for patients not in
the export are skipped)::

    patient_id,given,expires,withdrawn,explicit,permission,diseases,modifiers,pipl_sensitive,
    pipl_cross_border,gdpr_transfer,guardian

``permission`` is a DUO permission (NRES, GRU, HMB, DS, POA); ``diseases``
(DS) and GS regions are ``|``-separated; ``modifiers`` is ``;``-separated,
each ``CODE`` or ``CODE:PARAM`` (``GS:DE|AT``, ``TS:24``). The last four
columns are the dates the separate consents were given (empty: none).

Every value is validated; an error names the file, the line and the column,
never the value (it may be PHI). Each table's SHA-256 is computed while it is
read and recorded in the decision, and checked against a pinned ``sha256``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, NamedTuple

from pydantic import ValidationError

from privguard.compliance.consent import ConsentSet, DuoConsent, FhirConsent
from privguard.compliance.duo import PERMISSIONS, ConsentTerm, DuoCode
from privguard.compliance.request import ExportRequest, Patient
from privguard.errors import PolicyError

PATIENT_COLUMNS = (
    "patient_id",
    "age",
    "zip3",
    "study_id",
    "modality",
    "body_part",
    "defaced",
    "burned_in_annotation",
)
PATIENT_REQUIRED = frozenset({"patient_id", "study_id", "modality"})
CONSENT_COLUMNS = (
    "patient_id",
    "given",
    "expires",
    "withdrawn",
    "explicit",
    "permission",
    "diseases",
    "modifiers",
    "pipl_sensitive",
    "pipl_cross_border",
    "gdpr_transfer",
    "guardian",
)
CONSENT_REQUIRED = frozenset({"patient_id", "given", "permission"})

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
_MODALITY = re.compile(r"[A-Z]{2,4}")
_BODY_PART = re.compile(r"[A-Z][A-Z0-9]{0,15}")
_ZIP3 = re.compile(r"[0-9]{3}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class StudyView(NamedTuple):
    """One study, as the checks see it."""

    modality: str
    body_part: str | None
    defaced: bool
    burned_in: str | None


class PatientView(NamedTuple):
    """One patient, as the checks see it."""

    id: str
    age: int | None
    zip3: str | None
    studies: tuple[StudyView, ...]


class ConsentRow(NamedTuple):
    """One DUO consent from a consent table (dates as ISO strings, compared as strings)."""

    patient: str
    given: str
    expires: str | None
    withdrawn: str | None
    explicit: bool
    terms: str
    """``permission|diseases|modifiers`` as written: the key DUO matching is cached on."""
    pipl_sensitive: str | None
    pipl_cross_border: str | None
    gdpr_transfer: str | None
    guardian: str | None


Record = DuoConsent | FhirConsent | ConsentRow


def view(p: Patient) -> PatientView:
    """The view of an inline patient."""
    return PatientView(
        p.id,
        p.age,
        p.zip3,
        tuple(StudyView(s.modality, s.body_part, s.defaced, s.burned_in_annotation) for s in p.studies),
    )


class _HashingReader(io.RawIOBase):
    """A binary reader that hashes what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.digest.update(data)
        return n


@dataclass
class TableInfo:
    """A table being read: where from and, once read to the end, its SHA-256."""

    path: Path
    what: str
    sha256: str | None = None
    rows: int = 0
    pinned: str | None = None
    _reader: _HashingReader | None = field(default=None, repr=False)

    def fail(self, line: int, problem: str) -> PolicyError:
        return PolicyError(f"{self.what} {self.path} line {line}: {problem}")


def _open(
    info: TableInfo, columns: tuple[str, ...], required: frozenset[str]
) -> tuple[Iterator[list[str]], IO[bytes]]:
    try:
        raw = info.path.open("rb")
    except OSError:
        raise PolicyError(f"{info.what} {info.path} cannot be read (missing or not a file)") from None
    reader = _HashingReader(raw)
    info._reader = reader
    text = io.TextIOWrapper(io.BufferedReader(reader, buffer_size=1 << 20), encoding="utf-8", newline="")
    rows = csv.reader(text)
    try:
        header = next(rows)
    except StopIteration:
        raw.close()
        raise PolicyError(f"{info.what} {info.path} is empty (a header row is required)") from None
    except (UnicodeDecodeError, csv.Error):
        raw.close()
        raise PolicyError(f"{info.what} {info.path} line 1: not a UTF-8 CSV header") from None
    unknown = [h for h in header if h not in columns]
    if unknown or len(set(header)) != len(header) or not required <= set(header):
        raw.close()
        raise PolicyError(
            f"{info.what} {info.path} line 1: the header must name columns from "
            f"{', '.join(columns)} once each, including {', '.join(sorted(required))}"
        )
    order = [header.index(c) if c in header else -1 for c in columns]

    def reordered() -> Iterator[list[str]]:
        width = len(header)
        try:
            for row in rows:
                if len(row) != width:
                    raise info.fail(rows.line_num, f"expected {width} fields")
                yield [row[i] if i >= 0 else "" for i in order]
        except (UnicodeDecodeError, csv.Error):
            raise info.fail(rows.line_num, "not valid UTF-8 CSV") from None

    return reordered(), raw


def _finish(info: TableInfo, raw: IO[bytes]) -> None:
    assert info._reader is not None
    while info._reader._raw.read(1 << 20):  # hash what the CSV reader left (nothing, normally)
        pass
    raw.close()
    info.sha256 = info._reader.digest.hexdigest()
    if info.pinned is not None and info.pinned != info.sha256:
        raise PolicyError(f"{info.what} {info.path} does not have the SHA-256 the request pins (changed?)")


def _age(text: str, info: TableInfo, line: int) -> int | None:
    if not text:
        return None
    if not text.isdigit() or len(text) > 3 or int(text) > 150:
        raise info.fail(line, "column 'age' must be an integer from 0 to 150")
    return int(text)


_FLAGS = {"": False, "false": False, "true": True}


def read_patients(info: TableInfo) -> Iterator[PatientView]:
    """Stream a patient table, validating every value and the id order."""
    rows, raw = _open(info, PATIENT_COLUMNS, PATIENT_REQUIRED)
    current: list[str] | None = None
    studies: list[StudyView] = []
    study_ids: set[str] = set()
    line = 1
    match_id, match_mod, match_part, match_zip = (
        _ID.fullmatch,
        _MODALITY.fullmatch,
        _BODY_PART.fullmatch,
        _ZIP3.fullmatch,
    )
    last_id = ""
    for line, (pid, age, zip3, sid, modality, part, defaced, burned) in enumerate(rows, start=2):
        if current is None or pid != current[0]:
            if current is not None:
                info.rows += 1
                yield PatientView(
                    current[0], _age(current[1], info, line), current[2] or None, tuple(studies)
                )
            if not match_id(pid):
                raise info.fail(line, "column 'patient_id' is not a valid identifier")
            if pid <= last_id:
                raise info.fail(line, "patient ids must be strictly increasing (rows of a patient together)")
            if zip3 and not match_zip(zip3):
                raise info.fail(line, "column 'zip3' must be three digits")
            last_id = pid
            current = [pid, age, zip3]
            studies = []
            study_ids = set()
        elif age != current[1] or zip3 != current[2]:
            raise info.fail(line, "a patient's rows disagree on 'age' or 'zip3'")
        if not match_id(sid) or sid in study_ids:
            raise info.fail(line, "column 'study_id' is not a valid identifier or repeats within the patient")
        study_ids.add(sid)
        if not match_mod(modality):
            raise info.fail(line, "column 'modality' must be 2-4 upper-case letters")
        if part and not match_part(part):
            raise info.fail(line, "column 'body_part' must be an upper-case DICOM BodyPartExamined term")
        flag = _FLAGS.get(defaced)
        if flag is None:
            raise info.fail(line, "column 'defaced' must be true, false or empty")
        if burned not in ("", "YES", "NO"):
            raise info.fail(line, "column 'burned_in_annotation' must be YES, NO or empty")
        studies.append(StudyView(modality, part or None, flag, burned or None))
    if current is not None:
        info.rows += 1
        yield PatientView(current[0], _age(current[1], info, line), current[2] or None, tuple(studies))
    _finish(info, raw)
    if info.rows == 0:
        raise PolicyError(f"{info.what} {info.path} has no patients")


def _date(text: str, info: TableInfo, line: int, column: str) -> str | None:
    if not text:
        return None
    if not _DATE.fullmatch(text):
        raise info.fail(line, f"column '{column}' must be a date YYYY-MM-DD")
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise info.fail(line, f"column '{column}' must be a date YYYY-MM-DD") from None
    return text


@lru_cache(maxsize=4096)
def parse_terms(terms: str) -> tuple[ConsentTerm, tuple[ConsentTerm, ...]]:
    """Parse ``permission|diseases|modifiers`` (a consent row's terms) into DUO terms.

    Raises
    ------
    ValueError
        A code or parameter is not valid (the message names the problem, not the value).
    """
    permission, diseases, modifiers = terms.split("\t")
    try:
        perm = ConsentTerm(code=DuoCode(permission), diseases=tuple(d for d in diseases.split("|") if d))
    except (ValueError, ValidationError):
        raise ValueError("columns 'permission'/'diseases' are not a valid DUO permission") from None
    if perm.code not in PERMISSIONS:
        raise ValueError("column 'permission' must be NRES, GRU, HMB, DS or POA")
    mods: list[ConsentTerm] = []
    for item in (m for m in modifiers.split(";") if m):
        code, _, param = item.partition(":")
        try:
            c = DuoCode(code)
            if c is DuoCode.GS:
                term = ConsentTerm(code=c, regions=tuple(param.split("|")))
            elif c is DuoCode.TS:
                term = ConsentTerm(code=c, months=int(param))
            elif param:
                raise ValueError("parameter")
            else:
                term = ConsentTerm(code=c)
        except (ValueError, ValidationError):
            raise ValueError("column 'modifiers' has an invalid DUO modifier") from None
        if term.code in PERMISSIONS or term.code in {m.code for m in mods}:
            raise ValueError("column 'modifiers' repeats a code or lists a permission")
        mods.append(term)
    return perm, tuple(mods)


def read_consents(info: TableInfo) -> Iterator[ConsentRow]:
    """Stream a consent table, validating every value and the id order."""
    rows, raw = _open(info, CONSENT_COLUMNS, CONSENT_REQUIRED)
    last_id = ""
    for line, r in enumerate(rows, start=2):
        pid = r[0]
        if not _ID.fullmatch(pid):
            raise info.fail(line, "column 'patient_id' is not a valid identifier")
        if pid <= last_id:
            raise info.fail(line, "patient ids must be strictly increasing (one row per patient)")
        last_id = pid
        given = _date(r[1], info, line, "given")
        if given is None:
            raise info.fail(line, "column 'given' is required")
        expires = _date(r[2], info, line, "expires")
        if expires is not None and expires < given:
            raise info.fail(line, "column 'expires' is before 'given'")
        explicit = _FLAGS.get(r[4])
        if explicit is None:
            raise info.fail(line, "column 'explicit' must be true, false or empty")
        terms = f"{r[5]}\t{r[6]}\t{r[7]}"
        try:
            parse_terms(terms)
        except ValueError as e:
            raise info.fail(line, str(e)) from None
        info.rows += 1
        yield ConsentRow(
            pid,
            given,
            expires,
            _date(r[3], info, line, "withdrawn"),
            explicit,
            terms,
            _date(r[8], info, line, "pipl_sensitive"),
            _date(r[9], info, line, "pipl_cross_border"),
            _date(r[10], info, line, "gdpr_transfer"),
            _date(r[11], info, line, "guardian"),
        )
    _finish(info, raw)


def _resolve(ref: str, base: Path | None) -> Path:
    path = Path(ref)
    return path if path.is_absolute() or base is None else base / path


@dataclass
class Cohort:
    """The patients of a request joined with their consent records, as one stream."""

    request: ExportRequest
    consents: ConsentSet | None
    request_dir: Path | None
    consents_dir: Path | None
    patient_table: TableInfo | None = None
    consent_table: TableInfo | None = None

    def __post_init__(self) -> None:
        ds = self.request.dataset
        if ds.table is not None:
            self.patient_table = TableInfo(
                _resolve(ds.table, self.request_dir), "patient table", pinned=ds.sha256
            )
        if self.consents is not None and self.consents.table is not None:
            self.consent_table = TableInfo(
                _resolve(self.consents.table, self.consents_dir), "consent table", pinned=self.consents.sha256
            )

    def _patients(self) -> Iterator[PatientView]:
        if self.patient_table is not None:
            return read_patients(self.patient_table)
        assert self.request.dataset.patients is not None
        return (view(p) for p in self.request.dataset.patients)

    def __iter__(self) -> Iterator[tuple[PatientView, Record | None]]:
        patients = self._patients()
        if self.consent_table is None:
            records: dict[str, Record] = (
                {r.patient: r for r in self.consents.records} if self.consents else {}
            )
            for p in patients:
                yield p, records.get(p.id)
            return
        consents = read_consents(self.consent_table)
        if self.patient_table is None:
            wanted = {p.id for p in self.request.dataset.patients or ()}
            found: dict[str, Record] = {c.patient: c for c in consents if c.patient in wanted}
            for p in patients:
                yield p, found.get(p.id)
            return
        # both sorted by id: a merge join
        pending = next(consents, None)
        for p in patients:
            while pending is not None and pending.patient < p.id:
                pending = next(consents, None)
            if pending is not None and pending.patient == p.id:
                yield p, pending
                pending = next(consents, None)
            else:
                yield p, None
        for _ in consents:  # read to the end: validate and hash the rest
            pass
