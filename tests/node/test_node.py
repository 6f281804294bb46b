"""The node in-process, without Orthanc: store-and-forward, order, restarts, quarantine, filters,
TLS, status."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from privguard.audit import iter_records, verify
from privguard.errors import AuditIntegrityError
from privguard.node import Node, NodeConfig, unseal
from privguard.node.forward import Delivery, DestinationDown, Outgoing
from privguard.node.queue import DurableQueue, Item
from privguard.pseudonym.keys import ProjectKey

from .support import (
    PLANTED,
    check_deidentified,
    free_port,
    make_certs,
    make_study,
    send,
    storage_scp,
    wait_for,
)


def _config(tmp_path: Path, key_file: Path, **extra: Any) -> NodeConfig:
    data: dict[str, Any] = {
        "listen": {"port": 0, "allowed_callers": ["PACS"]},
        "destination": {"type": "folder", "path": str(tmp_path / "archive")},
        "key_file": str(key_file),
        "queue": str(tmp_path / "queue"),
        "log": str(tmp_path / "node.jsonl"),
        "audit_log": str(tmp_path / "audit.jsonl"),
        "workers": 2,
        "ocr": "off",
        "status": {"port": 0},
        "retry_initial": 0.1,
        "retry_max": 0.3,
    }
    data.update(extra)
    return NodeConfig.model_validate(data)


@contextmanager
def running(cfg: NodeConfig) -> Iterator[Node]:
    node = Node(cfg)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _events(cfg: NodeConfig) -> list[dict[str, Any]]:
    assert cfg.log is not None
    return [json.loads(x) for x in cfg.log.read_text().splitlines()]


def _archive(cfg: NodeConfig) -> list[Path]:
    return sorted(Path(str(cfg.destination.path)).rglob("*.dcm"))  # type: ignore[union-attr]


class Recording:
    """A forwarder that is down for its first ``down`` calls, then records what it delivers."""

    def __init__(self, down: int = 0) -> None:
        self.down = down
        self.calls = 0
        self.sent: list[str] = []
        self.lock = threading.Lock()

    def send(self, batch: list[Outgoing]) -> list[Delivery]:
        with self.lock:
            self.calls += 1
            if self.calls <= self.down:
                raise DestinationDown("test: down")
            self.sent += [o.path.stem for o in batch]
        return [Delivery(True) for _ in batch]

    def close(self) -> None:
        pass


def test_store_and_forward_to_a_folder(tmp_path: Path, key_file: Path) -> None:
    paths, uids = make_study(tmp_path / "study")
    cfg = _config(tmp_path, key_file)
    with running(cfg) as node:
        assert node.port
        assert send(paths, node.port) == [0] * len(paths)
        wait_for(lambda: len(_archive(cfg)) == len(paths), 30, "the archive folder")
        wait_for(lambda: node.status()["counts"].get("forwarded") == len(paths), 10, "the counts")
        assert node.status()["queue"] == {"incoming": 0, "outgoing": 0, "quarantine": 0}
    blobs = [p.read_bytes() for p in _archive(cfg)]
    sops = check_deidentified(blobs, uids)
    events = _events(cfg)
    assert [e["event"] for e in events].count("received") == len(paths)
    assert {Path(e["output"]).stem for e in events if e["event"] == "forwarded"} == sops
    assert cfg.audit_log is not None and verify(cfg.audit_log).ok  # the hash chain holds
    audit = iter_records(cfg.audit_log)
    assert [r["type"] for r in audit if r["type"] in ("run", "end")] == ["run", "end"]
    [run] = [r for r in audit if r["type"] == "run"]
    assert run["command"] == "serve" and run["destination"] == "folder"
    files = [r for r in audit if r["type"] == "file"]
    assert len(files) == len(paths) and all(r["status"] == "ok" and r["output_sha256"] for r in files)
    assert {Path(r["output"]).stem for r in files} == sops
    assert all(r["input"] and r["input_sha256"] and r["actions"] for r in files)
    text = cfg.log.read_bytes() + cfg.audit_log.read_bytes()  # type: ignore[union-attr]
    for token in [*PLANTED, *(u.encode() for u in uids), str(paths[0].parent).encode()]:
        assert token not in text


def test_unknown_caller_rejected_and_echo_answered(tmp_path: Path, key_file: Path) -> None:
    from pynetdicom import AE

    paths, _ = make_study(tmp_path / "study", series=1, per_series=1)
    cfg = _config(tmp_path, key_file)
    with running(cfg) as node:
        assert send(paths, node.port, calling="STRANGER") == []  # rejected at association
        ae = AE(ae_title="PACS")
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate("127.0.0.1", node.port, ae_title="PRIVGUARD")
        assert assoc.is_established
        assert int(assoc.send_c_echo().Status) == 0
        assoc.release()
        ae.shutdown()
        assert node.status()["counts"].get("received", 0) == 0
    assert _archive(cfg) == []


def test_destination_down_then_up_in_arrival_order_per_study(tmp_path: Path, key_file: Path) -> None:
    a, _ = make_study(tmp_path / "a", series=1, per_series=4)
    b_paths = []
    from study_gen import write_study

    b_paths = write_study(tmp_path / "b", ("Other^Ann", "MRN7654321", "19700101"), series=1, per_series=4)
    interleaved = [p for pair in zip(a, b_paths, strict=True) for p in pair]
    cfg = _config(tmp_path, key_file, forward_batch=3)
    fwd = Recording(down=4)
    with running(cfg) as node:
        node.forwarder = fwd
        assert send(interleaved, node.port) == [0] * len(interleaved)
        wait_for(
            lambda: node.status()["counts"].get("forwarded") == len(interleaved),
            30,
            "delivery after the destination returns",
        )
        assert node.status()["destination_up"] is True
    assert fwd.calls > 4
    items = [Item.parse(s) for s in fwd.sent]
    assert all(i is not None for i in items)
    assert len(set(fwd.sent)) == len(interleaved)  # each exactly once
    by_study: dict[str, list[int]] = {}
    for i in items:
        assert i is not None
        by_study.setdefault(i.study, []).append(i.seq)
    assert len(by_study) == 2
    assert all(seqs == sorted(seqs) for seqs in by_study.values())
    events = [e["event"] for e in _events(cfg)]
    assert "destination-down" in events and "destination-up" in events


class Refusing(Recording):
    """Refuses, every time, the first instance it is offered; delivers the others."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: str | None = None
        self.refusals = 0

    def send(self, batch: list[Outgoing]) -> list[Delivery]:
        out = []
        for o in batch:
            self.refused = self.refused or o.path.stem
            if o.path.stem == self.refused:
                self.refusals += 1
                out.append(Delivery(False, "refused with status 0xA900", status=0xA900))
            else:
                self.sent.append(o.path.stem)
                out.append(Delivery(True))
        return out


