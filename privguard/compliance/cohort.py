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
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

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
    kinds: tuple[int, ...]
    """Each study as an index into :attr:`Cohort.kinds` (studies with the same values share one)."""


class StudyKinds:
    """Distinct study descriptions (modality, body part, defaced, burned-in flag), numbered."""

    def __init__(self) -> None:
        self.views: list[StudyView] = []
        self._index: dict[tuple[str, str | None, bool, str | None], int] = {}

    def index(self, modality: str, part: str | None, defaced: bool, burned: str | None) -> int:
        key = (modality, part, defaced, burned)
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self.views)
            self.views.append(StudyView(*key))
        return i


class ConsentRow(NamedTuple):
    """A DUO consent from a consent table, without the patient id (dates as ISO strings, compared
    as strings). Rows with the same values share one object, so the check can work per object."""

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


def view(p: Patient, kinds: StudyKinds) -> PatientView:
    """The view of an inline patient."""
    return PatientView(
        p.id,
        p.age,
        p.zip3,
        tuple(kinds.index(s.modality, s.body_part, s.defaced, s.burned_in_annotation) for s in p.studies),
    )


@dataclass
class TableInfo:
    """A table being read: where from and, once read to the end, its SHA-256."""

    path: Path
    what: str
    sha256: str | None = None
    rows: int = 0
    pinned: str | None = None
    line_no: int = 0
    """The line being read."""

    def fail(self, line: int, problem: str) -> PolicyError:
        return PolicyError(f"{self.what} {self.path} line {line}: {problem}")


_ID_RE = r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}"
_DATE_RE = r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2})?"
_FLAG_RE = r"(?:true|false)?"

#: Column -> (syntax, what the error message says about it). Every valid value is free of commas,
#: quotes and line breaks, so a valid row is one line that one regular expression matches.
SYNTAX: dict[str, tuple[str, str]] = {
    "patient_id": (_ID_RE, "a letter or digit, then letters, digits or ._:/- (at most 128)"),
    "age": (r"[0-9]{0,3}", "an integer from 0 to 150, or empty"),
    "zip3": (r"(?:[0-9]{3})?", "three digits, or empty"),
    "study_id": (_ID_RE, "a letter or digit, then letters, digits or ._:/- (at most 128)"),
    "modality": (r"[A-Z]{2,4}", "2-4 upper-case letters"),
    "body_part": (r"(?:[A-Z][A-Z0-9]{0,15})?", "an upper-case DICOM BodyPartExamined term, or empty"),
    "defaced": (_FLAG_RE, "true, false or empty"),
    "burned_in_annotation": (r"(?:YES|NO)?", "YES, NO or empty"),
    "given": (r"[0-9]{4}-[0-9]{2}-[0-9]{2}", "a date YYYY-MM-DD"),
    "expires": (_DATE_RE, "a date YYYY-MM-DD, or empty"),
    "withdrawn": (_DATE_RE, "a date YYYY-MM-DD, or empty"),
    "explicit": (_FLAG_RE, "true, false or empty"),
    "permission": (r"[A-Z]{2,6}", "a DUO permission: NRES, GRU, HMB, DS or POA"),
    "diseases": (r"[A-Za-z0-9_:.|-]{0,1000}", "|-separated disease ids such as MONDO:0004992"),
    "modifiers": (r"[A-Za-z0-9:;|]{0,1000}", ";-separated DUO modifiers such as IRB;GS:DE|AT;TS:24"),
    "pipl_sensitive": (_DATE_RE, "a date YYYY-MM-DD, or empty"),
    "pipl_cross_border": (_DATE_RE, "a date YYYY-MM-DD, or empty"),
    "gdpr_transfer": (_DATE_RE, "a date YYYY-MM-DD, or empty"),
    "guardian": (_DATE_RE, "a date YYYY-MM-DD, or empty"),
}


_CHUNK = 1 << 20


