"""An export SIGKILLed at random points resumes to byte-identical output and a verifiable log."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from privguard.audit import MANIFEST, verify
from privguard.pseudonym.keys import ProjectKey

from .support import PATIENTS, Setup, approved_setup, write_ct

EXTRA = 16  # more instances of an included study, so that kills land inside the scrub


def _grow(s: Setup) -> None:
    name, birth, age, _ = PATIENTS["DE-P001"]
    uid = generate_uid()
    for n in range(EXTRA):
        path = s.inputs[0] / "more" / f"{n}.dcm"
        write_ct(path, name, "DE-P001", birth, age, "DE-S001", "CT", "CHEST", False, n + 10, uid)


def _export(s: Setup, out: Path, log: Path) -> None:
    """The export, in a forked child that leads its own process group (so a kill takes its workers too)."""
    os.setsid()
    from privguard.export import export

    code = 0
    try:
        export(s.request, s.approval, s.officer_pub, s.key_file, s.inputs, out, consents=s.consents,
               ocr="off", workers=1, resume=True, audit_log=log)  # fmt: skip
    except BaseException:
        code = 1
    os._exit(code)


def _start(s: Setup, out: Path, log: Path) -> multiprocessing.process.BaseProcess:
    proc = multiprocessing.get_context("fork").Process(target=_export, args=(s, out, log))
    proc.start()
    return proc


def _delivered(out: Path) -> dict[str, bytes]:
    files = {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in out.rglob("*.dcm")
        if ".privguard" not in p.parts
    }
    files[MANIFEST] = (out / MANIFEST).read_bytes()
    return files


@pytest.mark.slow
def test_killed_exports_resume_byte_identical(tmp_path: Path, key: ProjectKey) -> None:
    s = approved_setup(tmp_path, key)
    _grow(s)
    log = tmp_path / "audit.jsonl"
    import presidio_analyzer  # noqa: F401 - loaded once here, not in every child

    start = time.monotonic()
    ref = _start(s, tmp_path / "ref", log)
    ref.join(300)
    full = time.monotonic() - start
    assert ref.exitcode == 0
    expected = _delivered(tmp_path / "ref")
    kills = 0
    for seed in range(5):
        rng = random.Random(seed)
        out = tmp_path / f"killed-{seed}"
        upper = full * 0.9
        for _ in range(6):  # until one kill lands before the run finishes
            began = time.monotonic()
            proc = _start(s, out, log)
            time.sleep(rng.uniform(0.05, upper))
            killed = proc.is_alive()
            if killed:
                assert proc.pid is not None
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
            proc.join(60)
            if killed:
                break
            upper = max(0.1, (time.monotonic() - began) * 0.7)  # the machine got faster: aim earlier
        done = _start(s, out, log)
        done.join(300)
        assert done.exitcode == 0, f"seed {seed}: the resumed export failed"
        assert _delivered(out) == expected, f"seed {seed}: output differs from an uninterrupted export"
    assert kills >= 5, f"only {kills} runs were killed before they finished"
    report = verify(log, heads=tuple(tmp_path / f"killed-{i}" / "AUDIT-HEAD.json" for i in range(5)))
    assert report.ok, report.problem
    interrupted = [r for r in report.runs if r.end is None]
    assert 0 < len(interrupted) <= kills  # a kill during start-up leaves no run record at all
    assert all(r.outcome == "success" for r in report.runs if r.end is not None)
