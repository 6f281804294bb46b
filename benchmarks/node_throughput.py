"""Throughput of the DICOM node (``privguard serve``) against folder scrubbing and plain Orthanc forwarding.

Usage (from the repository root, with the project's virtual environment)::

    .venv/bin/python benchmarks/node_throughput.py                 # 200 files, 2 workers, 3 repeats
    .venv/bin/python benchmarks/node_throughput.py --files 400 --workers 2 --repeat 5 --json node.json

Needs Debian's ``orthanc`` and ``dcmtk`` (``storescu``), as ``.ci/run`` installs them. A missing
tool is reported and its rows skipped, never faked.

What it measures, on the CT corpus of :mod:`benchmarks.corpus` (0.5 MB files, header PHI),
everything on 127.0.0.1, header de-identification only (``--ocr off``), the same ``--workers``:

``scrub``
    ``privguard scrub CORPUS --out OUT --ocr off --workers W --json``: the summary's own
    ``seconds`` (processing only, after start-up) -> files/s. The reference for the target.
``node (storescu xK -> node -> folder)``
    DCMTK ``storescu`` sends the corpus to a running node (warm: started before the clock)
    that forwards into a folder; from storescu's start until the node's status endpoint
    counts every instance forwarded. Receive, fsync before the acknowledgement, queue,
    scrub, fsync'd forward: the whole path. ``xK``: K storescu processes at once, each
    sending its share over its own association (a PACS or several modalities sending in
    parallel). Target: >= 80% of ``scrub``.
``storescu -> bare pynetdicom SCP (receive only)``
    The DIMSE receive ceiling: storescu to a pynetdicom SCP that only takes the bytes (no disk,
    no de-identification), one association. The node is built on this receiver.
``storescu -> pynetdicom SCP + receive journal (durable receive only)``
    The same SCP, answering each C-STORE only after appending it to the node's receive journal
    (:class:`privguard.node.journal.ReceiveJournal`: CRC-32, write, ``fdatasync``), as the node
    does; no de-identification, no forwarding. With one association the node cannot beat this.
``node (Orthanc -> node -> Orthanc)``
    An Orthanc PACS holding the corpus sends it (``/modalities/privguard/store``) to the
    node, which forwards by C-STORE to an Orthanc archive; until the archive holds every
    instance.
``Orthanc -> Orthanc``
    The same PACS sends straight to the archive, no de-identification: the network floor.

Runs are interleaved over ``--repeat`` rounds; medians are reported with every run's value.
Each node run gets a fresh queue and destination; each archive run a fresh archive.

CPU per instance (ms, user + system) is reported beside each ``scrub`` and storescu row:
for ``scrub`` the whole process tree (driver and workers) less a one-file run's (start-up);
for the node its process and its workers over the run (and each apart), and separately the
storescu senders, which share the same cores in this benchmark (a PACS would be another machine);
for the bare SCPs the receiving process (this one, idle otherwise) and the sender.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpus import CorpusSpec, ensure_corpus
from privguard.node.status import fetch_status
from privguard.pseudonym.keys import ProjectKey
from tests.node.support import (
    ORTHANC,
    STORESCU,
    NodeProcess,
    Orthanc,
    child_pids,
    free_port,
    node_config,
    wait_for,
)

BENCH_KEY = bytes(range(32))


def _privguard() -> list[str]:
    return [sys.executable, "-m", "privguard_cli.main"]


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _proc_cpu(pid: int) -> float:
    """User + system seconds of a running process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: CPU ms per instance, per row and round (filled by the runs that measure it).
CPU: dict[str, list[float]] = {}


