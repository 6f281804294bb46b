"""Each header-independent recognizer, and the clinical words that must never be taken for PHI."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from privguard.text.classifier import PhiClassifier
from privguard.text.names import find_cjk_names, find_names, lexicon

#: No header context: everything below is found without the file's own values.
#: Configured like :func:`default_classifier` (what the engine and the pixel stage use).
CLEAN = PhiClassifier(use_presidio=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Scan performed by tech Maria Lopez", "Scan performed by tech [NAME]"),
        ("Dr. Xyzabc reviewed", "Dr. [NAME] reviewed"),
        ("LOPEZ, MARIA follow-up", "[NAME] follow-up"),
        ("John Q. Smith called", "[NAME] called"),
        ("SMITH^JOHN^Q", "[NAME]"),
        ("MRI BRAIN FOR KEVIN", "MRI BRAIN FOR [NAME]"),
        ("seen by maria lopez", "seen by [NAME]"),
        ("Tech: A. Nguyen", "Tech: [NAME]"),
        ("Maria de la Cruz", "[NAME]"),
        ("Protocol per Dr Ahmed Khan", "Protocol per Dr [NAME]"),
        ("RN Ji-woo Park", "RN [NAME]"),
        ("Mr Wilson", "Mr [NAME]"),
        ("MR Gonzalez reviewed", "MR [NAME] reviewed"),
        ("Siemens Vida 3T TOMASZ NOWAK", "Siemens Vida 3T [NAME]"),
        ("lesion Johansson, Ingrid", "lesion [NAME]"),
        ("Read by Smith MD", "Read by [NAME] MD"),
        ("J. Doe, M.D.", "[NAME], M.D."),
        ("Referring: SMITH, JOHN MD", "Referring: [NAME] MD"),
        ("J. Q. Smith", "[NAME]"),
        ("MRI BRAIN Sara van Nus", "MRI BRAIN [NAME]"),
        ("Dr. van den Nuwenhuysen", "Dr. [NAME]"),
        ("John Lê called", "[NAME] called"),
        ("CT for Müller", "CT for [NAME]"),
        ("tech Siobhan Murphy. Parkinson disease", "tech [NAME]. Parkinson disease"),
        ("seen by fatima khan", "seen by [NAME]"),
    ],
)
def test_names_without_header(text: str, expected: str) -> None:
    assert CLEAN.redact(text).text == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call +1 555 248 3435 re results", "Call [PHONE] re results"),  # not a valid number: still a phone
        ("(555) 010-4477", "[PHONE]"),
        ("tel 06 00 11 22 33", "tel [PHONE]"),
        ("pager: 4432", "pager: [PHONE]"),
        ("email j.doe@hospital.local", "email [EMAIL]"),
        ("see http://pacs.example.org/study/1", "see [URL]"),
        ("from 10.0.0.12", "from [IP]"),
        ("lives at 12 Elm Street, Apt 4B", "lives at [PLACE]"),
        ("Boston, MA 02115", "[PLACE]"),
        ("Hauptstraße 12", "[PLACE]"),
        ("PO Box 5521", "[PLACE]"),
        ("Seen 3 May 2021 and May 3rd", "Seen [DATE] and [DATE]"),
        ("on 04-MAR-2019", "on [DATE]"),
        ("on 2021/5/3", "on [DATE]"),
        ("92 yo male", "[AGE] male"),
        ("Patient 093Y", "Patient [AGE]"),
        ("age 95", "[AGE]"),
        ("Ref UXQTYG", "Ref [ID]"),
        ("order RQ-48213", "order [ID]"),
        ("Acc A7X9KQ2", "Acc [ID]"),
        ("case 2019-4432", "case [ID]"),
        ("protocol P2024X7", "protocol [ID]"),
        ("CT CHEST 001-274-391-1862x5276", "CT CHEST [PHONE]"),
        ("0763 Johnson Track Suite 435, Melaniehaven, NC 36268", "[PLACE], [PLACE]"),
        ("PSC 7523, Box 0695, APO AA 03954", "[PLACE], [PLACE]"),
        ("East Juan, PW 76297", "[PLACE]"),
        ("Atkinson, Wells and Young Community Hospital", "[PLACE]"),
        ("Prior at St. Mary's Hospital, see report", "Prior at [PLACE], see report"),
        ("HEAD CT - 93-year-old", "HEAD CT - [AGE]"),
    ],
)
def test_patterns(text: str, expected: str) -> None:
    assert CLEAN.redact(text).text == expected


#: Clinical words that are also names, months, eponyms, devices, codes-that-are-not: all kept.
FALSE_POSITIVES = [
    "CT CHEST W CONTRAST",
    "HEAD CT ROUTINE",
    "MRI BRAIN WO",
    "AX T1 POST GAD",
    "T2 FLAIR SAG",
    "Hodgkin lymphoma staging",
    "Colles fracture left wrist",
    "Hill-Sachs lesion",
    "Parkinson disease",
    "Graves disease",
    "Baker cyst",
    "Wilson disease",
    "Rose Bengal stain",
    "Will repeat in 6 months",
    "May need sedation",
    "2 may show",
    "Mark on skin",
    "Grace period",
    "Siemens Vida 3T",
    "Chest X-Ray PA and LAT",
    "Omnipaque 350 IV",
    "Johnson & Johnson device",
    "MR ENTEROGRAPHY",
    "protocol ROUTINE",
    "protocol CTPA",
    "protocol CHEST5MM",
    "age 45",
    "120 kVp 250 mAs",
    "1.25 mm slices",
    "T1W3D 3T",
    "Series 3 of 5",
    "PORTABLE AP SUPINE",
    "follow-up by phone",
    "per protocol",
    "Contrast: Omnipaque 350",
    "Morton neuroma",
    "Austin Flint murmur",
    "Jordan curve",
    "NICU",
    "Elekta Versa HD",
    "abdomen^liver",
    "Demonstration of SR Features",
    "syngo MR 2004V",
    "5.00.02",
    "build 07:41:13",
    "outside hospital",
    "Transferred from Community Hospital",
    "Emergency Department",
    "3 Small Bowel Loop",
    "2 Bone Spur",
    "L. Hip pain",
    "CT de la tête",
    "HEAD CT, MD aware",
    "DO NOT MOVE",
    "胸部CT 平扫",
    "左肺上叶结节",
    "조영제 주입 후",
    "고혈압 환자",
]


@pytest.mark.parametrize("text", FALSE_POSITIVES)
def test_clinical_text_is_kept(text: str) -> None:
    assert CLEAN.redact(text).text == text


def test_clinical_phrase_list_is_kept() -> None:
    """About 290 real-world descriptors, comments and device names (clinical_phrases.txt): none changes."""
    lines = (Path(__file__).parent / "clinical_phrases.txt").read_text(encoding="utf-8").splitlines()
    phrases = [t for t in lines if t and not t.startswith("#")]
    assert len(phrases) > 250
    changed = [t for t in phrases if CLEAN.redact(t).text != t]
    assert not changed, changed


def test_cjk_names_without_header() -> None:
    assert CLEAN.redact("胸部CT 王小東 复查").text == "胸部CT [NAME] 复查"
    assert CLEAN.redact("患者王小东复查").text == "患者[NAME]复查"
    assert CLEAN.redact("山田太郎 様").text == "[NAME] 様"
    assert CLEAN.redact("やまだ たろう").text == "[NAME]"
    assert CLEAN.redact("ﾔﾏﾀﾞ ﾀﾛｳ").text == "[NAME]"
    assert CLEAN.redact("환자 홍길동 님").text == "환자 [NAME] 님"
    assert CLEAN.redact("김민준 CT").text == "[NAME] CT"


def _pn_groups(path: Path) -> list[str]:
    ds = pydicom.dcmread(path)
    pn = ds.get("PatientName")
    if pn is None:
        return []
    out = []
    for comp in (pn.ideographic, pn.phonetic):
        name = "".join(str(comp).split("^"))
        if name and any(ord(c) > 0x2E80 for c in name):
            out.append(name)
    return out


def test_charset_file_names_are_found_in_free_text() -> None:
    """The CJK names of pydicom's charset files, written into free text, are found without the header."""
    from pydicom.data import get_charset_files

    found = total = 0
    for p in sorted(get_charset_files("*.dcm")):
        for name in _pn_groups(Path(p)):
            text = f"患者 {name} 胸部CT" if ord(name[0]) < 0xAC00 else f"환자 {name} 흉부 CT"
            total += 1
            spans = find_cjk_names(text)
            if any(text[s:e] == name or name in text[s:e] for s, e in spans):
                found += 1
    assert total >= 4
    assert found == total


def test_counts_per_label_never_values() -> None:
    c = PhiClassifier(use_presidio=False)
    r = c.redact("tech Maria Lopez, call 555-301-9822, Ref UXQTYG")
    assert r.counts == {"[NAME]": 1, "[PHONE]": 1, "[ID]": 1}
    assert c.counts() == {"[NAME]": 1, "[PHONE]": 1, "[ID]": 1}
    assert "Maria" not in repr(c.counts())


def test_default_classifier_is_configured_like_the_tests() -> None:
    from privguard.text.classifier import default_classifier

    assert default_classifier()._use_presidio is False and default_classifier()._use_lexicon is True


def test_lexicon_is_compact_and_loads_once() -> None:
    lex = lexicon()
    assert lexicon() is lex
    assert len(lex.first) > 10000 and len(lex.last) > 10000
    assert "rose" in lex.ambiguous and "kevin" not in lex.ambiguous
    assert find_names("") == []
