"""The PHI text classifier: header values in any form, presidio patterns, and what is not PHI."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from privguard.text.classifier import PhiClassifier, default_classifier
from privguard.text.context import PhiContext, date_variants


@pytest.fixture(scope="module")
def context() -> PhiContext:
    ds = Dataset()
    ds.PatientName = "Example^John^Quincy"
    ds.PatientID = "MRN1234567"
    ds.OtherPatientNames = "Sample^Johnny"
    ds.PatientBirthDate = "19430722"
    ds.StudyDate = "20120309"
    ds.AccessionNumber = "ACC998877"
    ds.InstitutionName = "St. Benedict Medical Center"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.PatientTelephoneNumbers = "+1 555 201 3344"
    ds.StudyDescription = "CT CHEST WITH CONTRAST"  # a descriptor, not a source of terms
    return PhiContext.from_dataset(ds)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CT chest for John Q Example", "CT chest for [NAME]"),
        ("Example, John Quincy: follow-up", "[NAME]: follow-up"),
        ("EXAMPLE^JOHN", "[NAME]"),
        ("J. Example seen by Gregory House", "[NAME] seen by [NAME]"),
        ("Johnny Sample (alias)", "[NAME] (alias)"),
        ("MRN 1234567 and MRN1234567", "[ID] and [ID]"),
        ("acc ACC-998877", "acc [ID]"),
        ("DOB 07/22/1943", "DOB [DATE]"),
        ("born 22.07.1943", "born [DATE]"),
        ("born July 22, 1943", "born [DATE]"),
        ("study 2012-03-09", "study [DATE]"),
        ("at St. Benedict Medical Center today", "at [PLACE] today"),
        ("Benedict radiology", "[PLACE] radiology"),
        ("call 555 201 3344", "call [PHONE]"),
        ("mail john@example.org", "mail [EMAIL]"),
        ("Dr. Cuddy reviewed", "Dr. [NAME] reviewed"),
        ("Patient name: Kaufman Scott, portable", "Patient name: [NAME], portable"),
    ],
)
def test_phi_is_replaced(context: PhiContext, text: str, expected: str) -> None:
    assert default_classifier().redact(text, context).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "CT CHEST WITH CONTRAST",
        "AXIAL 5MM STANDARD",
        "T2 FLAIR SAG",
        "120 kVp 250 mAs",
        "PORTABLE AP SUPINE",
        "L R",
        "Contrast: Omnipaque 350",
        "Series 3 of 5",
        "Johnson & Johnson device",  # shares letters with John, not the word
    ],
)
def test_non_phi_is_kept(context: PhiContext, text: str) -> None:
    assert default_classifier().redact(text, context).text == text


def test_cjk_names(context: PhiContext) -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Wang^XiaoDong=王^小東"
    ctx = PhiContext.from_dataset(ds)
    c = default_classifier()
    assert c.redact("胸部CT 王小東 复查", ctx).text == "胸部CT [NAME] 复查"
    assert c.redact("XiaoDong Wang chest", ctx).text == "[NAME] chest"
    assert c.redact("小東 follow-up", ctx).text == "[NAME] follow-up"


def test_without_context_patterns_still_work() -> None:
    r = PhiClassifier().redact("seen on 03/09/2012, call 555-201-3344")
    assert r.text == "seen on [DATE], call [PHONE]"
    assert [s.entity for s in r.spans] == ["DATE_TIME", "PHONE_NUMBER"]


def test_context_repr_and_date_forms(context: PhiContext) -> None:
    assert "Example" not in repr(context) and "1234567" not in repr(context)
    import datetime as dt

    forms = date_variants(dt.date(2012, 3, 9))
    assert {
        "20120309",
        "2012-03-09",
        "03/09/2012",
        "09.03.2012",
        "March 9, 2012",
        "9 Mar 2012",
        "2012年3月9日",
    } <= forms


def test_tldextract_is_offline() -> None:
    import tldextract.tldextract as tx

    PhiClassifier().redact("mail a@b.org", None)
    assert tx.TLD_EXTRACTOR.suffix_list_urls == ()
