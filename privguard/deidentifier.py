"""De-identify one dataset or one file: the library's main entry points.

>>> from privguard import ProjectKey, deidentify, deidentify_file
>>> key = ProjectKey.load("project.key")
>>> new_ds, record = deidentify(ds, profile="research", key=key, project="lung-study")
>>> result = deidentify_file("in.dcm", "out_dir", profile="basic", key=key)

A :class:`Deidentifier` holds what is expensive to build (the compiled
profile, the pseudonymizer, the PHI classifier) and is reused for many files;
the batch runner keeps one per worker process.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import io
import logging
import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pydicom.dataset import Dataset
from pydicom.uid import UID

from privguard.dicom.verify import Copied, Forbidden, hidden_identifiers, identifying_values, verify_output
from privguard.dicomio import (
    WHOLE_FILE_LIMIT,
    Source,
    encode_pixel_element,
    read_source,
    write_output,
    write_whole,
)
from privguard.digests import Digester, attach
from privguard.errors import InputError, OCRUnavailableError, OutputError, PrivguardError
from privguard.header.engine import FileState, HeaderEngine
from privguard.header.plan import compile_plan
from privguard.header.profile import DeidProfile, Option, load_profile
from privguard.models import DeidRecord, FileDigests, FileResult
from privguard.outdir import SymlinkInOutput, dir_fd, same_file_bytes, start_writeback
from privguard.pixels.types import PixelOptions, PixelOutcome, PixelStage
from privguard.pseudonym.keys import ProjectKey
from privguard.pseudonym.pseudonymizer import Pseudonymizer, make_pseudonymizer

if TYPE_CHECKING:
    from privguard.text.context import PhiContext

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PROJECT",
    "Deidentifier",
    "PixelOptions",
    "PixelOutcome",
    "PixelStage",
    "deidentify",
    "deidentify_file",
    "inspect_file",
]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_PROJECT = "default"


class Deidentifier:
    """Reusable de-identification context: one profile, one key, one project."""

    def __init__(
        self,
        profile: str | Path | DeidProfile = "basic",
        key: ProjectKey | str | Path | None = None,
        *,
        project: str = DEFAULT_PROJECT,
        vault: str | Path | None = None,
        options: set[Option] | None = None,
        pseudonymizer: Pseudonymizer | None = None,
        pixels: PixelOptions | None = None,
        digests: bool = False,
    ) -> None:
        quiet_pydicom()
        #: Give every written file's result the SHA-256 of its input and output bytes (FileResult.digests).
        self.digests = digests
        #: Bytes of inputs and outputs :meth:`files` may hold unhashed for :meth:`take_digests`
        #: (the batch worker hashes them while the outputs sync); 0: hashed in :meth:`files`.
        self.hold_digests = 0
        self._held: Digester | None = None
        prof = load_profile(profile)
        if options:
            prof = prof.with_options(set(options))
        self.profile = prof
        self.project = project
        if pseudonymizer is None:
            if key is None:
                from privguard.errors import KeyMaterialError

                raise KeyMaterialError(
                    "a project key is needed (make one with: privguard keys new --out FILE)"
                )
            pkey = key if isinstance(key, ProjectKey) else ProjectKey.load(key)
            pseudonymizer = make_pseudonymizer(
                prof.pseudonyms.method,
                pkey,
                project,
                prof.pseudonyms.date_shift_days,
                str(vault) if vault is not None else None,
            )
        self.pseudonymizer = pseudonymizer
        self.plan = compile_plan(prof)
        self.engine = HeaderEngine(self.plan, pseudonymizer, TextStage())
        #: Tags the profile keeps on purpose: the verifier does not search for their values.
        self._kept = frozenset(
            t for t, rule in self.plan.rules.items() if rule.code == "K" or rule.source == "override"
        )
        self.pixel_stage: PixelStage | None = None
        if pixels is not None and pixels.ocr != "off" and prof.pixels.ocr != "off":
            try:
                from privguard.pixels import build_stage
            except ImportError as exc:
                raise OCRUnavailableError(
                    f"the burned-in text stage cannot load ({exc.name or 'a module'} is missing): "
                    "install it with pip install 'privguard[ocr]', or pass --ocr off to skip it"
                ) from None
            self.pixel_stage = build_stage(prof, pixels)

    def close(self) -> None:
        self.pseudonymizer.close()
        if self.pixel_stage is not None:
            self.pixel_stage.close()

    # -- datasets -----------------------------------------------------------------------

    def dataset(self, ds: Dataset, *, record: bool = True) -> tuple[Dataset, DeidRecord]:
        """Return a de-identified copy of ``ds`` and the record of what changed."""
        new = copy.deepcopy(ds)
        st = self.engine.run(new, record=record)
        if hasattr(new, "file_meta") and "SOPInstanceUID" in new:
            new.file_meta.MediaStorageSOPInstanceUID = new.SOPInstanceUID
            new.file_meta.pop(0x00020016, None)  # SourceApplicationEntityTitle
            new.file_meta.pop(0x00020100, None)  # PrivateInformationCreatorUID
            new.file_meta.pop(0x00020102, None)  # PrivateInformation
        return new, self.engine.to_record(st)

    # -- files --------------------------------------------------------------------------

    def process(
        self,
        src: Source,
        *,
        record: bool = False,
        context: PhiContext | None = None,
        name_words: tuple[str, ...] | None = None,
    ) -> tuple[FileState, str]:
        """De-identify a parsed source's header in place; return the state and its output relative path.

        ``name_words``: the patient's name words, when the caller read them already (see
        :meth:`HeaderEngine.patient_name_words`).
        """
        st = self.engine.run(src.ds, record=record, context=context, name_words=name_words)
        if src.trailing is not None:
            self.engine.walk_more(src.trailing, st)
        return st, self.output_relpath(src.ds, st)

    def output_relpath(self, ds: Dataset, st: FileState) -> str:
        """``<patient>/<study>/<series>/<instance>.dcm`` from pseudonymous values only.

        The patient folder is always the patient pseudonym (even if an override
        kept the PatientID); UID components are the output's UIDs, and anything
        that is not a plain file-name-safe value becomes a keyed token.
        """
        patient = st.patient_pseudonym or self.pseudonymizer.identifier("patient", st.patient_key)
        parts = [patient]
        for kw, fallback in (("StudyInstanceUID", "study"), ("SeriesInstanceUID", "series")):
            parts.append(self._name(str(ds.get(kw, "") or ""), fallback))
        parts.append(self._name(str(ds.get("SOPInstanceUID", "") or ""), "instance") + ".dcm")
        return "/".join(parts)

    def _name(self, value: str, fallback: str) -> str:
        value = value.strip()
        if value and _SAFE_NAME.match(value) and value not in (".", ".."):
            return value
        token = self.pseudonymizer.identifier("other", f"{fallback}\x00{value}")
        return f"{fallback}-{token}"

    def file(self, input_path: str | Path, out_dir: str | Path, *, dry_run: bool = False) -> FileResult:
        """De-identify one file into ``out_dir`` (atomically). Errors become a failed result."""
        return self.files([Path(input_path)], Path(out_dir), dry_run=dry_run)[0]

    def files(self, paths: list[Path], out_dir: Path, *, dry_run: bool = False) -> list[FileResult]:
        """De-identify several files; the pixel stage (when on) batches their OCR together.

        Every input gets a result; an error on one file never stops the others.
        """
        results: list[FileResult | None] = [None] * len(paths)
        loaded: list[tuple[int, Source]] = []
        dig = self._digester(dry_run)
        for i, path in enumerate(paths):
            try:
                loaded.append((i, read_source(path)))
            except PrivguardError as exc:
                results[i] = _failed(path, str(exc))
            except Exception as exc:
                results[i] = _unexpected(path, exc)
            else:
                if dig is not None:
                    src = loaded[-1][1]
                    whole = src.data is not None and len(src.data) == src.size
                    dig.input(str(src.path), src.data if whole else None, src.path)
        pixel: dict[int, tuple[PixelOutcome, PhiContext]] = {}
        if self.pixel_stage is not None and loaded:
            pixel = self._run_pixels(loaded, results)
        for i, src in loaded:
            if results[i] is not None:
                continue
            try:
                results[i] = self._finish(src, pixel.get(i), Path(out_dir), dry_run, dig)
            except PrivguardError as exc:
                results[i] = _failed(src.path, str(exc))
            except Exception as exc:
                results[i] = _unexpected(src.path, exc)
        done = [r for r in results if r is not None]
        if dig is not None and dig is not self._held:
            done = attach(done, dig.finish())
        return done

    def _digester(self, dry_run: bool) -> Digester | None:
        if not self.digests or dry_run:
            return None
        if not self.hold_digests:
            return Digester()
        if self._held is None:
            self._held = Digester(self.hold_digests)
        return self._held

    def take_digests(self) -> dict[str, FileDigests]:
        """Hash what :meth:`files` held (see :attr:`hold_digests`); the digests by input path."""
        return self._held.finish() if self._held is not None else {}

    def _run_pixels(
        self, loaded: list[tuple[int, Source]], results: list[FileResult | None]
    ) -> dict[int, tuple[PixelOutcome, PhiContext]]:
        assert self.pixel_stage is not None
        from privguard.text.context import PhiContext  # the text layer loads when a file needs it

        todo: list[tuple[int, Source, PhiContext]] = []
        for i, src in loaded:
            try:
                if self.pixel_stage.wants(src):
                    todo.append((i, src, PhiContext.from_dataset(src.ds)))
            except PrivguardError as exc:
                results[i] = _failed(src.path, str(exc))
        if not todo:
            return {}
        try:
            outcomes = self.pixel_stage.process_many([(src, ctx) for _, src, ctx in todo])
        except PrivguardError as exc:
            for i, src, _ in todo:
                results[i] = _failed(src.path, str(exc))
            return {}
        return {i: (out, ctx) for (i, _, ctx), out in zip(todo, outcomes, strict=True)}

    def _finish(
        self,
        src: Source,
        pixel: tuple[PixelOutcome, PhiContext] | None,
        out_dir: Path,
        dry_run: bool,
        dig: Digester | None = None,
    ) -> FileResult:
        """Write the file's output (and hand its bytes to ``dig``)."""
        outcome, context = pixel if pixel is not None else (None, None)
        if outcome is not None and outcome.failed:
            return FileResult(
                input=str(src.path), status="failed", reason=outcome.failed, pixels=outcome.report
            )
        words = self.engine.patient_name_words(src.ds)  # read once, before any change
        forbidden = None if dry_run else self.forbidden_values(src, words)
        st, rel = self.process(src, context=context, name_words=words)
        if outcome is not None:
            self._apply_pixel_outcome(src, st, outcome)
        if not dry_run:
            encoded = self.engine.method_bytes(src.implicit, src.little)
            if outcome is not None and outcome.verified:  # the code sequence gained 113101
                encoded = {t: b for t, b in encoded.items() if t != 0x00120064}
            key = str(src.path)
            write_atomic(
                src,
                st,
                out_dir,
                rel,
                outcome,
                encoded,
                forbidden=forbidden,
                digest=(lambda data: dig.output(key, data)) if dig is not None else None,
            )
        return FileResult(
            input=str(src.path),
            output=rel,
            status="ok",
            counts=dict(st.counts),
            warnings=tuple(st.warnings),
            pixels=outcome.report if outcome is not None else None,
        )

    def forbidden_values(self, src: Source, name_words: tuple[str, ...] | None = None) -> Forbidden:
        """The input's identifying values the output must not hold (see :mod:`privguard.dicom.verify`).

        ``name_words``: the patient's name words, when the caller read them already.
        """
        nested = list(src.scan.collected) if src.scan is not None else []
        if src.scan is not None and src.header and not src.scan.deflated:
            # Identifying elements hidden inside other values (see hidden_identifiers).
            nested += hidden_identifiers(src.header, src.scan.meta_end, len(src.header), src.little)
        return identifying_values(
            src.ds,
            keep=self._kept,
            keep_uids=self.engine.retain_uids,
            nested=nested,
            written_methods=self.engine.method_texts(),
            name_words=self.engine.patient_name_words(src.ds) if name_words is None else name_words,
            method_codes=self.engine.method_codes(),
            temporal=self.engine.temporal_value(),
        )

    def _apply_pixel_outcome(self, src: Source, st: FileState, outcome: PixelOutcome) -> None:
        ds = src.ds
        for keyword, value in outcome.elements.items():
            setattr(ds, keyword, value)
            st.dirty.add(int(ds.data_element(keyword).tag))  # type: ignore[union-attr]
        if outcome.verified:
            ds.BurnedInAnnotation = "NO"
            st.dirty.add(0x00280301)
            self.engine.add_code(ds, Option.CLEAN_PIXEL_DATA.value)
            st.dirty.add(0x00120064)


