"""The node: SCP -> durable queue -> worker processes -> forwarder, with status, logs and audit records.

Threads in the node process: pynetdicom's server (one thread per
association), one feeder per worker process (it takes a chunk from the
queue, sends it down the worker's pipe and handles the outcomes), one
forwarder, and the status HTTP server. Worker processes are started before
those threads, so forking them is safe; a worker that dies is replaced from a
fork server.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue as queue_mod
import signal
import threading
import time
from collections import defaultdict
from hashlib import sha256
from io import BytesIO
from typing import Any

from privguard.deidentifier import quiet_pydicom
from privguard.errors import ConfigError
from privguard.header.profile import load_profile
from privguard.node.config import NodeConfig
from privguard.node.events import EventLog, Stats
from privguard.node.filters import InstanceFilter
from privguard.node.forward import DestinationDown, Forwarder, Outgoing, make_forwarder
from privguard.node.quarantine import seal
from privguard.node.queue import DurableQueue, Item
from privguard.node.records import AuditSink, ChainedAuditSink
from privguard.node.scp import CANNOT_UNDERSTAND, OUT_OF_RESOURCES, SUCCESS, start_scp
from privguard.node.worker import Outcome, Task, description, scrub_chunk, worker_main
from privguard.pseudonym.keys import ProjectKey

#: A destination that refuses one instance this many times sends it to quarantine.
MAX_REFUSALS = 5

_TAGS = [0x00080060, 0x00100020, 0x0020000D, 0x00080018, 0x00080016]


class Node:
    """A running de-identifying DICOM node. Use :meth:`start` and :meth:`stop` (or :meth:`serve`).

    Call :meth:`start` from a thread that outlives the node (normally the main thread): the
    worker processes end when the thread that started them ends, or when the node process dies.
    """

    def __init__(
        self, cfg: NodeConfig, audit: AuditSink | None = None, key: ProjectKey | None = None
    ) -> None:
        quiet_pydicom()
        _check_extra("pynetdicom")
        if cfg.destination.type == "stow":
            _check_extra("dicomweb_client")
        self.cfg = cfg
        self.key = key or ProjectKey.load(cfg.key_file)
        profile = load_profile(cfg.profile)
        self.filter = InstanceFilter(cfg.filters)  # verifies a configured approval now
        remember = None if cfg.remember_delivered_days is None else cfg.remember_delivered_days * 86400
        self.queue = DurableQueue(cfg.queue, self.key, cfg.project, cfg.journal_segment_mb << 20, remember)
        self.log = EventLog(cfg.log)
        self.stats = Stats()
        self.audit: AuditSink = (
            audit
            if audit is not None
            else ChainedAuditSink(
                cfg.audit_log, self.key, cfg.project, profile, cfg.audit_signing_key, cfg.operator
            )
        )
        self.forwarder: Forwarder = make_forwarder(cfg.destination)
        self._todo: queue_mod.Queue[Item] = queue_mod.Queue()
        self._lock = threading.Lock()
        self._scrubbing: dict[str, set[int]] = defaultdict(set)  # study token -> seqs not yet scrubbed
        #: De-identified items waiting for the destination, with their descriptions (None: read it from
        #: ``outgoing/<name>.json``). Kept in memory so that forwarding and the status endpoint never
        #: list the queue folders or parse a description per instance.
        self._ready: dict[Item, dict[str, Any] | None] = {}
        self._quarantined = 0  # sealed files in quarantine/
        self._refusals: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._wake = threading.Event()
        #: One worker process per slot, each fed by its own thread, one chunk at a time; None
        #: while a dead one waits to be replaced.
        self._workers: list[WorkerProcess | None] = []
        self._threads: list[threading.Thread] = []
        self._ae: Any = None
        self._server: Any = None
        self._http: Any = None
        self.status_port: int | None = None
        self.port: int | None = None
        self._run_id = f"run_{int(time.time() * 1000):x}"

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.cfg
        # OCR workers hold torch, which must not be forked: spawn them. Header-only workers fork
        # now, before the node's threads run. Starting every worker now fails early on a missing
        # OCR extra.
        ctx = multiprocessing.get_context("spawn" if cfg.ocr != "off" else "fork")
        try:
            for _ in range(cfg.workers):
                self._workers.append(WorkerProcess(ctx, cfg, self.key, scrub_chunk))
        except ConfigError:
            self._close_workers()
            raise
        self.audit.run_record(
            {
                "phase": "start",
                "node_run": self._run_id,
                "listen_ae": cfg.listen.ae_title,
                "destination": cfg.destination.type,
            }
        )
        depth = self.queue.depth()
        self._quarantined = depth["quarantine"]
        for item in self.queue.pending_outgoing():
            self._ready[item] = None
        backlog = self.queue.pending_incoming()
        for item in backlog:
            self._track(item)
            self._todo.put(item)
        loops: list[tuple[Any, str, tuple[int, ...]]] = [
            (self._feed_loop, f"worker-{slot}", (slot,)) for slot in range(len(self._workers))
        ]
        loops.append((self._forward_loop, "forward", ()))
        for target, name, args in loops:
            t = threading.Thread(target=target, args=args, name=f"privguard-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        if cfg.status is not None:
            from privguard.node.status import start_status_server

            try:
                self._http = start_status_server(cfg.status.host, cfg.status.port, self.status)
            except OSError as exc:
                self.stop()
                raise ConfigError(
                    f"cannot serve the status endpoint on {cfg.status.host}:{cfg.status.port} "
                    f"({exc.strerror or type(exc).__name__})"
                ) from None
            self.status_port = int(self._http.server_address[1])
            (cfg.queue / "status.port").write_text(f"{self.status_port}\n")
        try:
            self._ae, self._server = start_scp(cfg.listen, self.receive, pixels=cfg.ocr != "off")
        except OSError as exc:
            self.stop()
            raise ConfigError(
                f"cannot listen on {cfg.listen.host}:{cfg.listen.port} ({exc.strerror or type(exc).__name__})"
            ) from None
        self.port = int(self._server.server_address[1])
        self.log.emit(
            "started",
            ae_title=cfg.listen.ae_title,
            port=self.port,
            status_port=self.status_port,
            workers=cfg.workers,
            destination=cfg.destination.type,
            backlog_incoming=depth["incoming"],
            backlog_outgoing=depth["outgoing"],
            run_id=self._run_id,
        )

    def stop(self) -> None:
        """Stop accepting, let the workers finish what they hold, and close (the queue stays on disk)."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._ae is not None:
            self._ae.shutdown()
        self._stop.set()
        self._wake.set()
        for t in self._threads:  # a feeder finishes the chunk it holds
            t.join(timeout=60)
        self._close_workers()  # a chunk still running (past the wait) dies and stays queued
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        self.forwarder.close()
        snap = self.stats.snapshot()
        self.audit.run_record({"phase": "end", "node_run": self._run_id, "counts": snap["counts"]})
        self.log.emit("stopped", counts=snap["counts"], **self.queue.depth())
        self.audit.close()
        self.queue.close()
        self.log.close()

    def serve(self) -> None:
        """Run until SIGTERM or SIGINT."""
        done = threading.Event()

        def handler(signum: int, frame: Any) -> None:
            done.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        self.start()
        while not done.wait(1.0):
            pass
        self.stop()

    def _close_workers(self) -> None:
        for slot, w in enumerate(self._workers):
            if w is not None:
                w.close()
            self._workers[slot] = None

    # -- receiving (pynetdicom's threads) ------------------------------------------------

    def receive(self, raw: bytes, calling_ae: str, request_sop: str) -> int:
        import pydicom
        from pydicom.errors import InvalidDicomError

        self.stats.add("received")
        try:
            ds = pydicom.dcmread(BytesIO(raw), specific_tags=_TAGS, stop_before_pixels=True)
            study = str(ds.get("StudyInstanceUID", "") or "")
            sop = str(ds.get("SOPInstanceUID", "") or "") or request_sop
        except (InvalidDicomError, ValueError, EOFError, OSError, KeyError, TypeError):
            self.stats.add("unreadable")
            self.stats.error("receive", "the dataset cannot be read")
            self.log.emit("refused", reason="the dataset cannot be read", calling_ae=calling_ae)
            return CANNOT_UNDERSTAND
        verdict = self.filter.check(ds)
        if not verdict.passes:
            self.stats.add(f"filtered:{verdict.reason}")
            self.log.emit("filtered", reason=verdict.reason, calling_ae=calling_ae)
            self.audit.file_records([{"status": "filtered", "reason": verdict.reason}])
            return SUCCESS
        taken: list[Item] = []

        def on_new(it: Item) -> None:
            taken.append(it)
            self._track(it)

        try:
            item, why = self.queue.put(raw, study, sop, self.cfg.forward_again, on_new)
        except OSError as exc:
            for it in taken:
                self._untrack(it)
            self.stats.add("store_errors")
            self.stats.error("receive", f"cannot store the instance ({exc.strerror or type(exc).__name__})")
            self.log.emit("store-error", reason=exc.strerror or type(exc).__name__, calling_ae=calling_ae)
            return OUT_OF_RESOURCES
        if item is None:
            self.stats.add(f"skipped:{why}")
            self.log.emit("skipped", reason=why, calling_ae=calling_ae)
            return SUCCESS
        self._todo.put(item)
        self.log.emit("received", item=item.name, calling_ae=calling_ae, bytes=len(raw))
        return SUCCESS

    def _track(self, item: Item) -> None:
        with self._lock:
            self._scrubbing[item.study].add(item.seq)

    def _untrack(self, item: Item) -> None:
        with self._lock:
            seqs = self._scrubbing.get(item.study)
            if seqs is not None:
                seqs.discard(item.seq)
                if not seqs:
                    del self._scrubbing[item.study]

    # -- de-identification ---------------------------------------------------------------

    def _next_chunk(self) -> list[Item]:
        """Up to ``chunk_size`` queued items, waiting a little for the first (empty: none came)."""
        try:
            chunk = [self._todo.get(timeout=0.2)]
        except queue_mod.Empty:
            return []
        while len(chunk) < self.cfg.chunk_size:
            try:
                chunk.append(self._todo.get_nowait())
            except queue_mod.Empty:
                break
        return chunk

    def _feed_loop(self, slot: int) -> None:
        """One worker's feeder: take a chunk, have the worker scrub it, handle the outcomes."""
        while not self._stop.is_set():
            chunk = self._next_chunk()
            if chunk:
                self._run_chunk(slot, chunk)

    def _worker(self, slot: int) -> WorkerProcess | None:
        """The slot's worker, started again from a fork server if it died (None if that fails)."""
        w = self._workers[slot]
        if w is None and not self._stop.is_set():
            try:
                # A fresh process without the node's threads (and without torch).
                w = WorkerProcess(multiprocessing.get_context("forkserver"), self.cfg, self.key, scrub_chunk)
            except Exception as exc:  # ConfigError (its own message), or the OS refused a process
                self.stats.error("scrub", str(exc) if isinstance(exc, ConfigError) else type(exc).__name__)
                self._stop.wait(1.0)
                return None
            self._workers[slot] = w
            self.log.emit("worker-pool-restarted")
        return w

    def _scrub(self, slot: int, chunk: list[Item]) -> list[Outcome] | str:
        """The chunk's outcomes, or why none: ``"died"``, ``"stopped"`` or the task's exception."""
        w = self._worker(slot)
        while w is None:
            if self._stop.is_set():
                return "stopped"
            w = self._worker(slot)
        try:
            return w.run(str(self.queue.root), [str(self.queue.incoming_path(i)) for i in chunk])
        except WorkerDied:
            w.close()
            self._workers[slot] = None
            return "died"

    def _run_chunk(self, slot: int, chunk: list[Item]) -> None:
        got = self._scrub(slot, chunk)
        if got == "died":
            self._worker_died(slot, chunk)
        elif isinstance(got, str):
            if got != "stopped":
                for item in chunk:
                    self._quarantine(item, f"unexpected error ({got})")
        else:
            self._handle(chunk, got)

    def _worker_died(self, slot: int, chunk: list[Item], retry: bool = False) -> None:
        """A worker died on ``chunk``: retry its instances one by one, so only the culprit is quarantined.

        When stopping, the chunk stays queued (in incoming) and is scrubbed at the next start.
        """
        if self._stop.is_set():
            return
        if retry:  # this one instance broke a worker on its own
            self._quarantine(chunk[0], "a worker process died while de-identifying it")
            return
        self.stats.error("scrub", "a worker process died; retrying its instances one by one")
        for item in chunk:
            if self._stop.is_set():
                return  # the rest stays in incoming and is scrubbed at the next start
            if self.queue.outgoing_path(item).exists():  # moved into outgoing before the death
                with self._lock:
                    self._ready.setdefault(item, None)
                self._untrack(item)
                self._wake.set()
                continue
            got = self._scrub(slot, [item])
            if got == "died":
                self._worker_died(slot, [item], retry=True)
            elif isinstance(got, str):
                if got != "stopped":
                    self._quarantine(item, f"unexpected error ({got})")
            else:
                self._handle([item], got)

    def _handle(self, chunk: list[Item], outcomes: list[Outcome]) -> None:
        by_name = {o.name: o for o in outcomes}
        scrubbed = []
        for item in chunk:
            o = by_name.get(item.name)
            if o is None or not o.ok:
                self._quarantine(item, o.reason if o is not None else "no result", o)
                continue
            with self._lock:  # the worker moved it into outgoing
                self._ready[item] = description(o)
            self._untrack(item)
            scrubbed.append(item.name)
        if scrubbed:
            self.stats.add("scrubbed", len(scrubbed))
            self.log.emit("scrubbed", items=scrubbed)
            self._wake.set()

    def _quarantine(self, item: Item, reason: str | None, outcome: Outcome | None = None) -> None:
        reason = reason or "failed"
        try:
            data = self.queue.incoming_path(item).read_bytes()
            self.queue.to_quarantine(item, seal(data, item.name, self.key, self.cfg.project))
        except OSError as exc:
            self.stats.error("quarantine", f"cannot quarantine ({exc.strerror})", item.name)
            return
        finally:
            self._untrack(item)
        with self._lock:
            self._quarantined += 1
        self.stats.add("quarantined")
        self.stats.error("scrub", reason, item.name)
        self.log.emit("quarantined", item=item.name, reason=reason)
        self.audit.file_records(
            [
                {
                    "input": str(self.queue.incoming_path(item)),
                    "input_sha256": sha256(data).hexdigest(),
                    "status": "quarantined",
                    "reason": reason,
                    "pixels": outcome.pixels if outcome is not None else None,
                }
            ]
        )
        self._wake.set()

    # -- forwarding ----------------------------------------------------------------------

    def _eligible(self, limit: int) -> list[tuple[Item, dict[str, Any] | None]]:
        """Up to ``limit`` outgoing items in arrival order, minus those an older unscrubbed instance of
        their study holds, with their descriptions."""
        with self._lock:
            oldest = {s: min(seqs) for s, seqs in self._scrubbing.items() if seqs}
            ready = sorted(self._ready.items(), key=lambda kv: kv[0])
        out = [(i, m) for i, m in ready if oldest.get(i.study, i.seq + 1) > i.seq]
        return out[:limit]

    def _forward_loop(self) -> None:
        delay = self.cfg.retry_initial
        while not self._stop.is_set():
            self._wake.clear()
            eligible = self._eligible(self.cfg.forward_batch)
            if not eligible:
                self._wake.wait(0.5)
                continue
            items: list[Item] = []
            batch: list[Outgoing] = []
            metas: list[dict[str, Any]] = []
            for item, known in eligible:
                try:
                    meta = known if known is not None else self.queue.meta(item)
                    batch.append(self._outgoing(item, meta))
                except (OSError, ValueError, KeyError):
                    break
                items.append(item)
                metas.append(meta)
            if not batch:
                self._wake.wait(0.5)
                continue
            try:
                deliveries = self.forwarder.send(batch)
            except DestinationDown as exc:
                self._down(str(exc), delay)
                delay = min(delay * 2, self.cfg.retry_max)
                continue
            except Exception as exc:
                self._down(f"unexpected error ({type(exc).__name__})", delay)
                delay = min(delay * 2, self.cfg.retry_max)
                continue
            if self.stats.destination_up is not True:
                self.log.emit("destination-up")
            self.stats.destination_up = True
            delivered: list[Item] = []
            records: list[dict[str, Any]] = []
            for item, meta, d in zip(items, metas, deliveries, strict=False):
                if d.ok:
                    delivered.append(item)
                    records.append(self._file_record(item, meta, "forwarded", None))
                    continue
                self._refusals[item.name] += 1
                self.stats.add("forward_refusals")
                self.stats.error("forward", d.reason or "refused", item.name)
                self.log.emit(
                    "forward-refused", item=item.name, reason=d.reason, attempt=self._refusals[item.name]
                )
                if self._refusals[item.name] >= MAX_REFUSALS:
                    self._quarantine_outgoing(item, meta, d.reason or "refused")
            # Audit and log first, then the ledger: a crash in between sends the batch again
            # (and records it twice) rather than leaving a delivered instance unrecorded.
            self.audit.file_records(records)
            done = set(delivered)
            self.log.emit_many(
                "forwarded",
                [
                    {"item": item.name, "output": meta.get("relpath"), "sha256": meta.get("output_sha256")}
                    for item, meta in zip(items, metas, strict=False)
                    if item in done
                ],
            )
            self.queue.delivered_many(delivered)
            with self._lock:
                for item in delivered:
                    self._ready.pop(item, None)
            self.stats.add("forwarded", len(delivered))
            if len(deliveries) < len(batch):
                self._down("the association ended before the batch was sent", delay)
                delay = min(delay * 2, self.cfg.retry_max)
            else:
                delay = self.cfg.retry_initial

    def _down(self, reason: str, delay: float) -> None:
        if self.stats.destination_up is not False:
            self.log.emit("destination-down", reason=reason, retry_in_s=delay)
        self.stats.destination_up = False
        self.stats.add("forward_errors")
        self.stats.error("forward", reason)
        self._stop.wait(delay)

    def _outgoing(self, item: Item, meta: dict[str, Any]) -> Outgoing:
        import pydicom

        path = self.queue.outgoing_path(item)
        sop, ts = str(meta.get("sop_class") or ""), str(meta.get("transfer_syntax") or "")
        # Only C-STORE needs them; a description without them (an older version, or another
        # destination type before a restart) is completed from the file meta.
        if self.cfg.destination.type == "dimse" and (not sop or not ts):
            fm = pydicom.filereader.read_file_meta_info(path)
            sop, ts = str(fm.MediaStorageSOPClassUID), str(fm.TransferSyntaxUID)
        return Outgoing(path=path, relpath=str(meta["relpath"]), sop_class=sop, transfer_syntax=ts)

    def _file_record(
        self, item: Item, meta: dict[str, Any], status: str, reason: str | None
    ) -> dict[str, Any]:
        return {
            "input": str(self.queue.incoming_path(item)),
            "input_sha256": meta.get("input_sha256"),
            "output": meta.get("relpath"),
            "output_sha256": meta.get("output_sha256"),
            "actions": meta.get("counts"),
            "pixels": meta.get("pixels"),
            "status": status,
            "reason": reason,
        }

    def _quarantine_outgoing(self, item: Item, meta: dict[str, Any], reason: str) -> None:
        try:
            data = self.queue.incoming_path(item).read_bytes()  # the instance as received
            self.queue.to_quarantine(item, seal(data, item.name, self.key, self.cfg.project))
        except OSError as exc:
            self.stats.error("quarantine", f"cannot quarantine ({exc.strerror})", item.name)
            return
        with self._lock:
            self._ready.pop(item, None)
            self._quarantined += 1
        self.stats.add("quarantined")
        self.log.emit("quarantined", item=item.name, reason=f"destination: {reason}")
        self.audit.file_records([self._file_record(item, meta, "quarantined", f"destination: {reason}")])

    # -- status --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        snap = self.stats.snapshot()
        snap["queue"] = self.depth()
        snap["ae_title"] = self.cfg.listen.ae_title
        snap["port"] = self.port
        snap["destination"] = self.cfg.destination.type
        snap["run_id"] = self._run_id
        return snap

    def depth(self) -> dict[str, int]:
        """Queue depth from the node's own bookkeeping (the status endpoint lists no folder)."""
        with self._lock:
            return {
                "incoming": sum(len(seqs) for seqs in self._scrubbing.values()),
                "outgoing": len(self._ready),
                "quarantine": self._quarantined,
            }


