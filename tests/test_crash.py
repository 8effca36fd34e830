"""Killed at any moment, mailproc loses nothing and doubles nothing: `ingest` of 120 corpus mails
is ended with SIGKILL at random moments while mails are left, then run to the end; every mail
is recorded once, every reply queued once and delivered once, and no archive file is left half
written.

A mail that happens to be in hand at two of the kills is set aside as a poison mail would be
(quarantined with its reason, for the office): recorded, not lost, and not answered."""

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import CORPUS, make_config
from corpus_check import expected_entries

from mailproc.ledger import open_ledger
from mailproc.pipeline import POISONED

KILLS = 8
SEED = 20261203  # the kills land at the same moments in every run of the suite


def _recorded(folder: Path) -> int:
    """Mails the ledger holds now (0 before it exists), read without taking any lock."""
    try:
        with sqlite3.connect(f"file:{folder / 'mailproc.db'}?mode=ro", uri=True) as db:
            return db.execute("select count(*) from messages").fetchone()[0]
    except sqlite3.Error:
        return 0


def ingest(config_file: Path, folder: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mailproc", "ingest", "--config", str(config_file), str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the kill reaches the reading process too
    )


def count_recorded(folder: Path) -> int:
    """Mails the ledger holds so far (0 before it exists), read without disturbing the run."""
    path = folder / "mailproc.db"
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("select count(*) from messages").fetchone()[0]
    except sqlite3.OperationalError:  # the schema not made yet, or the file mid-creation
        return 0


def test_kill_nine_during_ingest_loses_and_doubles_nothing(tmp_path):
    entries = expected_entries()[:120]
    mails = tmp_path / "mails"
    mails.mkdir()
    for entry in entries:
        (mails / entry["file"]).write_bytes((CORPUS / entry["file"]).read_bytes())
    make_config(tmp_path)
    config_file = tmp_path / "config.toml"
    config_file.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    moments = random.Random(SEED)
    killed = 0
    for _ in range(KILLS):
        # each kill lands while mails are left: after a few more are recorded, then anywhere in
        # the work on the next (a kill at a fixed moment misses the work on a fast machine)
        target = count_recorded(tmp_path) + moments.randint(1, 5)
        run = ingest(config_file, mails)
        give_up = time.monotonic() + 300
        while run.poll() is None and count_recorded(tmp_path) < target:
            assert time.monotonic() < give_up, "the run recorded no mail"
            time.sleep(0.01)
        time.sleep(moments.uniform(0.0, 0.05))
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            killed += 1
        run.wait()
    finished = ingest(config_file, mails)
    assert finished.wait(timeout=600) == 0
    assert killed >= KILLS - 1  # the kills landed while the run was still working

    db = open_ledger(tmp_path / "mailproc.db")
    recorded = [row["sha256"] for row in db["messages"].rows]
    assert len(recorded) == len(set(recorded)) == len(entries)
    assert db["in_hand"].count == 0
    set_aside = {
        Path(row["source"]).name: row["notes"]
        for row in db["messages"].rows_where("disposition = 'quarantined'")
    }
    assert all(POISONED in notes for notes in set_aside.values())
    outbox = list(db["outbox"].rows)
    answered = [e for e in entries if e["reply"] != "none" and e["file"] not in set_aside]
    assert len(outbox) == len({row["cause"] for row in outbox}) == len(answered)
    assert {row["status"] for row in outbox} == {"sent"}
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == len(outbox)
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".") and p.is_file()]
    assert leftovers == []  # no temporary file of a half-written archive or reply