def test_an_instance_the_destination_keeps_refusing_is_quarantined(tmp_path: Path, key_file: Path) -> None:
    paths, _ = make_study(tmp_path / "study", series=1, per_series=3)
    cfg = _config(tmp_path, key_file, forward_batch=1)
    fwd = Refusing()
    with running(cfg) as node:
        node.forwarder = fwd
        assert send(paths, node.port or 0) == [0, 0, 0]
        wait_for(lambda: node.status()["counts"].get("quarantined") == 1, 30, "the refused instance")
        wait_for(lambda: node.status()["counts"].get("forwarded") == 2, 30, "the others")
        status = node.status()
    assert fwd.refusals == 5 and fwd.refused not in fwd.sent
    assert status["queue"] == {"incoming": 0, "outgoing": 0, "quarantine": 1}
    assert [e["event"] for e in _events(cfg)].count("forward-refused") == 5
    [q] = [e for e in _events(cfg) if e["event"] == "quarantined"]
    assert q["item"] == fwd.refused and "0xA900" in q["reason"]


def test_queue_survives_a_restart(tmp_path: Path, key_file: Path) -> None:
    paths, uids = make_study(tmp_path / "study", series=1, per_series=5)
    cfg = _config(tmp_path, key_file)
    with running(cfg) as node:
        node.forwarder = Recording(down=10**6)  # the destination never answers in this run
        assert send(paths, node.port) == [0] * len(paths)
        wait_for(lambda: node.status()["queue"]["outgoing"] == len(paths), 30, "the scrubbed backlog")
        # The status counts from memory; the folders say the same.
        assert node.status()["queue"] == node.queue.depth() == {"incoming": 0, "outgoing": 5, "quarantine": 0}
    assert _archive(cfg) == []
    with running(cfg) as node:  # the real folder destination again
        wait_for(lambda: node.status()["counts"].get("forwarded") == len(paths), 30, "the backlog to go out")
        # The sender sends the study again: nothing goes twice.
        assert send(paths, node.port) == [0] * len(paths)
        wait_for(lambda: node.status()["counts"].get("skipped:delivered") == len(paths), 10, "the duplicates")
    check_deidentified([p.read_bytes() for p in _archive(cfg)], uids)
    assert len(_archive(cfg)) == len(paths)


