"""Header de-identification throughput of privguard against its peers (issue 2), plus a leak audit.

Usage (from the repository root, with the project's virtual environment)::

    make bench                                            # = .venv/bin/python benchmarks/header_throughput.py
    .venv/bin/python benchmarks/header_throughput.py      # 2,000 files, 3 repeats, then the audit
    .venv/bin/python benchmarks/header_throughput.py --quick          # 300 files, 1 repeat (smoke run)
    .venv/bin/python benchmarks/header_throughput.py --files 5000 --repeat 5 --json bench.json
    .venv/bin/python benchmarks/header_throughput.py --skip deid --skip gdcmanon
    .venv/bin/python benchmarks/header_throughput.py --subset deid=400 --subset dicognito=500
    .venv/bin/python benchmarks/header_throughput.py --audit-only     # only the leak/validity audit

Peers need the ``bench`` extra (``pip install -e '.[bench]'``: deid, dicom-anonymizer,
dicognito) and two Debian packages: ``apt-get install -y libgdcm-tools dicom3tools``
(``gdcmanon``; ``dciodvfy`` for the audit's conformance column). A missing peer is
reported and skipped, never faked.

What it does
------------
1. Generates (or reuses) the seeded CT corpus of :mod:`benchmarks.corpus` under
   ``.bench/corpus-N`` and reads every file once so that all tools start from the
   page cache.
2. Runs each tool with one worker on the same files, each run in a fresh process
   (so every tool gets a clean interpreter, its own peak memory and no state left
   by another): ``cp -r`` of the folder (the physical floor), ``gdcmanon``, a plain
   pydicom ``dcmread`` + ``save_as`` loop, privguard (``privguard.batch.scrub``,
   profile ``basic``, header only), ``dicom-anonymizer``, ``dicognito`` and
   ``deid``. Python tools are timed around their processing loop, after their
   imports; external commands from spawn to exit. Runs are interleaved over
   ``--repeat`` rounds and the median is reported. Slow peers may run on the
   first files of the corpus only (``--subset``; deid on 200 by default).
3. Runs privguard with 1 and 2 workers (scaling) and reports peak memory: the
   largest RSS of any one process (``os.wait4`` rusage) and the largest sum of
   RSS over the process tree, sampled from ``/proc`` every 20 ms (shared pages
   are counted once per process, so the sum overstates forked workers).
4. Audits every tool's output on a 20-file sample (two studies, GE-like and
   Siemens-like, two series each) with planted PHI: tokens left anywhere in the
   output bytes, private elements kept, dates kept unchanged, cross-file links
   (references, study/series/frame-of-reference UIDs), missing required values,
   invalid UIDs/dates, and the change in ``dciodvfy`` errors against the input.

The exact peer invocations are in :data:`PEER_INVOCATIONS` and are printed with
the results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpus import BENCH_DIR, REPO, Corpus, CorpusSpec, ensure_corpus

TOOLS = ("cp", "gdcmanon", "pydicom", "privguard", "dicom-anonymizer", "dicognito", "deid")
PYTHON_TOOLS = frozenset({"pydicom", "privguard", "dicom-anonymizer", "dicognito", "deid"})
DEFAULT_SUBSETS = {"deid": 200}
FLOORS = {"pydicom": 1.0, "dicom-anonymizer": 3.0, "deid": 20.0}
BENCH_KEY = bytes(range(32))  # a fixed, public benchmark key: pseudonyms are reproducible run to run

PEER_INVOCATIONS = {
    "cp": "cp -r IN OUT   (GNU coreutils; the whole folder, one process)",
    "gdcmanon": "gdcmanon -e -c CERT.pem --continue -i IN -o OUT   (PS3.15 E.1.1 basic profile, "
    "de-identify mode; CERT = throwaway self-signed RSA-2048 certificate made with openssl)",
    "pydicom": "for f in files: pydicom.dcmread(f).save_as(out / f.name)",
    "privguard": "privguard.batch.scrub(ScrubConfig(inputs=[IN], out=OUT, key=ProjectKey, profile='basic', "
    "workers=W, pixels=None))",
    "dicom-anonymizer": "for f in files: dicomanonymizer.simpledicomanonymizer.anonymize_dicom_file(f, out / "
    "f.name)   (default rules, private tags deleted: what the CLI runs per file)",
    "dicognito": "a = dicognito.anonymizer.Anonymizer(); for f in files: ds = pydicom.dcmread(f); "
    "a.anonymize(ds); ds.save_as(out / f.name)",
    "deid": "ids = deid.dicom.get_identifiers(files); deid.dicom.replace_identifiers(files, "
    "deid=DeidRecipe() (the default 'dicom' recipe), ids=ids, save=True, output_folder=OUT, overwrite=True)",
}


# -- the child side: one tool, one run ------------------------------------------------------


def _child(tool: str, inputs: Path, listing: Path | None, out: Path, workers: int) -> dict[str, Any]:
    """Run one tool in this (fresh) process; time only the processing, after the imports."""
    import resource
    import warnings

    warnings.simplefilter("ignore")

    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    files = (
        [Path(p) for p in json.loads(listing.read_text())]
        if listing
        else sorted(p for p in inputs.iterdir() if p.is_file())
    )
    out.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    if tool == "pydicom":
        import pydicom

        c0, t0 = cpu(), time.perf_counter()
        for f in files:
            pydicom.dcmread(f).save_as(out / f.name)
    elif tool == "privguard":
        from privguard.batch import ScrubConfig, scrub
        from privguard.pseudonym.keys import ProjectKey

        key = ProjectKey.from_bytes(BENCH_KEY)
        src: list[Path] = [inputs] if listing is None else files
        cfg = ScrubConfig(inputs=src, out=out, key=key, profile="basic", workers=workers, pixels=None)
        c0, t0 = cpu(), time.perf_counter()
        summary = scrub(cfg)
        extra = {"ok": summary.ok, "failed": summary.failed, "skipped": summary.skipped}
        if summary.failed:
            extra["failures"] = [f.reason for f in summary.failures[:5]]
    elif tool == "dicom-anonymizer":
        from dicomanonymizer.simpledicomanonymizer import anonymize_dicom_file

        c0, t0 = cpu(), time.perf_counter()
        for f in files:
            anonymize_dicom_file(str(f), str(out / f.name))
    elif tool == "dicognito":
        import pydicom
        from dicognito.anonymizer import Anonymizer

        anonymizer = Anonymizer()
        c0, t0 = cpu(), time.perf_counter()
        for f in files:
            with pydicom.dcmread(f) as ds:
                anonymizer.anonymize(ds)
                ds.save_as(out / f.name)
    elif tool == "deid":
        from deid.config import DeidRecipe
        from deid.dicom import get_identifiers, replace_identifiers
        from deid.logger import bot

        bot.level = 0  # quiet: deid logs a line per odd value
        recipe = DeidRecipe()
        names = [str(f) for f in files]
        c0, t0 = cpu(), time.perf_counter()
        ids = get_identifiers(names)
        replace_identifiers(
            dicom_files=names, deid=recipe, ids=ids, save=True, output_folder=str(out), overwrite=True
        )
    else:
        raise SystemExit(f"unknown tool {tool}")
    seconds, cpu_s = time.perf_counter() - t0, cpu() - c0
    return {"files": len(files), "seconds": seconds, "cpu": cpu_s, "hwm": _rss_hwm(os.getpid())[1], **extra}


# -- the parent side: launching and measuring -----------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (from /proc)."""
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            continue
    return out


