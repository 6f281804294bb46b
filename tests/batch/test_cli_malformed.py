"""Every command with malformed inputs: one line, a documented exit code, never a traceback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from privguard_cli.main import cli
from study_gen import write_study

from privguard.batch.fsio import OutLock
from privguard.pseudonym.keys import ProjectKey


def _run(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args)


def _clean_failure(result: Result, code: int) -> str:
    """The command failed with ``code``, said why in one ``Error:`` line, and showed no traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def _nested_yaml(depth: int) -> str:
    return "".join("  " * i + "a:\n" for i in range(depth)) + "  " * depth + "b: 1\n"


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def study(tmp_path: Path) -> Path:
    write_study(tmp_path / "in", series=1, per_series=2)
    return tmp_path / "in"


@pytest.mark.parametrize(
    ("content", "what"),
    [("[]", "JSON list"), ('"key"', "JSON string"), ("{", "not JSON"), ("{}", "empty object")],
)
def test_key_files_that_are_not_keys(study: Path, tmp_path: Path, content: str, what: str) -> None:
    bad = _private(tmp_path / "k.key", content)
    line = _clean_failure(
        _run(["scrub", str(study), "--out", str(tmp_path / "o"), "--key-file", str(bad)]), 2
    )
    assert "not a privguard project key" in line, what
    f = next(study.iterdir())
    line = _clean_failure(_run(["inspect", str(f), "--key-file", str(bad)]), 2)
    assert "not a privguard project key" in line
    assert not (tmp_path / "o").exists()


def test_deeply_nested_and_bomb_documents(study: Path, tmp_path: Path, key_file: Path) -> None:
    profile = tmp_path / "deep.yaml"
    profile.write_text(_nested_yaml(5000))
    _clean_failure(
        _run(
            [
                "scrub",
                str(study),
                "--out",
                str(tmp_path / "o"),
                "--key-file",
                str(key_file),
                "--profile",
                str(profile),
            ]
        ),
        2,
    )
    _clean_failure(_run(["profiles", "show", str(profile)]), 2)
    request = tmp_path / "req.json"
    request.write_text("[" * 100_000 + "]" * 100_000)
    line = _clean_failure(_run(["check", str(request)]), 2)
    assert "nested deeper" in line
    deep_yaml = tmp_path / "req.yaml"
    deep_yaml.write_text(_nested_yaml(200))
    _clean_failure(_run(["check", str(deep_yaml)]), 2)
    bomb = tmp_path / "consents.yaml"
    bomb.write_text(_alias_bomb())
    start = time.monotonic()
    line = _clean_failure(_run(["check", str(deep_yaml), "--consents", str(bomb)]), 2)
    assert time.monotonic() - start < 10
    signing = tmp_path / "officer"
    assert _run(["keys", "new-signing", "--out", str(signing)]).exit_code == 0
    _clean_failure(
        _run(
            [
                "approve",
                str(request),
                "--signing-key",
                str(signing) + ".key",
                "--out",
                str(tmp_path / "a.json"),
                "--officer",
                "DPO",
            ]
        ),
        2,
    )
    assert not (tmp_path / "a.json").exists()


def test_alias_bomb_in_consents_is_refused_before_it_expands(tmp_path: Path) -> None:
    from privguard.errors import PolicyError
    from privguard.policyio import parse_text

    with pytest.raises(PolicyError, match="alias"):
        parse_text(_alias_bomb(), "yaml", "consent file", "c.yaml")
    # Shipped policies use a few aliases; those still load.
    from privguard.compliance.loader import load_policy

    assert load_policy("gdpr") is not None


def test_output_folder_problems(study: Path, tmp_path: Path, key_file: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".privguard").write_text("a file, not a folder")
    base = ["scrub", str(study), "--key-file", str(key_file)]
    line = _clean_failure(_run([*base, "--out", str(out), "--resume"]), 2)
    assert "not a folder" in line
    line = _clean_failure(_run([*base, "--out", "/proc/privguard-test/out"]), 2)
    assert "cannot be created" in line
    # A non-object journal line.
    good = tmp_path / "good"
    assert _run([*base, "--out", str(good)]).exit_code == 0
    journal = good / ".privguard" / "journal.jsonl"
    journal.write_text(journal.read_text() + "[]\n")
    line = _clean_failure(_run([*base, "--out", str(good), "--resume"]), 2)
    assert "damaged" in line
    journal.write_text("\n".join(journal.read_text().splitlines()[:-1]) + "\n")
    # Another run holds the lock.
    lock = OutLock(good / ".privguard" / "lock")
    lock.acquire()
    try:
        line = _clean_failure(_run([*base, "--out", str(good), "--resume"]), 2)
        assert ".privguard/lock" in line
    finally:
        lock.release()
    # A resume with another key names it.
    other = tmp_path / "keys" / "other.key"
    ProjectKey.generate().save(other)
    line = _clean_failure(
        _run(["scrub", str(study), "--key-file", str(other), "--out", str(good), "--resume"]), 2
    )
    assert "key id" in line


