"""The allow-list: shipped file, site files, validation that fails closed, matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from privguard.errors import PolicyError
from privguard.pixels.allowlist import AllowList, AllowListFile, load_allowlist, shipped


def test_shipped_allowlist_loads_from_the_installed_package() -> None:
    f = shipped()
    assert f.schema_version == 1
    assert "PORTABLE" in f.terms["all"]
    al = load_allowlist()
    assert al.unknown_text == "keep"
    assert 0 < al.min_confidence < 1


@pytest.mark.parametrize(
    ("token", "modality", "expected"),
    [
        ("PORTABLE", "CR", True),
        ("Portable", "CR", True),
        ("Portab1e", "CR", True),  # OCR confusion folded
        ("Semi-Upright", "CR", True),
        ("L", "CR", True),
        ("5.0cm", "US", True),
        ("120kV", "CT", True),
        ("C5-1", "US", True),
        ("GAIN", "US", True),
        ("GAIN", "CT", False),  # modality-specific term
        ("KAUFMAN", "CT", False),
        ("03.24", "CR", False),  # a month and day is not a scale number
        ("12345678", "CT", False),
        ("", "CT", False),
    ],
)
def test_matches(token: str, modality: str, expected: bool) -> None:
    assert load_allowlist().matches(token, modality) is expected


def test_strict_matching_for_unreadable_text() -> None:
    al = load_allowlist()
    assert al.matches("Portab1e", "CR")
    assert not al.matches("Portab1e", "CR", strict=True)
    assert al.matches("PORTABLE", "CR", strict=True)


def test_site_file_extends_and_overrides(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("schema_version: 1\nunknown_text: redact\nterms:\n  US: [SPLEEN TIP, XYZPROBE]\n")
    al = load_allowlist([site])
    assert al.unknown_text == "redact"
    assert al.matches("XYZPROBE", "US")
    assert al.matches("PORTABLE", "CR")  # the shipped terms stay
    assert ("SPLEEN", "TIP") in al.phrases("US")


@pytest.mark.parametrize(
    "content",
    [
        "schema_version: 2\n",
        "schema_version: 1\nterms:\n  chest: [A]\n",  # not a modality code
        "schema_version: 1\npatterns:\n  all: ['(']\n",  # invalid regex
        "schema_version: 1\nunknown_text: maybe\n",
        "schema_version: 1\nextra: 1\n",
        "- just a list\n",
        "schema_version: 1\nterms: [\n",  # not YAML
    ],
    ids=["version", "modality-key", "regex", "unknown-text", "extra-field", "not-mapping", "not-yaml"],
)
def test_invalid_site_files_fail_closed(tmp_path: Path, content: str) -> None:
    site = tmp_path / "bad.yaml"
    site.write_text(content)
    with pytest.raises(PolicyError):
        load_allowlist([site])


def test_missing_site_file_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_allowlist([tmp_path / "nope.yaml"])


def test_an_allowlist_needs_a_file() -> None:
    with pytest.raises(PolicyError):
        AllowList([])
    assert AllowListFile(schema_version=1).terms == {}


def test_profile_allowlist_is_read_relative_to_the_profile_file(tmp_path: Path) -> None:
    from fakes import FakeEngine

    from privguard.deidentifier import PixelOptions
    from privguard.header.profile import load_profile
    from privguard.pixels import build_stage

    (tmp_path / "site-terms.yaml").write_text("schema_version: 1\nterms:\n  US: [XYZPROBE]\n")
    (tmp_path / "run-terms.yaml").write_text("schema_version: 1\nterms:\n  all: [WARDNINE]\n")
    prof_file = tmp_path / "site.yaml"
    prof_file.write_text("schema_version: 1\nname: site\npixels:\n  allowlist: [site-terms.yaml]\n")
    prof = load_profile(prof_file)
    assert prof.pixels.allowlist == (str(tmp_path / "site-terms.yaml"),)
    opts = PixelOptions(ocr="on", allowlist=(tmp_path / "run-terms.yaml",))
    stage = build_stage(prof, opts, engine=FakeEngine({}))
    allow = stage.decider.allowlist
    assert allow.matches("XYZPROBE", "US")  # from the profile's file
    assert allow.matches("WARDNINE", "CT")  # from the run's --allowlist
    assert allow.matches("PORTABLE", "CR")  # the shipped terms stay
    plain = build_stage(load_profile("basic"), PixelOptions(ocr="on"), engine=FakeEngine({}))
    assert not plain.decider.allowlist.matches("XYZPROBE", "US")


def test_scrub_refuses_a_broken_allowlist_naming_the_file(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from privguard_cli.main import cli

    bad = tmp_path / "bad-terms.yaml"
    bad.write_text("schema_version: 1\nterms:\n  chest: [A]\n")
    key = tmp_path / "k.key"
    runner = CliRunner()
    assert runner.invoke(cli, ["keys", "new", "--out", str(key)]).exit_code == 0
    (tmp_path / "in").mkdir()
    res = runner.invoke(
        cli,
        [
            "scrub",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--key-file",
            str(key),
            "--ocr",
            "on",
            "--allowlist",
            str(bad),
        ],
    )
    assert res.exit_code != 0
    assert "bad-terms.yaml" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.dcm"))


def test_yes_no_on_off_terms_are_words(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("schema_version: 1\nterms:\n  US: [ON, OFF, NO]\n")
    al = load_allowlist([site])
    assert al.matches("ON", "US") and al.matches("OFF", "US") and al.matches("NO", "US")
