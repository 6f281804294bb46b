"""File-system steps of a batch run that must not be fooled by symbolic links.

Everything written under ``--out`` is created relative to an open directory
descriptor, one path component at a time, with ``O_NOFOLLOW``: a symbolic
link planted anywhere under the output folder makes the write fail instead
of landing outside. Outputs are linked into place (never overwriting) and
made durable (the file, then its directory, ``fsync``'d; or, for a chunk of
several files on Linux, one ``syncfs`` of the output's file system) before the
journal names them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import stat
from pathlib import Path

from privguard.errors import ConfigError, OutputError
from privguard.outdir import DIR_FLAGS as _DIR_FLAGS
from privguard.outdir import SymlinkInOutput as SymlinkInOutput  # re-exported: the batch layer's names
from privguard.outdir import dir_fd as dir_fd
from privguard.outdir import linux_call, same_file_bytes
from privguard.outdir import open_root as open_root

_SYNCFS = linux_call("syncfs", ctypes.c_int)
#: A chunk with at least this many placed files is made durable by one ``syncfs``.
SYNCFS_MIN_FILES = 2


def syncfs(fd: int) -> bool:
    """Make everything written to ``fd``'s file system durable; False where ``syncfs`` is not available.

    Raises :class:`OSError` when the kernel reports a write-back error (Linux 5.8+
    reports errors of any file on that file system since the descriptor was opened).
    """
    if _SYNCFS is None:
        return False
    if _SYNCFS(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return True


class Placer:
    """Moves a chunk's finished files from staging into the output, then makes them durable together.

    :meth:`place` hard-links each file into place (an existing output is never
    replaced: identical bytes are accepted, different bytes are a duplicate SOP
    instance) and removes the staged name; :meth:`sync` then ``fsync``'s every
    placed file, its folder and the parent of every folder created for it.
    Syncing after all links means one journal commit for the chunk on
    journalling file systems, not one per file. A chunk of
    :data:`SYNCFS_MIN_FILES` or more files on Linux is made durable instead by
    one ``syncfs(2)`` of the output's file system, which writes back every file
    and folder placed (and anything else dirty there) and waits for it: one
    call instead of one ``fsync`` per file, each waiting for its own write-out
    (2-4 ms a file on this project's test machine). Nothing placed may be
    reported done before :meth:`sync` returned.
    """

    def __init__(self, staging_root: Path, out_fd: int) -> None:
        self.staging_root = staging_root
        self.out_fd = out_fd
        self._files: list[int] = []
        self._dirs: set[tuple[str, ...]] = set()

    def place(self, rel: str) -> None:
        parts = tuple(rel.split("/"))
        src = self.staging_root / rel
        if not os.path.lexists(src) and output_exists(self.out_fd, rel):
            return  # an identical copy earlier in the same chunk (checked when staged) was placed
        with dir_fd(self.out_fd, parts[:-1], create=True) as (target_fd, created_parents):
            try:
                os.link(src, parts[-1], dst_dir_fd=target_fd, follow_symlinks=False)
                linked = True
            except FileExistsError:
                linked = False
            try:
                final = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=target_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise SymlinkInOutput(
                        "the output path is a symbolic link; privguard never follows links under --out"
                    ) from None
                raise
            try:
                if not linked:
                    src_fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                    try:
                        same = stat.S_ISREG(os.fstat(final).st_mode) and same_file_bytes(src_fd, final)
                    finally:
                        os.close(src_fd)
                    if not same:
                        raise OutputError(
                            "duplicate SOP Instance UID: another input with different content already "
                            "produced this output; scrub duplicates into a separate folder"
                        )
            except BaseException:
                os.close(final)
                raise
            # An identical file left by an interrupted run is synced too.
            self._files.append(final)
            self._dirs.add(parts[:-1])
            self._dirs.update(p for _, p in created_parents)
        src.unlink()

    def sync(self) -> None:
        """``fsync`` every placed file, then each folder once (deepest first); or one ``syncfs``."""
        try:
            if len(self._files) >= SYNCFS_MIN_FILES and syncfs(self.out_fd):
                return
            for fd in self._files:
                os.fsync(fd)
            for parts in sorted(self._dirs, key=len, reverse=True):
                with dir_fd(self.out_fd, parts) as (fd, _):
                    os.fsync(fd)
        finally:
            self.close()

    def close(self) -> None:
        for fd in self._files:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._files.clear()
        self._dirs.clear()


def place(staging_root: Path, out_fd: int, rel: str) -> None:
    """Place one staged file and make it durable (see :class:`Placer`)."""
    placer = Placer(staging_root, out_fd)
    try:
        placer.place(rel)
        placer.sync()
    finally:
        placer.close()


def output_exists(out_fd: int, rel: str) -> bool:
    """True if ``rel`` is a regular file under the output, reached without following links."""
    parts = tuple(rel.split("/"))
    try:
        with dir_fd(out_fd, parts[:-1]) as (fd, _):
            st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
    except (OSError, OutputError):
        return False
    return stat.S_ISREG(st.st_mode)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, _DIR_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_HELD: set[int] = set()
"""File descriptors of the locks this process holds (forked workers close their copies)."""


def close_inherited_locks() -> None:
    """In a forked worker: close the copies of the driver's lock fds.

    A worker must not keep the lock alive after its driver died. Closing a copy
    releases nothing while the driver holds its own (``flock`` belongs to the
    open file description, released when the last copy closes).
    """
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


class OutLock:
    """An advisory lock (``flock``) on ``OUT/.privguard/lock``, held for the whole run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise OutputError(f"cannot create the lock file {self.path} ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(
                f"another privguard run is writing into this output folder (it holds the lock {self.path}); "
                "wait for it to finish"
            ) from None
        self._fd = fd
        _HELD.add(fd)

    def release(self) -> None:
        if self._fd is not None:
            _HELD.discard(self._fd)
            os.close(self._fd)
            self._fd = None


def create_private_file(path: Path) -> int:
    """Open ``path`` for writing (created 0600 or truncated) without following a link."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)  # an earlier report may have been readable by others
        return fd
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path} is a symbolic link; privguard does not write through links") from None
        raise ConfigError(f"cannot write {path} ({exc.strerror})") from None
