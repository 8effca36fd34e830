"""Nothing mailproc writes is readable by another user of the machine, whatever the umask of
the shell that started it: files 0600, folders 0700 (the archive is units' mail)."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from conftest import CORPUS, ROOT

from mailproc.ledger import open_ledger
from mailproc.private import make_folder, write_private

# Spam, plans, weekly reports, an event report and a mail from no known unit (filed under
# _quarantine): every kind of archive folder, an outbox with replies, a week to report
SOME_MAIL = ["0001.eml", "0004.eml", "0005.eml", "0039.eml", "0057.eml", "0067.eml", "0119.eml"]


def modes(folder: Path) -> dict[str, set[str]]:
    """Every mode found under `folder` (itself included), with the paths that have it."""
    found: dict[str, set[str]] = {}
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        kind = "folder" if path.is_dir() else "file"
        found.setdefault(f"{kind} {mode:o}", set()).add(str(path.relative_to(folder.parent)))
    return found


def mailproc(*args: str, config: Path) -> str:
    """Run the installed command in its own process, started from a shell with umask 022."""
    command = [sys.executable, "-m", "mailproc", *args, "--config", str(config)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: os.umask(0o022),
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_everything_written_is_private_under_umask_022(tmp_path):
    mail = tmp_path / "mail"
    mail.mkdir()
    for name in SOME_MAIL:
        shutil.copy(CORPUS / name, mail / name)
    config = tmp_path / "config.toml"
    data = tmp_path / "data"
    config.write_text(
        f'[paths]\nrules = "{ROOT / "rules"}"\ntemplates = "{ROOT / "templates"}"\n'
        'db = "data/mailproc.db"\narchive = "data/archive"\noutbox = "data/outbox"\n'
        'reports = "data/reports"\n',
        encoding="utf-8",
    )
    assert mailproc("ingest", str(mail), config=config).startswith(f"共 {len(SOME_MAIL)} 封")
    mailproc("report", "weekly", "--period", "2019-06-13", config=config)
    mailproc("assess", "--now", "2019-06-30T12:00:00", config=config)
    mailproc("dashboard", "--now", "2019-06-30T12:00:00", config=config)

    found = modes(data)
    assert set(found) == {"file 600", "folder 700"}, {m: sorted(p)[:3] for m, p in found.items()}
    names = {Path(p).name for p in found["file 600"]}
    assert {"mailproc.db", "mailproc.db.lock", "index.html"} <= names
    assert any(p.startswith("data/archive/_quarantine/") for p in found["file 600"])
    assert sum(p.startswith("data/outbox/") for p in found["file 600"]) >= 5
    reports = sorted(p for p in found["file 600"] if p.startswith("data/reports/"))
    assert len(reports) == 3 and reports[0] == "data/reports/index.html"
    assert reports[1].startswith("data/reports/安全生产月_周报_2019-06-13_截至")
    assert reports[2] == "data/reports/安全生产月_考核_截至0630-1200.xlsx"


def test_the_ledger_journal_files_are_private(tmp_path):
    previous = os.umask(0o022)
    try:
        db = open_ledger(tmp_path / "data" / "mailproc.db")
        db["log"].insert({"at": "2019-06-12T09:30:00+08:00", "action": "test", "detail": "x"})
        journal = sorted(p.name for p in (tmp_path / "data").iterdir())
        assert journal == ["mailproc.db", "mailproc.db-shm", "mailproc.db-wal"]
        assert set(modes(tmp_path / "data")) == {"file 600", "folder 700"}
        db.close()
    finally:
        os.umask(previous)


def test_helpers_give_modes_however_a_file_was_left(tmp_path):
    previous = os.umask(0o022)
    try:
        make_folder(tmp_path / "a" / "b" / "c")
        left = tmp_path / "a" / "b" / "c" / ".x.eml.tmp"  # a temporary a crash left, 0644
        left.write_bytes(b"old")
        write_private(tmp_path / "a" / "b" / "c" / "x.eml", b"new")
    finally:
        os.umask(previous)
    assert modes(tmp_path / "a") == {
        "folder 700": {"a", "a/b", "a/b/c"},
        "file 600": {"a/b/c/x.eml"},
    }
    assert (tmp_path / "a" / "b" / "c" / "x.eml").read_bytes() == b"new"
