"""Creating files under an output folder without following symbolic links.

Everything privguard writes under an output folder is created relative to an
open directory descriptor, one path component at a time, with ``O_NOFOLLOW``:
a symbolic link (or a file) planted where a folder belongs makes that write
fail with :class:`SymlinkInOutput` instead of landing outside the folder.
Used by the de-identifier's own writes (:func:`privguard.deidentifier.write_atomic`)
and by the batch runner (:mod:`privguard.batch.fsio`).
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from privguard.errors import OutputError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class SymlinkInOutput(OutputError):
    """A component of an output path is a symbolic link (privguard never creates one)."""


def open_dir_at(parent_fd: int, name: str, create: bool) -> tuple[int, bool]:
    """Open (optionally create) the directory ``name`` under ``parent_fd`` without following links."""
    created = False
    if create:
        try:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
            created = True
        except FileExistsError:
            pass
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd), created
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise SymlinkInOutput(
                "the output path holds a symbolic link or a file where a folder belongs; "
                "privguard never follows links under --out"
            ) from None
        raise


def open_root(path: Path) -> int:
    """Open the output folder itself (it must be a real folder, not a link)."""
    try:
        return os.open(path, DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OutputError(f"the output {path} is a symbolic link or not a folder") from None
        raise OutputError(f"the output folder {path} cannot be opened ({exc.strerror})") from None


@contextmanager
def dir_fd(
    root_fd: int, parts: tuple[str, ...], create: bool = False
) -> Iterator[tuple[int, list[tuple[int, tuple[str, ...]]]]]:
    """Walk ``parts`` below ``root_fd`` (no links followed); yield the last folder's fd.

    Also yields, for every folder this call created, its parent (fd and path
    parts), which must be synced for the new entry to be durable.
    """
    fds: list[int] = []
    created_parents: list[tuple[int, tuple[str, ...]]] = []
    cur = root_fd
    try:
        for depth, name in enumerate(parts):
            if name in ("", ".", "..") or "/" in name:
                raise OutputError("an output path component is not a plain name")
            fd, created = open_dir_at(cur, name, create)
            if created:
                created_parents.append((cur, parts[:depth]))
            fds.append(fd)
            cur = fd
        yield cur, created_parents
    finally:
        for fd in fds:
            os.close(fd)


def same_file_bytes(fd_a: int, fd_b: int) -> bool:
    """Whether two open files hold the same bytes (the same file, or equal contents)."""
    sa, sb = os.fstat(fd_a), os.fstat(fd_b)
    if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
        return True
    if sa.st_size != sb.st_size:
        return False
    off = 0
    while True:
        a = os.pread(fd_a, 1 << 20, off)
        b = os.pread(fd_b, 1 << 20, off)
        if a != b:
            return False
        if not a:
            return True
        off += len(a)


def linux_call(name: str, *argtypes: type) -> Callable[..., int] | None:
    """A Linux system call libc exports but :mod:`os` does not (``syncfs``, ``sync_file_range``).

    ``argtypes`` are its parameters' :mod:`ctypes` types; the result is the C ``int``.
    None off Linux or where libc lacks the call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True)[name]
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return cast(Callable[..., int], fn)


_SYNC_FILE_RANGE = linux_call("sync_file_range", ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int) -> bool:
    """Start writing ``fd``'s dirty pages to disk without waiting for it (a hint, never a guarantee).

    Durability still comes from the ``fsync``/``syncfs`` that follows; starting the write-out
    as each file is finished lets the disk work while the next file is processed, so that
    wait is shorter. Returns whether the write-out was started: False where
    ``sync_file_range(2)`` is not available or refuses ``fd`` (a pipe, say).
    """
    if _SYNC_FILE_RANGE is None:
        return False
    return _SYNC_FILE_RANGE(fd, 0, 0, _SYNC_FILE_RANGE_WRITE) == 0
