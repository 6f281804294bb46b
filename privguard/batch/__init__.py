"""Bulk scrubbing: folders of DICOM files in, a de-identified folder out.

``scrub(ScrubConfig(...))`` walks the inputs (DICOM recognised by content, not
by name), de-identifies every file in isolated worker processes (one
:class:`~privguard.deidentifier.Deidentifier` per worker, files sent in chunks),
and places each output under ``OUT/<patient>/<study>/<series>/<instance>.dcm``:
names built from pseudonymous values only, never from an input path.

* A bad file is reported (``failed`` with a PHI-free reason) and the batch goes
  on; so is a file whose worker died (it is retried once in a fresh worker),
  ran past ``file_timeout`` or over ``max_file_memory``.
* ``resume`` skips inputs finished by an earlier run of the same settings; the
  output is deterministic, so a resumed run yields the same bytes as a fresh
  one. The journal (``OUT/.privguard/journal.jsonl``) records only keyed
  tokens of the input paths, never the paths.
* One run per output folder at a time (``OUT/.privguard/lock``).
* The optional JSON-lines report holds original paths: it stays with the sender.

Modules, lowest first: ``config`` (inputs and outputs of a run), ``fsio``
(link-proof, durable writes; the lock), ``limits`` (memory and inflate bounds),
``journal``, ``paths`` (checks and the input walk), ``worker`` (one worker's
set-up and work), ``executor`` (processes, inline; the retry policy),
``ray_executor``, ``run`` (``scrub``), ``dryrun``.
"""

from privguard.batch.config import RunInfo, ScrubConfig, ScrubSummary, summary_json
from privguard.batch.dryrun import AttributePlan, DryRun, dry_run
from privguard.batch.executor import Executor, InlineExecutor, ProcessExecutor
from privguard.batch.journal import JOURNAL, JOURNAL_DIR, Journal
from privguard.batch.paths import iter_files, walk_inputs
from privguard.batch.run import RunSink, chunks, load_key, scrub
from privguard.batch.worker import make_deidentifier, setup_worker

__all__ = [
    "JOURNAL",
    "JOURNAL_DIR",
    "AttributePlan",
    "DryRun",
    "Executor",
    "InlineExecutor",
    "Journal",
    "ProcessExecutor",
    "RunInfo",
    "RunSink",
    "ScrubConfig",
    "ScrubSummary",
    "chunks",
    "dry_run",
    "iter_files",
    "load_key",
    "make_deidentifier",
    "scrub",
    "setup_worker",
    "summary_json",
    "walk_inputs",
]