def test_queue_recovers_from_a_crash_at_any_step(tmp_path: Path, key: ProjectKey) -> None:
    import hashlib

    q = DurableQueue(tmp_path / "q", key, "p")
    items = {}
    for n in "abcde":
        item, why = q.put(n.encode() * 10, "1.2.3", f"1.2.3.{ord(n)}", False)
        assert item is not None and why == "queued"
        items[n] = item
    a, b, c, d, e = (items[n] for n in "abcde")
    assert a.seq < b.seq < c.seq < d.seq < e.seq
    assert q.put(b"a" * 10, "1.2.3", f"1.2.3.{ord('a')}", False) == (None, "duplicate")

    def scrubbed(item: Item, data: bytes, sha: str) -> None:
        (q.outgoing / f"{item.name}.json").write_text(json.dumps({"output_sha256": sha}))
        (q.outgoing / f"{item.name}.dcm").write_bytes(data)

    scrubbed(b, b"scrubbed-b", hashlib.sha256(b"scrubbed-b").hexdigest())  # complete: kept
    (q.outgoing / f"{c.name}.json").write_text("{}")  # the move stopped after the description
    scrubbed(d, b"torn", hashlib.sha256(b"what was meant").hexdigest())  # cut short by a power loss
    scrubbed(e, b"scrubbed-e", hashlib.sha256(b"scrubbed-e").hexdigest())
    q.delivered_many([e])
    (q.incoming / f"{e.name}.dcm").write_bytes(b"e")  # its removal was lost in the crash
    (q.incoming / ".tmp-x.dcm").write_bytes(b"half")
    (q.work / "chunk").mkdir()
    q.close()

    q2 = DurableQueue(tmp_path / "q", key, "p")
    assert q2.pending_incoming() == [a, c, d]  # to scrub (again)
    assert q2.pending_outgoing() == [b]
    assert sorted(p.name for p in q2.outgoing.iterdir()) == [f"{b.name}.dcm", f"{b.name}.json"]
    assert not (q2.incoming / f"{e.name}.dcm").exists()
    assert not (q2.incoming / ".tmp-x.dcm").exists() and list(q2.work.iterdir()) == []
    q2.delivered_many([b])
    assert not (q2.incoming / f"{b.name}.dcm").exists()
    n, _ = q2.put(b"x", "1.2.3", "1.2.3.4", False)
    assert n is not None and n.seq > e.seq  # sequence numbers keep growing
    q2.close()
    q3 = DurableQueue(tmp_path / "q", key, "p")
    assert q3.put(b"b", "1.2.3", f"1.2.3.{ord('b')}", False) == (None, "delivered")
    assert q3.put(b"b", "1.2.3", f"1.2.3.{ord('b')}", True)[1] == "queued"
    for p in q3.root.rglob("*"):
        assert "1.2.3" not in p.name


