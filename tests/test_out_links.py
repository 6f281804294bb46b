"""The de-identifier's own writes (library API, staging, previews) never follow links under the output."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import pydicom_test_files

from privguard.deidentifier import Deidentifier
from privguard.errors import OutputError
from privguard.pseudonym.keys import ProjectKey

KEY = ProjectKey.from_bytes(b"k" * 32, datetime(2020, 1, 1, tzinfo=UTC))


def _ct() -> Path:
    return next(p for p in pydicom_test_files() if p.name == "CT_small.dcm")


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_link_planted_where_a_folder_belongs_fails_the_file(tmp_path: Path) -> None:
    deid = Deidentifier("basic", KEY)
    first = deid.file(_ct(), tmp_path / "probe")
    assert first.status == "ok" and first.output
    top = first.output.split("/")[0]
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    victim.mkdir()
    (out / top).symlink_to(victim, target_is_directory=True)
    res = deid.file(_ct(), out)
    assert res.status == "failed" and "symbolic link" in (res.reason or "")
    assert _tree(victim) == []  # nothing written through the link
    assert _tree(out) == [top]  # and no temporary file or folder left behind


def test_a_link_planted_at_the_output_name_is_never_replaced_or_followed(tmp_path: Path) -> None:
    deid = Deidentifier("basic", KEY)
    first = deid.file(_ct(), tmp_path / "probe")
    assert first.output
    out = tmp_path / "out"
    target = tmp_path / "elsewhere.dcm"
    target.write_bytes(b"not touched")
    planted = out / first.output
    planted.parent.mkdir(parents=True)
    planted.symlink_to(target)
    res = deid.file(_ct(), out)
    assert res.status == "failed"
    assert target.read_bytes() == b"not touched"
    assert planted.is_symlink()
    assert [p.name for p in planted.parent.iterdir()] == [planted.name]  # no temporary file left


def test_folders_made_for_a_failed_output_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import privguard.deidentifier as mod

    def refuse(*_: object, **__: object) -> None:
        raise OutputError("the output still holds the input's PatientName; nothing written")

    monkeypatch.setattr(mod, "verify_output", refuse)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = Deidentifier("basic", KEY).file(_ct(), out)
    assert res.status == "failed" and "PatientName" in (res.reason or "")
    assert _tree(out) == ["keep.txt"]


def test_the_library_path_still_writes_and_accepts_an_identical_rerun(tmp_path: Path) -> None:
    deid = Deidentifier("basic", KEY)
    a = deid.file(_ct(), tmp_path / "out")
    b = deid.file(_ct(), tmp_path / "out")
    assert a.status == b.status == "ok" and a.output == b.output
    written = tmp_path / "out" / str(a.output)
    assert written.is_file() and oct(written.stat().st_mode & 0o777) == oct(0o644)
    assert not [p for p in (tmp_path / "out").rglob(".privguard-*")]


def test_a_preview_never_follows_a_link_at_its_name(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from privguard.pixels.preview import write_preview

    target = tmp_path / "target.txt"
    target.write_text("not touched")
    previews = tmp_path / "previews"
    previews.mkdir()
    (previews / "a.png").symlink_to(target)
    frame = np.zeros((16, 16, 3), np.uint8)
    with caplog.at_level(logging.WARNING):
        write_preview(previews / "a.png", frame, frame, [], [], [])
    assert target.read_text() == "not touched"
    assert "symbolic link" in caplog.text
    write_preview(previews / "b.png", frame, frame, [], [], [])
    assert (previews / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.stat(previews / "b.png").st_size > 0