def _values(
    info: TableInfo, columns: tuple[str, ...], required: frozenset[str]
) -> Iterator[tuple[int, list[tuple[str, ...]]]]:
    """Stream a table as chunks of rows: (line number of the chunk's first row, rows).

    Each row is its values in ``columns`` order ('' for a column the file
    does not have). Every value is checked against its column's syntax: a
    whole chunk against one regular expression (every line must match), or,
    for a chunk where some line does not match (quoted fields, an error),
    line by line, with a message naming the line and the column. The file's
    SHA-256 is computed from the bytes as they are read.
    """
    try:
        raw = info.path.open("rb")
    except OSError:
        raise PolicyError(f"{info.what} {info.path} cannot be read (missing or not a file)") from None
    digest = hashlib.sha256()
    try:
        data = raw.read(_CHUNK)
        digest.update(data)
        end = data.find(b"\n")
        while end < 0:
            more = raw.read(_CHUNK)
            if not more:
                break
            digest.update(more)
            data += more
            end = data.find(b"\n")
        first, data = (data, b"") if end < 0 else (data[: end + 1], data[end + 1 :])
        try:
            header = next(csv.reader([first.decode("utf-8")])) if first.strip() else []
        except (UnicodeDecodeError, csv.Error):
            raise PolicyError(f"{info.what} {info.path} line 1: not a UTF-8 CSV header") from None
        if not header:
            raise PolicyError(f"{info.what} {info.path} is empty (a header row is required)")
        unknown = [h for h in header if h not in columns]
        if unknown or len(set(header)) != len(header) or not required <= set(header):
            raise PolicyError(
                f"{info.what} {info.path} line 1: the header must name columns from "
                f"{', '.join(columns)} once each, including {', '.join(sorted(required))}"
            )
        missing = [c for c in columns if c not in header]
        order = header + missing  # missing columns: empty groups at the end of the pattern
        get = itemgetter(*(order.index(c) for c in columns))
        fields = ",".join(f"({SYNTAX[c][0]})" for c in header) + "()" * len(missing)
        many = re.compile(f"^{fields}\r?$", re.MULTILINE).findall
        one = re.compile(f"{fields}\r?\n?").fullmatch
        pad = ("",) * len(missing)
        line = 2
        at_end = False
        while not at_end:
            more = raw.read(_CHUNK)
            digest.update(more)
            data += more
            at_end = not more
            cut = len(data) if at_end else data.rfind(b"\n") + 1
            if cut == 0:
                continue  # no complete line yet
            block, data = data[:cut], data[cut:]
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError as e:
                raise info.fail(line + block.count(b"\n", 0, e.start), "not valid UTF-8") from None
            lines = text.count("\n") + (not text.endswith("\n"))
            rows = many(text)
            if len(rows) != lines:  # some line did not match: find it, line by line
                rows = []
                for k, row_text in enumerate(text.splitlines(keepends=True)):
                    m = one(row_text)
                    if m is not None:
                        rows.append(m.groups())
                    elif not row_text.strip():
                        raise info.fail(line + k, "empty line")
                    else:
                        rows.append(_checked_fields(info, line + k, header, row_text) + pad)
            del text, block
            yield line, list(map(get, rows))
            line += lines
        info.sha256 = digest.hexdigest()
        if info.pinned is not None and info.pinned != info.sha256:
            raise PolicyError(
                f"{info.what} {info.path} does not have the SHA-256 the request pins (changed?)"
            )
    finally:
        raw.close()


def _checked_fields(info: TableInfo, line: int, header: list[str], text: str) -> tuple[str, ...]:
    """Parse one line that the fast path did not match; raise naming the first bad column."""
    try:
        row = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        raise info.fail(line, "not valid CSV (a quoted field spans lines?)") from None
    if len(row) != len(header):
        raise info.fail(line, f"expected {len(header)} fields")
    for column, value in zip(header, row, strict=True):
        pattern, what = SYNTAX[column]
        if not re.fullmatch(pattern, value):
            raise info.fail(line, f"column '{column}' must be {what}")
    return tuple(row)


class _Checked:
    """Values already validated (modalities, body parts, ages, dates repeat): validate each once."""

    def __init__(self, info: TableInfo) -> None:
        self.info = info
        self.modalities: set[str] = set()
        self.parts: set[str] = {""}
        self.ages: dict[str, int | None] = {"": None}
        self.dates: set[str] = {""}

    def fail(self, problem: str) -> PolicyError:
        return self.info.fail(self.info.line_no, problem)

    def fail_at(self, line: int, problem: str) -> PolicyError:
        self.info.line_no = line
        return self.info.fail(line, problem)

    def age(self, text: str) -> int | None:
        if text in self.ages:
            return self.ages[text]
        if not text.isdigit() or len(text) > 3 or int(text) > 150:
            raise self.fail("column 'age' must be an integer from 0 to 150")
        self.ages[text] = int(text)
        return int(text)

    def modality(self, text: str) -> None:
        if text not in self.modalities:
            if not _MODALITY.fullmatch(text):
                raise self.fail("column 'modality' must be 2-4 upper-case letters")
            self.modalities.add(text)

    def part(self, text: str) -> None:
        if text not in self.parts:
            if not _BODY_PART.fullmatch(text):
                raise self.fail("column 'body_part' must be an upper-case DICOM BodyPartExamined term")
            self.parts.add(text)

    def date(self, text: str, column: str) -> None:
        if text in self.dates:
            return
        ok = _DATE.fullmatch(text) is not None
        if ok:
            try:
                dt.date.fromisoformat(text)
            except ValueError:
                ok = False
        if not ok:
            raise self.fail(f"column '{column}' must be a date YYYY-MM-DD")
        self.dates.add(text)


