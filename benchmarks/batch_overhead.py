"""What isolation and durability cost the batch runner (issue 9), against the runner before it.

Usage (from the repository root, with the project's virtual environment)::

    .venv/bin/python benchmarks/batch_overhead.py                  # 400 files, 5 interleaved rounds
    .venv/bin/python benchmarks/batch_overhead.py --files 1000 --rounds 3 --workers 2

Three runners scrub the same synthetic CT files (``tests/study_gen.py``; header
only, profile ``basic``) into fresh folders, interleaved round by round so that
background load hits them alike:

* ``before``: ``privguard/batch.py`` as of ``--baseline`` (default 9ba6f9d, the
  last commit before issue 9: ``concurrent.futures`` pool, outputs written in
  place, nothing ``fsync``'d), loaded from git into this process; it uses this
  tree's de-identifier, so only the runner differs;
* ``now``: ``privguard.batch`` (own worker processes, staging and link-proof
  placement, ``fsync`` of every output and folder before the journal line);
* ``now, no fsync``: the same with ``os.fsync`` made a no-op (what durability alone costs).

Reported per runner: the median (and range) of CPU milliseconds per file (this
process and its finished children) and of files per second (wall clock).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _baseline(commit: str, where: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:privguard/batch.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = where / "batch_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("batch_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["batch_before"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline", default="9ba6f9d")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))
    from study_gen import write_study

    import privguard.batch as now
    from privguard.pseudonym.keys import ProjectKey

    work = Path(tempfile.mkdtemp(prefix="privguard-batch-bench-"))
    try:
        before = _baseline(args.baseline, work)
        per = 20
        for i in range(max(1, args.files // per)):
            write_study(
                work / "in" / f"p{i}", patient=(f"P^{i}", f"M{i:07d}", "19700101"), series=2, per_series=10
            )
        n = sum(1 for _ in (work / "in").rglob("*.dcm"))
        key = ProjectKey.generate()
        real_fsync = os.fsync
        runners: dict[str, tuple[Any, bool]] = {
            "before": (before, True),
            "now": (now, True),
            "now, no fsync": (now, False),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
        for r in range(args.rounds):
            for name, (module, fsync) in runners.items():
                os.fsync = real_fsync if fsync else (lambda fd: None)
                out = work / f"out-{r}-{len(results[name])}-{name.replace(' ', '').replace(',', '')}"
                cfg = module.ScrubConfig(inputs=[work / "in"], out=out, key=key, workers=args.workers)
                c0, t0 = _cpu(), time.perf_counter()
                summary = module.scrub(cfg)
                c1, t1 = _cpu(), time.perf_counter()
                os.fsync = real_fsync
                if summary.ok != n:
                    raise SystemExit(f"{name}: {summary.ok} of {n} files ok")
                results[name].append(((c1 - c0) / n * 1000, n / (t1 - t0)))
                shutil.rmtree(out, ignore_errors=True)
        print(f"{n} files, {args.workers} workers, {args.rounds} rounds, {os.cpu_count()} cores")
        for name, rows in results.items():
            cpu = sorted(x for x, _ in rows)
            fps = sorted(y for _, y in rows)
            mid = len(rows) // 2
            print(
                f"{name:14} CPU {cpu[mid]:.2f} ms/file ({cpu[0]:.2f}-{cpu[-1]:.2f}); "
                f"{fps[mid]:.0f} files/s ({fps[0]:.0f}-{fps[-1]:.0f})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
