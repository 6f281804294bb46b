"""kill -9 of the whole run, then --resume: the same bytes as a fresh run, no leftovers, no stale lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tree_bytes
from study_gen import write_study

from privguard.batch import ScrubConfig, scrub
from privguard.deidentifier import PixelOptions
from privguard.pseudonym.keys import ProjectKey

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kills processes, reads /proc")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _outputs(root: Path) -> dict[str, bytes]:
    """The de-identified files of an output folder (the CLI adds its audit manifest and head)."""
    return {k: v for k, v in tree_bytes(root).items() if k.endswith(".dcm")}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_kill_the_driver_mid_run_then_resume(tmp_path: Path, key: ProjectKey, key_file: Path) -> None:
    inp = tmp_path / "in"
    for i in range(3):
        write_study(inp / f"p{i}", patient=(f"Pat^{i}", f"MRN{i:07d}", "19700101"), series=2, per_series=12)
    total = 72
    cmd = "from privguard_cli.main import main; main()"

    def cli(out: Path, *extra: str) -> subprocess.Popen[bytes]:
        args = [
            "scrub",
            str(inp),
            "--out",
            str(out),
            "--key-file",
            str(key_file),
            "--workers",
            "2",
            "--ocr",
            "off",
            *extra,
        ]
        return subprocess.Popen(
            [sys.executable, "-c", cmd, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    fresh = ScrubConfig(
        inputs=[inp], out=tmp_path / "fresh", key=key, workers=2, pixels=PixelOptions(ocr="off")
    )
    assert scrub(fresh).ok == total  # the settings of the CLI runs below
    fresh_bytes = _outputs(tmp_path / "fresh")
    assert sum(1 for k in fresh_bytes if k.endswith(".dcm")) == total

    out = tmp_path / "out"
    journal = out / ".privguard" / "journal.jsonl"
    proc = cli(out)
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        workers = _children(proc.pid) or workers
        if journal.exists() and len(journal.read_text().splitlines()) > 1 + 16:  # at least one chunk done
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done_before = len(journal.read_text().splitlines()) - 1
    assert 0 < done_before < total, "the run was not interrupted mid-way"
    # Its workers die with it (PR_SET_PDEATHSIG) and hold no copy of the lock.
    time.sleep(0.5)
    assert workers and not [w for w in workers if _alive(w)]
    # Every journal line names a complete output (the same bytes as the fresh run's).
    for line in journal.read_text().splitlines()[1:]:
        rel = json.loads(line)["out"]
        assert (out / rel).read_bytes() == fresh_bytes[rel]
    assert cli(out, "--resume").wait(timeout=300) == 0  # no stale lock, same settings
    resumed = scrub(
        ScrubConfig(inputs=[inp], out=out, key=key, workers=2, resume=True, pixels=PixelOptions(ocr="off"))
    )
    assert resumed.resumed == total  # the CLI's resume finished every file
    assert _outputs(out) == fresh_bytes
    assert not list(out.rglob("*.tmp")) and not (out / ".privguard" / "staging").exists()
