"""Synthetic DICOM files with unique PHI planted in every attribute that can carry it.

Every attribute of PS3.15 Table E.1-1 that pydicom can write gets a unique,
searchable value ("token"); so do sequence items (nested to depth 2), private
blocks (an unknown creator and a Table E.3.10-1 safe one), curve and overlay
groups, descriptors, the file meta (Source AE Title), the preamble, and
elements after the pixel data. After de-identification a plain byte search of
the output finds any token that survived.

Tokens are ASCII and at least 8 characters, so that a byte search cannot hit
them by chance. Values are valid for their VR where the VR allows it. Planted
dates lie 401 days apart, so a date shifted by at most a year can never land
on another planted date and be mistaken for a survivor.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from privguard.header.standard import e1_1

NUMERIC_BINARY = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT", "OF", "OD", "OL", "OV"}


@dataclass
class Planted:
    """A generated dataset and where each token was planted."""

    ds: FileDataset
    tokens: dict[str, str] = field(default_factory=dict)
    """token -> where it was planted (keyword path)."""
    uids: dict[str, str] = field(default_factory=dict)
    """original UID -> where (must not survive unless UIDs are retained)."""

    def add(self, token: str, where: str) -> str:
        self.tokens[token] = where
        return token


class TokenFactory:
    """Unique tokens per VR."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = 0
        self.prefix = "".join(self.rng.choice("BCDFGHJKLMNPQRSTVWXZ") for _ in range(3))

    def next(self) -> int:
        self.n += 1
        return self.n

    def text(self) -> str:
        return f"PHI{self.prefix}{self.next():05d}"

    def value(self, vr: str) -> tuple[object, str | None]:
        """A VR-valid value and its searchable token (None if not byte-searchable)."""
        i = self.next()
        if vr in ("LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE"):
            t = f"PHI{self.prefix}{i:05d}"
            return t, t
        if vr == "PN":
            t = f"PHIFAM{self.prefix}{i:04d}"
            return f"{t}^PHIGIV{self.prefix}{i:04d}", t
        if vr == "DA":
            d = (dt.date(1850, 1, 1) + dt.timedelta(days=i * 401)).strftime("%Y%m%d")
            return d, d
        if vr == "DT":
            d = (dt.date(1850, 1, 1) + dt.timedelta(days=i * 401)).strftime("%Y%m%d")
            return f"{d}101112", f"{d}101112"
        if vr == "TM":
            t = f"101112.{i:06d}"
            return t, t
        if vr == "DS":
            t = f"7337{i:04d}.25"
            return t, t
        if vr == "IS":
            t = f"7338{i:05d}"
            return t, t
        if vr == "AS":
            return "087Y", None
        if vr == "UI":
            t = f"1.2.826.0.1.3680043.10.999.{self.rng.randrange(10**8)}.{i}"
            return t, t
        if vr == "UR":
            t = f"http://phi{self.prefix.lower()}{i:05d}.example.org/"
            return t, t
        if vr in ("OB", "OW", "UN"):
            t = f"PHIBIN{self.prefix}{i:05d}"
            return t.encode() + (b"\x00" if len(t) % 2 else b""), t
        if vr in ("US", "SS", "UL", "SL", "UV", "SV"):
            return 4242, None
        if vr in ("FL", "FD"):
            return 42.4242, None
        return None, None