class WorkerDied(Exception):
    """The worker process ended while it held a chunk."""


class WorkerProcess:
    """One de-identification worker process and the pipe to it (see :func:`worker_main`)."""

    def __init__(self, ctx: Any, cfg: NodeConfig, key: ProjectKey, task: Task) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        # Daemonic: ended at exit even if the node never reached stop() (as privguard scrub's workers).
        self.proc = ctx.Process(
            target=worker_main, args=(child, cfg, key, task), name="privguard-worker", daemon=True
        )
        self.proc.start()
        child.close()
        try:
            msg = self.conn.recv()
        except (EOFError, OSError):
            msg = ("error", "it ended while starting")
        if msg[0] != "ready":
            self.close()
            raise ConfigError(f"a de-identification worker could not start: {msg[1]}")

    def run(self, root: str, paths: list[str]) -> list[Outcome] | str:
        """The chunk's outcomes, or the name of the exception the task raised. Raises :class:`WorkerDied`."""
        try:
            self.conn.send((root, paths))
            kind, value = self.conn.recv()
        except (EOFError, OSError):
            raise WorkerDied from None
        return value if kind == "done" else str(value)

    def close(self) -> None:
        """Ask the worker to stop (it finishes its chunk); kill it if it does not within 10 s."""
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=10)
        self.conn.close()


def _check_extra(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"privguard serve needs {module}: install it with pip install 'privguard[node]'")