def _broken_file(path: Path) -> Path:
    """A CT whose encapsulated pixel data is cut short (no sequence delimiter): privguard refuses it."""
    paths, _ = make_study(path.parent / "src", series=1, per_series=1)
    ds = pydicom.dcmread(paths[0])
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = encapsulate([b"\xff\xd8" + b"\x00" * 62 + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    path.write_bytes(data[:-8])  # drop the sequence delimiter item
    return path


def test_failures_go_to_an_encrypted_quarantine(
    tmp_path: Path, key_file: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pynetdicom import _config as netconfig

    monkeypatch.setattr(netconfig, "STORE_SEND_CHUNKED_DATASET", True)  # send the file's bytes as they are
    good, _ = make_study(tmp_path / "study", series=1, per_series=2)
    bad = _broken_file(tmp_path / "bad" / "bad.dcm")
    cfg = _config(tmp_path, key_file, project="q-test")
    with running(cfg) as node:
        assert send([good[0], bad, good[1]], node.port) == [0, 0, 0]
        wait_for(lambda: node.status()["counts"].get("quarantined") == 1, 30, "the quarantine")
        wait_for(lambda: len(_archive(cfg)) == 2, 30, "the good instances")
        status = node.status()
    sealed = list((tmp_path / "queue" / "quarantine").glob("*.pgq"))
    assert len(sealed) == 1
    blob = sealed[0].read_bytes()
    for token in PLANTED:
        assert token not in blob
    from pynetdicom.dsutils import split_dataset

    _, offset = split_dataset(bad)  # the node stores the dataset as sent, under its own file meta
    assert unseal(sealed[0], key, "q-test").endswith(bad.read_bytes()[offset:])
    with pytest.raises(AuditIntegrityError):
        unseal(sealed[0], key, "another-project")
    [event] = [e for e in _events(cfg) if e["event"] == "quarantined"]
    assert cfg.audit_log is not None and verify(cfg.audit_log).ok
    failed = [r for r in iter_records(cfg.audit_log) if r["type"] == "file" and r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["reason"] == event["reason"]
    [end] = [r for r in iter_records(cfg.audit_log) if r["type"] == "end"]
    assert end["outcome"] == "partial"
    assert event["reason"] and "bad" not in event["reason"]
    assert status["counts"]["quarantined"] == 1 and status["last_errors"][-1]["reason"] == event["reason"]
    json_status = json.dumps(status)
    for token in PLANTED:
        assert token.decode() not in json_status


def test_modality_filter(tmp_path: Path, key_file: Path) -> None:
    paths, _ = make_study(tmp_path / "study", series=1, per_series=2)
    cfg = _config(tmp_path, key_file, filters={"modalities": ["mr"]})
    with running(cfg) as node:
        assert send(paths, node.port) == [0, 0]  # acknowledged, then dropped
        assert node.status()["counts"]["filtered:modality-not-selected"] == 2
        assert node.status()["queue"] == {"incoming": 0, "outgoing": 0, "quarantine": 0}
    assert _archive(cfg) == []


def test_inclusion_list_filter(tmp_path: Path, key_file: Path) -> None:
    from study_gen import write_study

    from privguard.compliance import SigningKey, approve_request, write_approval

    root = Path(__file__).resolve().parents[2]
    request = root / "examples" / "compliance" / "hipaa-safe-harbor-request.yaml"
    officer = SigningKey.generate()
    _, pub = officer.save(tmp_path / "officer")
    _, approval = approve_request(request, officer, officer="PO", valid_for=dt.timedelta(hours=1))
    assert approval is not None and "MRN-TOKEN-0001" in approval.payload.included_patients
    write_approval(approval, tmp_path / "approval.json")
    inside = write_study(
        tmp_path / "in", ("Included^Pat", "MRN-TOKEN-0001", "19500101"), series=1, per_series=2
    )
    outside = write_study(tmp_path / "out", ("Outside^Pat", "MRN9999999", "19500101"), series=1, per_series=2)
    inclusion = {"request": str(request), "approval": str(tmp_path / "approval.json"), "public_key": str(pub)}
    cfg = _config(tmp_path, key_file, filters={"inclusion": inclusion})
    with running(cfg) as node:
        assert send(inside + outside, node.port) == [0] * 4
        wait_for(lambda: len(_archive(cfg)) == 2, 30, "the included patient's instances")
        assert node.status()["counts"]["filtered:patient-not-included"] == 2
    # An approval that does not verify stops the node from starting.
    (tmp_path / "approval.json").write_text((tmp_path / "approval.json").read_text().replace("PO", "XX"))
    with pytest.raises(AuditIntegrityError):
        Node(_config(tmp_path / "again", key_file, filters={"inclusion": inclusion}))


def test_tls_on_both_sides(tmp_path: Path, key_file: Path) -> None:
    """Sender -TLS-> node -TLS-> archive, with certificates from files and client certificates required."""
    certs = make_certs(tmp_path / "certs")
    paths, uids = make_study(tmp_path / "study", series=1, per_series=3)
    server_tls = {"cert": str(certs["server_cert"]), "key": str(certs["server_key"]), "ca": str(certs["ca"])}
    client_tls = {"cert": str(certs["client_cert"]), "key": str(certs["client_key"]), "ca": str(certs["ca"])}
    archive_port = free_port()
    dest = {
        "type": "dimse",
        "host": "127.0.0.1",
        "port": archive_port,
        "ae_title": "ARCHIVE",
        "tls": client_tls,
    }
    cfg = _config(
        tmp_path,
        key_file,
        listen={"port": 0, "allowed_callers": ["PACS"], "tls": server_tls},
        destination=dest,
    )
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(certs["ca"]))
    client.load_cert_chain(str(certs["client_cert"]), str(certs["client_key"]))
    anonymous = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(certs["ca"]))
    archive_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs["ca"]))
    archive_ctx.load_cert_chain(str(certs["server_cert"]), str(certs["server_key"]))
    archive_ctx.verify_mode = ssl.CERT_REQUIRED
    with (
        storage_scp(tmp_path / "tls-archive", archive_port, ssl_context=archive_ctx) as received,
        running(cfg) as node,
    ):
        port = node.port or 0
        assert send(paths[:1], port) == []  # plain TCP to the TLS port: no association
        assert send(paths[:1], port, tls=(anonymous, "localhost")) == []  # no client certificate
        assert send(paths, port, tls=(client, "localhost")) == [0] * len(paths)
        wait_for(lambda: len(list(received.glob("*.dcm"))) == len(paths), 30, "the TLS archive")
    check_deidentified([p.read_bytes() for p in received.glob("*.dcm")], uids)