class TextStage:
    """The Clean options' text classifier, handed to the header engine (loaded on first use)."""

    def __init__(self) -> None:
        self._classifier: Any = None

    def context(self, ds: Dataset) -> PhiContext:
        from privguard.text.context import PhiContext

        return PhiContext.from_dataset(ds)

    def redact(self, text: str, context: Any) -> Any:
        if self._classifier is None:
            from privguard.text.classifier import default_classifier

            self._classifier = default_classifier()
        return self._classifier.redact(text, context)


def quiet_pydicom() -> None:
    """Stop pydicom from logging or warning about values it reads.

    pydicom's validation messages quote the offending value (a UID, a name),
    which must not reach logs. privguard reports problems per file itself.
    """
    import pydicom.config

    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    logging.getLogger("pydicom").setLevel(logging.ERROR)


def _failed(path: Path, reason: str) -> FileResult:
    return FileResult(input=str(path), status="failed", reason=reason)


def _unexpected(path: Path, exc: Exception) -> FileResult:
    # A bug or an unforeseen malformation: report it for this file, never crash the batch.
    logger.debug("unexpected %s while processing a file", type(exc).__name__, exc_info=True)
    return FileResult(input=str(path), status="failed", reason=f"unexpected error ({type(exc).__name__})")


def write_atomic(
    src: Source,
    st: FileState,
    out_dir: Path,
    rel: str,
    pixel: PixelOutcome | None = None,
    encoded: dict[int, bytes] | None = None,
    *,
    forbidden: Forbidden | None = None,
    digest: Callable[[bytes | Path], None] | None = None,
) -> None:
    """Write the output to a temporary file beside ``out_dir/rel``, verify it, then link it into place.

    The written bytes are re-scanned strictly and searched for the input's
    identifying values (``forbidden``, see :mod:`privguard.dicom.verify`); an
    output that fails is deleted and the file reported failed.
    An existing output is never overwritten: if it holds the same bytes
    (the same instance de-identified before, as on ``--resume``) that is fine;
    different bytes mean two inputs share a SOP Instance UID, which is an error.
    The folders of ``rel`` are created and entered without following links
    (:mod:`privguard.outdir`): a link planted where one of them belongs fails the
    file instead of sending the output elsewhere. ``out_dir`` itself is the
    caller's choice and is created if missing. Folders created for an output that
    then fails are removed again.
    ``digest`` is given the bytes written (a file too large to hold: the
    temporary file's path, before it is linked into place), for their SHA-256.
    """
    parts = tuple(rel.split("/"))
    root = _open_out_dir(out_dir)
    try:
        with dir_fd(root, parts[:-1], create=True) as (parent, created):
            try:
                _write_in(
                    src,
                    st,
                    parent,
                    parts[-1],
                    out_dir.joinpath(*parts[:-1]),
                    pixel,
                    encoded,
                    forbidden,
                    digest,
                )
            except BaseException:
                for parent_fd, prefix in reversed(created):  # folders made for this output, deepest first
                    try:
                        os.rmdir(parts[len(prefix)], dir_fd=parent_fd)
                    except OSError:
                        break
                raise
    finally:
        os.close(root)


