"""Compile a profile into per-tag rules: Table E.1-1 + options + site overrides.

Precedence when several switched-on options name an attribute: K (retain)
beats C (clean), which beats the Basic Profile code. A site override beats
everything. The compiled :class:`Plan` is data; :mod:`privguard.header.engine`
applies it to datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from pydicom._dicom_dict import DicomDictionary, RepeatersDictionary
from pydicom.datadict import dictionary_VR

from privguard.header.profile import DeidProfile, Option, Override
from privguard.header.standard import TableRow, e1_1, safe_private

#: The Table E.1-1 attributes that are replaced by pseudonyms instead of emptied,
#: because they link a patient's files together: tag -> pseudonym kind.
PSEUDONYM_TAGS: dict[int, str] = {
    0x00100020: "patient",  # PatientID
    0x00100010: "name",  # PatientName
    0x00080050: "accession",  # AccessionNumber
    0x00200010: "study",  # StudyID
}


@dataclass(frozen=True, slots=True)
class Rule:
    """What to do with one attribute: an action code and why."""

    code: str
    """X, Z, D, K, C, U, or a compound code resolved per IOD (X/Z, X/D, Z/D, X/Z/D, X/Z/U*)."""
    source: str
    """'basic', the option that set the code, or 'override'."""
    override: Override | None = None


@dataclass(frozen=True)
class Plan:
    """A profile compiled against the standard's tables."""

    profile: DeidProfile
    edition: str
    rules: dict[int, Rule]
    curve: Rule
    overlay_data: Rule
    overlay_comments: Rule
    private: Rule
    unlisted_dates: Rule
    """A DA, DT or TM attribute Table E.1-1 does not list (see :func:`unlisted_date_row`)."""
    safe_private: dict[tuple[str, int, int], str]
    """Table E.3.10-1: (creator, group, element byte) -> the table's VR."""
    options: frozenset[Option] = field(default_factory=frozenset)

    def has(self, option: Option) -> bool:
        return option in self.options


def _rule_for(row: TableRow, options: frozenset[Option]) -> Rule:
    codes = {opt: row.options[opt.value] for opt in options if opt.value in row.options}
    for wanted in ("K", "C"):
        for opt, code in sorted(codes.items(), key=lambda kv: kv[0].value):
            if code == wanted:
                return Rule(code, opt.value)
    return Rule(row.basic, "basic")


def compile_plan(profile: DeidProfile) -> Plan:
    """Compile ``profile`` into a :class:`Plan` (cached per profile)."""
    return _compile(profile)


@lru_cache(maxsize=16)
def _compile(profile: DeidProfile) -> Plan:
    table = e1_1()
    options = frozenset(profile.options)
    rules = {tag: _rule_for(row, options) for tag, row in table.by_tag.items()}
    for ov in profile.overrides:
        rules[ov.tag] = Rule(_override_code(ov.action), "override", ov)
    return Plan(
        profile=profile,
        edition=table.edition,
        rules=rules,
        curve=_rule_for(table.curve, options),
        overlay_data=_rule_for(table.overlay_data, options),
        overlay_comments=_rule_for(table.overlay_comments, options),
        private=_rule_for(table.private, options),
        unlisted_dates=_unlisted_dates(options),
        safe_private=safe_private(),
        options=options,
    )


#: DA, DT and TM: the VRs of dates and times, which PS3.15 suggests handling by VR (below).
DATE_VRS = frozenset({"DA", "DT", "TM"})


@lru_cache(maxsize=1)
def unlisted_date_row() -> TableRow:
    """The row privguard applies to a date or time attribute that Table E.1-1 does not list.

    The note to Table E.1-1 says the table "is subject to extension as the DICOM Standard
    evolves ... De-identifiers may take this extensibility into account, for example, by
    considering handling all dates and times on the basis of their Value Representation of
    DT, DA or TM". privguard does: the option cells are those the table gives its own date and
    time rows (generated: the most common pair of Retain Longitudinal Full Dates / Modified
    Dates codes over every DA/DT/TM row, K and C in 2026c), and the Basic Profile code is X/D:
    removed where the file's IOD does not require it, a dummy where it may (Type 1) or where
    the Type cannot be known (inside items, an unknown SOP Class), as for the table's dates.
    """
    from collections import Counter

    full, modified = (
        Option.RETAIN_LONGITUDINAL_FULL_DATES.value,
        Option.RETAIN_LONGITUDINAL_MODIFIED_DATES.value,
    )
    pairs: Counter[tuple[str, str]] = Counter()
    for tag, row in e1_1().by_tag.items():
        entry = DicomDictionary.get(tag)
        if entry is not None and entry[0] in DATE_VRS and full in row.options and modified in row.options:
            pairs[(row.options[full], row.options[modified])] += 1
    (full_code, modified_code), _ = pairs.most_common(1)[0]
    return TableRow(
        tag=None,
        mask="unlisted-date",
        keyword="",
        name="Date or time attribute not in Table E.1-1",
        retired=False,
        in_std_comp_iod=False,
        basic="X/D",
        options={full: full_code, modified: modified_code},
    )


def _unlisted_dates(options: frozenset[Option]) -> Rule:
    rule = _rule_for(unlisted_date_row(), options)
    return Rule(rule.code, "date-not-in-table") if rule.source == "basic" else rule


def _override_code(action: str) -> str:
    return {"keep": "K", "remove": "X", "empty": "Z", "replace": "R", "hash": "H"}[action]


@lru_cache(maxsize=4096)
def public_vr(tag: int) -> str | None:
    """The data dictionary VR of a public tag (repeating groups included), or None if unknown."""
    if tag in DicomDictionary:
        return str(DicomDictionary[tag][0])
    try:
        return str(dictionary_VR(tag)) if _in_repeaters(tag) else None
    except KeyError:
        return None


def _in_repeaters(tag: int) -> bool:
    from pydicom.datadict import mask_match

    return mask_match(tag) is not None and mask_match(tag) in RepeatersDictionary