def _rss_hwm(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of one process in bytes; (0, 0) once it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm


class _Sampler(threading.Thread):
    """Peak memory of a process tree, polled from /proc.

    ``hwm``: the largest VmHWM (the kernel's exact per-process high-water mark)
    seen for any one process; ``tree``: the largest sum of VmRSS over the tree at
    one poll (shared pages counted in every process that maps them).
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.hwm = self.tree = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            total = 0
            for p in _tree(self.pid):
                rss, hwm = _rss_hwm(p)
                total += rss
                self.hwm = max(self.hwm, hwm)
            self.tree = max(self.tree, total)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass
class Run:
    """One timed run of one tool."""

    tool: str
    files: int
    seconds: float
    wall: float
    cpu: float
    max_rss: int
    tree_rss: int
    foreign: float = 0.0
    workers: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0


def _count_outputs(out: Path) -> int:
    n = 0
    for _root, dirs, files in os.walk(out):
        dirs[:] = [d for d in dirs if d != ".privguard"]
        n += sum(1 for f in files if not f.startswith("."))
    return n


def launch(
    tool: str,
    corpus_dir: Path,
    files: list[Path],
    out: Path,
    *,
    workers: int = 1,
    cert: Path | None = None,
    logdir: Path,
) -> Run:
    """Run ``tool`` on ``files`` (all of ``corpus_dir`` or a subset) in a fresh process."""
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    whole = len(files) == sum(1 for _ in corpus_dir.iterdir())
    listing = None
    if tool == "cp":
        if not whole:
            raise SystemExit("cp runs on the whole corpus folder")
        cmd = ["cp", "-r", str(corpus_dir), str(out)]
    elif tool == "gdcmanon":
        if not whole:
            raise SystemExit("gdcmanon runs on the whole corpus folder")
        cmd = ["gdcmanon", "-e", "-c", str(cert), "--continue", "-i", str(corpus_dir), "-o", str(out)]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_child", tool, "--_in", str(corpus_dir)]
        cmd += ["--_out", str(out), "--_workers", str(workers)]
        if not whole:
            listing = logdir / f"{tool}-list.json"
            listing.write_text(json.dumps([str(f) for f in files]))
            cmd += ["--_list", str(listing)]
    os.sync()  # earlier runs' dirty pages go to disk now, not during this run
    stdout_path, stderr_path = logdir / f"{tool}.out", logdir / f"{tool}.err"
    with open(stdout_path, "wb") as so, open(stderr_path, "wb") as se:
        busy0, own0 = _busy_seconds(), _own_cpu()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, stdin=subprocess.DEVNULL)
        sampler = _Sampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        sampler.stop()
        child_cpu = usage.ru_utime + usage.ru_stime
        # CPU used on this machine by anything but this run (other users' jobs): noise.
        foreign = max(0.0, (_busy_seconds() - busy0) - child_cpu - (_own_cpu() - own0)) / wall
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = stderr_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{tool} exited with {proc.returncode}:\n{tail}")
    seconds, cpu_s, extra = wall, child_cpu, {}
    if tool in PYTHON_TOOLS:
        lines = stdout_path.read_text().strip().splitlines()
        data = json.loads(lines[-1])
        seconds, cpu_s = data.pop("seconds"), data.pop("cpu")
        data.pop("files")
        extra = data
    produced = _count_outputs(out)
    extra["outputs"] = produced
    if produced != len(files):
        print(f"  ! {tool}: {produced} output files for {len(files)} inputs", file=sys.stderr)
    max_rss = max(sampler.hwm, int(extra.pop("hwm", 0)))
    return Run(
        tool=tool,
        files=len(files),
        seconds=seconds,
        wall=wall,
        cpu=cpu_s,
        foreign=foreign,
        max_rss=max_rss,
        tree_rss=max(sampler.tree, max_rss),
        workers=workers,
        extra=extra,
    )


def _busy_seconds() -> float:
    """CPU seconds spent on this machine so far, all processes (from /proc/stat)."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    """CPU seconds of this (parent) process: the sampler's polling."""
    t = os.times()
    return t.user + t.system


def _make_cert(tmp: Path) -> Path:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=privguard-bench", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert


def available(tool: str) -> str | None:
    """None if ``tool`` can run here, else why not."""
    if tool == "cp":
        return None if shutil.which("cp") else "cp not found"
    if tool == "gdcmanon":
        if not shutil.which("gdcmanon"):
            return "gdcmanon not found (apt-get install -y libgdcm-tools)"
        return None if shutil.which("openssl") else "openssl not found (needed for gdcmanon's certificate)"
    module = {
        "pydicom": "pydicom",
        "privguard": "privguard",
        "dicom-anonymizer": "dicomanonymizer",
        "dicognito": "dicognito",
        "deid": "deid",
    }[tool]
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return f"{module} not installed (pip install -e '.[bench]')"
    return None


def warm(files: list[Path]) -> int:
    """Read every file once so that every tool starts from the page cache."""
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                n += len(chunk)
    return n


# -- machine --------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cmd_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not available"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    os_name = platform.platform()
    if Path("/etc/os-release").exists():
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))}, kernel {platform.release()}"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem / 2**30, 1),
        "os": os_name,
        "python": platform.python_version(),
        "packages": {
            d: _version(d) for d in ("privguard", "pydicom", "numpy", "deid", "dicom-anonymizer", "dicognito")
        },
        "gdcmanon": _cmd_version(["gdcmanon", "--version"]),
        "cp": _cmd_version(["cp", "--version"]),
        "dciodvfy": "dicom3tools " + _version_deb("dicom3tools"),
        "privguard_sources": _source_hashes(),
    }


