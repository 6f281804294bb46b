"""Run many fresh mutants through the library path and report per operator (not collected by pytest).

    cd tests && ../.venv/bin/python -m fuzz.campaign --seed 9400 --count 2000 --profile basic

Prints, per operator, how many mutants it took part in and how many were written; then every
violation of the invariant (see :func:`fuzz.mutants.violations`), with the seed and index that
reproduce it. A mutant that takes longer than ``--limit`` seconds counts as a hang.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import FrameType

from fuzz.mutants import fresh_mutants, mutants, violations
from privguard.deidentifier import Deidentifier
from privguard.pseudonym.keys import ProjectKey

KEY = ProjectKey.from_bytes(bytes(range(32)))


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hang


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--profile", default="basic")
    ap.add_argument("--old", action="store_true", help="the original operators (mutants) instead")
    ap.add_argument("--limit", type=float, default=60.0)
    ap.add_argument("--dciodvfy", action="store_true", help="also compare dciodvfy errors (slow)")
    args = ap.parse_args()
    gen = mutants if args.old else fresh_mutants
    per_op: collections.Counter[str] = collections.Counter()
    ok_op: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    signal.signal(signal.SIGALRM, _alarm)
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="pgfuzz-"))
    # hipaa-safe-harbor uses random pseudonyms, kept in a vault at the sender.
    deid = Deidentifier(args.profile, KEY, vault=root / "vault.sqlite")
    try:
        for i, m in enumerate(gen(args.seed, args.count)):
            d = root / str(i)
            (d / "out").mkdir(parents=True)
            src = d / "in.dcm"
            src.write_bytes(m.data)
            signal.setitimer(signal.ITIMER_REAL, args.limit)
            try:
                res = deid.file(src, d / "out")
            except _Hang:
                problems.append(f"seed {args.seed} #{i} ({m.seed_file}, {'+'.join(m.ops)}): hang")
                continue
            except Exception as exc:  # the library must answer with a FileResult
                where = f"seed {args.seed} #{i} ({m.seed_file}, {'+'.join(m.ops)})"
                problems.append(f"{where}: raised {exc!r}"[:400])
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            for op in m.ops:
                per_op[op] += 1
                ok_op[op] += res.status == "ok"
            for v in violations(m, res, d / "out", src if args.dciodvfy else None):
                problems.append(f"seed {args.seed} #{i} ({m.seed_file}, {'+'.join(m.ops)}): {v}"[:400])
            if src.read_bytes() != m.data:
                problems.append(f"seed {args.seed} #{i}: the input was modified")
            shutil.rmtree(d)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{args.count} mutants, profile {args.profile}, {time.monotonic() - t0:.0f} s")
    for op in sorted(per_op):
        print(f"  {op:22s} {per_op[op]:5d} mutants, {ok_op[op]:5d} written")
    print(f"{len(problems)} problems")
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