def test_cli_status_and_config_errors(tmp_path: Path, key_file: Path) -> None:
    from privguard_cli.main import cli

    runner = CliRunner()
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen:\n  port: 11112\ndestination:\n  type: folder\n  path: x\nkey_file: k\n")
    res = runner.invoke(cli, ["serve", "--config", str(bad)])
    assert res.exit_code == 2
    assert "allowed_callers" in res.output and "Traceback" not in res.output
    cfg = _config(tmp_path, key_file)
    conf = tmp_path / "node.json"
    conf.write_text(cfg.model_dump_json())
    paths, _ = make_study(tmp_path / "study", series=1, per_series=2)
    with running(cfg) as node:
        assert send(paths, node.port or 0) == [0, 0]
        wait_for(lambda: node.status()["counts"].get("forwarded") == 2, 30, "forwarding")
        res = runner.invoke(cli, ["serve", "status", "--config", str(conf)])
        assert res.exit_code == 0, res.output
        shown = json.loads(res.output)
        assert shown["counts"]["forwarded"] == 2 and shown["queue"]["outgoing"] == 0
    with socket.socket() as busy:  # a port already taken: a clean configuration error
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = str(busy.getsockname()[1])
        res = runner.invoke(
            cli, ["serve", "--config", str(conf), "--port", taken, "--queue", str(tmp_path / "q2")]
        )
    assert res.exit_code == 2 and "cannot listen" in res.output and "Traceback" not in res.output


def crashing_chunk(queue_root: str, inputs: list[str]) -> Any:
    """Stands in for the worker task: a worker process dies on any input holding the marker."""
    import os

    from privguard.node.worker import scrub_chunk

    if any(b"CRASH-THIS-WORKER" in Path(p).read_bytes() for p in inputs):
        os._exit(3)
    return scrub_chunk(queue_root, inputs)


