"""What the free-text cleaner costs inside the research profile (issue 14).

On the header benchmark corpus (:mod:`benchmarks.corpus`), one process runs
``Deidentifier("research").file`` over every file three ways, interleaved,
best of ``--repeats``:

* **research**: as shipped (file's own values + names + patterns + presidio);
* **research, cleaner timed**: the same, with the time spent inside
  :meth:`PhiClassifier.redact` summed (calls = kept text values cleaned);
* **research, header values only**: the classifier with presidio and the
  header-independent recognizers switched off (only the file's own values are
  looked for; a cleaner that does nothing at all is refused by the engine's
  leak check, which finds the PatientID the corpus plants in PatientComments).

Prints per-file and per-value costs and the cleaner's share of research time.

    python -m benchmarks.text_cleaning --files 200
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.corpus import CorpusSpec, ensure_corpus
from privguard import ProjectKey
from privguard.deidentify import Deidentifier
from privguard.text.classifier import PhiClassifier, Redaction, default_classifier


def _run(files: list[Path], key: ProjectKey) -> float:
    deid = Deidentifier("research", key, project="bench")
    out = Path(tempfile.mkdtemp(prefix="pg-textbench-"))
    try:
        t = time.perf_counter()
        for f in files:
            res = deid.file(f, out)
            if res.status != "ok":
                raise SystemExit(f"{f.name}: {res.reason}")
        return time.perf_counter() - t
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    corpus = ensure_corpus(CorpusSpec(n_files=args.files), quiet=True)
    files = corpus.files
    key = ProjectKey.generate()
    default_classifier().redact("warm up Dr. Smith 2020-01-01 call 555-201-3344")

    original = PhiClassifier.redact
    spent = {"t": 0.0, "n": 0}

    def timed(self: PhiClassifier, text: str, context: Any = None) -> Redaction:
        t = time.perf_counter()
        r = original(self, text, context)
        spent["t"] += time.perf_counter() - t
        spent["n"] += 1
        return r

    best: dict[str, float] = {}
    inside = []
    _run(files[:20], key)  # warm the page cache and imports
    for _ in range(args.repeats):
        for mode in ("research", "timed", "header-only"):
            PhiClassifier.redact = timed if mode == "timed" else original  # type: ignore[method-assign]
            c = default_classifier()
            c._use_presidio = c._use_lexicon = mode != "header-only"
            spent.update(t=0.0, n=0)
            dt = _run(files, key)
            best[mode] = min(best.get(mode, dt), dt)
            if mode == "timed":
                inside.append((spent["t"], spent["n"]))
    PhiClassifier.redact = original  # type: ignore[method-assign]
    t_in, calls = min(inside)
    n = len(files)
    print(f"files: {n}; text values cleaned per file: {calls / n:.1f}")
    print(f"research: {best['research'] / n * 1e3:.2f} ms/file ({n / best['research']:.0f} files/s)")
    print(
        f"research, header values only: {best['header-only'] / n * 1e3:.2f} ms/file "
        f"({n / best['header-only']:.0f} files/s)"
    )
    print(f"inside the cleaner: {t_in / n * 1e3:.2f} ms/file, {t_in / max(calls, 1) * 1e6:.0f} us/value")
    print(f"cleaner share of research time (timed): {t_in / best['timed']:.1%}")
    print(f"throughput lost to names/patterns/presidio: {1 - best['header-only'] / best['research']:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
