"""The command line: help, exit codes, JSON output, and no PHI in what it prints or logs."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import snapshot
from privguard_cli.main import COMMANDS, cli
from study_gen import write_study

PHI = ("Example", "John", "MRN1234567", "19611224", "Benedict", "House")


def _without_input_paths(text: str, root: Path) -> str:
    """The operator may see the local input paths (they stay at the sender); nothing else."""
    import re

    return re.sub(re.escape(str(root)) + r"[^\s\"]*", "<input>", text)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_of_every_command(runner: CliRunner, command: str) -> None:
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_top_level_help_does_not_import_heavy_modules(runner: CliRunner) -> None:
    import subprocess
    import sys

    code = "import sys; from privguard_cli.main import main; main(['--help'])"
    out = subprocess.run(
        [sys.executable, "-c", code + "\n"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert out.returncode == 0 and "scrub" in out.stdout
    probe = (
        "import sys\nfrom privguard_cli.main import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch','easyocr','presidio_analyzer','spacy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_keys_new_writes_a_private_file_and_never_overwrites(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "p.key"
    result = runner.invoke(cli, ["keys", "new", "--out", str(path)])
    assert result.exit_code == 0 and "pk_" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = json.loads(path.read_text())["key"]
    assert secret not in result.output
    again = runner.invoke(cli, ["keys", "new", "--out", str(path)])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output


def test_scrub_json_summary_and_exit_codes(
    runner: CliRunner, tmp_path: Path, key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inp = tmp_path / "in"
    write_study(inp, series=1, per_series=3)
    before = snapshot(inp)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    result = runner.invoke(
        cli,
        [
            "-vv",
            "scrub",
            str(inp),
            "--out",
            str(out),
            "--key-file",
            str(key_file),
            "--ocr",
            "off",
            "--json",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] == 3 and summary["failed"] == 0 and summary["total"] == 3
    assert set(summary) >= {
        "total",
        "ok",
        "skipped",
        "failed",
        "not_dicom",
        "seconds",
        "files_per_second",
        "counts",
        "failures",
    }
    for text in (result.output, caplog.text):
        for phi in PHI:
            assert phi not in text, phi
    assert snapshot(inp) == before
    # A failing file makes the exit code 1; the others are still written.
    (inp / "bad.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00")
    result = runner.invoke(
        cli,
        [
            "scrub",
            str(inp),
            "--out",
            str(tmp_path / "out2"),
            "--key-file",
            str(key_file),
            "--ocr",
            "off",
            "--json",
        ],
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["failed"] == 1
    assert len(list((tmp_path / "out2").rglob("*.dcm"))) == 3


def test_scrub_human_summary(runner: CliRunner, tmp_path: Path, key_file: Path) -> None:
    inp = tmp_path / "in"
    write_study(inp, series=1, per_series=2)
    (inp / "readme.txt").write_text("hello")
    result = runner.invoke(
        cli, ["scrub", str(inp), "--out", str(tmp_path / "o"), "--key-file", str(key_file), "--ocr", "off"]
    )
    assert result.exit_code == 0, result.output
    assert "de-identified" in result.output and "skipped (not DICOM)" in result.output
    for phi in PHI:
        assert phi not in result.output


def test_dry_run_prints_actions_and_writes_nothing(runner: CliRunner, tmp_path: Path, key_file: Path) -> None:
    inp = tmp_path / "in"
    write_study(inp, series=1, per_series=2)
    result = runner.invoke(
        cli,
        [
            "scrub",
            str(inp),
            "--out",
            str(tmp_path / "o"),
            "--key-file",
            str(key_file),
            "--dry-run",
            "--json",
            "--ocr",
            "off",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert any(r["keyword"] == "PatientName" and r["action"] == "P" for r in plan["attributes"])
    assert not (tmp_path / "o").exists()
    for phi in PHI:
        assert phi not in _without_input_paths(result.stdout, inp)


def test_inspect_shows_actions_not_values(runner: CliRunner, tmp_path: Path, key_file: Path) -> None:
    path = write_study(tmp_path / "in", series=1, per_series=1)[0]
    result = runner.invoke(cli, ["inspect", str(path), "--key-file", str(key_file), "--profile", "research"])
    assert result.exit_code == 0, result.output
    assert "PatientName" in result.output and "StudyDescription" in result.output
    for phi in PHI:
        assert phi not in result.output
    as_json = runner.invoke(cli, ["inspect", str(path), "--key-file", str(key_file), "--json"])
    rec = json.loads(as_json.stdout)
    assert rec["profile"] == "basic" and rec["changes"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "reserch"], "profile 'reserch' not found; available: basic"),
        (["--option", "retain-everything"], "unknown option"),
    ],
)
def test_config_errors_exit_2(
    runner: CliRunner, tmp_path: Path, key_file: Path, args: list[str], message: str
) -> None:
    inp = tmp_path / "in"
    write_study(inp, series=1, per_series=1)
    result = runner.invoke(
        cli, ["scrub", str(inp), "--out", str(tmp_path / "o"), "--key-file", str(key_file), *args]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_unsafe_key_permissions_exit_2(runner: CliRunner, tmp_path: Path, key_file: Path) -> None:
    os.chmod(key_file, 0o644)
    inp = tmp_path / "in"
    write_study(inp, series=1, per_series=1)
    result = runner.invoke(
        cli, ["scrub", str(inp), "--out", str(tmp_path / "o"), "--key-file", str(key_file)]
    )
    assert result.exit_code == 2 and "chmod 600" in result.output


def test_profiles_list_and_show(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["profiles", "list"])
    assert result.exit_code == 0 and "basic" in result.output and "research" in result.output
    shown = runner.invoke(cli, ["profiles", "show", "research"])
    assert "retain_longitudinal_modified_dates" in shown.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nname: x\noptions: [retain_everything]\n")
    result = runner.invoke(cli, ["profiles", "show", str(bad)])
    assert result.exit_code == 2 and "options" in result.output and "Traceback" not in result.output


def test_scrub_with_a_profile_file_and_options(runner: CliRunner, tmp_path: Path, key_file: Path) -> None:
    import pydicom

    profile = tmp_path / "site.yaml"
    profile.write_text(
        "schema_version: 1\nname: site\noptions: [clean_descriptors]\n"
        "overrides:\n  - attribute: InstitutionName\n    action: replace\n    value: Site 7\n"
    )
    inp = tmp_path / "in"
    write_study(inp, series=1, per_series=1)
    result = runner.invoke(
        cli,
        [
            "scrub",
            str(inp),
            "--out",
            str(tmp_path / "o"),
            "--key-file",
            str(key_file),
            "--profile",
            str(profile),
            "--option",
            "retain-longitudinal-modified-dates",
            "--ocr",
            "off",
        ],
    )
    assert result.exit_code == 0, result.output
    ds = pydicom.dcmread(next((tmp_path / "o").rglob("*.dcm")))
    assert ds.InstitutionName == "Site 7"
    assert ds.StudyDescription == "CT chest for [NAME]"
    assert ds.StudyDate and ds.StudyDate != "20240105"
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == ["113100", "113105", "113107"]
