"""Helpers for the node tests: planted studies, a pynetdicom sender, Orthanc and node processes.

Everything listens on 127.0.0.1 only and every process is torn down by its
fixture. Orthanc runs from its Debian binary with its own configuration and
storage folder (never the system service).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import UID

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

from study_gen import write_study  # noqa: E402

ORTHANC = shutil.which("Orthanc", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")
STORESCU = shutil.which("storescu")
DICOMWEB_PLUGIN = next(
    (
        p
        for p in (
            Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so"),
            Path("/usr/lib/orthanc/libOrthancDicomWeb.so"),
        )
        if p.exists()
    ),
    None,
)

PATIENT = ("Example^John^Q", "MRN1234567", "19611224")
#: Values planted in the generated study that must not reach the archive.
PLANTED = [b"Example", b"John", b"MRN1234567", b"19611224", b"ACC34567", b"St. Benedict", b"House^Gregory"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_study(root: Path, series: int = 2, per_series: int = 3) -> tuple[list[Path], set[str]]:
    """A study with planted PHI; returns its files and every original UID in it."""
    paths = write_study(root, PATIENT, series=series, per_series=per_series)
    uids: set[str] = set()
    for p in paths:
        ds = pydicom.dcmread(p)
        uids |= {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.FrameOfReferenceUID}
    return paths, uids


def check_deidentified(blobs: list[bytes], original_uids: set[str]) -> set[str]:
    """Assert no planted PHI or original UID survives, every UID is valid and every reference resolves.

    Returns the SOP Instance UIDs found.
    """
    sops: set[str] = set()
    refs: set[str] = set()
    for blob in blobs:
        for token in PLANTED:
            assert token not in blob, "planted PHI found in a forwarded instance"
        for uid in original_uids:
            assert uid.encode() not in blob, "an original UID reached the archive"
        ds = pydicom.dcmread(io.BytesIO(blob))
        for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
            assert UID(str(ds[kw].value)).is_valid, f"{kw} is not a valid UID"
        sops.add(str(ds.SOPInstanceUID))
        for seq in ("ReferencedImageSequence", "SourceImageSequence"):
            for item in ds.get(seq, []):
                refs.add(str(item.ReferencedSOPInstanceUID))
    assert refs, "the study's references are gone"
    assert refs <= sops, "a reference points to an instance that is not in the archive"
    return sops


# -- sending -------------------------------------------------------------------------------------


def send(
    paths: list[Path], port: int, calling: str = "PACS", called: str = "PRIVGUARD", tls: Any = None
) -> list[int]:
    """C-STORE the files over one association; returns the statuses."""
    from pynetdicom import AE
    from pynetdicom.presentation import build_context

    ae = AE(ae_title=calling)
    pairs = set()
    for p in paths:  # one presentation context per SOP class and transfer syntax, as PACSs propose them
        meta = pydicom.filereader.read_file_meta_info(p)
        pairs.add((str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)))
    ae.requested_contexts = [build_context(sop, [ts]) for sop, ts in sorted(pairs)]
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    assoc = ae.associate("127.0.0.1", port, ae_title=called, tls_args=tls)
    if not assoc.is_established:
        ae.shutdown()
        return []
    try:
        return [int(assoc.send_c_store(p).Status) for p in paths]
    finally:
        assoc.release()
        ae.shutdown()


# -- Orthanc -------------------------------------------------------------------------------------


class Orthanc:
    """One Orthanc server with its own configuration and storage, on loopback ports."""

    def __init__(
        self, root: Path, aet: str, modalities: dict[str, list[Any]] | None = None, dicomweb: bool = False
    ) -> None:
        self.root = root
        self.aet = aet
        self.http_port = free_port()
        self.dicom_port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": aet,
            "StorageDirectory": str(root / "db"),
            "IndexDirectory": str(root / "db"),
            "HttpPort": self.http_port,
            "HttpBindAddress": "127.0.0.1",
            "DicomPort": self.dicom_port,
            "DicomAet": aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckModalityHost": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "DicomModalities": modalities or {},
            "ConcurrentJobs": 1,
            "Plugins": [str(DICOMWEB_PLUGIN)] if dicomweb and DICOMWEB_PLUGIN else [],
            "DicomWeb": {"Enable": dicomweb, "Root": "/dicom-web/"},
        }
        self.config = root / "orthanc.json"
        self.config.write_text(json.dumps(config, indent=2))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        assert ORTHANC is not None
        log = open(self.root / "orthanc.log", "ab")  # noqa: SIM115 - handed to the process
        self.proc = subprocess.Popen([ORTHANC, str(self.config)], stdout=log, stderr=log)
        log.close()
        wait_for(self._up, 20, f"Orthanc {self.aet} to start")

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"Orthanc {self.aet} exited: {(self.root / 'orthanc.log').read_text()[-2000:]}"
            )
        try:
            self.get("/system")
            return True
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> Any:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = resp.read()
        return json.loads(data) if data[:1] in (b"{", b"[") else data

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def upload(self, paths: list[Path]) -> str:
        study = ""
        for p in paths:
            study = self.request("POST", "/instances", p.read_bytes())["ParentStudy"]
        return study

    def instances(self) -> list[str]:
        ids: list[str] = self.get("/instances")
        return ids

    def count(self) -> int:
        try:
            return len(self.instances())
        except OSError:
            return -1

    def files(self) -> list[bytes]:
        return [self.request("GET", f"/instances/{i}/file") for i in self.instances()]

    def new_instance_changes(self) -> int:
        """How many times the archive stored a new instance (a duplicate store adds none)."""
        changes = self.get("/changes?limit=10000")["Changes"]
        return sum(1 for c in changes if c["ChangeType"] == "NewInstance")

    def store_to(self, modality: str, resource: str, synchronous: bool = True) -> Any:
        body = json.dumps({"Resources": [resource], "Synchronous": synchronous}).encode()
        return self.request("POST", f"/modalities/{modality}/store", body, timeout=120)


@contextmanager
def orthanc(root: Path, aet: str, **kw: Any) -> Iterator[Orthanc]:
    server = Orthanc(root, aet, **kw)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the node as a process -----------------------------------------------------------------------


class NodeProcess:
    """``privguard serve --config`` in a child process."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        self.config = config
        self.path = root / "node.json"
        self.path.write_text(json.dumps(config, indent=2))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.config["listen"]["port"])

    @property
    def log(self) -> Path:
        return Path(self.config["log"])

    def start(self) -> None:
        port_file = Path(self.config["queue"]) / "status.port"
        port_file.unlink(missing_ok=True)
        err = open(self.root / "node.stderr", "ab")  # noqa: SIM115 - handed to the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "privguard_cli.main", "serve", "--config", str(self.path)],
            stdout=err,
            stderr=err,
        )
        err.close()
        wait_for(self._ready, 60, "privguard serve to start")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError("privguard serve exited: " + (self.root / "node.stderr").read_text()[-2000:])
        return any(e["event"] == "started" and e.get("port") for e in self.events()[-5:]) and _connectable(
            self.port
        )

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # the last line of a killed process
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