def test_report_hazards_on_the_command_line(study: Path, tmp_path: Path, key_file: Path) -> None:
    victim = next(study.iterdir())
    before = victim.read_bytes()
    base = ["scrub", str(study), "--key-file", str(key_file), "--out", str(tmp_path / "o")]
    _clean_failure(_run([*base, "--report", str(victim)]), 2)
    _clean_failure(_run([*base, "--report", str(key_file)]), 2)
    line = _clean_failure(_run([*base, "--report", str(tmp_path / "o" / "r.jsonl")]), 2)
    assert "--report-inside-out" in line
    assert victim.read_bytes() == before and json.loads(key_file.read_text())["key"]


def test_keys_and_inspect_errors(tmp_path: Path, key_file: Path) -> None:
    line = _clean_failure(_run(["keys", "new", "--out", str(tmp_path / "missing" / "k.key")]), 2)
    assert "missing" in line
    _clean_failure(_run(["keys", "new-signing", "--out", str(tmp_path / "missing" / "s")]), 2)
    good = write_study(tmp_path / "in", series=1, per_series=1)[0]
    data = good.read_bytes()
    bad = {
        "empty.dcm": b"",
        "header_only.dcm": data[:300],
        "truncated.dcm": data[: len(data) - 40],
        "garbage.dcm": b"\x00" * 128 + b"DICM" + bytes(range(256)) * 8,
        "text.dcm": b"not dicom at all",
    }
    for name, content in bad.items():
        f = tmp_path / name
        f.write_bytes(content)
        result = _run(["inspect", str(f), "--key-file", str(key_file)])
        assert result.exit_code in (1, 2), (name, result.output)
        _clean_failure(result, result.exit_code)


def test_inspect_refuses_a_deflate_bomb(tmp_path: Path, key_file: Path) -> None:
    from test_batch_faults import _deflate_bomb

    bomb = tmp_path / "bomb.dcm"
    _deflate_bomb(bomb, 100 << 20)
    line = _clean_failure(
        _run(["inspect", str(bomb), "--key-file", str(key_file), "--max-file-memory", "64M"]), 1
    )
    assert "deflate bomb" in line


def test_rich_markup_in_paths_is_printed_literally(
    tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from privguard_cli import render
    from rich.console import Console

    monkeypatch.setattr(render, "out", Console(width=1000))  # no folding of long paths in tables
    inp = tmp_path / "x["
    write_study(inp, series=1, per_series=1)
    (inp / "]y.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x04\x00[/]x")
    (inp / "[bold]z[red].dcm").write_bytes(b"\x00" * 128 + b"DICM")
    base = ["scrub", str(inp), "--key-file", str(key_file)]
    result = _run([*base, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{inp}/]y.dcm" in result.output and f"{inp}/[bold]z[red].dcm" in result.output
    dry = _run([*base, "--out", str(tmp_path / "dry"), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"{inp}/]y.dcm" in dry.output


def test_free_form_consent_fields_are_size_bounded(tmp_path: Path) -> None:
    from pydantic import TypeAdapter

    from privguard.errors import PolicyError
    from privguard.policyio import MAX_ANY_NODES, BoundedTuple, bounded_json

    big = [{"url": "x", "valueString": "y"}] * (MAX_ANY_NODES // 2)
    with pytest.raises(ValueError, match="more than"):
        bounded_json(big)
    adapter = TypeAdapter(BoundedTuple)
    assert adapter.validate_python(({"url": "x"},)) == ({"url": "x"},)
    with pytest.raises(Exception, match="more than"):
        adapter.validate_python(tuple(big))
    # Through the consent loader: a FHIR Consent whose extension holds too much is refused.
    from privguard.compliance.loader import load_consents

    example = Path(__file__).parents[2] / "examples" / "compliance" / "gdpr-research-consents.yaml"
    text = example.read_text()
    assert "      resourceType: Consent\n" in text
    load_consents(example)  # as shipped: loads
    for items, refused in ((big, True), (big[:10], False)):
        consents = tmp_path / f"consents-{len(items)}.yaml"
        extension = f"      extension: {json.dumps(items)}\n"
        consents.write_text(
            text.replace("      resourceType: Consent\n", "      resourceType: Consent\n" + extension, 1)
        )
        if refused:
            with pytest.raises(PolicyError, match=r"extension: Value error, holds more than"):
                load_consents(consents)
        else:
            load_consents(consents)


def test_debug_shows_the_real_exception(tmp_path: Path) -> None:
    target = str(tmp_path / "missing" / "k.key")
    plain = _run(["keys", "new", "--out", target])
    _clean_failure(plain, 2)
    debug = _run(["--debug", "keys", "new", "--out", target])
    assert isinstance(debug.exception, FileNotFoundError)  # raised, for the traceback
