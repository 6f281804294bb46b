"""Rendering library results for the terminal (rich) and for pipelines (JSON)."""

from __future__ import annotations

import json
import time
from types import TracebackType
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from privguard.models import ACTION_NAMES

if TYPE_CHECKING:
    from privguard.batch import ScrubConfig, ScrubSummary
    from privguard.models import DeidRecord, FileResult

err = Console(stderr=True)
out = Console()


class ScrubProgress:
    """A progress bar on stderr: files done of files found, files/s, errors."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.failed = 0
        self.done = 0
        self.found = 0
        self._start = time.perf_counter()
        self._progress = Progress(
            TextColumn("[bold]scrub[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} files/s"),
            TextColumn("[red]{task.fields[failed]} failed[/]"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        self._task = self._progress.add_task("scrub", total=None, rate="-", failed=0)

    def __enter__(self) -> ScrubProgress:
        if self.enabled:
            self._progress.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.enabled:
            self._progress.stop()

    def discovered(self, n: int) -> None:
        self.found = n
        if self.enabled and n % 100 == 0:
            self._progress.update(self._task, total=n)

    def result(self, res: FileResult) -> None:
        self.done += 1
        if res.status == "failed":
            self.failed += 1
        if self.enabled:
            rate = self.done / max(time.perf_counter() - self._start, 1e-9)
            self._progress.update(
                self._task,
                completed=self.done,
                total=max(self.found, self.done),
                rate=f"{rate:,.0f}",
                failed=self.failed,
            )


def print_summary(summary: ScrubSummary) -> None:
    t = Table(title="privguard scrub", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("files seen", f"{summary.total:,}")
    t.add_row("de-identified", f"[green]{summary.ok:,}[/]")
    t.add_row("skipped (not DICOM)", f"{summary.not_dicom:,}")
    if summary.resumed:
        t.add_row("skipped (done before)", f"{summary.resumed:,}")
    if summary.symlinks:
        t.add_row("skipped (symbolic links)", f"{summary.symlinks:,}")
    if summary.duplicates:
        t.add_row("inputs named twice (done once)", f"{summary.duplicates:,}")
    if summary.worker_deaths:
        t.add_row("workers died (replaced)", f"{summary.worker_deaths:,}")
    if summary.retried:
        t.add_row("files retried", f"{summary.retried:,}")
    t.add_row("failed", f"[red]{summary.failed:,}[/]" if summary.failed else "0")
    # -- burned-in text (issue 11) --
    if summary.ocr_files:
        why = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.ocr_reasons.items(), key=lambda kv: -kv[1]))
        t.add_row("burned-in text checked (OCR)", escape(f"{summary.ocr_files:,} ({why})"))
    if summary.needs_review:
        t.add_row("pixels need review (BurnedInAnnotation YES)", f"[yellow]{summary.needs_review:,}[/]")
    # -- end burned-in text --
    t.add_row("time", f"{summary.seconds:,.1f} s ({summary.files_per_second:,.0f} files/s)")
    t.add_row("output", escape(summary.output))
    out.print(t)
    if summary.counts:
        a = Table(title="attributes by action")
        a.add_column("action")
        a.add_column("count", justify="right")
        for code, n in sorted(summary.counts.items(), key=lambda kv: -kv[1]):
            a.add_row(escape(f"{code} ({ACTION_NAMES.get(code, code)})"), f"{n:,}")
        out.print(a)
    if summary.failures:
        f = Table(title=f"failed files (first {len(summary.failures)})")
        f.add_column("input")
        f.add_column("reason")
        for r in summary.failures[:50]:
            f.add_row(escape(r.input), escape(r.reason or ""))
        out.print(f)


def print_record(output: str, record: DeidRecord, show_all: bool = False) -> None:
    t = Table(
        title=escape(f"profile {record.profile} (PS3.15 {record.standard_edition}) -> {output}")
    )
    for col in ("attribute", "keyword", "VR", "action", "rule"):
        t.add_column(col)
    for ch in record.changes:
        if ch.action == "K" and not show_all:
            continue
        t.add_row(
            escape(ch.path),
            escape(ch.keyword),
            escape(ch.vr),
            escape(f"{ch.action} {ACTION_NAMES.get(ch.action, '')}"),
            escape(ch.reason),
        )
    out.print(t)
    out.print(escape(", ".join(f"{ACTION_NAMES.get(k, k)}: {v}" for k, v in sorted(record.counts.items()))))
    for w in record.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}")


def print_dry_run(cfg: ScrubConfig, as_json: bool) -> None:
    from privguard.batch import dry_run

    plan = dry_run(cfg)
    if as_json:
        click.echo(json.dumps(plan.model_dump(mode="json"), indent=2))
        return
    t = Table(title="dry run: what would happen (nothing written)")
    for col in ("attribute", "keyword", "VR", "action", "rule", "files"):
        t.add_column(col)
    for row in plan.attributes:
        t.add_row(
            escape(row.path),
            escape(row.keyword),
            escape(row.vr),
            escape(f"{row.action} {ACTION_NAMES.get(row.action, '')}"),
            escape(row.reason),
            str(row.files),
        )
    out.print(t)
    ok = sum(1 for f in plan.files if f.status == "ok")
    skipped = sum(1 for f in plan.files if f.status == "skipped")
    failed = [f for f in plan.files if f.status == "failed"]
    out.print(f"{ok} files would be written, {skipped} skipped, {len(failed)} would fail")
    for f in failed[:50]:
        out.print(f"  [red]failed[/] {escape(f.input)}: {escape(f.reason or '')}")