def _connectable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def node_config(root: Path, key_file: Path, destination: dict[str, Any], **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "listen": {
            "host": "127.0.0.1",
            "port": free_port(),
            "ae_title": "PRIVGUARD",
            "allowed_callers": ["PACS"],
        },
        "destination": destination,
        "key_file": str(key_file),
        "queue": str(root / "queue"),
        "log": str(root / "node.jsonl"),
        "audit_log": str(root / "audit.jsonl"),
        "workers": 2,
        "ocr": "off",
        "status": {"port": 0},
        "retry_initial": 0.2,
        "retry_max": 1.0,
    }
    cfg.update(extra)
    return cfg


@contextmanager
def node_process(root: Path, config: dict[str, Any]) -> Iterator[NodeProcess]:
    node = NodeProcess(root, config)
    node.start()
    try:
        yield node
    finally:
        node.stop()


# -- TLS -----------------------------------------------------------------------------------------


def make_certs(root: Path) -> dict[str, Path]:
    """A test CA and two certificates it signs (server for 127.0.0.1/localhost, client), as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    root.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        path.chmod(0o600)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("privguard test CA"))
        .issuer_name(name("privguard test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = {"ca": root / "ca.pem"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(f"privguard test {role}"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        out[f"{role}_cert"] = root / f"{role}.pem"
        out[f"{role}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[f"{role}_key"] = root / f"{role}.key"
        write_key(key, out[f"{role}_key"])
    return out


@contextmanager
def storage_scp(root: Path, port: int, ae_title: str = "ARCHIVE", ssl_context: Any = None) -> Iterator[Path]:
    """A minimal pynetdicom Storage SCP that writes what it receives into ``root`` (a test archive)."""
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt

    root.mkdir(parents=True, exist_ok=True)

    def on_store(event: Any) -> int:
        (root / f"{event.request.AffectedSOPInstanceUID}.dcm").write_bytes(event.encoded_dataset())
        return 0

    ae = AE(ae_title=ae_title)
    for cx in AllStoragePresentationContexts:
        assert cx.abstract_syntax is not None
        ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    server = ae.start_server(
        ("127.0.0.1", port), block=False, ssl_context=ssl_context, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        yield root
    finally:
        server.shutdown()
        ae.shutdown()


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
