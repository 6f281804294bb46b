"""Policy-check scale benchmark: a PIPL cross-border request for N patients with consents.

Two ways to state the same cohort are checked, each in a fresh process (so
peak memory is the check's own):

* ``table``: ``dataset.table`` and a consent file with ``table:`` (CSV, streamed);
* ``inline``: the patients listed in the request and the records in the consent
  file (YAML), the only form before tables existed.

Each run reports wall time (load + check), peak RSS (``ru_maxrss`` of the
child) and the decision, and both forms must reach the same decision with the
same inclusion counts. Usage::

    .venv/bin/python benchmarks/policy_scale.py --patients 1000000 --inline-patients 20000

The inline form is run at a smaller N (it holds every patient as a pydantic
model); its per-patient cost is reported next to the table form's.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "compliance" / "pipl-cross-border-request.yaml"
AT = "2026-03-01T12:00:00+00:00"


def _cohort(n: int, seed: int) -> list[tuple[Any, ...]]:
    """(id, age, studies, consent) rows; about 10% of consents fail one way or another."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        pid = f"P{i:09d}"
        age = rng.randint(0, 95)
        studies = [(f"S{i:09d}-{k}", rng.choice(["DX", "CR", "CT"])) for k in range(rng.randint(1, 2))]
        r = rng.random()
        consent = {
            "given": "2025-10-08",
            "permission": "HMB" if r > 0.05 else "POA",
            "modifiers": "NCU" if rng.random() < 0.5 else "",
            "withdrawn": "2026-01-20" if 0.05 < r < 0.08 else "",
            "pipl_sensitive": "2025-10-08",
            "pipl_cross_border": "2025-12-22" if r < 0.97 else "",
            "guardian": "2025-10-08" if age < 14 and rng.random() < 0.9 else "",
        }
        rows.append((pid, age, studies, consent if r < 0.995 else None))
    return rows


def _request(data_dir: Path, n_included_bound: int, dataset: dict[str, Any]) -> dict[str, Any]:
    req: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    req["request_id"] = "BENCH-SCALE"
    req["pipl"]["sensitive_persons_ytd"] = n_included_bound
    req["transfers"] = [
        {"kind": "pipl_security_assessment", "reference": "CAC-SA-BENCH", "valid_until": "2028-05-31"}
    ]
    req["dataset"] = dataset
    return req


def write_table_form(rows: list[tuple[Any, ...]], folder: Path) -> tuple[Path, Path]:
    with (folder / "patients.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patient_id", "age", "study_id", "modality", "body_part"])
        for pid, age, studies, _ in rows:
            for sid, mod in studies:
                w.writerow([pid, age, sid, mod, "CHEST"])
    cols = ["patient_id", "given", "withdrawn", "permission", "modifiers", "pipl_sensitive",
            "pipl_cross_border", "guardian"]  # fmt: skip
    with (folder / "consents.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for pid, _, _, c in rows:
            if c is not None:
                w.writerow([pid, *(c[k] for k in cols[1:])])
    req = _request(folder, len(rows), {"table": "patients.csv"})
    (folder / "request.yaml").write_text(yaml.safe_dump(req, sort_keys=False), encoding="utf-8")
    cons = {
        "schema_version": 1,
        "snapshot": {"id": "bench", "taken": "2026-02-14T09:30:00Z"},
        "table": "consents.csv",
    }
    (folder / "consents.yaml").write_text(yaml.safe_dump(cons, sort_keys=False), encoding="utf-8")
    return folder / "request.yaml", folder / "consents.yaml"


def write_inline_form(rows: list[tuple[Any, ...]], folder: Path) -> tuple[Path, Path]:
    patients = [
        {
            "id": pid,
            "age": age,
            "studies": [{"id": s, "modality": m, "body_part": "CHEST"} for s, m in studies],
        }
        for pid, age, studies, _ in rows
    ]
    req = _request(folder, len(rows), {"patients": patients})
    records = []
    for pid, _, _, c in rows:
        if c is None:
            continue
        rec: dict[str, Any] = {"kind": "duo", "patient": pid, "given": c["given"],
                               "permission": {"code": c["permission"]}}  # fmt: skip
        if c["modifiers"]:
            rec["modifiers"] = [{"code": c["modifiers"]}]
        if c["withdrawn"]:
            rec["withdrawn"] = c["withdrawn"]
        sep: dict[str, Any] = {"pipl_sensitive": {"given": c["pipl_sensitive"]}}
        if c["pipl_cross_border"]:
            sep["pipl_cross_border"] = {"given": c["pipl_cross_border"]}
        rec["separate"] = sep
        if c["guardian"]:
            rec["guardian"] = {"relationship": "parent", "given": c["guardian"]}
        records.append(rec)
    cons = {
        "schema_version": 1,
        "snapshot": {"id": "bench", "taken": "2026-02-14T09:30:00Z"},
        "records": records,
    }
    # JSON is YAML: write JSON (faster to write; the loader reads it either way)
    (folder / "request.json").write_text(json.dumps(req, default=str), encoding="utf-8")
    (folder / "consents.json").write_text(json.dumps(cons), encoding="utf-8")
    return folder / "request.json", folder / "consents.json"


def _peak_kib() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # pragma: no cover (not Linux)


def _child(request: str, consents: str) -> None:
    """Run one check in this process and print a JSON line of results."""
    t0 = time.perf_counter()
    from privguard.compliance import check  # imports are part of the measured time

    d = check(request, consents, now=dt.datetime.fromisoformat(AT))
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": round(wall, 3),
                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
                "peak_mib": round(_peak_kib() / 1024, 1),
                "outcome": d.outcome,
                "requested": d.inclusion.requested,
                "included": len(d.inclusion.included),
                "excluded": d.inclusion.excluded_count,
                "deny_review": sorted(d.rule_ids("deny", "review")),
            }
        )
    )


