"""Resume binds to its run; one run per output folder; outputs durable before the journal names them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from study_gen import write_study

from privguard.batch import Journal, ScrubConfig, scrub
from privguard.batch.fsio import OutLock
from privguard.errors import ConfigError
from privguard.header.profile import Option
from privguard.pseudonym.keys import ProjectKey


def _cfg(inputs: list[Path], out: Path, key: ProjectKey, **kw: object) -> ScrubConfig:
    return ScrubConfig(inputs=inputs, out=out, key=key, workers=kw.pop("workers", 1), **kw)  # type: ignore[arg-type]


@pytest.fixture
def done(tmp_path: Path, key: ProjectKey) -> tuple[Path, Path]:
    inp = tmp_path / "in"
    write_study(inp, series=1, per_series=3)
    out = tmp_path / "out"
    assert scrub(_cfg([inp], out, key)).ok == 3
    return inp, out


def test_journal_records_the_run_it_belongs_to(done: tuple[Path, Path], key: ProjectKey) -> None:
    _, out = done
    header = json.loads((out / ".privguard" / "journal.jsonl").read_text().splitlines()[0])["run"]
    assert header["key_id"] == key.key_id and header["profile"] == "basic"
    assert len(header["profile_sha256"]) == 64 and header["options"] == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"key": "other"}, "(key (key id))"),
        ({"profile": "research"}, "profile name; profile contents"),
        ({"options": frozenset({Option.RETAIN_UIDS})}, "(--option set)"),
        ({"project": "heart"}, "(project)"),
    ],
)
def test_resume_with_other_settings_is_refused_and_says_which(
    done: tuple[Path, Path], key: ProjectKey, change: dict[str, object], named: str
) -> None:
    inp, out = done
    if change.get("key") == "other":
        change = {"key": ProjectKey.generate()}
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(ConfigError, match="--resume refused") as exc:
        scrub(_cfg([inp], out, change.pop("key", key), resume=True, **change))  # type: ignore[arg-type]
    assert named in str(exc.value) and exc.value.exit_code == 2
    assert (
        sorted(p.relative_to(out) for p in out.rglob("*")) == before
    )  # nothing new: no second pseudonym space


def test_damaged_journals_are_configuration_errors(done: tuple[Path, Path], key: ProjectKey) -> None:
    inp, out = done
    journal = out / ".privguard" / "journal.jsonl"
    header, *entries = journal.read_text().splitlines()
    journal.write_text("\n".join([header, "[1, 2]", *entries]) + "\n")
    with pytest.raises(ConfigError, match="damaged"):
        scrub(_cfg([inp], out, key, resume=True))
    journal.write_text("\n".join(entries) + "\n")  # no header (as an older privguard wrote)
    with pytest.raises(ConfigError, match="no run header"):
        scrub(_cfg([inp], out, key, resume=True))


def test_one_run_per_output_folder(done: tuple[Path, Path], key: ProjectKey) -> None:
    inp, out = done
    lock = OutLock(out / ".privguard" / "lock")
    lock.acquire()  # another run holds it (flock: a second open file description conflicts)
    try:
        with pytest.raises(ConfigError, match=r"holds the lock .*\.privguard/lock") as exc:
            scrub(_cfg([inp], out, key, resume=True))
        assert exc.value.exit_code == 2
    finally:
        lock.release()
    assert scrub(_cfg([inp], out, key, resume=True)).resumed == 3  # free again


def test_outputs_are_synced_before_the_journal_names_them(
    tmp_path: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from privguard.batch import fsio

    inp = tmp_path / "in"
    write_study(inp, series=2, per_series=3)
    out = tmp_path / "out"
    events: list[tuple[str, str]] = []
    real_fsync, real_add, real_syncfs = os.fsync, Journal.add, fsio.syncfs

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def syncfs(fd: int) -> bool:
        # Everything on the file system is durable once it returns: every file and folder under out.
        ok = real_syncfs(fd)
        if ok:
            for d, dirs, files in os.walk(out):
                events.extend(("fsync", os.path.join(d, n)) for n in [*files, *dirs])
                events.append(("fsync", d))
        return ok

    def add(self: Journal, path: Path, output: str) -> None:
        events.append(("journal", output))
        real_add(self, path, output)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(fsio, "syncfs", syncfs)
    monkeypatch.setattr(Journal, "add", add)
    summary = scrub(_cfg([inp], out, key, executor="inline", chunk_size=2))
    assert summary.ok == 6
    synced: set[str] = set()
    journal = str(out / ".privguard" / "journal.jsonl")
    for kind, what in events:
        if kind == "fsync":
            synced.add(what)
        else:
            assert str(out / what) in synced, "journal line before its output was synced"
            assert str((out / what).parent) in synced, "journal line before its folder was synced"
    assert events[-1] == ("fsync", journal)  # the journal itself is synced when the run ends
    assert len((out / ".privguard" / "journal.jsonl").read_text().splitlines()) == 7


def test_the_profile_hash_is_the_same_in_every_process() -> None:
    """A resume runs in a new process: the run binding may not depend on the hash seed."""
    import subprocess
    import sys

    code = (
        "from privguard.batch.run import profile_sha256\n"
        "from privguard.header.profile import load_profile\n"
        "print(profile_sha256(load_profile('research')))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        for seed in ("1", "2", "3", "4")
    ]
    hashes = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert len(hashes) == 1 and len(next(iter(hashes))) == 64
