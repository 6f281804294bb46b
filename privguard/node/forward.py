"""Forwarders: deliver de-identified instances by C-STORE, STOW-RS or into a folder.

A forwarder gets a batch of files in arrival order and returns, in that order,
one :class:`Delivery` per file it got to. It stops at the first transport
failure (raising :class:`DestinationDown`) so that nothing overtakes an
earlier instance of its study; a per-instance refusal by the destination is
reported as a failed delivery.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from privguard.node.config import DimseDestination, FolderDestination, StowDestination
from privguard.node.journal import fsync_dir
from privguard.node.queue import fsync_file

logger = logging.getLogger(__name__)

#: A folder batch of at least this many files is made durable by one ``syncfs`` of the destination.
SYNCFS_MIN_FILES = 2


class DestinationDown(Exception):
    """The destination cannot be reached now (retry later). The message holds no PHI."""


@dataclass(frozen=True)
class Outgoing:
    path: Path
    relpath: str
    sop_class: str
    transfer_syntax: str


@dataclass(frozen=True)
class Delivery:
    ok: bool
    reason: str | None = None
    status: int | None = None


class Forwarder(Protocol):
    def send(self, batch: list[Outgoing]) -> list[Delivery]: ...

    def close(self) -> None: ...


# -- C-STORE ---------------------------------------------------------------------------------


class DimseForwarder:
    """One association per batch; each instance sent under its own transfer syntax."""

    def __init__(self, dest: DimseDestination) -> None:
        from pynetdicom import AE, _config

        # Send each file's bytes as stored, after reading only its file meta (no decode, no re-encode).
        _config.STORE_SEND_CHUNKED_DATASET = True
        self.dest = dest
        self._tls = None
        if dest.tls is not None:
            from privguard.node.tlsctx import client_context

            self._tls = (client_context(dest.tls), dest.host)
        self._ae = AE(ae_title=dest.calling_ae_title)
        self._ae.acse_timeout = dest.timeout
        self._ae.dimse_timeout = dest.timeout
        self._ae.network_timeout = dest.timeout
        self._ae.connection_timeout = dest.timeout

    def send(self, batch: list[Outgoing]) -> list[Delivery]:
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
        from pynetdicom.presentation import build_context

        pairs: dict[str, set[str]] = {}
        for o in batch:
            pairs.setdefault(o.sop_class, set()).add(o.transfer_syntax)
        contexts = []
        for sop, syntaxes in pairs.items():
            for ts in sorted(syntaxes):
                contexts.append(build_context(sop, [ts]))
            if not syntaxes & {ExplicitVRLittleEndian, ImplicitVRLittleEndian}:
                contexts.append(build_context(sop, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]))
        if len(contexts) > 128:  # a DICOM association has at most 128 presentation contexts
            return (
                self.send(batch[: len(batch) // 2])
                if len(batch) > 1
                else [Delivery(False, "too many contexts")]
            )
        try:
            assoc = self._ae.associate(
                self.dest.host, self.dest.port, contexts, ae_title=self.dest.ae_title, tls_args=self._tls
            )
        except OSError as exc:
            raise DestinationDown(f"cannot connect ({type(exc).__name__})") from None
        if not assoc.is_established:
            raise DestinationDown(
                "association rejected or aborted"
                if assoc.is_rejected or assoc.is_aborted
                else "no association"
            )
        out: list[Delivery] = []
        try:
            accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
            for o in batch:
                if not any(a == o.sop_class for a, _ in accepted):
                    out.append(Delivery(False, "the destination does not accept this SOP class"))
                    continue
                try:
                    status = assoc.send_c_store(o.path)
                except (ValueError, AttributeError) as exc:  # no context for its transfer syntax
                    logger.debug("C-STORE not attempted: %s", type(exc).__name__)
                    out.append(Delivery(False, "no accepted presentation context for its transfer syntax"))
                    continue
                if not status or "Status" not in status:
                    if not assoc.is_established:
                        break  # aborted or timed out: what is left waits for the next try
                    out.append(Delivery(False, "no valid response"))
                    continue
                code = int(status.Status)
                if code == 0x0000 or 0xB000 <= code <= 0xBFFF:
                    out.append(Delivery(True, status=code))
                else:
                    out.append(Delivery(False, f"refused with status 0x{code:04X}", status=code))
        finally:
            if assoc.is_established:
                assoc.release()
        if len(out) < len(batch) and not out:
            raise DestinationDown("association lost")
        return out

    def close(self) -> None:
        self._ae.shutdown()


# -- STOW-RS ---------------------------------------------------------------------------------


class StowForwarder:
    """STOW-RS with dicomweb-client: one multipart request per batch."""

    def __init__(self, dest: StowDestination) -> None:
        import requests
        from dicomweb_client.api import DICOMwebClient

        logging.getLogger("dicomweb_client").setLevel(logging.WARNING)
        session = requests.Session()
        if dest.ca is not None:
            session.verify = str(dest.ca)
        if dest.client_cert is not None:
            session.cert = (
                (str(dest.client_cert), str(dest.client_key)) if dest.client_key else str(dest.client_cert)
            )
        if dest.username is not None:
            password = os.environ.get(dest.password_env or "", "")
            session.auth = (dest.username, password)
        self._timeout = dest.timeout
        self._client = DICOMwebClient(url=dest.url, session=session)
        self._client.set_http_retry_params(retry=False)

    def send(self, batch: list[Outgoing]) -> list[Delivery]:
        import pydicom
        import requests

        datasets = [pydicom.dcmread(o.path) for o in batch]
        try:
            response = self._client.store_instances(datasets)
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else 0
            if code in (400, 409, 415) and len(batch) > 1:
                # Some instances refused: find them one by one.
                return [d for o in batch for d in self.send([o])]
            if code in (400, 409, 415):
                return [Delivery(False, f"refused with HTTP {code}", status=code)]
            raise DestinationDown(f"HTTP {code}") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise DestinationDown(f"cannot connect ({type(exc).__name__})") from None
        failed: set[str] = set()
        if response is not None and "FailedSOPSequence" in response:
            for item in response.FailedSOPSequence:
                failed.add(str(item.get("ReferencedSOPInstanceUID", "")))
        return [
            Delivery(False, "refused by the STOW-RS service")
            if str(ds.SOPInstanceUID) in failed
            else Delivery(True)
            for ds in datasets
        ]

    def close(self) -> None:
        pass


# -- folder ----------------------------------------------------------------------------------


class FolderForwarder:
    """Put each file at ``<root>/<relpath>``; an existing identical file counts as delivered.

    On the queue's file system the file is hard-linked, elsewhere copied. The
    batch counts as delivered once it is durable: for two files or more on
    Linux, one ``syncfs`` of the destination's file system (every file and
    folder written there, as ``privguard scrub`` syncs a chunk); otherwise every
    file and every folder touched is fsync'd (in parallel).
    """

    def __init__(self, dest: FolderDestination) -> None:
        from privguard.batch.fsio import syncfs

        self.root = dest.path
        self.root.mkdir(parents=True, exist_ok=True)
        self._syncfs = syncfs
        self._root_fd = os.open(self.root, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._syncers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="privguard-fsync")

    def send(self, batch: list[Outgoing]) -> list[Delivery]:
        out = []
        touched: set[Path] = set()
        try:
            for o in batch:
                final = self.root / o.relpath
                for d in _new_dirs(self.root, final.parent):
                    touched.add(d.parent)
                final.parent.mkdir(parents=True, exist_ok=True)
                touched.add(final.parent)
                out.append(self._place(o.path, final))
            placed = [self.root / o.relpath for o, d in zip(batch, out, strict=True) if d.ok]
            if len(placed) < SYNCFS_MIN_FILES or not self._syncfs(self._root_fd):
                list(self._syncers.map(fsync_file, placed))
                list(self._syncers.map(fsync_dir, touched))
        except OSError as exc:
            raise DestinationDown(f"cannot write the destination folder ({exc.strerror})") from None
        return out

    def _place(self, src: Path, final: Path) -> Delivery:
        try:
            os.link(src, final)
            return Delivery(True)
        except FileExistsError:
            return self._same(src, final)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
        fd, tmp = tempfile.mkstemp(prefix=".privguard-", suffix=".tmp", dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as dst, open(src, "rb") as fh:
                shutil.copyfileobj(fh, dst, 1 << 20)
            os.chmod(tmp, 0o644)
            try:
                os.link(tmp, final)
            except FileExistsError:
                return self._same(src, final)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return Delivery(True)

    @staticmethod
    def _same(src: Path, final: Path) -> Delivery:
        if final.read_bytes() == src.read_bytes():
            return Delivery(True)
        return Delivery(False, "a different file already has this name at the destination")

    def close(self) -> None:
        self._syncers.shutdown(wait=True)
        os.close(self._root_fd)


def _new_dirs(root: Path, folder: Path) -> list[Path]:
    """The folders between ``root`` and ``folder`` that do not exist yet."""
    missing = []
    while folder != root and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def make_forwarder(dest: DimseDestination | StowDestination | FolderDestination) -> Forwarder:
    if isinstance(dest, DimseDestination):
        return DimseForwarder(dest)
    if isinstance(dest, StowDestination):
        return StowForwarder(dest)
    return FolderForwarder(dest)