def test_a_worker_that_dies_is_replaced(
    tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import privguard.node.service as service

    paths, _ = make_study(tmp_path / "study", series=1, per_series=4)
    killer = pydicom.dcmread(paths[1])
    killer.ImageComments = "CRASH-THIS-WORKER"
    killer.save_as(paths[1])
    monkeypatch.setattr(service, "scrub_chunk", crashing_chunk)
    cfg = _config(tmp_path, key_file, chunk_size=4)
    with running(cfg) as node:
        assert send(paths, node.port or 0) == [0] * 4  # acknowledged: on disk before any worker
        wait_for(lambda: node.status()["counts"].get("quarantined") == 1, 60, "the poisoned instance")
        wait_for(lambda: len(_archive(cfg)) == 3, 60, "the others")
    events = [e["event"] for e in _events(cfg)]
    assert "worker-pool-restarted" in events
    [q] = [e for e in _events(cfg) if e["event"] == "quarantined"]
    assert "worker process died" in q["reason"]


def test_supported_contexts_copy_cheaply_and_completely() -> None:
    """pynetdicom deep-copies the supported contexts per association: the copy must equal the generic one."""
    import copy
    import time

    from privguard.node.config import Listen
    from privguard.node.scp import build_ae, copyable_contexts

    ae = build_ae(Listen(ae_title="PRIVGUARD", allowed_callers=["PACS"]))
    ours = copyable_contexts(ae.supported_contexts)
    start = time.perf_counter()
    copied = copy.deepcopy(ours)
    took = time.perf_counter() - start
    generic = copy.deepcopy(ae.supported_contexts)
    assert [vars(c) for c in copied] == [vars(c) for c in generic] == [vars(c) for c in ae.supported_contexts]
    assert len(copied) == len(ae.supported_contexts) > 100
    for a, b in zip(copied, ours, strict=True):
        assert a is not b and a._transfer_syntax is not b._transfer_syntax
    copied[0].transfer_syntax = ["1.2.840.10008.1.2"]  # changing the copy leaves the original as it was
    assert ours[0].transfer_syntax != copied[0].transfer_syntax
    assert took < 0.05  # the generic deepcopy takes about 0.1 s here


def test_video_and_jpip_syntaxes_are_refused_when_the_pixel_stage_is_on() -> None:
    from pydicom.uid import MPEG4HP41, ExplicitVRLittleEndian, JPEGBaseline8Bit

    from privguard.node.scp import transfer_syntaxes

    jpip_referenced = "1.2.840.10008.1.2.4.94"
    on, off = transfer_syntaxes(pixels=True), transfer_syntaxes(pixels=False)
    assert MPEG4HP41 in off and jpip_referenced in off
    assert MPEG4HP41 not in on and jpip_referenced not in on
    assert {ExplicitVRLittleEndian, JPEGBaseline8Bit} <= set(on)


def test_the_documented_configuration_is_valid() -> None:
    """The example in docs/node.md validates (so the docs cannot drift from the model)."""
    import re

    from privguard.node.config import NodeConfig
    from privguard.policyio import parse_text, validate

    docs = Path(__file__).resolve().parents[2] / "docs" / "node.md"
    match = re.search(r"```yaml\n(.*?)```", docs.read_text(encoding="utf-8"), re.S)
    assert match is not None
    cfg = validate(
        NodeConfig, parse_text(match.group(1), "yaml", "example", "docs/node.md"), "example", "docs"
    )
    assert cfg.destination.type == "dimse" and cfg.filters.inclusion is not None
    assert cfg.listen.tls is not None and cfg.status is not None and cfg.status.port == 8118
    assert {o.value for o in cfg.options} == {"clean_descriptors"}


def test_chunks_cancelled_by_a_stop_stay_queued(tmp_path: Path, key_file: Path) -> None:
    node = Node(_config(tmp_path, key_file))
    paths, _ = make_study(tmp_path / "study", series=1, per_series=1)
    item, why = node.queue.put(paths[0].read_bytes(), "1.2.3", "1.2.3.4", False)
    assert item is not None and why == "queued"
    node._stop.set()  # a stop kills a worker still holding a chunk: the chunk stays queued
    node._worker_died(0, [item])
    node._worker_died(0, [item], retry=True)
    assert node.queue.depth() == {"incoming": 1, "outgoing": 0, "quarantine": 0}
    assert node.stats.snapshot()["counts"].get("quarantined") is None
    node.queue.close()
    node.log.close()
    node.audit.close()


def test_syntax_is_read_for_c_store_only(
    tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers read each output's SOP class and transfer syntax only for a C-STORE destination; a
    description without them (a folder node's, before a restart as a C-STORE node) is completed."""
    import privguard.node.worker as worker

    paths, _ = make_study(tmp_path / "study", series=1, per_series=1)
    sop_class = str(pydicom.dcmread(paths[0]).SOPClassUID)
    folder = _config(tmp_path / "f", key_file)
    to_archive = {"type": "dimse", "host": "127.0.0.1", "port": 1, "ae_title": "A"}
    dimse = _config(tmp_path / "d", key_file, destination=to_archive)
    described = {}
    for name, cfg in (("folder", folder), ("dimse", dimse)):
        assert worker.needs_syntax(cfg) is (name == "dimse")
        monkeypatch.setattr(worker, "_SYNTAX", worker.needs_syntax(cfg))  # what init_worker sets
        node = Node(cfg)
        item, _ = node.queue.put(paths[0].read_bytes(), "1.2.3", "1.2.3.4", False)
        assert item is not None
        deid = worker.make_deidentifier(cfg, node.key)
        [outcome] = worker.scrub_chunk(str(cfg.queue), [str(node.queue.incoming_path(item))], deid)
        assert outcome.ok
        described[name] = (outcome.sop_class, outcome.transfer_syntax)
        out = node._outgoing(item, {"relpath": outcome.relpath})  # a description without the syntax
        assert (out.sop_class, out.transfer_syntax) == (
            ("", "") if name == "folder" else (sop_class, "1.2.840.10008.1.2.1")
        )
        node.forwarder.close()
        node.queue.close()
        node.log.close()
        node.audit.close()
    assert described["folder"] == ("", "")
    assert described["dimse"] == (sop_class, "1.2.840.10008.1.2.1")
