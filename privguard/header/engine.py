"""Apply a compiled :class:`~privguard.header.plan.Plan` to a dataset.

One walk over the dataset, recursing into sequences to any depth, decides
each attribute's action from its tag alone (Table E.1-1 row, repeating-group
family, private block, data dictionary) and converts only the values it must
change. Untouched elements stay raw, so a file can be written back by copying
their original bytes (see :mod:`privguard.dicomio`).

Action codes follow PS3.15 Table E.1-1a:

* compound codes (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) are resolved by the attribute's
  Type in the file's IOD (PS3.3, via the SOP Class): Type 3 -> the first code,
  Type 2 -> Z, Type 1 -> D. X/Z/U* (references to other instances) always takes
  U*: the sequence is kept with its UIDs replaced, so links survive. When the SOP
  Class is unknown, the last code is used: a dummy or empty value never leaks and
  never breaks conformance;
* D on a sequence keeps its items with every free-text value (CodeMeaning
  included), date and time replaced by a dummy; only code identifiers (CodeValue,
  CodingSchemeDesignator, ...) stay. U* treats the free text of the items it keeps
  the same way. C on a sequence keeps its items and sends all their free text
  (CodeMeaning included) through the classifier; K on a sequence keeps it but
  still de-identifies its items. A person name (PN) inside any item is a dummy;
* C cleans by VR: text has its PHI spans replaced (presidio), DA/DT are shifted
  by the patient's offset, AE titles become pseudonyms, binary values cannot
  be cleaned and get their Basic Profile action instead.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from pydicom import config as pydicom_config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import MAX_VALUE_LEN

from privguard.dicom.scan import FIXED_SIZE
from privguard.dicom.verify import CODE_IDENT_TAGS  # codes: kept as they are, never searched for names
from privguard.dicomio import decode_sequence
from privguard.errors import ProcessingError
from privguard.header.names import PATIENT_NAME_TAGS, NameWords, name_matcher, name_words, whole_word_in
from privguard.header.plan import DATE_VRS, PSEUDONYM_TAGS, Plan, Rule, public_vr
from privguard.header.profile import CID_7050, Option
from privguard.header.standard import COMPOUND_CODES, iod_types
from privguard.models import ActionName, AttributeChange, DeidRecord
from privguard.pseudonym.dates import shift_value
from privguard.pseudonym.pseudonymizer import Pseudonymizer

logger = logging.getLogger(__name__)

TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC"})
BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
#: Free-text VRs: under Clean Descriptors, a value of one of these the table does not list is
#: cleaned too, as is an LO/SH attribute whose keyword names a description, comment or the like.
FREE_TEXT_VRS = frozenset({"ST", "LT", "UT", "UC"})
_DESCRIPTIVE = re.compile(r"Description|Comment|Note|Reason|Title|Label|Explanation|Summary|Purpose|Remark")
MAX_LEN = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "CS": 16, "AE": 16, "PN": 64}
#: Padding PS3.5 Table 6.2-1 calls insignificant: leading and trailing spaces of these VRs ...
_PAD_BOTH = frozenset({"AE", "CS", "DS", "IS", "LO", "SH"})
#: ... trailing spaces only of these (their leading spaces are significant) ...
_PAD_TRAILING = frozenset({"ST", "LT"})
#: ... and of a UI, the trailing NUL that makes its length even. Multi-valued VRs are checked per value.
_SINGLE_VALUED = frozenset({"ST", "LT"})
_DUMMY: dict[str, Any] = {
    "AE": "ANONYMIZED",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "UT": "ANONYMIZED",
    "UC": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "UR": "urn:x-privguard:removed",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "UV": 0,
    "SV": 0,
    "FL": 0.0,
    "FD": 0.0,
    "AT": 0,
}
_STANDARD_UID_ROOT = "1.2.840.10008."
#: Characters a kept value of these VRs may hold (PS3.5 Table 6.2-1, with the separators legacy
#: files use); multiple values are separated by a backslash. A kept value with others is a dummy.
_VALUE_PATTERNS = {
    "AS": re.compile(rb"(\d{3}[DWMY])?(\\\d{3}[DWMY])*"),
    "DA": re.compile(rb"[0-9.\-/ \\]*"),
    "TM": re.compile(rb"[0-9.:\- \\]*"),
    "DT": re.compile(rb"[0-9.+\- \\]*"),
    "DS": re.compile(rb"[0-9+\-Ee. \\]*"),
    "IS": re.compile(rb"[0-9+\- \\]*"),
    "CS": re.compile(rb"[A-Za-z0-9_ \-./,()+\\]*"),
}
#: VRs whose kept values are looked at (characters, name words, length); others are kept unseen.
_CHECKED_VRS = frozenset(_VALUE_PATTERNS) | TEXT_VRS | frozenset(MAX_VALUE_LEN)
_UNSET: Any = object()
#: VRs a safe private attribute read without one (implicit VR, or UN) is given from the table.
_TABLE_VRS = frozenset(
    {"SQ", "AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "SH", "ST", "TM", "UI", "UT", "UC", "PN"}
    | set(FIXED_SIZE)
)
#: The attributes privguard writes to record the de-identification (PS3.15 E.1.1).
METHOD_TAGS = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})
_NO_VALIDATION = pydicom_config.IGNORE
#: Type 1C attributes required only when another attribute is present (PS3.3), where Table
#: E.1-1 dummies the first and removes the second: the first must then go too, or the
#: output would carry an attribute whose condition no longer holds.
#: dependent tag -> the tag its presence depends on.
PRESENT_ONLY_WITH: dict[int, int] = {
    0x00120081: 0x00120082,  # Ethics Committee Name needs the Approval Number (C.7.1.3)
}


class TextCleaner(Protocol):
    """The Clean options' text classifier, registered by the caller (see ``privguard.deidentifier``).

    The header layer does not import the text layer: the de-identifier, which
    sits above both, hands the engine an object with these two methods.
    """

    def context(self, ds: Dataset) -> Any:
        """The file's PHI context (its own identifying values), read before any change."""

    def redact(self, text: str, context: Any) -> Any:
        """Redact ``text``; the result has ``changed`` (bool) and ``text`` (str)."""


