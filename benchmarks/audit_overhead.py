"""What the audit log costs ``privguard scrub`` (issue 10): audited vs a no-op audit sink, same run.

Both variants run :func:`privguard.audit.audited_scrub` on the header
benchmark corpus (``benchmarks/corpus.py``: CT files of 0.53 MB, profile
``basic``, header only); the only difference is the log: a real
:class:`~privguard.audit.AuditLog` (a run record, a record per file with the
keyed hash of the input path and of the input bytes' SHA-256 and the
output's SHA-256, the manifest, the fsync'd end record) or a no-op log that
does nothing and asks the workers for no digests (defined here, in the
benchmark only), so the hashing the log needs counts as its cost. Rounds
alternate the variants; medians are reported, wall-clock throughput and CPU
time (this process and its workers).

    .venv/bin/python benchmarks/audit_overhead.py --files 500 --rounds 5 --workers 1 2

``--split`` adds the no-op sink with the workers still hashing (hashing apart
from writing the log); ``--aa`` the no-op sink a second time (the machine's
noise: an A/A comparison). Each cost is the median over rounds of that round's
own ratio, with its quartiles.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpus import BENCH_DIR, CorpusSpec, ensure_corpus
from privguard.audit import AuditLog, RunHead, audited_scrub
from privguard.batch import ScrubConfig
from privguard.pseudonym.keys import ProjectKey


class NoopLog(AuditLog):
    """The audit sink replaced by a no-op (benchmark only): it writes nothing and asks the
    workers for no digests, so the hashing the log needs is counted as the log's cost."""

    worker_digests = False

    def __init__(self) -> None:
        self.log_id = "noop"

    def begin_run(self, **kw: Any) -> str:
        return "run_noop"

    def file_record(self, **kw: Any) -> None:
        return None

    def file_result(self, result: Any, out_dir: Any) -> None:
        return None

    def flush(self) -> dict[str, str]:
        return {}

    def end_run(self, **kw: Any) -> RunHead:
        return RunHead("noop", "run_noop", 0, "", "success", kw.get("manifest_sha256"), None, None, None)

    def close(self) -> None:
        return None


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


#: Variants: the real log; the no-op sink; the no-op sink with the workers still hashing (``--split``);
#: the no-op sink a second time (``--aa``: the noise of the machine, an A/A comparison).
VARIANTS = {
    "noop": "no-op audit sink",
    "noop-aa": "no-op audit sink again (A/A)",
    "noop-digests": "no-op sink, workers hash",
    "audited": "audited (real log)",
}
#: What each variant is compared with, beside the no-op sink: the log's own share of the cost.
VERSUS = {"audited": "noop-digests"}


def one(corpus: Path, key: ProjectKey, workers: int, variant: str, tmp: Path) -> tuple[float, float, int]:
    out = tmp / f"out-{workers}-{variant}"
    cfg = ScrubConfig(inputs=[corpus], out=out, key=key, profile="basic", workers=workers)
    log: AuditLog = AuditLog.open(tmp / "audit.jsonl") if variant == "audited" else NoopLog()
    if variant == "noop-digests":
        log.worker_digests = True  # the hashing without the log: splits the cost in two
    c0, t0 = _cpu(), time.perf_counter()
    try:
        summary, _ = audited_scrub(cfg, log=log)
    finally:
        log.close()
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    shutil.rmtree(out)
    assert summary.failed == 0
    return wall, cpu, summary.ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--split", action="store_true", help="add the no-op sink with the workers hashing")
    ap.add_argument("--aa", action="store_true", help="add the no-op sink a second time (the noise)")
    ap.add_argument("--json", type=Path, help="also write every round's figures to this file")
    args = ap.parse_args(argv)
    variants = [
        "noop",
        *(["noop-aa"] if args.aa else []),
        *(["noop-digests"] if args.split else []),
        "audited",
    ]
    # its own copy of the corpus: the header benchmark may regenerate .bench/corpus-N meanwhile
    corpus = ensure_corpus(CorpusSpec(n_files=args.files), BENCH_DIR / f"audit-corpus-{args.files}").dicom_dir
    for p in corpus.iterdir():  # warm the page cache
        p.read_bytes()
    key = ProjectKey.generate()
    py = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {py}, {platform.platform()}")
    print(f"corpus: {corpus} ({args.files} files); rounds: {args.rounds}; profile basic, header only")
    print(f"load before: {os.getloadavg()[0]:.1f}")
    print()
    print("| workers | variant | files/s (median) | range | CPU ms per file (median) |")
    print("|---:|---|---:|---|---:|")
    results: dict[tuple[int, str], list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory(dir=corpus.parents[1]) as t:
        tmp = Path(t)
        for w in args.workers:
            one(corpus, key, w, "noop", tmp)  # warm-up (imports, workers)
            for r in range(args.rounds):
                order = variants if r % 2 == 0 else variants[::-1]
                for variant in order:
                    results.setdefault((w, variant), []).append(one(corpus, key, w, variant, tmp))
    summary = []
    for w in args.workers:
        rates = {}
        for variant in variants:
            runs = results[(w, variant)]
            fps = [n / wall for wall, _, n in runs]
            cpu = statistics.median(c / n * 1000 for _, c, n in runs)
            rates[variant] = (statistics.median(fps), cpu)
            print(
                f"| {w} | {VARIANTS[variant]} | {statistics.median(fps):.1f} | "
                f"{min(fps):.0f}–{max(fps):.0f} | {cpu:.2f} |"
            )
        for variant in variants[1:]:
            for base in ("noop", VERSUS.get(variant)):
                if base is None or base not in variants:
                    continue
                # each round's own pair (alternation cancels drift in load): median and quartiles
                pairs = zip(results[(w, variant)], results[(w, base)], strict=True)
                paired = [1 - (n / wall) / (nb / wb) for (wall, _, n), (wb, _, nb) in pairs]
                q1, med, q3 = statistics.quantiles(paired, n=4) if len(paired) > 1 else [paired[0]] * 3
                cpu_cost = rates[variant][1] / rates[base][1] - 1
                summary.append(
                    f"workers {w}, {VARIANTS[variant]} vs {VARIANTS[base]}: throughput cost "
                    f"{med * 100:.1f}% (quartiles {q1 * 100:.1f}% to {q3 * 100:.1f}%), "
                    f"CPU cost {cpu_cost * 100:.1f}%"
                )
    print()
    for line in summary:
        print(line)
    print(f"load after: {os.getloadavg()[0]:.1f}")
    if args.json is not None:
        raw = {f"{w}/{v}": runs for (w, v), runs in results.items()}
        args.json.write_text(json.dumps({"files": args.files, "rounds": raw}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
