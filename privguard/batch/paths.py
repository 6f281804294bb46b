"""Where a run may read and write, checked before any work starts (exit 2 otherwise).

* The output folder may not lie inside an input, nor an input inside it.
* The report (original paths), previews (original pixels) and vault (the
  pseudonym table) may not lie inside an input tree or inside the output
  folder (the report may with ``report_inside_out``), nor be an input, the
  key file or each other; an existing report is overwritten only if it is a
  privguard report.
* Inputs: folders are walked in a stable order; symbolic links inside them are
  followed only with ``follow_symlinks`` (otherwise each is reported skipped
  and counted); a file reached twice (same device and inode) is processed once.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from privguard.batch.config import ScrubConfig
from privguard.errors import ConfigError, OutputError

Kind = Literal["file", "symlink", "duplicate"]


def _inside(p: Path, root: Path) -> bool:
    return p == root or p.is_relative_to(root)


def check_paths(cfg: ScrubConfig, key_file: Path | None) -> None:
    """Refuse (ConfigError/OutputError, exit 2) anything unsafe about the run's paths."""
    out = cfg.out.resolve()
    inputs: list[tuple[Path, Path]] = []
    for inp in cfg.inputs:
        if not os.path.lexists(inp):
            raise ConfigError(f"input {inp} does not exist")
        if not inp.exists():
            raise ConfigError(f"input {inp} is a broken symbolic link")
        r = inp.resolve()
        if r == out or (r.is_dir() and out.is_relative_to(r)):
            raise OutputError(f"the output folder {cfg.out} lies inside the input {inp}; choose another")
        if r.is_relative_to(out):
            raise OutputError(f"the input {inp} lies inside the output folder {cfg.out}; choose another")
        inputs.append((inp, r))
    side: list[tuple[str, Path, bool]] = []  # (what, path, is a folder)
    if cfg.report is not None:
        side.append(("report", cfg.report, False))
    if cfg.pixels is not None and cfg.pixels.previews is not None:
        side.append(("previews folder", cfg.pixels.previews, True))
    if cfg.vault is not None:
        side.append(("vault", cfg.vault, False))
    resolved: dict[Path, str] = {}
    if key_file is not None:
        resolved[key_file.resolve()] = "key file"
    for what, path, _folder in side:
        r = path.resolve()
        for inp, ri in inputs:
            if _inside(r, ri) or (ri.is_file() and r == ri):
                raise OutputError(f"the {what} {path} lies inside the input {inp}; choose another place")
        if _inside(r, out) and not (what == "report" and cfg.report_inside_out):
            hint = " (or pass --report-inside-out)" if what == "report" else ""
            raise OutputError(
                f"the {what} {path} lies inside the output folder {cfg.out}, which is meant to be shared; "
                f"choose another place{hint}"
            )
        if r in resolved:
            raise OutputError(f"the {what} {path} is the same file as the {resolved[r]}")
        resolved[r] = what
    if cfg.report is not None and not cfg.dry_run:
        check_report_target(cfg.report)
    if not cfg.dry_run:
        check_out(cfg)


def check_report_target(path: Path) -> None:
    """An existing report may be replaced only if privguard wrote it (JSON lines of results)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"the report {path} cannot be checked ({exc.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"the report {path} is a symbolic link; privguard does not write through links")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"the report {path} exists and is not a file")
    if st.st_size == 0:
        return
    with open(path, "rb") as fh:
        first = fh.readline(65536)
    try:
        line = json.loads(first)
    except ValueError:
        line = None
    if not (isinstance(line, dict) and isinstance(line.get("input"), str) and "status" in line):
        raise ConfigError(f"the report {path} exists and is not a privguard report; refusing to overwrite it")


def check_out(cfg: ScrubConfig) -> None:
    """The output must be a real, empty (or, with resume, earlier privguard) folder."""
    out = cfg.out
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"the output {out} is a symbolic link; give the real folder")
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"the output {out} exists and is not a folder")
    from privguard.batch.journal import JOURNAL_DIR

    if cfg.resume:
        return
    entries = [e for e in os.listdir(out) if e != JOURNAL_DIR]
    private = out / JOURNAL_DIR
    leftover = os.path.isdir(private) and not os.path.islink(private) and set(os.listdir(private)) - {"lock"}
    if entries or leftover or (os.path.lexists(private) and not os.path.isdir(private)):
        raise OutputError(
            f"the output folder {out} is not empty; use --resume to continue an earlier run there, "
            "or choose an empty folder"
        )


def walk_inputs(inputs: list[Path], follow: bool) -> Iterator[tuple[Kind, Path]]:
    """Every regular file under ``inputs``, in a stable (sorted) order, each once.

    Inputs named explicitly are taken even when they are links; links found
    inside folders come back as ``symlink`` unless ``follow``. A file reached a
    second time (another name, a link, a hard link) comes back as ``duplicate``.
    """
    seen: set[tuple[int, int]] = set()

    def take(p: Path, st: os.stat_result) -> tuple[Kind, Path] | None:
        if not stat.S_ISREG(st.st_mode):
            return None  # fifos, sockets, devices: never opened
        ident = (st.st_dev, st.st_ino)
        if ident in seen:
            return ("duplicate", p)
        seen.add(ident)
        return ("file", p)

    for inp in inputs:
        if not inp.is_dir():
            try:
                hit = take(inp, os.stat(inp))
            except OSError:
                continue
            if hit is not None:
                yield hit
            continue
        visited: set[tuple[int, int]] = set()
        for root, dirs, files in os.walk(inp, followlinks=follow):
            try:
                rst = os.stat(root)
            except OSError:
                dirs[:] = []
                continue
            if (rst.st_dev, rst.st_ino) in visited:  # a link loop
                dirs[:] = []
                continue
            visited.add((rst.st_dev, rst.st_ino))
            dirs.sort()
            if not follow:
                links = [d for d in dirs if os.path.islink(os.path.join(root, d))]
                for d in links:
                    yield ("symlink", Path(root) / d)
                dirs[:] = [d for d in dirs if d not in links]
            for name in sorted(files):
                p = Path(root) / name
                try:
                    st = os.lstat(p)
                    if stat.S_ISLNK(st.st_mode):
                        if not follow:
                            yield ("symlink", p)
                            continue
                        st = os.stat(p)
                except OSError:
                    if follow:
                        yield ("symlink", p)  # a broken link
                    continue
                hit = take(p, st)
                if hit is not None:
                    yield hit


def iter_files(inputs: list[Path]) -> Iterator[Path]:
    """Every regular file under the inputs (links inside folders not followed), each once."""
    for kind, p in walk_inputs(inputs, follow=False):
        if kind == "file":
            yield p
