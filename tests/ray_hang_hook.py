"""A Ray worker set-up hook for tests: inputs named ``slow*`` make the de-identifier hang."""

from __future__ import annotations

import time
from pathlib import Path

from privguard.deidentifier import Deidentifier
from privguard.models import FileResult


def install() -> None:
    original = Deidentifier.files

    def files(
        self: Deidentifier, paths: list[Path], out_dir: Path, *, dry_run: bool = False
    ) -> list[FileResult]:
        if any(p.name.startswith("slow") for p in paths):
            time.sleep(120)
        return original(self, paths, out_dir, dry_run=dry_run)

    Deidentifier.files = files  # type: ignore[method-assign]