def _source_hashes() -> dict[str, str]:
    """sha256 of every privguard source file (the package is under active development)."""
    import privguard

    root = Path(privguard.__file__).parent
    files = sorted(root.rglob("*.py"))
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in files}


def _source_hash(files: dict[str, str]) -> str:
    """One fingerprint of the privguard sources measured."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def _version_deb(pkg: str) -> str:
    out = _cmd_version(["dpkg-query", "-W", "-f=${Version}", pkg])
    return out if out and "no packages" not in out else "not installed"


# -- the throughput benchmark ---------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / 2**20:.0f}"


def _median_run(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.rate)
    return ordered[len(ordered) // 2]


def benchmark(args: argparse.Namespace, corpus: Corpus, tools: list[str], logdir: Path) -> dict[str, Any]:
    files = corpus.files
    print(f"warm-up: read {warm(files) / 1e6:.0f} MB ({len(files)} files) into the page cache", flush=True)
    cert = _make_cert(logdir) if "gdcmanon" in tools else None
    out_root = args.out_root / "privguard-bench-out"
    runs: dict[str, list[Run]] = defaultdict(list)
    scaling: dict[int, list[Run]] = defaultdict(list)
    worker_counts = [w for w in args.workers if w != 1] if "privguard" in tools else []
    failures: list[str] = []
    attempts: dict[str, list[Run]] = defaultdict(list)  # every run, re-runs included (for "best")

    def one(tool: str, n: int, out: Path, workers: int, into: list[Run], label: str) -> None:
        """One measured run; re-run (up to ``--retries``) while other jobs load the machine."""
        for attempt in range(args.retries + 1):
            try:
                run = launch(
                    tool, corpus.dicom_dir, files[:n], out, workers=workers, cert=cert, logdir=logdir
                )
            except RuntimeError as exc:  # one failed run is reported and left out; the others go on
                failures.append(f"{label}: {str(exc).strip().splitlines()[-1]}")
                print(f"  ! {label} failed: {failures[-1]}", flush=True)
                return
            finally:
                shutil.rmtree(out, ignore_errors=True)
            print(f"  {label:17s} {run.files:5d} files {run.seconds:8.2f} s {run.rate:8.1f} files/s "
                  f"(other load: {run.foreign:.2f} cores)", flush=True)  # fmt: skip
            attempts[label].append(run)
            if run.foreign <= args.max_load or attempt == args.retries:
                break
            print(f"    other jobs used {run.foreign:.2f} cores during this run: run it again", flush=True)
            time.sleep(args.retry_wait)
        into.append(run)

    for r in range(args.repeat):
        print(f"round {r + 1}/{args.repeat}", flush=True)
        for tool in tools:
            n = min(args.subset.get(tool, len(files)), len(files))
            one(tool, n, out_root / tool, 1, runs[tool], tool)
        for w in worker_counts:
            one("privguard", len(files), out_root / f"privguard-w{w}", w, scaling[w], f"privguard w={w}")
    shutil.rmtree(out_root, ignore_errors=True)
    if runs.get("privguard"):
        scaling[1] = runs["privguard"]
    runs = {t: rs for t, rs in runs.items() if rs}
    scaling = {w: rs for w, rs in scaling.items() if rs}
    return {"runs": runs, "scaling": scaling, "failures": failures, "attempts": attempts}


def _range(rs: list[Run]) -> str:
    rates = [r.rate for r in rs]
    return f"{min(rates):.0f}–{max(rates):.0f}" if len(rates) > 1 else "–"


def throughput_tables(result: dict[str, Any], corpus: Corpus) -> tuple[str, dict[str, Any]]:
    """Markdown tables: wall-clock throughput, the CPU-time view, floors, and privguard's scaling."""
    runs: dict[str, list[Run]] = result["runs"]
    scaling: dict[int, list[Run]] = result["scaling"]
    per_file = corpus.total_bytes / len(corpus.files)
    med = {t: _median_run(rs) for t, rs in runs.items()}
    # Files per CPU-second of the timed loop (median over rounds): less sensitive to other jobs.
    cpu_rate = {t: statistics.median(r.files / r.cpu for r in rs if r.cpu > 0) for t, rs in runs.items()}
    attempts: dict[str, list[Run]] = result.get("attempts", {})
    best = {t: max(r.rate for r in attempts.get(t, rs) or rs) for t, rs in runs.items()}
    base, pg = med.get("pydicom"), med.get("privguard")
    wall = [
        "| tool | files | seconds (median) | files/s (median) | files/s (best) | range over rounds | MB/s "
        "| × pydicom rw | privguard ÷ tool | privguard ÷ tool (best vs best) | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cpu = [
        "| tool | CPU ms per file | files per CPU-second | privguard ÷ tool (CPU) "
        "| other jobs' load (cores) |",
        "|---|---:|---:|---:|---:|",
    ]
    data: dict[str, Any] = {}
    for tool in TOOLS:
        if tool not in med:
            continue
        m = med[tool]
        vs_base = f"{m.rate / base.rate:.2f}×" if base else "–"
        pg_ratio = f"{pg.rate / m.rate:.2f}×" if pg and tool != "privguard" else "–"
        pg_cpu = f"{cpu_rate['privguard'] / cpu_rate[tool]:.2f}×" if pg and tool != "privguard" else "–"
        pg_best = f"{best['privguard'] / best[tool]:.2f}×" if pg and tool != "privguard" else "–"
        load = statistics.median(r.foreign for r in runs[tool])
        wall.append(
            f"| {tool} | {m.files} | {m.seconds:.2f} | {m.rate:.1f} | {best[tool]:.1f} "
            f"| {_range(runs[tool])} "
            f"| {m.rate * per_file / 2**20:.0f} | {vs_base} | {pg_ratio} | {pg_best} | {_mb(m.max_rss)} |"
        )
        cpu.append(f"| {tool} | {1000 / cpu_rate[tool]:.2f} | {cpu_rate[tool]:.1f} | {pg_cpu} | {load:.2f} |")
        data[tool] = {
            "files": m.files,
            "seconds": m.seconds,
            "files_per_s": m.rate,
            "rates": [r.rate for r in runs[tool]],
            "wall": [r.wall for r in runs[tool]],
            "files_per_cpu_s": cpu_rate[tool],
            "foreign_load": [r.foreign for r in runs[tool]],
            "max_rss": m.max_rss,
            "tree_rss": m.tree_rss,
            "extra": m.extra,
        }
    text = "\n".join(wall) + "\n\nThe same runs by CPU time of the timed loop (median over rounds):\n\n"
    text += "\n".join(cpu)
    if pg:
        floors = []
        for peer, need in FLOORS.items():
            if peer not in med:
                floors.append(f"- privguard ÷ {peer}: not measured")
                continue
            ratio = pg.rate / med[peer].rate
            ratio_best = best["privguard"] / best[peer]
            ratio_cpu = cpu_rate["privguard"] / cpu_rate[peer]
            verdict = "met" if ratio >= need else "MISSED"
            floors.append(
                f"- privguard ÷ {peer}: {ratio:.2f}× (medians), {ratio_best:.2f}× (best runs), "
                f"{ratio_cpu:.2f}× (CPU time); floor {need:g}×: **{verdict}**"
            )
        if "gdcmanon" in med:
            ratio = pg.rate / med["gdcmanon"].rate
            floors.append(f"- privguard ÷ gdcmanon: {ratio:.2f}× wall-clock (aim: 1×)")
        text += "\n\nFloors (one worker):\n\n" + "\n".join(floors)
    if scaling:
        cores = len(os.sched_getaffinity(0))
        s_lines = [
            f"privguard scaling ({cores} usable cores, {os.cpu_count()} online; "
            f"{len(corpus.files)} files):\n",
            "| workers | seconds (median) | files/s (median) | files/s (best) | range over rounds "
            "| speed-up (median) | speed-up (best) | peak RSS of one process MiB "
            "| peak RSS summed over processes MiB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        one = _median_run(scaling[1]) if 1 in scaling else None
        data["scaling"] = {}
        for w in sorted(scaling):
            m = _median_run(scaling[w])
            top = max(r.rate for r in attempts.get(f"privguard w={w}", scaling[w]) or scaling[w])
            up = f"{m.rate / one.rate:.2f}×" if one else "–"
            up_best = f"{top / best['privguard']:.2f}×" if one and "privguard" in best else "–"
            s_lines.append(
                f"| {w} | {m.seconds:.2f} | {m.rate:.1f} | {top:.1f} | {_range(scaling[w])} "
                f"| {up} | {up_best} "
                f"| {_mb(m.max_rss)} | {_mb(m.tree_rss)} |"
            )
            data["scaling"][w] = {
                "files_per_s": m.rate,
                "rates": [r.rate for r in scaling[w]],
                "max_rss": m.max_rss,
                "tree_rss": m.tree_rss,
                "foreign_load": [r.foreign for r in scaling[w]],
            }
        text += "\n\n" + "\n".join(s_lines)
    failed_files = {t: m.extra.get("failed") for t, m in med.items() if m.extra.get("failed")}
    notes = [f"- failed run, left out: {f}" for f in result.get("failures", [])]
    notes += [f"- {t}: {n} files failed in the median run" for t, n in failed_files.items()]
    notes += [f"- {t}: {m.extra['outputs']} outputs for {m.files} inputs" for t, m in med.items()
              if m.extra.get("outputs", m.files) != m.files]  # fmt: skip
    if notes:
        text += "\n\nProblems:\n\n" + "\n".join(notes)
    data["failures"] = result.get("failures", [])
    return text, data


# -- the leak and validity audit ------------------------------------------------------------

_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_TM_RE = re.compile(r"^([01][0-9]|2[0-3])([0-5][0-9]([0-5][0-9](\.[0-9]{1,6})?)?)?$")
_DT_RE = re.compile(
    r"^[0-9]{4}([0-9]{2}([0-9]{2}([0-9]{2}([0-9]{2}([0-9]{2}(\.[0-9]{1,6})?)?)?)?)?)?([+-][0-9]{4})?$"
)
REFERENCE_SEQUENCES = ("ReferencedImageSequence", "SourceImageSequence")
REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")


def _valid_da(v: str) -> bool:
    if not re.fullmatch(r"[0-9]{8}", v):
        return False
    try:
        dt.date(int(v[:4]), int(v[4:6]), int(v[6:]))
    except ValueError:
        return False
    return True


def _valid_dt(v: str) -> bool:
    return bool(_DT_RE.match(v)) and (len(v) < 8 or _valid_da(v[:8]))


def _generic(path: str) -> str:
    return re.sub(r"\[\d+\]", "[*]", path)


def _pixel_key(ds: Any) -> str | None:
    px = ds.get("PixelData")
    return hashlib.sha1(px).hexdigest() if isinstance(px, bytes) else None


def _walk(ds: Any, prefix: str = "") -> Any:
    """(path, element) for every element at every depth, file meta included."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and not prefix:
        for elem in meta:
            yield f"meta.{elem.keyword or elem.tag}", elem
    for elem in ds:
        name = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        path = prefix + name
        yield path, elem
        if elem.VR == "SQ" and elem.value:
            for i, item in enumerate(elem.value):
                yield from _walk(item, f"{path}[{i}].")


def _values(elem: Any) -> list[str]:
    v = elem.value
    if v is None:
        return []
    if isinstance(v, bytes):
        return [v.decode("latin-1")]
    if isinstance(v, list | tuple) or type(v).__name__ == "MultiValue":
        return [str(x) for x in v]
    return [str(v)]


def _variants(token: str) -> set[str]:
    """A token as it may appear in the bytes: latin-1 or UTF-8, any case (compared lower-cased)."""
    out = {token.lower()}
    out.add(token.encode("utf-8").decode("latin-1").lower())
    return out


def _dciodvfy_errors(path: Path) -> list[str]:
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, errors="replace")
    return [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip().startswith("Error")]


def audit(tools: list[str], logdir: Path) -> tuple[str, dict[str, Any]]:
    import warnings

    import pydicom

    warnings.simplefilter("ignore")
    spec = CorpusSpec(n_files=20, per_series=5, series_per_study=2)
    sample = ensure_corpus(spec, BENCH_DIR / "audit-20", quiet=True)
    manifest = sample.manifest
    tokens: list[tuple[str, str]] = sorted(
        {(cat, tok) for s in manifest["studies"] for cat, toks in s["tokens"].items() for tok in toks}
    )
    study_dates = {s["index"]: set(s["dates"]) for s in manifest["studies"]}
    have_dciodvfy = shutil.which("dciodvfy") is not None
    # The inputs, keyed by their (unique) pixel data.
    inputs: dict[str, dict[str, Any]] = {}
    uid_to_key: dict[str, str] = {}
    in_private = 0
    for f, info in zip(sample.files, manifest["files"], strict=True):
        ds = pydicom.dcmread(f)
        key = _pixel_key(ds)
        assert key is not None
        refs = []
        for seq in REFERENCE_SEQUENCES:
            for i, item in enumerate(ds.get(seq, []) or []):
                refs.append((seq, i, str(item.ReferencedSOPInstanceUID)))
        in_private += sum(1 for _, e in _walk(ds) if e.tag.is_private)
        dates = sum(1 for _, e in _walk(ds) if e.VR in ("DA", "DT") and e.value)
        inputs[key] = {
            "path": f,
            "study": info["study"],
            "series": (info["study"], info["series"]),
            "uids": {kw: str(ds.get(kw, "")) for kw in (*REQUIRED, "SOPInstanceUID")},
            "refs": refs,
            "dates": dates,
            "dciodvfy": len(_dciodvfy_errors(f)) if have_dciodvfy else 0,
        }
        uid_to_key[str(ds.SOPInstanceUID)] = key
    in_errors = sum(v["dciodvfy"] for v in inputs.values())
    in_dates = sum(v["dates"] for v in inputs.values())
    cert = _make_cert(logdir) if "gdcmanon" in tools else None
    out_root = BENCH_DIR / "audit-out"
    results: dict[str, Any] = {}
    for tool in tools:
        out = out_root / tool
        try:
            launch(tool, sample.dicom_dir, sample.files, out, cert=cert, logdir=logdir)
        except RuntimeError as exc:
            print(f"  ! audit: {tool} failed: {str(exc).strip().splitlines()[-1]}", flush=True)
            continue
        results[tool] = _audit_output(
            tool, out, inputs, uid_to_key, tokens, study_dates, have_dciodvfy, pydicom
        )
        results[tool]["input_private"] = in_private
        results[tool]["input_dates"] = in_dates
        results[tool]["input_dciodvfy_errors"] = in_errors
    shutil.rmtree(out_root, ignore_errors=True)
    return _audit_table(results, len(inputs), len(tokens), have_dciodvfy), results


def _audit_output(
    tool: str,
    out: Path,
    inputs: dict[str, dict[str, Any]],
    uid_to_key: dict[str, str],
    tokens: list[tuple[str, str]],
    study_dates: dict[int, set[str]],
    have_dciodvfy: bool,
    pydicom: Any,
) -> dict[str, Any]:
    variants = [(cat, tok, _variants(tok)) for cat, tok in tokens]
    leaked: dict[str, set[str]] = defaultdict(set)  # token -> attribute paths
    leak_files: set[str] = set()
    outputs: dict[str, Any] = {}  # input key -> output dataset
    unmapped = others = 0
    private = dates_kept = errors = 0
    invalid: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    err_kinds: Counter[str] = Counter()
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        raw = path.read_bytes().decode("latin-1").lower()
        rel = str(path.relative_to(out)).lower()
        hits = [(cat, tok, vs) for cat, tok, vs in variants if any(v in raw or v in rel for v in vs)]
        try:
            ds = pydicom.dcmread(path, force=True)
            key = _pixel_key(ds)
        except Exception:
            ds, key = None, None
        for cat, tok, vs in hits:
            leak_files.add(str(path))
            where = {f"{cat}:path"} if any(v in rel for v in vs) else set()
            if ds is not None:
                for p, elem in _walk(ds):
                    if elem.VR == "SQ":
                        continue
                    vals = _values(elem)
                    if any(v in x.lower() for x in vals for v in vs):
                        where.add(_generic(p))
            leaked[tok] |= where or {"(raw bytes, not in a parsed value)"}
        if ds is None or key is None:
            others += 1  # not an image (privguard's resume journal): scanned for tokens only
            continue
        if key not in inputs:
            unmapped += 1
            continue
        outputs[key] = ds
        src = inputs[key]
        for p, elem in _walk(ds):
            if elem.tag.is_private:
                private += 1
            if p.startswith("meta.") or elem.VR == "SQ":
                continue
            vals = [v.strip() for v in _values(elem)] if elem.VR in ("DA", "DT", "TM", "UI") else []
            for v in vals:
                if not v:
                    continue
                if elem.VR in ("DA", "DT") and v[:8] in study_dates[src["study"]]:
                    dates_kept += 1
                bad = (
                    (elem.VR == "UI" and (len(v) > 64 or not _UID_RE.match(v.rstrip("\x00"))))
                    or (elem.VR == "DA" and not _valid_da(v))
                    or (elem.VR == "DT" and not _valid_dt(v))
                    or (elem.VR == "TM" and not _TM_RE.match(v))
                )
                if bad:
                    invalid[f"{elem.VR} {_generic(p)}"] += 1
        for kw in (*REQUIRED, "PatientID"):
            if not str(ds.get(kw, "") or "").strip():
                missing[kw] += 1
        meta = getattr(ds, "file_meta", None)
        media_uid = str(meta.get("MediaStorageSOPInstanceUID", "")) if meta is not None else ""
        if media_uid != str(ds.get("SOPInstanceUID", "")):
            missing["MediaStorageSOPInstanceUID≠SOPInstanceUID"] += 1
        if have_dciodvfy:
            errs = _dciodvfy_errors(path)
            errors += len(errs)
            for e in errs:
                err_kinds[re.sub(r"<[^>]*>", "<…>", e)[:140]] += 1
    # Links between files.
    links: Counter[str] = Counter()
    out_sop = {k: str(ds.get("SOPInstanceUID", "")) for k, ds in outputs.items()}
    all_out_sop = set(out_sop.values())
    for k, src in inputs.items():
        ds = outputs.get(k)
        if ds is None:
            links["file missing"] += 1
            continue
        for seq, i, uid in src["refs"]:
            target = uid_to_key.get(uid)
            if target is None:
                continue
            items = ds.get(seq, None)
            item = items[i] if items is not None and len(items) > i else None
            value = str(item.get("ReferencedSOPInstanceUID", "")) if item is not None else ""
            if not value:
                links["reference dropped"] += 1
            elif value == out_sop.get(target):
                links["reference ok"] += 1
            elif value in all_out_sop:
                links["reference to the wrong file"] += 1
            else:
                links["reference dangling"] += 1
    for level, kw in (("study", "StudyInstanceUID"), ("series", "SeriesInstanceUID"),
                      ("frame of reference", "FrameOfReferenceUID")):  # fmt: skip
        groups: dict[Any, set[str]] = defaultdict(set)
        for k, src in inputs.items():
            if k in outputs:
                g = src["study"] if level != "series" else src["series"]
                groups[g].add(str(outputs[k].get(kw, "") or ""))
        values = [next(iter(v)) for v in groups.values() if len(v) == 1]
        links[f"{level} UID split or empty"] += sum(1 for v in groups.values() if len(v) != 1 or "" in v)
        links[f"{level} UID merged across groups"] += len(values) - len(set(values))
    sops = list(out_sop.values())
    links["SOP Instance UID duplicated"] += len(sops) - len(set(sops))
    return {
        "outputs": len(outputs),
        "unmapped": unmapped,
        "other_files": others,
        "leaked_tokens": {tok: sorted(w) for tok, w in leaked.items()},
        "leaked_categories": sorted({cat for cat, tok in tokens if tok in leaked}),
        "leak_files": len(leak_files),
        "private_kept": private,
        "dates_kept": dates_kept,
        "invalid_values": dict(invalid),
        "missing": dict(missing),
        "links": {k: v for k, v in links.items() if v},
        "dciodvfy_errors": errors if have_dciodvfy else None,
        "dciodvfy_kinds": err_kinds.most_common(8),
    }


def _audit_table(results: dict[str, Any], n_files: int, n_tokens: int, have_dciodvfy: bool) -> str:
    lines = [
        f"Audit sample: {n_files} files (2 studies × 2 series × 5), "
        f"{n_tokens} distinct planted PHI tokens.\n",
        "| tool | (a) PHI tokens left (files) | (b) private elements kept | (c) dates unchanged "
        "| (d) broken links | references kept ok / dropped | (e) missing or empty required "
        "| invalid UI/DA/DT/TM values | (f) dciodvfy errors (Δ vs input) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tool, r in results.items():
        links = r["links"]
        broken = sum(v for k, v in links.items() if k not in ("reference ok", "reference dropped"))
        miss = sum(r["missing"].values())
        inv = sum(r["invalid_values"].values())
        dci = (
            f"{r['dciodvfy_errors']} ({r['dciodvfy_errors'] - r['input_dciodvfy_errors']:+d})"
            if have_dciodvfy
            else "n/a"
        )
        lines.append(
            f"| {tool} | {len(r['leaked_tokens'])}/{n_tokens} ({r['leak_files']}) "
            f"| {r['private_kept']}/{r['input_private']} | {r['dates_kept']}/{r['input_dates']} | {broken} "
            f"| {links.get('reference ok', 0)} / {links.get('reference dropped', 0)} "
            f"| {miss} | {inv} | {dci} |"
        )
    if not have_dciodvfy:
        lines.append("\n(f) skipped: dciodvfy not installed (apt-get install -y dicom3tools).")
    lines.append("\nDetails per tool:")
    for tool, r in results.items():
        lines.append(f"- **{tool}**:")
        if r["leaked_tokens"]:
            where = Counter(w for ws in r["leaked_tokens"].values() for w in ws)
            lines.append(
                f"  leaked categories {', '.join(r['leaked_categories'])}; found in "
                + ", ".join(f"{w} ({n})" for w, n in sorted(where.items(), key=lambda kv: (-kv[1], kv[0])))
            )
        other = {k: v for k, v in r["links"].items() if k not in ("reference ok",)}
        if other:
            lines.append("  links: " + ", ".join(f"{k} {v}" for k, v in other.items()))
        if r["missing"]:
            lines.append("  missing/empty: " + ", ".join(f"{k} ×{v}" for k, v in r["missing"].items()))
        if r["invalid_values"]:
            bad = r["invalid_values"]
            lines.append("  invalid values: " + ", ".join(f"{k} ×{v}" for k, v in bad.items()))
        if r["dciodvfy_kinds"]:
            lines.append("  dciodvfy: " + "; ".join(f"{k} ×{n}" for k, n in r["dciodvfy_kinds"][:4]))
        if r["other_files"]:
            lines.append(f"  {r['other_files']} non-image file(s) in the output, scanned for tokens only")
        if r["unmapped"]:
            lines.append(f"  {r['unmapped']} output files could not be matched to an input")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------


def _parse_subset(items: list[str]) -> dict[str, int]:
    subset = dict(DEFAULT_SUBSETS)
    for item in items:
        tool, _, n = item.partition("=")
        if tool not in TOOLS or not n.isdigit():
            raise SystemExit(f"--subset wants TOOL=N with TOOL one of {', '.join(TOOLS)}")
        subset[tool] = int(n)
    return subset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Header de-identification throughput: privguard vs peers, plus a leak/validity audit.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--files", type=int, default=2000, help="corpus size (default 2000)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 300 files, 1 round, deid on 100")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported (default 3)")
    ap.add_argument("--skip", action="append", default=[], metavar="TOOL", help=f"one of {', '.join(TOOLS)}")
    ap.add_argument("--subset", action="append", default=[], metavar="TOOL=N",
                    help="run TOOL on the first N files only (default: deid=200)")  # fmt: skip
    ap.add_argument(
        "--max-load",
        type=float,
        default=0.25,
        help="re-run a run during which other jobs used more than this many cores (default 0.25)",
    )
    ap.add_argument("--retries", type=int, default=2, help="re-runs allowed per run (default 2)")
    ap.add_argument("--retry-wait", type=float, default=5.0, help="seconds to wait before a re-run")
    ap.add_argument("--workers", default="1,2", help="privguard worker counts for scaling (default 1,2)")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--out-root", type=Path, default=BENCH_DIR,
                    help="where the tools write (default .bench, on the corpus's disk; "
                    "e.g. /dev/shm to take the file system out of the measurement)")  # fmt: skip
    ap.add_argument("--audit-only", action="store_true")
    ap.add_argument(
        "--cli-table", metavar="N_CT,N_TABLE,N_ENH",
        help="issue 8: CLI wall clock (start-up included) of privguard, a pydicom loop and gdcmanon on three "
        "corpora, plus privguard's in-process rate, e.g. 600,300,100",
    )  # fmt: skip
    ap.add_argument("--no-audit", action="store_true")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    ap.add_argument("--_in", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_list", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_workers", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        print(json.dumps(_child(args._child, args._in, args._list, args._out, args._workers)))
        return 0
    if args.cli_table:
        n_ct, n_table, n_enh = (int(x) for x in args.cli_table.split(","))
        print(f"machine: {machine()}")
        print(cli_table(n_ct, n_table, n_enh, args.repeat))
        return 0
    if args.quick:
        args.files, args.repeat = min(args.files, 300), 1
        args.subset.append("deid=100")
    args.subset = _parse_subset(args.subset)
    args.workers = sorted({int(w) for w in args.workers.split(",")} | {1})
    skip = {s for item in args.skip for s in item.split(",")}
    unknown = skip - set(TOOLS)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise SystemExit(f"--skip: unknown tool(s) {names}; choose from {', '.join(TOOLS)}")
    tools, missing = [], {}
    for t in TOOLS:
        if t in skip:
            continue
        why = available(t)
        if why:
            missing[t] = why
        else:
            tools.append(t)
    info = machine()
    info["privguard_source_sha256"] = _source_hash(info["privguard_sources"])
    print("# Header de-identification throughput (issue 2)\n")
    print(f"machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
          f"{info['ram_gib']} GiB RAM, {info['os']}, Python {info['python']}")  # fmt: skip
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items())
          + f", {info['gdcmanon']}, {info['cp']}, {info['dciodvfy']}; "
          f"privguard sources sha256 {info['privguard_source_sha256']}")  # fmt: skip
    print(f"date: {dt.datetime.now().isoformat(timespec='seconds')}; outputs under {args.out_root}")
    for t, why in missing.items():
        print(f"skipped {t}: {why}")
    report: dict[str, Any] = {"machine": info, "argv": sys.argv, "skipped": missing,
                              "invocations": {t: PEER_INVOCATIONS[t] for t in tools}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="privguard-bench-") as tmp:
        logdir = Path(tmp)
        if not args.audit_only:
            spec = CorpusSpec(n_files=args.files)
            t0 = time.perf_counter()
            corpus = ensure_corpus(spec)
            mb = corpus.total_bytes / len(corpus.files) / 1e6
            gb = corpus.total_bytes / 1e9
            print(f"corpus: {corpus.dicom_dir} ({len(corpus.files)} files, {gb:.2f} GB, "
                  f"{mb:.3f} MB per file; ready in {time.perf_counter() - t0:.1f} s)")  # fmt: skip
            subsets = {t: n for t, n in args.subset.items() if t in tools and n < len(corpus.files)}
            if subsets:
                print("subsets (first N files): " + ", ".join(f"{t}={n}" for t, n in subsets.items()))
            print(f"rounds: {args.repeat}; privguard workers: {args.workers}\n", flush=True)
            result = benchmark(args, corpus, tools, logdir)
            text, data = throughput_tables(result, corpus)
            print("\n" + text + "\n")
            report["throughput"] = data
            report["corpus"] = {"files": len(corpus.files), "bytes": corpus.total_bytes, "spec": vars(spec)}
            report["subsets"] = subsets
        if not args.no_audit:
            print("audit: running every tool on the 20-file sample ...", flush=True)
            text, data = audit(tools, logdir)
            print("\n" + text + "\n")
            report["audit"] = data
    start, end = info["privguard_sources"], _source_hashes()
    changed = sorted(f for f in set(end) | set(start) if end.get(f) != start.get(f))
    if changed:
        print(f"WARNING: privguard's sources changed during the run ({', '.join(changed)}); "
              "the privguard numbers may mix two versions.")  # fmt: skip
        report["privguard_sources_changed"] = changed
    print("Invocations:")
    for t in tools:
        print(f"- {t}: {PEER_INVOCATIONS[t]}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str, ensure_ascii=False))
        print(f"\nresults written to {args.json}")
    return 0


# -- CLI wall clock on three corpora (issue 8) ------------------------------------------------

_PYDICOM_LOOP = (
    "import sys, pathlib, pydicom\n"
    "src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
    "for f in sorted(p for p in src.rglob('*') if p.is_file()):\n"
    "    pydicom.dcmread(f).save_as(out / f.name)\n"
)


#: What any tool with privguard's guarantees must do per file, and nothing else: read it, write
#: a new file (never overwriting), SHA-256 of the input and of the output (the audit record and
#: the manifest, issue 10), and make the outputs durable before they are reported (issue 9: one
#: syncfs per chunk of 16, as the batch runner does). No DICOM parsing at all.
_IO_FLOOR = (
    "import ctypes, hashlib, os, sys, pathlib\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "syncfs, sfr = libc.syncfs, libc.sync_file_range\n"
    "sfr.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]\n"
    "src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
    "for i, f in enumerate(sorted(p for p in src.rglob('*') if p.is_file())):\n"
    "    b = f.read_bytes()\n"
    "    hashlib.sha256(b).digest()\n"
    "    fd = os.open(out / f.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)\n"
    "    os.write(fd, b)\n"
    "    sfr(fd, 0, 0, 2)\n"
    "    hashlib.sha256(b).digest()\n"
    "    if i % 16 == 15:\n"
    "        syncfs(fd)\n"
    "    os.close(fd)\n"
    "fd = os.open(out, os.O_RDONLY)\n"
    "syncfs(fd)\n"
)


def _corpora(n_ct: int, n_table: int, n_enh: int) -> dict[str, Path]:
    """The three corpora of issue 8, each in one folder (generated once, then reused)."""
    from benchmarks.corpus import ensure_enhanced

    sys.path.insert(0, str(REPO / "tests"))
    from phi_gen import write_planted

    ct = ensure_corpus(CorpusSpec(n_files=n_ct), quiet=True)
    table = BENCH_DIR / f"table-{n_table}"
    table.mkdir(parents=True, exist_ok=True)
    for i in range(n_table):
        p = table / f"t{i:04d}.dcm"
        if not p.exists():
            write_planted(p, seed=i)
    enh = ensure_enhanced(BENCH_DIR / f"enhanced-{n_enh}", n_enh)[0].parent
    return {
        f"{n_ct} typical CT (benchmarks/corpus.py)": ct.dicom_dir,
        f"{n_table} with every Table E.1-1 attribute (tests/phi_gen.py)": table,
        f"{n_enh} enhanced multi-frame + SR-heavy (corpus.enhanced_dataset)": enh,
    }


def _wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True)
    dt_ = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[0]} failed: {r.stderr.decode(errors='replace')[-400:]}")
    return dt_


def cli_table(n_ct: int, n_table: int, n_enh: int, repeat: int) -> str:
    """Wall clock of each tool as a user runs it (one worker, start-up included), alternated."""
    from privguard.deidentifier import Deidentifier
    from privguard.pseudonym.keys import ProjectKey

    corpora = _corpora(n_ct, n_table, n_enh)
    work = Path(tempfile.mkdtemp(prefix="pg-cli-"))
    key = ProjectKey.generate()
    key_file = work / "k.key"
    key.save(key_file)
    cert = _make_cert(work)
    pg = str(REPO / ".venv" / "bin" / "privguard")
    py = str(REPO / ".venv" / "bin" / "python")
    # An installed package runs from byte code (pip compiles it); an editable checkout under
    # PYTHONDONTWRITEBYTECODE would compile privguard's modules from source on every start.
    subprocess.run([py, "-m", "compileall", "-q", str(REPO / "privguard"), str(REPO / "cli")], check=True)

    def cmd(tool: str, src: Path, out: Path) -> list[str]:
        if tool == "privguard":
            return [pg, "scrub", str(src), "--out", str(out), "--key-file", str(key_file), "--ocr", "off",
                    "--workers", "1"]  # fmt: skip
        if tool == "gdcmanon":
            return ["gdcmanon", "-e", "-c", str(cert), "--continue", "-i", str(src), "-o", str(out)]
        if tool == "io-floor":
            return [py, "-S", "-c", _IO_FLOOR, str(src), str(out)]
        return [py, "-c", _PYDICOM_LOOP, str(src), str(out)]

    tools = ["privguard", "pydicom", "io-floor"] + (["gdcmanon"] if shutil.which("gdcmanon") else [])
    lines = [
        "| corpus | privguard `scrub --ocr off` | pydicom read+write | gdcmanon | vs gdcmanon | vs pydicom "
        "| durable I/O floor (no DICOM) | floor vs gdcmanon | privguard in-process |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    # Start-up: scrub of a folder holding one small file.
    one = work / "one"
    one.mkdir()
    shutil.copy(next(iter(sorted(next(iter(corpora.values())).iterdir()))), one / "a.dcm")
    starts = []
    for r in range(max(repeat, 3)):
        out = work / f"start{r}"
        out.mkdir()
        starts.append(_wall(cmd("privguard", one, out)))
    for name, src in corpora.items():
        files = sorted(p for p in src.rglob("*") if p.is_file())
        warm(files)
        walls: dict[str, list[float]] = defaultdict(list)
        for r in range(repeat):
            for tool in tools:
                out = work / f"{tool}-{r}"
                out.mkdir()
                walls[tool].append(_wall(cmd(tool, src, out)))
                shutil.rmtree(out)
        deid = Deidentifier("basic", key)
        inproc = []
        for r in range(repeat):
            out = work / f"inproc-{r}"
            t0 = time.perf_counter()
            res = deid.files(files, out)
            inproc.append(time.perf_counter() - t0)
            assert all(x.status == "ok" for x in res), [x.reason for x in res if x.status != "ok"][:3]
            shutil.rmtree(out)
        deid.close()
        med = {t: statistics.median(v) for t, v in walls.items()}
        g = med.get("gdcmanon")
        lines.append(
            f"| {name} | {_wrange(walls['privguard'])} | {_wrange(walls['pydicom'])} | "
            f"{_wrange(walls['gdcmanon']) if g else 'n/a'} | "
            f"{(g / med['privguard']) if g else float('nan'):.2f}x | "
            f"{med['pydicom'] / med['privguard']:.2f}x | "
            f"{_wrange(walls['io-floor'])} | {(g / med['io-floor']) if g else float('nan'):.2f}x | "
            f"{len(files) / statistics.median(inproc):.0f} files/s |"
        )
    shutil.rmtree(work, ignore_errors=True)
    lines.append("")
    lines.append(f"privguard start-up (`scrub --ocr off` of one file): {_wrange(starts)}")
    return "\n".join(lines)


def _wrange(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f} s" if abs(hi - lo) < 0.005 else f"{lo:.2f}–{hi:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
