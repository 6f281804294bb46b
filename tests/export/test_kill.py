"""An export SIGKILLed at random points resumes to byte-identical output and a verifiable log."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from privguard.audit import MANIFEST, verify
from privguard.pseudonym.keys import ProjectKey

from .support import PATIENTS, Setup, approved_setup, write_ct

ROOT = Path(__file__).resolve().parents[2]
EXTRA = 16  # more instances of an included study, so that kills land inside the scrub


def _grow(s: Setup) -> None:
    name, birth, age, _ = PATIENTS["DE-P001"]
    uid = generate_uid()
    for n in range(EXTRA):
        path = s.inputs[0] / "more" / f"{n}.dcm"
        write_ct(path, name, "DE-P001", birth, age, "DE-S001", "CT", "CHEST", False, n + 10, uid)


def _cmd(s: Setup, out: Path, log: Path) -> list[str]:
    cmd = [
        sys.executable, "-m", "privguard_cli.main", "export", str(s.request), "--approval", str(s.approval),
        "--public-key", str(s.officer_pub), "--key-file", str(s.key_file), "--out", str(out),
        "--consents", str(s.consents), "--ocr", "off", "--workers", "1", "--resume", "--audit-log", str(log),
    ]  # fmt: skip
    for inp in s.inputs:
        cmd += ["--input", str(inp)]
    return cmd


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "cli"), env.get("PYTHONPATH", "")])
    return env


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
    start = time.monotonic()
    ref = subprocess.run(
        _cmd(s, tmp_path / "ref", log), env=_env(), capture_output=True, text=True, timeout=300
    )
    full = time.monotonic() - start
    assert ref.returncode == 0, ref.stdout + ref.stderr
    expected = _delivered(tmp_path / "ref")
    kills = 0
    for seed in range(5):
        rng = random.Random(seed)
        out = tmp_path / f"killed-{seed}"
        for _ in range(3):  # until one kill lands before the run finishes
            proc = subprocess.Popen(
                _cmd(s, out, log), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            time.sleep(rng.uniform(0.2, full * 0.9))
            killed = proc.poll() is None
            if killed:
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait(60)
            if killed:
                break
        done = subprocess.run(_cmd(s, out, log), env=_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert _delivered(out) == expected, f"seed {seed}: output differs from an uninterrupted export"
    assert kills >= 5, f"only {kills} runs were killed before they finished"
    report = verify(log, heads=tuple(tmp_path / f"killed-{i}" / "AUDIT-HEAD.json" for i in range(5)))
    assert report.ok, report.problem
    interrupted = [r for r in report.runs if r.end is None]
    assert 0 < len(interrupted) <= kills  # a kill during start-up leaves no run record at all
    assert all(r.outcome == "success" for r in report.runs if r.end is not None)