_FLAGS = {"": False, "false": False, "true": True}
_BURNED = {"": None, "YES": "YES", "NO": "NO"}


def read_patients(info: TableInfo, kinds: StudyKinds) -> Iterator[PatientView]:
    """Stream a patient table, validating every value and the id order."""
    checked = _Checked(info)
    ages = checked.ages
    known: dict[tuple[str, str, str, str], int] = {}
    cur_id = cur_age = cur_zip = ""
    studies: list[int] = []
    sids: list[str] = []
    for first, rows in _values(info, PATIENT_COLUMNS, PATIENT_REQUIRED):
        for line, (pid, age, zip3, sid, modality, part, defaced, burned) in enumerate(rows, first):
            if pid != cur_id:
                if studies:
                    if len(sids) > 1 and len(set(sids)) != len(sids):
                        raise checked.fail_at(line - 1, "column 'study_id' repeats within the patient")
                    info.rows += 1
                    yield PatientView(cur_id, ages[cur_age], cur_zip or None, tuple(studies))
                if pid <= cur_id:
                    raise checked.fail_at(
                        line, "patient ids must be strictly increasing (rows of a patient together)"
                    )
                if age not in ages:
                    info.line_no = line
                    checked.age(age)
                cur_id, cur_age, cur_zip = pid, age, zip3
                studies = []
                sids = []
            elif age != cur_age or zip3 != cur_zip:
                raise checked.fail_at(line, "a patient's rows disagree on 'age' or 'zip3'")
            sids.append(sid)
            key = (modality, part, defaced, burned)
            k = known.get(key)
            if k is None:
                k = known[key] = kinds.index(modality, part or None, defaced == "true", burned or None)
            studies.append(k)
    if studies:
        if len(sids) > 1 and len(set(sids)) != len(sids):
            raise checked.fail("column 'study_id' repeats within the patient")
        info.rows += 1
        yield PatientView(cur_id, ages[cur_age], cur_zip or None, tuple(studies))
    if info.rows == 0:
        raise PolicyError(f"{info.what} {info.path} has no patients")


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


def read_consents(info: TableInfo) -> Iterator[tuple[str, ConsentRow]]:
    """Stream a consent table as (patient id, consent), validating every value and the id order.

    Consents with the same values (everything but the patient id) are one
    shared :class:`ConsentRow`, validated once.
    """
    checked = _Checked(info)
    seen: dict[tuple[str, ...], ConsentRow] = {}
    last_id = ""
    for first, rows in _values(info, CONSENT_COLUMNS, CONSENT_REQUIRED):
        for line, row in enumerate(rows, first):
            pid = row[0]
            if pid <= last_id:
                raise checked.fail_at(line, "patient ids must be strictly increasing (one row per patient)")
            last_id = pid
            rest = row[1:]
            consent = seen.get(rest)
            if consent is None:
                info.line_no = line
                consent = seen[rest] = _consent(checked, rest)
            yield pid, consent
        info.rows += len(rows)


def _consent(checked: _Checked, values: tuple[str, ...]) -> ConsentRow:
    given, expires, withdrawn, explicit, perm, diseases, mods, sens, xb, gdpr_t, guardian = values
    for value, column in (
        (given, "given"),
        (expires, "expires"),
        (withdrawn, "withdrawn"),
        (sens, "pipl_sensitive"),
        (xb, "pipl_cross_border"),
        (gdpr_t, "gdpr_transfer"),
        (guardian, "guardian"),
    ):
        checked.date(value, column)
    if expires and expires < given:
        raise checked.fail("column 'expires' is before 'given'")
    terms = f"{perm}\t{diseases}\t{mods}"
    try:
        parse_terms(terms)
    except ValueError as e:
        raise checked.fail(str(e)) from None
    return ConsentRow(
        given,
        expires or None,
        withdrawn or None,
        explicit == "true",
        terms,
        sens or None,
        xb or None,
        gdpr_t or None,
        guardian or None,
    )


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
    kinds: StudyKinds = field(default_factory=StudyKinds)

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
            return read_patients(self.patient_table, self.kinds)
        assert self.request.dataset.patients is not None
        return (view(p, self.kinds) for p in self.request.dataset.patients)

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
            found: dict[str, Record] = {pid: c for pid, c in consents if pid in wanted}
            for p in patients:
                yield p, found.get(p.id)
            return
        # both sorted by id: a merge join
        pending = next(consents, None)
        for p in patients:
            while pending is not None and pending[0] < p.id:
                pending = next(consents, None)
            if pending is not None and pending[0] == p.id:
                yield p, pending[1]
                pending = next(consents, None)
            else:
                yield p, None
        for _ in consents:  # read to the end: validate and hash the rest
            pass
