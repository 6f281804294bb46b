"""Executors share one worker set-up and one retry policy; a pool that cannot start never hangs."""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

import pytest
from study_gen import write_study

from privguard.batch import ScrubConfig, scrub
from privguard.batch import executor as executor_module
from privguard.batch.executor import ExecStats, Task, Tasks
from privguard.batch.worker import WorkerState, ocr_threads
from privguard.cores import usable_cores
from privguard.deidentifier import PixelOptions
from privguard.pseudonym.keys import ProjectKey


def test_every_worker_kind_sets_its_share_of_ocr_threads(
    tmp_path: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local processes, Ray actors and inline runs all build a WorkerState, which sets the threads."""
    from privguard.batch.ray_executor import _Actor

    cfg = ScrubConfig(
        inputs=[tmp_path], out=tmp_path / "out", key=key, workers=4, pixels=PixelOptions(ocr="off")
    )
    assert ocr_threads(cfg) == max(1, usable_cores() // 4)
    for build in (lambda: WorkerState(cfg, key), lambda: _Actor(cfg, key).state):
        monkeypatch.delenv("PRIVGUARD_OCR_THREADS", raising=False)
        state = build()
        try:
            assert os.environ["PRIVGUARD_OCR_THREADS"] == str(ocr_threads(cfg))
        finally:
            state.close()


def test_retry_policy() -> None:
    a, b, c = Path("a"), Path("b"), Path("c")
    stats = ExecStats()
    tasks = Tasks(iter([[a, b, c]]), stats, 2.0)
    first = tasks.next()
    assert first is not None and first.paths == [a, b, c] and not first.retry
    assert tasks.died(first, "worker died (signal 9)") == []  # split, each file once more
    singles = [tasks.next() for _ in range(3)]
    assert [t.paths for t in singles if t] == [[a], [b], [c]] and all(t and t.retry for t in singles)
    failed = tasks.died(Task([b], retry=True), "worker died (signal 9)")
    assert [(p, r.reason) for p, r in failed] == [(b, "worker died (signal 9)")]
    overdue = tasks.overdue(Task([c], retry=True))
    assert "time limit (2 s)" in (overdue[0][1].reason or "")
    assert stats.deaths == 2 and stats.retried == 3 and tasks.next() is None and tasks.done()
    # A chunk sent ahead to a worker that died before starting it goes back unchanged.
    ahead = Task([a, b])
    tasks.requeue(deque([ahead]))
    assert tasks.next() is ahead and not ahead.retry and stats.retried == 3


def test_workers_that_cannot_start_fail_the_files_instead_of_hanging(
    tmp_path: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_study(tmp_path / "in", series=1, per_series=3)

    class Broken:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("cannot start")

    monkeypatch.setattr(executor_module, "WorkerState", Broken)  # inherited by the forked workers
    report = tmp_path / "r.jsonl"
    summary = scrub(
        ScrubConfig(inputs=[tmp_path / "in"], out=tmp_path / "out", key=key, workers=2, report=report)
    )
    assert summary.failed == 3 and summary.ok == 0
    assert {f.reason for f in summary.failures} == {"no worker process could start"}
    assert len(report.read_text().splitlines()) == 3