def dummy_value(vr: str) -> Any:
    """A non-empty value valid for ``vr`` that carries no information."""
    if vr in BINARY_VRS:
        return b"\x00\x00"
    return _DUMMY.get(vr, "ANONYMIZED")


def empty_value(vr: str) -> Any:
    if vr == "SQ":
        return Sequence()
    if vr in BINARY_VRS:
        return b""
    if vr in ("US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"):
        return None
    return ""


def _tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@dataclass
class FileState:
    """Per-file working state of one walk. Holds PHI context: never logged or returned."""

    record: bool
    iod: dict[str, int] | None
    patient_key: str
    context: Any = None
    counts: Counter[str] = field(default_factory=Counter)
    changes: list[AttributeChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dirty: set[int] = field(default_factory=set)
    top: int = 0
    offset: int | None = None
    patient_pseudonym: str = ""
    names: NameWords | None = None
    """The patient's name words, searched for in every text value that is kept (see header.names)."""

    def note(
        self, path: str, tag: int, keyword: str | None, vr: str, action: ActionName, reason: str
    ) -> None:
        """Count an action; with ``record``, also keep the attribute's entry (keyword looked up lazily)."""
        self.counts[action] += 1
        if self.record:
            kw = _keyword(tag) if keyword is None else keyword
            self.changes.append(
                AttributeChange(path=path + _tag_str(tag), keyword=kw, vr=vr, action=action, reason=reason)
            )

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def _elements(ds: Dataset) -> dict[int, Any]:
    """The dataset's element dict, keyed by plain int tags (BaseTag is an int; lookups agree)."""
    return ds._dict  # type: ignore[return-value]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\x00 ")
    return str(value).rstrip("\x00 ")


def _value_text(ds: Dataset, t: int) -> str | list[str]:
    """An element's value as text, without pydicom's conversion when the raw bytes are ASCII.

    Multi-valued text comes back as a list. Non-ASCII values go through pydicom,
    which decodes them with the dataset's character set.
    """
    raw = _elements(ds).get(t)
    if raw is not None and getattr(raw, "is_raw", False):
        data = raw.value
        if isinstance(data, bytes) and data.isascii():
            text = data.decode("ascii").rstrip("\x00 ")
            return text.split("\\") if "\\" in text else text
    value = ds[t].value
    if isinstance(value, MultiValue | list):
        return [_text(v) for v in value]
    return _text(value) if value is not None else ""


def patient_key_of(ds: Dataset) -> str:
    """What identifies the patient for date offsets and the output folder.

    PatientID (with its issuer); failing that, name and birth date; failing
    that, the study. Read from the original dataset, before any change.
    """
    pid = _text(ds.get("PatientID", "") or "")
    if pid:
        issuer = _text(ds.get("IssuerOfPatientID", "") or "")
        return f"id:{issuer}\x00{pid}"
    name = _text(ds.get("PatientName", "") or "")
    birth = _text(ds.get("PatientBirthDate", "") or "")
    if name:
        return f"name:{name}\x00{birth}"
    study = _text(ds.get("StudyInstanceUID", "") or "")
    return f"study:{study}"


class HeaderEngine:
    """Applies a plan to datasets with one pseudonymizer (one per worker process)."""

    def __init__(self, plan: Plan, pseudonymizer: Pseudonymizer, cleaner: TextCleaner | None = None) -> None:
        self.plan = plan
        self.pseudo = pseudonymizer
        self.cleaner = cleaner
        opts = plan.options
        self.modified_dates = Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in opts
        self.full_dates = Option.RETAIN_LONGITUDINAL_FULL_DATES in opts
        self.retain_uids = Option.RETAIN_UIDS in opts
        self._method_cache: dict[tuple[bool, bool], dict[int, bytes]] = {}
        self.clean_free_text = plan.profile.cleans_free_text
        self.clean_items = bool(
            opts & {Option.CLEAN_DESCRIPTORS, Option.CLEAN_STRUCTURED_CONTENT, Option.CLEAN_GRAPHICS}
        )
        self.needs_context = self.clean_free_text or bool(
            opts
            & {
                Option.CLEAN_DESCRIPTORS,
                Option.CLEAN_STRUCTURED_CONTENT,
                Option.CLEAN_GRAPHICS,
                Option.RETAIN_PATIENT_CHARACTERISTICS,
            }
        )

    # -- entry point ----------------------------------------------------------------------

    def run(
        self,
        ds: Dataset,
        *,
        record: bool = False,
        context: Any = None,
        name_words: tuple[str, ...] | None = None,
    ) -> FileState:
        """De-identify ``ds`` in place and return what was done.

        ``name_words``: :meth:`patient_name_words` of ``ds``, when the caller has them already.
        """
        sop_class = _text(ds.get("SOPClassUID", "") or "")
        st = FileState(
            record=record, iod=iod_types(sop_class) if sop_class else None, patient_key=patient_key_of(ds)
        )
        if context is None and self.needs_context:
            context = self._get_classifier().context(ds)
        st.context = context
        st.names = name_matcher(self.patient_name_words(ds) if name_words is None else name_words)
        if st.iod is None:
            st.warn("SOP Class not known to the IOD tables: compound actions resolved conservatively")
        self._walk(ds, (), st, top=True, mode=None, prefix="")
        for dependent, needed in PRESENT_ONLY_WITH.items():
            if dependent in _elements(ds) and needed not in _elements(ds):
                self._remove(ds, dependent, st, "", "condition-no-longer-met")
        self._add_method(ds, st)
        return st

    def patient_name_words(self, ds: Dataset) -> tuple[str, ...]:
        """The patient's name words (see :mod:`privguard.header.names`), read before any change.

        A name a site override keeps on purpose is not searched for (the verifier does not
        search for it either).
        """
        elems = _elements(ds)
        values: list[str] = []
        for t in PATIENT_NAME_TAGS:
            raw = elems.get(t)
            if raw is None:
                continue
            rule = self.plan.rules.get(t)
            if rule is not None and rule.override is not None:
                continue
            value = _value_text(ds, t)
            elems[t] = raw  # as read: decoding must not change what the writer copies
            values.extend(value if isinstance(value, list) else [value])
        return name_words(values) if values else ()

    def walk_more(self, ds: Dataset, st: FileState) -> None:
        """De-identify another part of the same file (elements after the pixel data)."""
        top = st.top
        st.top = 0x7FE00011
        self._walk(ds, (), st, top=False, mode=None, prefix="")
        st.top = top

    def to_record(self, st: FileState) -> DeidRecord:
        return DeidRecord(
            profile=self.plan.profile.name,
            standard_edition=self.plan.edition,
            counts=dict(st.counts),
            changes=tuple(st.changes),
            warnings=tuple(st.warnings),
            patient=st.patient_pseudonym,
        )

    # -- the walk -------------------------------------------------------------------------

    def _walk(
        self, ds: Dataset, kwpath: tuple[str, ...], st: FileState, *, top: bool, mode: str | None, prefix: str
    ) -> None:
        plan = self.plan
        rules = plan.rules
        overlay_groups: set[int] = set()
        creators_used: set[tuple[int, int]] = set()
        creators: list[int] = []
        for key in list(_elements(ds)):
            # ``key`` is the dict's own BaseTag: removing by it hits the dict's identity fast
            # path; ``t`` is a plain int for our tables (mixing the two calls BaseTag.__eq__).
            t = int(key)
            if top:
                st.top = t
            group, el = t >> 16, t & 0xFFFF
            if el == 0:
                self._remove(ds, key, st, prefix, "group-length")
                continue
            if not top and t in METHOD_TAGS:
                # Only the data set's own method attributes mean anything; a copy inside
                # an item (of an earlier de-identification, say) may hold anything.
                self._remove(ds, key, st, prefix, "method-attribute-in-item")
                continue
            if group & 1:
                if 0x0010 <= el <= 0x00FF:
                    creators.append(key)
                    continue
                self._private(ds, key, st, prefix, creators_used)
                continue
            rule = rules.get(t)
            if rule is not None:
                self._apply(ds, t, rule, kwpath, st, mode, prefix)
            elif 0x5000 <= group <= 0x501E and not group & 1:
                self._curve(ds, t, st, mode, prefix)
            elif 0x6000 <= group <= 0x601E and not group & 1 and el in (0x3000, 0x4000):
                r = plan.overlay_data if el == 0x3000 else plan.overlay_comments
                if el == 0x3000 and r.code != "C":
                    overlay_groups.add(group)
                elif el == 0x3000:
                    # Cleaning overlay bitmaps needs OCR of the overlay plane, which the
                    # header stage cannot do: remove the overlay rather than keep text in it.
                    st.warn("overlay data removed: cleaning overlay bitmaps is not supported")
                    overlay_groups.add(group)
                else:
                    self._apply(ds, t, r, kwpath, st, mode, prefix)
            else:
                vr = public_vr(t)
                if vr is None:
                    self._remove(ds, t, st, prefix, "not-in-data-dictionary")
                else:
                    self._keep(ds, t, vr, kwpath, st, mode, prefix, key)
        for g in overlay_groups:
            for t in [x for x in _elements(ds) if x >> 16 == g]:
                self._remove(ds, t, st, prefix, "overlay")
        for t in creators:
            if (t >> 16, t & 0xFF) not in creators_used:
                self._remove(ds, t, st, prefix, "private")
            else:
                st.note(prefix, int(t), "PrivateCreator", "LO", "K", "safe-private")

    def _vr(self, ds: Dataset, t: int) -> str:
        raw = _elements(ds)[t]
        vr = getattr(raw, "VR", None)
        if vr is None or vr == "UN":
            dict_vr = public_vr(t)
            if dict_vr is not None:
                vr = dict_vr
        if vr is None:
            return "UN"
        if " or " in vr:  # ambiguous dictionary VR (US or SS): resolve via pydicom on access
            return str(ds[t].VR)
        return str(vr)

    def _set(self, ds: Dataset, t: int, vr: str, value: Any, st: FileState, validate: bool = False) -> None:
        # Public tags only: setting the dict entry directly skips Dataset.__setitem__'s
        # private-block bookkeeping, which these never need. The values are built valid
        # for their VR, so pydicom's validation is skipped too.
        mode = None if validate else _NO_VALIDATION
        ds._dict[BaseTag(t)] = DataElement(t, vr, value, validation_mode=mode)
        st.dirty.add(st.top)

    def _remove(self, ds: Dataset, t: int, st: FileState, prefix: str, reason: str) -> None:
        elem = _elements(ds).pop(t)
        if prefix:  # a removal at the top level needs no re-encoding, only nested ones do
            st.dirty.add(st.top)
        if st.record:
            st.note(prefix, int(t), None, getattr(elem, "VR", None) or public_vr(int(t)) or "UN", "X", reason)
        else:
            st.counts["X"] += 1

    def _private(self, ds: Dataset, t: int, st: FileState, prefix: str, used: set[tuple[int, int]]) -> None:
        group, el = t >> 16, t & 0xFFFF
        if self.plan.private.code == "C" and el >= 0x1000:
            block = el >> 8
            creator_elem = _elements(ds).get((group << 16) | block)
            if creator_elem is not None:
                creator = _text(creator_elem.value).strip().upper()
                table_vr = self.plan.safe_private.get((creator, group, el & 0xFF))
                if table_vr is not None:
                    unsafe = self._unsafe_private(ds, t, table_vr, st, prefix)
                    if unsafe is not None:
                        self._remove(ds, t, st, prefix, unsafe)
                        return
                    used.add((group, block))
                    if table_vr == "UI" and not self.retain_uids and self._instance_uids(ds, t):
                        # The table vouches for what the attribute means; a UID in it is an
                        # instance UID like any other and is mapped the same way (a reference
                        # to an instance of this study stays a reference, and no original
                        # UID leaves). Well-known UIDs (1.2.840.10008.*) alone stay.
                        self._uid(ds, t, "UI", st, prefix, "safe-private-uid")
                        return
                    vr = getattr(_elements(ds)[t], "VR", None) or "UN"
                    st.note(prefix, int(t), "", vr, "K", "safe-private")
                    return
        self._remove(ds, t, st, prefix, "private")

    def _unsafe_private(self, ds: Dataset, t: int, table_vr: str, st: FileState, prefix: str) -> str | None:
        """Why a safe private attribute (Table E.3.10-1) cannot be kept as it is, or None.

        The table vouches for what the attribute means, not for what a file puts in it: a value
        that does not fit the table's VR (a name in an IS, a string in an FL) is removed; a
        sequence's items are walked like a D sequence's (free text, dates and names dummies, codes
        kept; table attributes in them by their rules); the attribute's own free text is cleaned
        when a classifier is at hand.
        """
        key = BaseTag(t)
        elems = _elements(ds)
        raw = elems[key]
        file_vr = getattr(raw, "VR", None)
        implicit = bool(getattr(raw, "is_implicit_VR", False))
        if isinstance(raw, RawDataElement) and file_vr in (None, "UN") and table_vr in _TABLE_VRS:
            if file_vr == "UN" and not implicit and table_vr == "SQ":
                return "safe-private-sequence-as-un"  # implicit VR items inside an explicit file
            elems[key] = raw = raw._replace(VR=table_vr)  # read it as the table says
            file_vr = table_vr
        if table_vr == "SQ" or file_vr == "SQ":
            if table_vr != "SQ" or file_vr != "SQ":
                return "safe-private-unexpected-vr"
            fast = decode_sequence(ds, key)
            if fast is not None:
                elems[key] = fast
            else:
                try:
                    ds[key]
                except Exception:  # pydicom's reader refused the items: nothing to keep
                    return "safe-private-sequence-unparsed"
            # The table lists the sequence, not what its items hold: their free text, dates and
            # names become dummies (codes stay), as in the items of a D sequence.
            self._recurse(ds, t, (), st, "dummy", prefix)
            return None
        value = raw.value
        if isinstance(value, bytes):
            unit = FIXED_SIZE.get(table_vr)
            if unit is not None and len(value) % unit:
                return "safe-private-bad-length"
            pattern = _VALUE_PATTERNS.get(table_vr)
            if pattern is not None and pattern.fullmatch(value.rstrip(b"\x00 ")) is None:
                return "safe-private-unexpected-value"
        if table_vr in TEXT_VRS and value:
            if self.cleaner is not None:
                self._clean_text(ds, t, table_vr, st, prefix, "safe-private-cleaned")
            elif st.names is not None:
                self._scrub_names(ds, t, table_vr, st, prefix)
        return None

    # -- one attribute --------------------------------------------------------------------

    def _type_of(self, st: FileState, kwpath: tuple[str, ...], keyword: str) -> int | None:
        """The attribute's Type in this file's IOD: 1, 2, 3, or None when it cannot be known.

        A top-level attribute the IOD does not list is not part of it (Type 3 for
        our purpose: remove). Inside sequences the module tables do not expand
        every macro (functional groups, for one), so an unlisted nested path is
        unknown and handled conservatively.
        """
        if st.iod is None:
            return None
        found = st.iod.get("/".join((*kwpath, keyword)))
        if found is not None:
            return found
        return 3 if not kwpath else None

    def _resolve(self, code: str, kind: int | None) -> str:
        """Resolve a compound (or Z) code by the attribute's Type; see the module docstring."""
        if code == "Z":
            return "D" if kind == 1 else "Z"
        parts = code.split("/")
        if "U*" in parts:
            # X/Z/U* (Referenced / Source Image Sequence): of the three choices the standard
            # allows, keep the references with their UIDs replaced (U*), whatever the Type, so
            # links between instances survive; the items' other attributes get their own rows.
            return "KU"
        if kind is None:  # unknown IOD: the most retentive code that never leaks
            return "D" if "D" in parts else "Z"
        if kind == 3:
            return parts[0]
        if kind == 2:
            return "Z" if "Z" in parts else "D"
        return "D"

    def _apply(
        self,
        ds: Dataset,
        t: int,
        rule: Rule,
        kwpath: tuple[str, ...],
        st: FileState,
        mode: str | None,
        prefix: str,
    ) -> None:
        keyword = _keyword(t)
        vr = self._vr(ds, t)
        code = rule.code
        reason = rule.source
        if rule.override is not None:
            self._override(ds, t, rule, vr, kwpath, st, mode, prefix)
            return
        if code in COMPOUND_CODES or code == "Z":
            code = self._resolve(code, self._type_of(st, kwpath, keyword))
        if mode == "clean" and code == "D" and vr in TEXT_VRS:
            code, reason = "C", "clean-content"
        kind = PSEUDONYM_TAGS.get(t)
        if kind is not None and code in ("Z", "D"):
            self._pseudonym(ds, t, vr, kind, st, prefix, reason)
            return
        if code == "X":
            self._remove(ds, t, st, prefix, reason)
        elif code == "Z":
            self._set(ds, t, vr, empty_value(vr), st)
            st.note(prefix, t, keyword, vr, "Z", reason)
        elif code == "D":
            if vr == "SQ":
                self._recurse(ds, t, kwpath, st, "dummy", prefix)
                st.note(prefix, t, keyword, vr, "D", reason)
            elif vr == "UI":
                self._uid(ds, t, vr, st, prefix, reason)
            else:
                self._set(ds, t, vr, dummy_value(vr), st)
                st.note(prefix, t, keyword, vr, "D", reason)
        elif code == "U":
            self._uid(ds, t, vr, st, prefix, reason)
        elif code == "K":
            if vr == "SQ":
                # A sequence an option keeps: under a Clean option, the free text of its items
                # that the table does not list (CodeMeaning, say) goes through the classifier.
                inner = "text-clean" if mode is None and self.clean_items else mode
                self._recurse(ds, t, kwpath, st, inner, prefix)
            elif not self._valid_kept(ds, t, vr):
                self._invalid(ds, t, vr, st, prefix)
                return
            elif t == 0x00101010 and self.plan.profile.age_cap is not None:
                self._cap_age(ds, t, st)
            elif self._kept(ds, t, vr, st, prefix):
                return
            st.note(prefix, t, keyword, vr, "K", reason)
        elif code == "KU":
            # A reference kept with its UIDs replaced: its free text becomes dummies (or is
            # cleaned under a Clean option), as in a D sequence.
            self._recurse(ds, t, kwpath, st, "clean" if mode == "clean" else "dummy", prefix)
            st.note(prefix, t, keyword, vr, "U", reason)
        elif code == "C":
            self._clean(ds, t, vr, rule, kwpath, st, prefix)
        else:  # pragma: no cover - codes are validated when the tables are generated
            raise ProcessingError(f"unknown action code {code!r} for {_tag_str(t)}")

    def _override(
        self,
        ds: Dataset,
        t: int,
        rule: Rule,
        vr: str,
        kwpath: tuple[str, ...],
        st: FileState,
        mode: str | None,
        prefix: str,
    ) -> None:
        keyword = _keyword(t)
        code = rule.code
        if code == "K":
            st.note(prefix, t, keyword, vr, "K", "override")
            st.warn(f"override keeps {keyword or _tag_str(t)} unchanged")
        elif code == "X":
            self._remove(ds, t, st, prefix, "override")
        elif code == "Z":
            self._set(ds, t, vr, empty_value(vr), st)
            st.note(prefix, t, keyword, vr, "Z", "override")
        elif code == "R":
            value = getattr(rule.override, "value", "")
            self._set(ds, t, vr, value, st, validate=True)  # a site's value: let pydicom check it
            st.note(prefix, t, keyword, vr, "R", "override")
        elif code == "H":
            if vr == "UI":
                self._uid(ds, t, vr, st, prefix, "override")
            else:
                old = _text(ds[t].value)
                new = self.pseudo.identifier("other", old) if old else ""
                self._set(ds, t, vr, new[: MAX_LEN.get(vr, 64)], st)
                st.note(prefix, t, keyword, vr, "P", "override")

    def _pseudonym(
        self, ds: Dataset, t: int, vr: str, kind: str, st: FileState, prefix: str, reason: str
    ) -> None:
        keyword = _keyword(t)
        value = _value_text(ds, t)
        old = value if isinstance(value, str) else "\\".join(value)
        if kind == "name":
            if prefix:
                new = dummy_value("PN")
            else:
                new = self.pseudo.patient_name(self.pseudo.identifier("patient", st.patient_key))
        elif kind == "patient":
            # The file's own patient (top level) is keyed by its full identity; a PatientID
            # nested in a sequence (another patient, a source record) by its own value.
            patient_key = st.patient_key if not prefix else f"id:\x00{old}"
            new = self.pseudo.identifier("patient", patient_key)
            if not prefix:
                st.patient_pseudonym = new
        else:
            new = self.pseudo.identifier(kind, old) if old else ""  # type: ignore[arg-type]
        self._set(ds, t, vr, new, st)
        st.note(prefix, t, keyword, vr, "P", "pseudonym" if reason == "basic" else reason)

    @staticmethod
    def _instance_uids(ds: Dataset, t: int) -> bool:
        """Whether a UI value holds a UID outside the standard's own root (an instance UID)."""
        value = _value_text(ds, t)
        values = value if isinstance(value, list) else [value]
        return any(v and not v.startswith(_STANDARD_UID_ROOT) for v in values)

    def _uid(self, ds: Dataset, t: int, vr: str, st: FileState, prefix: str, reason: str) -> None:
        value = _value_text(ds, t)
        if isinstance(value, list):
            new: Any = [self.pseudo.uid(v) for v in value if v]
        else:
            new = self.pseudo.uid(value) if value else ""
        self._set(ds, t, "UI", new, st)
        st.note(prefix, t, None, vr, "U", reason)

    def _cap_age(self, ds: Dataset, t: int, st: FileState) -> None:
        cap = self.plan.profile.age_cap
        assert cap is not None
        text = _text(ds[t].value)
        if len(text) == 4 and text[:3].isdigit() and text[3] == "Y" and int(text[:3]) >= cap:
            self._set(ds, t, "AS", f"{cap:03d}Y", st)

    def _recurse(
        self, ds: Dataset, t: int, kwpath: tuple[str, ...], st: FileState, mode: str | None, prefix: str
    ) -> None:
        key = BaseTag(t)
        fast = decode_sequence(ds, key)
        if fast is not None:
            ds._dict[key] = fast
        elem = ds[key]
        if elem.VR != "SQ" or not elem.value:
            return
        keyword = _keyword(t)
        before = len(st.dirty)
        top = st.top
        for i, item in enumerate(elem.value):
            self._walk(
                item, (*kwpath, keyword), st, top=False, mode=mode, prefix=f"{prefix}{_tag_str(t)}[{i}]."
            )
        st.top = top
        if len(st.dirty) != before:
            st.dirty.add(top)

    def _keep(
        self,
        ds: Dataset,
        t: int,
        vr: str,
        kwpath: tuple[str, ...],
        st: FileState,
        mode: str | None,
        prefix: str,
        key: Any = None,
    ) -> None:
        """An attribute the table does not list: kept, its UIDs, dates, sequence text handled.

        ``key``: the dataset's own key object for ``t`` (a lookup by it takes the dict's identity
        fast path; by the plain int it calls ``BaseTag.__eq__``).
        """
        if vr == "SQ":
            self._recurse(ds, t, kwpath, st, mode, prefix)
        elif vr == "UI" and not self.retain_uids:
            if self._instance_uids(ds, t):
                # An instance UID the table does not list (a reference, say): map it the
                # same way as everywhere else so that references stay intact.
                self._uid(ds, t, vr, st, prefix, "uid-not-in-table")
                return
        elif vr in DATE_VRS:
            # A date or time the table does not list gets the table's date treatment (PS3.15
            # suggests handling dates and times by VR): removed or a dummy without a date
            # option, shifted under Modified Dates, kept under Full Dates. In the items of a D
            # sequence they are dummies, as before (dates shifted under Modified Dates).
            if mode == "dummy" and not (self.modified_dates and vr != "TM"):
                self._set(ds, t, vr, dummy_value(vr), st)
                st.note(prefix, t, None, vr, "D", "dummy-sequence")
            else:
                self._apply(ds, t, self.plan.unlisted_dates, kwpath, st, mode, prefix)
            return
        elif mode is not None and t not in CODE_IDENT_TAGS and (vr in TEXT_VRS or vr in ("PN", "AE")):
            # Free text inside the items of a D or U* sequence (CodeMeaning, names in coded
            # items included) is a dummy; under a Clean option it goes through the classifier.
            if mode == "dummy" or vr == "PN":
                self._set(ds, t, vr, dummy_value(vr), st)
                st.note(prefix, t, None, vr, "D", f"{mode}-sequence")
            elif vr == "AE":
                old = _text(ds[t].value)
                self._set(ds, t, vr, self.pseudo.identifier("ae", old) if old else "", st)
                st.note(prefix, t, None, vr, "P", "clean-content")
            else:  # "clean" and "text-clean"
                self._clean_text(ds, t, vr, st, prefix, "clean-content")
            return
        elif (
            mode is None
            and self.clean_free_text
            and t not in CODE_IDENT_TAGS
            and (vr in FREE_TEXT_VRS or (vr in ("LO", "SH") and _DESCRIPTIVE.search(_keyword(t))))
        ):
            # Clean Descriptors covers the descriptions the table lists; free text it does not
            # list (comments, titles, Text Value, a segment's description) is cleaned the same way.
            self._clean_text(ds, t, vr, st, prefix, "clean-text-not-in-table")
            return
        elif vr == "PN":
            # A person's name the table does not list (inside any item whatever its sequence's
            # action, or a top-level one such as Evaluator Name): a dummy, never kept verbatim.
            self._set(ds, t, vr, dummy_value(vr), st)
            st.note(prefix, t, None, vr, "D", "name-in-item" if prefix else "name-not-in-table")
            return
        if vr not in _CHECKED_VRS:  # numbers, binary values: nothing to check
            st.counts["K"] += 1
            return
        raw = getattr(ds._dict[t if key is None else key], "value", None)  # type: ignore[index]
        if not _valid_value(vr, raw):
            self._invalid(ds, t, vr, st, prefix)
            return
        limit = MAX_VALUE_LEN.get(vr)
        more = (st.names is not None and vr in TEXT_VRS) or (
            limit is not None and type(raw) is bytes and len(raw) > limit
        )  # else nothing more to look at: no call for the common case
        if more and self._kept(ds, t, vr, st, prefix, raw):
            return
        st.counts["K"] += 1

    def _kept(self, ds: Dataset, t: int, vr: str, st: FileState, prefix: str, value: Any = _UNSET) -> bool:
        """Last checks on a value about to be kept as it is; True if it was changed (and noted).

        A text value holding the patient's name in any case, accent or order gets ``[NAME]``
        in its place; a value longer than its VR allows loses the padding the standard calls
        insignificant, or, when that is not enough, is kept as it is with a warning. Called for
        every kept element: the common case (an ASCII value holding no name word, within its
        length) costs a few operations and no call.
        """
        if value is _UNSET:
            value = getattr(ds._dict[t], "value", None)  # type: ignore[index]
        names = st.names
        if names is not None and vr in TEXT_VRS and t not in CODE_IDENT_TAGS:
            if type(value) is bytes and value.isascii():
                low = value.lower()
                for w in names.ascii_words:
                    if w in low:  # a name word, maybe inside another word: look closer
                        if whole_word_in(low, names.ascii_words) and self._scrub_names(ds, t, vr, st, prefix):
                            return True
                        break
            elif self._scrub_names(ds, t, vr, st, prefix):
                return True
        limit = MAX_VALUE_LEN.get(vr)
        if limit is None or type(value) is not bytes or len(value) <= limit:
            return False
        return self._fit(ds, t, vr, limit, st, prefix)

    def _decoded(self, ds: Dataset, t: int) -> list[str]:
        """An element's text values, decoded with the file's character set; the element stays as read."""
        elems = _elements(ds)
        raw = elems[t]
        value = ds[t].value
        elems[t] = raw
        values = list(value) if isinstance(value, MultiValue | list) else [value]
        return [_text(v) if v is not None else "" for v in values]

    def _scrub_names(self, ds: Dataset, t: int, vr: str, st: FileState, prefix: str) -> bool:
        names = st.names
        assert names is not None
        value = getattr(_elements(ds).get(t), "value", None)
        if isinstance(value, MultiValue | list):
            value = "\\".join(str(v) for v in value)
        if isinstance(value, str):
            value = value.encode("utf-8", "replace")
        if not isinstance(value, bytes) or (value.isascii() and not names.in_ascii(value)):
            return False
        out, changed = [], False
        for text in self._decoded(ds, t):
            new = names.scrub(text) if text else None
            if new is None:
                out.append(text)
                continue
            changed = True
            limit = MAX_LEN.get(vr)
            out.append(new[:limit].rstrip() if limit else new)
        if not changed:
            return False
        self._set(ds, t, vr, out if len(out) > 1 else out[0], st)
        st.note(prefix, t, None, vr, "C", "patient-name-in-text")
        return True

    def _fit(self, ds: Dataset, t: int, vr: str, limit: int, st: FileState, prefix: str) -> bool:
        """Make a kept value no longer than its VR allows (PS3.5 Table 6.2-1), or warn; True if changed."""
        raw = _elements(ds).get(t)
        value = getattr(raw, "value", None)
        if not isinstance(value, bytes) or len(value) <= limit:
            return False
        parts = [value] if vr in _SINGLE_VALUED else value.split(b"\\")
        if all(len(p) <= limit for p in parts):
            return False
        if vr in _PAD_BOTH:
            fits = all(len(p.strip(b" \x00")) <= limit for p in parts)
        elif vr in _PAD_TRAILING:
            fits = all(len(p.rstrip(b" \x00")) <= limit for p in parts)
        else:  # UI: only a trailing NUL pads it
            fits = all(len(p.rstrip(b"\x00")) <= limit for p in parts)
        keyword = _keyword(t) or _tag_str(t)
        if not fits:
            st.warn(f"{keyword} is longer than its VR {vr} allows; kept as it is")
            return False
        pad = " \x00"
        texts = [x.strip(pad) if vr in _PAD_BOTH else x.rstrip(pad) for x in self._decoded(ds, t)]
        self._set(ds, t, vr, texts if len(texts) > 1 else texts[0], st)
        st.note(prefix, t, None, vr, "K", "padding-removed")
        return True

    def _valid_kept(self, ds: Dataset, t: int, vr: str) -> bool:
        """Whether a value about to be kept uses only its VR's characters (PS3.5 6.2).

        A value that does not (a name in an age, a date or a code string: text that
        ended up under another tag) cannot be what its attribute claims to be: the
        file is refused.
        """
        if vr not in _VALUE_PATTERNS:
            return True
        return _valid_value(vr, getattr(_elements(ds).get(t), "value", None))

    def _invalid(self, ds: Dataset, t: int, vr: str, st: FileState, prefix: str) -> None:
        # A dummy would change the attribute's meaning (an orientation, a code) and could make
        # the file invalid; the value is not what its attribute claims, so the file is refused.
        raise ProcessingError(
            f"{_keyword(t) or _tag_str(t)} holds characters its VR {vr} does not allow; it cannot be kept"
        )

    def _curve(self, ds: Dataset, t: int, st: FileState, mode: str | None, prefix: str) -> None:
        rule = self.plan.curve
        if rule.code != "C":
            self._remove(ds, t, st, prefix, rule.source)
            return
        vr = self._vr(ds, t)
        if vr in TEXT_VRS:
            self._clean_text(ds, t, vr, st, prefix, rule.source)
        else:
            st.note(prefix, t, "", vr, "K", rule.source)

    # -- cleaning -------------------------------------------------------------------------

    def _clean(
        self, ds: Dataset, t: int, vr: str, rule: Rule, kwpath: tuple[str, ...], st: FileState, prefix: str
    ) -> None:
        keyword = _keyword(t)
        if vr in ("DA", "DT"):
            self._shift(ds, t, vr, st, prefix, rule.source)
        elif vr == "TM":
            # A whole-day shift leaves the time of day unchanged.
            st.note(prefix, t, keyword, vr, "K", rule.source)
        elif vr == "AE":
            old = _text(ds[t].value)
            self._set(ds, t, vr, self.pseudo.identifier("ae", old) if old else "", st)
            st.note(prefix, t, keyword, vr, "P", rule.source)
        elif vr == "SQ":
            self._recurse(ds, t, kwpath, st, "clean", prefix)
            st.note(prefix, t, keyword, vr, "C", rule.source)
        elif vr in TEXT_VRS or vr == "CS":
            self._clean_text(ds, t, vr, st, prefix, rule.source)
        elif vr == "PN":
            self._set(ds, t, vr, dummy_value(vr), st)
            st.note(prefix, t, keyword, vr, "D", rule.source)
        elif vr in BINARY_VRS or keyword == "":
            # Binary or unknown values cannot be cleaned: fall back to the Basic Profile action.
            row_code = self._resolve_basic(t, kwpath, st)
            self._apply(ds, t, Rule(row_code, "cannot-clean-binary"), kwpath, st, None, prefix)
        else:  # numbers and codes (e.g. SH timezone offsets): nothing identifying to remove
            st.note(prefix, t, keyword, vr, "K", rule.source)

    def _resolve_basic(self, t: int, kwpath: tuple[str, ...], st: FileState) -> str:
        from privguard.header.standard import e1_1

        code = e1_1().by_tag[t].basic
        if code in COMPOUND_CODES or code == "Z":
            code = self._resolve(code, self._type_of(st, kwpath, _keyword(t)))
        return "X" if code in ("C", "K") else code

    def _shift(self, ds: Dataset, t: int, vr: str, st: FileState, prefix: str, reason: str) -> None:
        text = _text(ds[t].value)
        if not text:
            st.note(prefix, t, None, vr, "K", reason)
            return
        if st.offset is None:
            st.offset = self.pseudo.date_offset(st.patient_key)
        shifted = shift_value(vr, text, st.offset)
        if shifted is None:
            self._set(ds, t, vr, dummy_value(vr), st)
            st.note(prefix, t, None, vr, "D", "unparseable-date")
            st.warn("a date that could not be parsed was replaced by a dummy value")
            return
        self._set(ds, t, vr, shifted, st)
        st.note(prefix, t, None, vr, "C", reason)

    def _clean_text(self, ds: Dataset, t: int, vr: str, st: FileState, prefix: str, reason: str) -> None:
        value = ds[t].value
        values = list(value) if isinstance(value, MultiValue | list) else [value]
        classifier = self._get_classifier()
        out = []
        changed = False
        names = st.names
        for v in values:
            text = _text(v) if v is not None else ""
            red = classifier.redact(text, st.context) if text else None
            new = red.text if red is not None and red.changed else None
            if names is not None and text:
                # The classifier folds case, not accents ("zoe muller" for Müller^Zoë).
                again = names.scrub(new if new is not None else text)
                new = again if again is not None else new
            if new is not None:
                changed = True
                if vr == "CS":
                    out.append(dummy_value("CS"))
                else:
                    limit = MAX_LEN.get(vr)
                    out.append(new[:limit].rstrip() if limit else new)
            else:
                out.append(text)
        if changed:
            self._set(ds, t, vr, out if len(out) > 1 else out[0], st)
        st.note(prefix, t, None, vr, "C", reason)

    def _get_classifier(self) -> TextCleaner:
        if self.cleaner is None:
            raise ProcessingError("the Clean options need the text classifier, and none was given")
        return self.cleaner

    # -- what was done --------------------------------------------------------------------

    def method_texts(self) -> list[str]:
        """The values of DeidentificationMethod (0012,0063) that this engine writes."""
        from privguard._version import __version__

        methods = [
            f"DICOM PS3.15 {self.plan.edition} Basic Profile",
            f"privguard {__version__} profile {self.plan.profile.name}",
        ]
        return [m[:64] for m in methods]

    def temporal_value(self) -> str:
        """LongitudinalTemporalInformationModified (0028,0303) as this engine writes it."""
        if self.full_dates:
            return "UNMODIFIED"
        return "MODIFIED" if self.modified_dates else "REMOVED"

    def method_codes(self) -> list[tuple[str, str]]:
        """The CID 7050 (code value, meaning) pairs this engine may write (Clean Pixel Data included)."""
        codes = list(self.plan.profile.method_codes)
        pixel = CID_7050[Option.CLEAN_PIXEL_DATA.value]
        return codes if pixel in codes else [*codes, pixel]

    def _add_method(self, ds: Dataset, st: FileState) -> None:
        """Record the de-identification in the dataset (PS3.15 E.1.1, PS3.3 C.7.1.1)."""
        profile = self.plan.profile
        st.top = 0x00120062
        self._set(ds, 0x00120062, "CS", "YES", st)  # PatientIdentityRemoved
        st.top = 0x00120063
        self._set(ds, 0x00120063, "LO", self.method_texts(), st)  # DeidentificationMethod
        items = []
        for value, meaning in profile.method_codes:
            if value == CID_7050[Option.CLEAN_PIXEL_DATA.value][0]:
                continue  # claimed only once the pixel stage has verified the file (add_code)
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
        st.top = 0x00120064
        self._set(ds, 0x00120064, "SQ", Sequence(items), st)  # DeidentificationMethodCodeSequence
        st.top = 0x00280303
        self._set(ds, 0x00280303, "CS", self.temporal_value(), st)  # LongitudinalTemporalInformationModified
        st.top = 0
        for t in (0x00120062, 0x00120063, 0x00120064, 0x00280303):
            st.note("", t, None, "", "A", "deidentification-method")

    def method_bytes(self, implicit: bool, little: bool) -> dict[int, bytes]:
        """The four attributes :meth:`_add_method` writes, encoded once per encoding.

        They are the same for every file of a run, so the writer copies these
        bytes instead of encoding them again (see ``dicomio.write_output``).
        """
        key = (implicit, little)
        cached = self._method_cache.get(key)
        if cached is None:
            from pydicom.filebase import DicomBytesIO
            from pydicom.filewriter import write_data_element

            probe = Dataset()
            self._add_method(probe, FileState(record=False, iod=None, patient_key=""))
            cached = {}
            for elem in probe:
                fp = DicomBytesIO()
                fp.is_implicit_VR, fp.is_little_endian = implicit, little
                write_data_element(fp, elem)
                cached[int(elem.tag)] = fp.getvalue()
            self._method_cache[key] = cached
        return cached

    def add_code(self, ds: Dataset, option: str) -> None:
        """Add one more CID 7050 code (e.g. Clean Pixel Data, after the pixel stage)."""
        value, meaning = CID_7050[option]
        seq = ds.get("DeidentificationMethodCodeSequence")
        if seq is None:
            return
        if any(getattr(i, "CodeValue", None) == value for i in seq):
            return
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        seq.append(item)


def _valid_value(vr: str, value: Any) -> bool:
    """Whether ``value`` (raw bytes or decoded) uses only the characters of ``vr`` (see ``_valid_kept``)."""
    pattern = _VALUE_PATTERNS.get(vr)
    if pattern is None:
        return True
    if isinstance(value, str):
        value = value.encode("utf-8", "replace")
    elif isinstance(value, MultiValue | list) and all(isinstance(v, str) for v in value):
        value = "\\".join(value).encode("utf-8", "replace")
    if not isinstance(value, bytes):
        return True  # nothing textual to check
    return pattern.fullmatch(value.rstrip(b"\x00 ")) is not None


@lru_cache(maxsize=16384)
def _keyword(t: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(t) or ""