def _open_out_dir(out_dir: Path) -> int:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise OutputError(
            f"the output folder cannot be opened ({exc.strerror or type(exc).__name__})"
        ) from None


def _write_in(
    src: Source,
    st: FileState,
    parent: int,
    name: str,
    folder: Path,
    pixel: PixelOutcome | None,
    encoded: dict[int, bytes] | None,
    forbidden: Forbidden | None,
    digest: Callable[[bytes | Path], None] | None,
) -> None:
    """:func:`write_atomic` inside the open folder ``parent`` (``folder`` names it, for hashing only)."""
    tmp = f".privguard-{secrets.token_hex(8)}.tmp"
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent
    )
    try:
        in_memory = src.size <= WHOLE_FILE_LIMIT
        with os.fdopen(fd, "wb") as out:
            if in_memory:  # verified before a byte reaches the disk
                buf = io.BytesIO()
                copies: list[tuple[int, int, int]] = []
                _write(src, st, buf, pixel, encoded, copies)
                data = buf.getvalue()
                copied = Copied(src.scan, src.header, copies) if src.scan is not None and copies else None
                verify_output(data, forbidden or Forbidden(()), copied)
                out.write(data)
                if digest is not None:
                    digest(data)
            else:
                _write(src, st, out, pixel, encoded)
            out.flush()
            start_writeback(out.fileno())  # the disk works while the next file is processed
            os.fchmod(out.fileno(), 0o644)
        if not in_memory:
            _verify_at(parent, tmp, forbidden or Forbidden(()))
            if digest is not None:
                digest(folder / tmp)
        try:
            os.link(tmp, name, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
        except FileExistsError:
            if not _same_at(parent, tmp, name):
                raise OutputError(
                    "duplicate SOP Instance UID: another input with different content already produced "
                    "this output; scrub duplicates into a separate folder"
                ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=parent)


def _open_at(parent: int, name: str) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkInOutput(
                "the output path is a symbolic link; privguard never follows links there"
            ) from None
        raise


def _same_at(parent: int, a: str, b: str) -> bool:
    fa, fb = _open_at(parent, a), _open_at(parent, b)
    try:
        return stat.S_ISREG(os.fstat(fb).st_mode) and same_file_bytes(fa, fb)
    finally:
        os.close(fa)
        os.close(fb)


def _verify_at(parent: int, name: str, forbidden: Forbidden) -> None:
    fd = _open_at(parent, name)
    try:
        size = os.fstat(fd).st_size
        if size <= WHOLE_FILE_LIMIT:
            with os.fdopen(os.dup(fd), "rb") as fh:
                verify_output(fh.read(), forbidden)
            return
        import mmap

        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        try:
            verify_output(memoryview(mm), forbidden)
        finally:
            # A view may still be referenced (by a traceback): the map is then closed when collected.
            with contextlib.suppress(BufferError):
                mm.close()
    finally:
        os.close(fd)


def _write(
    src: Source,
    st: FileState,
    out: BinaryIO,
    pixel: PixelOutcome | None,
    encoded: dict[int, bytes] | None,
    copies: list[tuple[int, int, int]] | None = None,
) -> None:
    ts = src.transfer_syntax
    new_pixels = pixel.pixel_data if pixel is not None else None
    if pixel is not None and pixel.transfer_syntax:
        ts = pixel.transfer_syntax
    if new_pixels is None:
        if src.spliceable:
            write_output(src, src.ds, st.dirty, out, encoded=encoded, copies=copies)
        else:
            write_whole(src.ds, out, ts)
        return
    uid = UID(ts)
    if src.spliceable and (uid.is_implicit_VR, uid.is_little_endian) == (src.implicit, src.little):
        element = encode_pixel_element(new_pixels, uid, int(src.ds.get("BitsAllocated", 8) or 8))
        write_output(
            src,
            src.ds,
            st.dirty,
            out,
            pixel_element=element,
            transfer_syntax=ts,
            encoded=encoded,
            copies=copies,
        )
        return
    # The VR encoding changes (e.g. implicit VR input, encapsulated output): write it whole.
    ds = src.ds
    ds.PixelData = new_pixels
    ds["PixelData"].VR = "OB" if uid.is_encapsulated or int(ds.get("BitsAllocated", 8) or 8) <= 8 else "OW"
    if uid.is_encapsulated:
        ds["PixelData"].is_undefined_length = True
    if src.trailing is not None:
        for elem in src.trailing:
            ds.add(elem)
    write_whole(ds, out, ts)


def deidentify(
    dataset: Dataset,
    profile: str | Path | DeidProfile = "basic",
    key: ProjectKey | str | Path | None = None,
    *,
    project: str = DEFAULT_PROJECT,
    vault: str | Path | None = None,
    options: set[Option] | None = None,
) -> tuple[Dataset, DeidRecord]:
    """De-identify a pydicom dataset. The input is not modified.

    Parameters
    ----------
    dataset
        The dataset to de-identify (pixel data is carried over unchanged).
    profile
        A shipped profile name (``basic``, ``research``), a YAML path, or a :class:`DeidProfile`.
    key
        The project key (or the path of its key file).
    project
        The project name: pseudonyms differ between projects under one key.
    vault
        The token vault, for profiles that use random pseudonyms.
    options
        Extra PS3.15 options to switch on.

    Returns
    -------
    tuple[Dataset, DeidRecord]
        The de-identified copy and a record of the actions taken (no values).
    """
    deid = Deidentifier(profile, key, project=project, vault=vault, options=options)
    try:
        return deid.dataset(dataset)
    finally:
        deid.close()


def deidentify_file(
    input_path: str | Path,
    out_dir: str | Path,
    profile: str | Path | DeidProfile = "basic",
    key: ProjectKey | str | Path | None = None,
    *,
    project: str = DEFAULT_PROJECT,
    vault: str | Path | None = None,
    options: set[Option] | None = None,
) -> FileResult:
    """De-identify one file into ``out_dir/<patient>/<study>/<series>/<instance>.dcm``."""
    deid = Deidentifier(profile, key, project=project, vault=vault, options=options)
    try:
        result = deid.file(input_path, out_dir)
    finally:
        deid.close()
    if result.status == "failed":
        raise InputError(result.reason or "failed")
    return result


def inspect_file(
    input_path: str | Path,
    profile: str | Path | DeidProfile = "basic",
    key: ProjectKey | str | Path | None = None,
    *,
    project: str = DEFAULT_PROJECT,
    vault: str | Path | None = None,
    options: set[Option] | None = None,
    pseudonymizer: Pseudonymizer | None = None,
) -> tuple[str, DeidRecord]:
    """What de-identification would do to one file: output path and per-attribute record."""
    deid = Deidentifier(
        profile, key, project=project, vault=vault, options=options, pseudonymizer=pseudonymizer
    )
    try:
        src = read_source(input_path)
        st, rel = deid.process(src, record=True)
        return rel, deid.engine.to_record(st)
    finally:
        deid.close()