def run_child(request: Path, consents: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(request), str(consents)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs visible, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=1_000_000, help="Patients in the table form.")
    ap.add_argument("--inline-patients", type=int, default=20_000, help="Patients in the inline form.")
    ap.add_argument("--repeat", type=int, default=3, help="Runs per form (the best and all are reported).")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", nargs=2, metavar=("REQUEST", "CONSENTS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return

    print(f"machine: {_machine()}")
    with tempfile.TemporaryDirectory(prefix="pg-policy-scale-") as tmp:
        folder = Path(tmp)
        results: dict[str, Any] = {}
        for form, n in (
            ("table", args.patients),
            ("inline", args.inline_patients),
            ("table-small", args.inline_patients),
        ):
            sub = folder / form
            sub.mkdir()
            rows = _cohort(n, args.seed)
            t0 = time.perf_counter()
            req, cons = (write_inline_form if form == "inline" else write_table_form)(rows, sub)
            del rows
            size = sum(p.stat().st_size for p in sub.iterdir())
            print(
                f"{form}: {n:,} patients written in {time.perf_counter() - t0:.1f} s ({size / 2**20:.0f} MiB)"
            )
            runs = [run_child(req, cons) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            results[form] = {"patients": n, "runs": runs, "best": best}
            for r in runs:
                print(f"  {r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} s CPU, "
                      f"peak {r['peak_mib']:.0f} MiB, {r['outcome']}, {r['included']:,} included / "
                      f"{r['excluded']:,} excluded (load average {os.getloadavg()[0]:.1f})")  # fmt: skip
        small, inline = results["table-small"]["best"], results["inline"]["best"]
        assert (small["outcome"], small["included"], small["excluded"]) == (
            inline["outcome"], inline["included"], inline["excluded"]
        ), "the table and inline forms disagree"  # fmt: skip
        big = results["table"]["best"]
        per_table = big["cpu_seconds"] / results["table"]["patients"] * 1e6
        per_inline = inline["cpu_seconds"] / results["inline"]["patients"] * 1e6
        print(
            f"best of {args.repeat}: table form {big['seconds']:.2f} s wall / {big['cpu_seconds']:.2f} s CPU"
            f" / {big['peak_mib']:.0f} MiB for {results['table']['patients']:,} patients "
            f"({per_table:.1f} us CPU per patient); inline form {per_inline:.1f} us CPU per patient "
            f"({per_inline / per_table:.0f}x the table form); "
            f"same decision at {args.inline_patients:,} patients: yes"
        )


if __name__ == "__main__":
    main()
