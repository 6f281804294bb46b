"""What the free-text cleaner costs inside the research profile (issue 14).

On the header benchmark corpus (:mod:`benchmarks.corpus`), one process runs
``Deidentifier("research").file`` over every file three ways, interleaved,
best of ``--repeats``, with the time inside :meth:`PhiClassifier.redact` (cleaning)
and :meth:`PhiContext.from_dataset` (gathering the file's own values) summed:

* **research-uncached**: names and patterns classified afresh for every value
  (the worst case: a corpus in which no text repeats);
* **research-cold**: as shipped, with the cleaner's caches emptied first
  (values repeated across a series are classified once, from the first file on);
* **research-warm**: as shipped, caches kept (values repeated across a series
  are classified once);
* **header-only**: names and patterns switched off: only the file's own values
  are looked for (the cleaner before issue 14, without presidio).

Times are this process's CPU time (``time.process_time``), not wall time, so that
other jobs on a shared machine do not skew the comparison. Prints per-file and
per-value costs and the cleaner's share of research time.

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
from privguard.deidentifier import Deidentifier
from privguard.text import classifier as classifier_module
from privguard.text.classifier import (
    _BY_CONTENT,
    PhiClassifier,
    Redaction,
    _lexical_spans,
    default_classifier,
)
from privguard.text.context import PhiContext


def _run(deid: Deidentifier, files: list[Path]) -> float:
    out = Path(tempfile.mkdtemp(prefix="pg-textbench-"))
    try:
        t = time.process_time()
        for f in files:
            res = deid.file(f, out)
            if res.status != "ok":
                raise SystemExit(f"{f.name}: {res.reason}")
        return time.process_time() - t
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    corpus = ensure_corpus(CorpusSpec(n_files=args.files), quiet=True)
    files = corpus.files
    deid = Deidentifier("research", ProjectKey.generate(), project="bench")
    clf = default_classifier()

    original = PhiClassifier.redact
    spent = {"t": 0.0, "n": 0}

    def timed(self: PhiClassifier, text: str, context: Any = None) -> Redaction:
        t = time.process_time()
        r = original(self, text, context)
        spent["t"] += time.process_time() - t
        spent["n"] += 1
        return r

    from_dataset = PhiContext.from_dataset.__func__  # type: ignore[attr-defined]
    ctx_spent = {"t": 0.0}

    def timed_context(cls: type[PhiContext], ds: Any) -> PhiContext:
        t = time.process_time()
        c: PhiContext = from_dataset(cls, ds)
        ctx_spent["t"] += time.process_time() - t
        return c

    PhiClassifier.redact = timed  # type: ignore[method-assign]
    PhiContext.from_dataset = classmethod(timed_context)  # type: ignore[method-assign,assignment]
    _run(deid, files[:20])  # imports, the name dictionary, the page cache
    best: dict[str, tuple[float, float, float]] = {}
    calls = 0.0
    try:
        for _ in range(args.repeats):
            for mode in ("research-uncached", "research-cold", "research-warm", "header-only"):
                clf._use_lexicon = mode != "header-only"
                setattr(  # noqa: B010
                    classifier_module,
                    "_lexical_spans",
                    _lexical_spans.__wrapped__ if mode == "research-uncached" else _lexical_spans,
                )
                if mode == "research-cold":
                    _lexical_spans.cache_clear()
                    _BY_CONTENT.clear()
                spent.update(t=0.0, n=0)
                ctx_spent["t"] = 0.0
                total = _run(deid, files)
                calls = spent["n"]
                if mode not in best or total < best[mode][0]:
                    best[mode] = (total, spent["t"], ctx_spent["t"])
    finally:
        PhiClassifier.redact = original  # type: ignore[method-assign]
        PhiContext.from_dataset = classmethod(from_dataset)  # type: ignore[method-assign,assignment]
        clf._use_lexicon = True
        setattr(classifier_module, "_lexical_spans", _lexical_spans)  # noqa: B010
    n = len(files)
    print(f"files: {n}; text values cleaned per file: {calls / n:.1f}; CPU time, best of {args.repeats}")
    print(
        "| mode | ms/file | files/s | cleaning, ms/file | us/value | context, ms/file "
        "| cleaning share | cleaning + context share |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode, (total, inside, ctx) in best.items():
        print(
            f"| {mode} | {total / n * 1e3:.2f} | {n / total:.0f} | {inside / n * 1e3:.2f} "
            f"| {inside / max(calls, 1) * 1e6:.0f} | {ctx / n * 1e3:.2f} | {inside / total:.1%} "
            f"| {(inside + ctx) / total:.1%} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