def _base(planted_uid: str, sop_class: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = planted_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid()
    ds = FileDataset("planted.dcm", {}, file_meta=meta, preamble=b"\x00" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = planted_uid
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 16
    ds.Columns = 16
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.PixelData = (np.arange(256, dtype=np.uint16) * 7).tobytes()
    return ds


def _item(f: TokenFactory, p: Planted, where: str, depth: int) -> Dataset:
    item = Dataset()
    name, tok = f.value("PN")
    item.PatientName = name
    p.add(str(tok), f"{where}/PatientName")
    pid, tok = f.value("LO")
    item.PatientID = pid
    p.add(str(tok), f"{where}/PatientID")
    uid, tok = f.value("UI")
    item.ReferencedSOPInstanceUID = uid
    p.uids[str(tok)] = f"{where}/ReferencedSOPInstanceUID"
    item.ReferencedSOPClassUID = CTImageStorage
    text, tok = f.value("LO")
    item.StudyDescription = text
    p.add(str(tok), f"{where}/StudyDescription")
    # Text outside the table inside the item: a person's name as the meaning of coded entries
    # (a concept name, a purpose of reference), and a person name attribute the table does not list.
    for seq_kw in ("ConceptNameCodeSequence", "PurposeOfReferenceCodeSequence"):
        code = Dataset()
        code.CodeValue = "121008"
        code.CodingSchemeDesignator = "DCM"
        meaning, tok = f.value("LO")
        code.CodeMeaning = f"Dr {meaning}"
        p.add(str(tok), f"{where}/{seq_kw}/CodeMeaning")
        setattr(item, seq_kw, Sequence([code]))
    evaluator, tok = f.value("PN")
    item.EvaluatorName = evaluator
    p.add(str(tok), f"{where}/EvaluatorName")
    if depth < 2:
        item.OtherPatientIDsSequence = Sequence([_item(f, p, f"{where}/OtherPatientIDsSequence", depth + 1)])
    return item


def planted_dataset(seed: int = 0, sop_class: str = CTImageStorage, include_retired: bool = True) -> Planted:
    """A dataset with a unique token in every Table E.1-1 attribute pydicom can encode."""
    f = TokenFactory(seed)
    p = Planted(ds=_base("", sop_class))
    sop_uid, _ = f.value("UI")
    p.ds.SOPInstanceUID = str(sop_uid)
    p.ds.file_meta.MediaStorageSOPInstanceUID = str(sop_uid)
    p.uids[str(sop_uid)] = "SOPInstanceUID"
    ds = p.ds
    table = e1_1()
    for tag, row in sorted(table.by_tag.items()):
        if row.retired and not include_retired:
            continue
        if tag in (0x00080016, 0x00080018) or tag >> 16 in (0, 2):  # set above; no command set or meta
            continue
        try:
            vr = dictionary_VR(tag) if row.keyword else "LO"
        except KeyError:
            vr = "LO"
        if " or " in vr:
            vr = vr.split(" or ")[0]
        where = row.keyword or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if vr == "SQ":
            ds[tag] = DataElement(tag, "SQ", Sequence([_item(f, p, where, 1)]))
            continue
        value, tok = f.value(vr)
        if value is None:
            continue
        ds[tag] = DataElement(tag, vr, value)
        if tok is not None:
            if vr == "UI":
                p.uids[tok] = where
            else:
                p.add(tok, where)
    # Free text that names the patient (the Clean Descriptors case).
    p.tokens = {t: w for t, w in p.tokens.items() if w != "StudyDescription"}
    ds.StudyDescription = f"CT chest for {ds.PatientName.given_name} {ds.PatientName.family_name}"
    p.add(str(ds.PatientName.family_name), "StudyDescription (patient name)")
    # Private blocks: an unknown creator with text and a nested sequence, and a safe one.
    ds.add_new(0x00090010, "LO", "PHI PRIVATE CREATOR")
    priv, tok = f.value("LO")
    ds.add_new(0x00091001, "LO", priv)
    p.add(str(tok), "private (0009,1001)")
    ds.add_new(0x00091002, "SQ", Sequence([_item(f, p, "private (0009,1002)", 1)]))
    ds.add_new(0x70530010, "LO", "Philips PET Private Group")
    ds.add_new(0x70531000, "DS", "1.2345")  # Table E.3.10-1: SUV factor (safe)
    # Curve and overlay groups.
    ds.add_new(0x50000005, "US", 1)
    ds.add_new(0x50000010, "US", 2)
    label, tok = f.value("LO")
    ds.add_new(0x50002500, "LO", label)
    p.add(str(tok), "CurveLabel (5000,2500)")
    data, tok = f.value("OB")
    ds.add_new(0x50003000, "OB", data)
    p.add(str(tok), "CurveData (5000,3000)")
    ds.add_new(0x60000010, "US", 16)
    ds.add_new(0x60000011, "US", 16)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ov = f.text()
    ds.add_new(0x60003000, "OW", (ov.encode() + b"\x00" * 32)[:32])
    p.add(ov, "OverlayData (6000,3000)")
    oc = f.text()
    ds.add_new(0x60004000, "LT", oc)
    p.add(oc, "OverlayComments (6000,4000)")
    # File meta and preamble.
    ae = f.text()[:16]
    ds.file_meta.SourceApplicationEntityTitle = ae
    p.add(ae, "file meta SourceApplicationEntityTitle")
    pre = f.text()
    ds.preamble = (pre.encode() + b"\x00" * 128)[:128]
    p.add(pre, "preamble")
    return p


def write_planted(path: Path, seed: int = 0, trailing: bool = True, **kw: object) -> Planted:
    """Write a planted file; with ``trailing``, also a padding element after the pixel data."""
    p = planted_dataset(seed, **kw)  # type: ignore[arg-type]
    pad = f"PHIPAD{p.ds.PatientID[-8:]}"
    p.tokens = {t: w for t, w in p.tokens.items() if w != "DataSetTrailingPadding"}
    if trailing:
        p.ds.add_new(0xFFFCFFFC, "OB", pad.encode() + b"\x00" * (len(pad) % 2))
        p.add(pad, "DataSetTrailingPadding")
    elif 0xFFFCFFFC in p.ds:
        del p.ds[0xFFFCFFFC]
    p.ds.save_as(path, enforce_file_format=True)
    return p


def find_tokens(data: bytes, tokens: dict[str, str]) -> dict[str, str]:
    """Tokens present in ``data``, with where they were planted."""
    return {t: w for t, w in tokens.items() if t.encode() in data}


def study_names(name: str) -> tuple[str, str]:
    family, _, given = name.partition("^")
    return family, given


def keyword(tag: int) -> str:
    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