def run_scrub(files: Path, work: Path, key_file: Path, workers: int, startup_cpu: float = 0.0) -> float:
    out = work / "scrub-out"
    shutil.rmtree(out, ignore_errors=True)
    before = _children_cpu()
    res = subprocess.run(
        [*_privguard(), "scrub", str(files), "--out", str(out), "--key-file", str(key_file), "--ocr", "off"]  # noqa: RUF005
        + ["--workers", str(workers), "--json"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    cpu = _children_cpu() - before
    if res.returncode != 0:
        raise RuntimeError(f"privguard scrub failed: {res.stderr[-800:]}")
    summary = json.loads(res.stdout)
    if startup_cpu:
        CPU.setdefault("scrub", []).append((cpu - startup_cpu) * 1000 / max(1, int(summary["ok"]) - 1))
    return float(summary["ok"]) / float(summary["seconds"])


def scrub_startup_cpu(one_file: Path, work: Path, key_file: Path, workers: int) -> float:
    """CPU seconds of scrubbing a single file: the process tree's start-up, to subtract."""
    folder = work / "one"
    folder.mkdir(exist_ok=True)
    shutil.copy(one_file, folder / one_file.name)
    values = []
    for _ in range(3):
        before = _children_cpu()
        run_scrub(folder, work, key_file, workers)
        values.append(_children_cpu() - before)
    return statistics.median(values)


def _node(work: Path, key_file: Path, workers: int, destination: dict[str, Any], name: str) -> NodeProcess:
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    cfg = node_config(root, key_file, destination, workers=workers, chunk_size=16, forward_batch=64)
    return NodeProcess(root, cfg)


def _forwarded(node: NodeProcess) -> int:
    port = int((Path(node.config["queue"]) / "status.port").read_text())
    return int(fetch_status("127.0.0.1", port)["counts"].get("forwarded", 0))


def run_node_storescu(files: list[Path], work: Path, key_file: Path, workers: int, senders: int) -> float:
    """``senders`` storescu processes at once, each with its share of the files (one association each)."""
    assert STORESCU is not None
    dest = work / "node-folder-dest"
    shutil.rmtree(dest, ignore_errors=True)
    node = _node(work, key_file, workers, {"type": "folder", "path": str(dest)}, "node-storescu")
    node.start()
    try:
        assert node.proc is not None
        pids = [node.proc.pid, *child_pids(node.proc.pid)]
        node_before = sum(_proc_cpu(p) for p in pids)
        main_before = _proc_cpu(pids[0])
        senders_before = _children_cpu()
        start = time.perf_counter()
        base = [STORESCU, "-aet", "PACS", "-aec", "PRIVGUARD", "127.0.0.1", str(node.port)]
        procs = [
            subprocess.Popen(
                [*base, *(str(p) for p in files[k::senders])],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for k in range(senders)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=1800)
            if proc.returncode != 0:
                raise RuntimeError(f"storescu failed: {err.decode(errors='replace')[-800:]}")
        senders_cpu = _children_cpu() - senders_before
        wait_for(lambda: _forwarded(node) >= len(files), 1800, "the node to forward everything", 0.02)
        elapsed = time.perf_counter() - start
        after = {p: _proc_cpu(p) for p in pids}
        node_cpu = sum(after.values()) - node_before
        name = f"node (storescu x{senders} -> node -> folder)"
        CPU.setdefault(name, []).append(node_cpu * 1000 / len(files))
        main_cpu = after[pids[0]] - main_before
        CPU.setdefault(f"{name} [node process]", []).append(main_cpu * 1000 / len(files))
        CPU.setdefault(f"{name} [workers]", []).append((node_cpu - main_cpu) * 1000 / len(files))
        CPU.setdefault(f"{name} [senders]", []).append(senders_cpu * 1000 / len(files))
        return len(files) / elapsed
    finally:
        node.stop()


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_bare_scp(files: list[Path], journal_dir: Path | None = None) -> float:
    """storescu -> a pynetdicom Storage SCP that only takes the bytes (no de-identification).

    With ``journal_dir``, each C-STORE is answered only after the node's receive journal holds it
    (appended and synced, as the node does before it answers). Otherwise nothing touches the disk:
    the ceiling a pynetdicom receiver reaches over one association on this machine.
    """
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt

    from privguard.node.journal import ReceiveJournal
    from privguard.node.scp import copyable_contexts

    assert STORESCU is not None
    received = 0
    journal = None
    if journal_dir is not None:
        shutil.rmtree(journal_dir, ignore_errors=True)
        journal = ReceiveJournal(journal_dir)
        journal.open(lambda r: True)
        time.sleep(1.0)  # the spare segment is zero-filled in the background: not on the clock

    def on_store(event: Any) -> int:
        nonlocal received
        raw = event.encoded_dataset(include_meta=True)
        received += 1
        if journal is not None:
            record = journal.append(time.time_ns() // 1000, "0" * 16, f"{received:016x}", raw)
            journal.release([record.seq])  # done at once: segments are reused, as in a node that keeps up
        return 0

    ae = AE(ae_title="BARE")
    ae.maximum_pdu_size = 0
    for cx in AllStoragePresentationContexts:
        assert cx.abstract_syntax is not None
        ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
        contexts=copyable_contexts(ae.supported_contexts),  # as the node (see privguard.node.scp)
    )
    assert server is not None
    try:
        cpu, sender = _self_cpu(), _children_cpu()
        start = time.perf_counter()
        subprocess.run(
            [STORESCU, "-aet", "PACS", "-aec", "BARE", "127.0.0.1", str(port), *map(str, files)],
            check=True,
            capture_output=True,
            timeout=1800,
        )
        elapsed = time.perf_counter() - start
        cpu, sender = _self_cpu() - cpu, _children_cpu() - sender
    finally:
        server.shutdown()
        ae.shutdown()
        if journal is not None:
            journal.close()
    if received != len(files):
        raise RuntimeError(f"the bare SCP received {received} of {len(files)}")
    name = "storescu -> pynetdicom SCP + receive journal" if journal is not None else "storescu -> bare SCP"
    CPU.setdefault(f"{name} [receiver]", []).append(cpu * 1000 / len(files))
    CPU.setdefault(f"{name} [sender]", []).append(sender * 1000 / len(files))
    return len(files) / elapsed


class Pair:
    """An Orthanc PACS holding the corpus and an Orthanc archive (restarted empty per run)."""

    def __init__(self, work: Path, files: list[Path], node_port: int) -> None:
        self.work = work
        self.node_port = node_port
        self.archive = Orthanc(work / "archive", "ARCHIVE")
        modalities = {
            "privguard": ["PRIVGUARD", "127.0.0.1", node_port],
            "archive": ["ARCHIVE", "127.0.0.1", self.archive.dicom_port],
        }
        self.pacs = Orthanc(work / "pacs", "PACS", modalities=modalities)
        self.pacs.start()
        self.studies = sorted(
            {self.pacs.request("POST", "/instances", p.read_bytes())["ParentStudy"] for p in files}
        )
        self.n = len(files)

    def fresh_archive(self) -> None:
        self.archive.stop()
        shutil.rmtree(self.archive.root / "db", ignore_errors=True)
        self.archive.start()

    def send(self, modality: str) -> None:
        body = json.dumps({"Resources": self.studies, "Synchronous": True}).encode()
        self.pacs.request("POST", f"/modalities/{modality}/store", body, timeout=1800)

    def close(self) -> None:
        self.archive.stop()
        self.pacs.stop()


def run_orthanc_floor(pair: Pair) -> float:
    pair.fresh_archive()
    start = time.perf_counter()
    pair.send("archive")
    wait_for(lambda: pair.archive.count() >= pair.n, 1800, "the archive", 0.02)
    return pair.n / (time.perf_counter() - start)


def run_node_orthanc(pair: Pair, work: Path, key_file: Path, workers: int) -> float:
    pair.fresh_archive()
    dest = {"type": "dimse", "host": "127.0.0.1", "port": pair.archive.dicom_port, "ae_title": "ARCHIVE"}
    node = _node(work, key_file, workers, dest, "node-orthanc")
    node.config["listen"]["port"] = pair.node_port
    node.path.write_text(json.dumps(node.config))
    node.start()
    try:
        start = time.perf_counter()
        pair.send("privguard")
        wait_for(lambda: pair.archive.count() >= pair.n, 1800, "the archive", 0.02)
        return pair.n / (time.perf_counter() - start)
    finally:
        node.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--senders", default="1,2", help="Parallel storescu associations, comma-separated [1,2].")
    ap.add_argument("--json", type=Path, help="Write the results here.")
    ap.add_argument("--no-orthanc", action="store_true", help="Skip the two Orthanc rows (network-bound).")
    args = ap.parse_args(argv)

    corpus = ensure_corpus(CorpusSpec(n_files=args.files))
    files = corpus.files
    for p in files:  # page cache
        p.read_bytes()
    work = Path(tempfile.mkdtemp(prefix="privguard-node-bench-"))
    key_file = work / "bench.key"
    ProjectKey.from_bytes(BENCH_KEY).save(key_file)
    results: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}
    startup = scrub_startup_cpu(files[0], work, key_file, args.workers)
    runs: dict[str, Callable[[], float]] = {
        "scrub": lambda: run_scrub(corpus.dicom_dir, work, key_file, args.workers, startup),
    }
    pair: Pair | None = None
    if STORESCU is not None:
        runs["storescu -> bare pynetdicom SCP (receive only)"] = lambda: run_bare_scp(files)
        runs["storescu -> pynetdicom SCP + receive journal (durable receive only)"] = lambda: run_bare_scp(
            files, work / "bare-journal"
        )
    for k in (int(x) for x in args.senders.split(",") if x):
        name = f"node (storescu x{k} -> node -> folder)"
        if STORESCU is None:
            skipped[name] = "storescu (dcmtk) is not installed"
            continue
        runs[name] = lambda k=k: run_node_storescu(files, work, key_file, args.workers, k)  # type: ignore[misc]
    if args.no_orthanc:
        skipped["Orthanc rows"] = "--no-orthanc"
    elif ORTHANC is not None:
        pair = Pair(work / "orthanc", files, free_port())
        runs["node (Orthanc -> node -> Orthanc)"] = lambda: run_node_orthanc(
            pair,
            work,
            key_file,
            args.workers,
        )
        runs["Orthanc -> Orthanc (no de-identification)"] = lambda: run_orthanc_floor(pair)
    else:
        skipped["Orthanc rows"] = "orthanc is not installed"
    try:
        for r in range(args.repeat):
            for name, fn in runs.items():
                value = fn()
                results.setdefault(name, []).append(value)
                print(f"round {r + 1}: {name}: {value:.1f} instances/s", file=sys.stderr, flush=True)
    finally:
        if pair is not None:
            pair.close()
        shutil.rmtree(work, ignore_errors=True)

    medians = {k: statistics.median(v) for k, v in results.items()}
    scrub = medians["scrub"]
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "files": len(files),
        "mb": round(corpus.total_bytes / 1e6, 1),
        "workers": args.workers,
        "repeat": args.repeat,
        "runs": results,
        "median": medians,
        "ratio_to_scrub": {k: v / scrub for k, v in medians.items()},
        "cpu_ms_per_instance": CPU,
        "cpu_ms_per_instance_median": {k: statistics.median(v) for k, v in CPU.items()},
        "load_average": os.getloadavg(),
        "skipped": skipped,
    }
    print(f"\n{len(files)} files ({report['mb']} MB), {args.workers} workers, median of {args.repeat}:")
    print(f"{'path':45} {'inst/s':>8} {'x scrub':>8}   runs")
    for name, v in medians.items():
        runs_txt = ", ".join(f"{x:.1f}" for x in results[name])
        print(f"{name:45} {v:8.1f} {v / scrub:8.2f}   {runs_txt}")
    print("\nCPU ms per instance (user + system), median and runs:")
    for name, per_round in CPU.items():
        print(f"{name:60} {statistics.median(per_round):6.2f}   {', '.join(f'{x:.2f}' for x in per_round)}")
    for name, why in skipped.items():
        print(f"{name}: skipped ({why})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
