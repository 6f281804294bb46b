"""Generated studies for the export tests: the GDPR example request's patients, with planted PHI."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from privguard_cli.main import cli
from pydicom.uid import generate_uid
from study_gen import ct_instance

from privguard.compliance.approval import SigningKey, approve_request
from privguard.pseudonym.keys import ProjectKey

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "compliance"
REQUEST = EXAMPLES / "gdpr-research-request.yaml"
CONSENTS = EXAMPLES / "gdpr-research-consents.yaml"
NOW = dt.datetime.now(dt.UTC)

#: patient id -> (name, birth date, age, [(study id, modality, body part, defaced)])
PATIENTS: dict[str, tuple[str, str, int, list[tuple[str, str, str, bool]]]] = {
    "DE-P001": ("Zwiebelmann^Erika", "19590301", 67, [("DE-S001", "CT", "CHEST", False)]),
    "DE-P002": (
        "Quappenberg^Horst",
        "19550101",
        71,
        [("DE-S002", "CT", "CHEST", False), ("DE-S003", "MR", "BRAIN", True)],
    ),
    "DE-P003": ("Kranichfeld^Lotte", "19680101", 58, [("DE-S004", "CT", "CHEST", False)]),
    "DE-P004": ("Mauerspecht^Udo", "19640101", 62, [("DE-S005", "CT", "CHEST", False)]),
    "DE-P005": ("Wolkenbruch^Ida", "19770101", 49, [("DE-S006", "CT", "CHEST", False)]),
    "DE-P006": ("Rabenschnabel^Karl", "19460101", 80, [("DE-S007", "CT", "CHEST", False)]),
}
#: Exported (consent allows): the other two are excluded by the check.
INCLUDED = ("DE-P001", "DE-P002", "DE-P004", "DE-P006")
PER_STUDY = 2


def write_ct(
    path: Path,
    name: str,
    pid: str,
    birth: str,
    age: int,
    study: str,
    modality: str,
    body_part: str,
    defaced: bool,
    number: int,
    study_uid: str,
) -> None:
    ds = ct_instance(
        (name, pid, birth), study_uid, study_uid + ".1", study_uid + ".2", generate_uid(), number, []
    )
    ds.AccessionNumber = study
    ds.Modality = modality
    ds.BodyPartExamined = body_part
    ds.PatientAge = f"{age:03d}Y"
    ds.OtherPatientIDs = pid + "-OLD"
    if defaced:
        ds.RecognizableVisualFeatures = "NO"
    ds.BurnedInAnnotation = "NO"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_cohort(root: Path) -> dict[str, str]:
    """Every study of :data:`PATIENTS` under ``root/<name>/``; returns the planted PHI tokens."""
    tokens: dict[str, str] = {}
    for pid, (name, birth, age, studies) in PATIENTS.items():
        tokens[pid] = pid
        tokens[name] = name.split("^")[0]
        tokens[birth] = birth
        for sid, modality, body, defaced in studies:
            tokens[sid] = sid
            uid = generate_uid()
            tokens[uid] = uid
            for n in range(PER_STUDY):
                write_ct(
                    root / name.split("^")[0] / f"{sid}-{n}.dcm",
                    name,
                    pid,
                    birth,
                    age,
                    sid,
                    modality,
                    body,
                    defaced,
                    n + 1,
                    uid,
                )
    return tokens


def write_strays(root: Path) -> None:
    """Files outside the request: an unknown patient, and an unknown study of a known patient."""
    write_ct(
        root / "stranger.dcm",
        "Fremdling^Otto",
        "XX-P999",
        "19700101",
        56,
        "XX-S999",
        "CT",
        "CHEST",
        False,
        1,
        generate_uid(),
    )
    write_ct(
        root / "other-study.dcm",
        "Zwiebelmann^Erika",
        "DE-P001",
        "19590301",
        67,
        "DE-S999",
        "CT",
        "CHEST",
        False,
        1,
        generate_uid(),
    )
    (root / "readme.txt").write_text("not dicom")


@dataclass
class Setup:
    """An approved export, ready to run."""

    tmp: Path
    request: Path
    consents: Path
    approval: Path
    officer_pub: Path
    key_file: Path
    inputs: list[Path]
    tokens: dict[str, str]
    officer: SigningKey


def approved_setup(tmp: Path, key: ProjectKey) -> Setup:
    """Request and consents copied next to a generated cohort, approved by a fresh officer key."""
    cohort, strays = tmp / "pacs", tmp / "other"
    tokens = write_cohort(cohort)
    write_strays(strays)
    request = tmp / "request.yaml"
    consents = tmp / "consents.yaml"
    shutil.copy(REQUEST, request)
    shutil.copy(CONSENTS, consents)
    officer = SigningKey.generate()
    _, pub = officer.save(tmp / "officer")
    approval = tmp / "approval.json"
    approve_request(
        request, officer, officer="DPO", valid_for=dt.timedelta(days=30), consents=consents, out=approval
    )
    key_file = tmp / "project.key"
    key.save(key_file)
    return Setup(tmp, request, consents, approval, pub, key_file, [cohort, strays], tokens, officer)


def run_cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.output
