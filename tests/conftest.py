"""Shared fixtures: a fresh config in a temp folder, and the corpus ingested once per session."""

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from mailproc.app import open_app
from mailproc.cli import message_records, run_ingest
from mailproc.config import Config, parse_config
from mailproc.pipeline import Pipeline

pytest_plugins = ["servers"]  # the real Dovecot and SMTP server fixtures

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).parent / "corpus"
# Lines the corpus tests want in the run's summary (per-field accuracy), shown even when they pass.
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:
    for line in SUMMARY:
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def session_umask():
    """`mailproc` sets its process's umask to 077 (cli.py); a command a test runs in-process
    must not set it for the tests after it (the test Dovecot must read the users they add)."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)


def make_config(folder: Path, **delivery) -> Config:
    """A config like the demo's, with the repo's rules and templates copied into `folder`."""
    for name in ("rules", "templates"):
        if not (folder / name).exists():
            shutil.copytree(ROOT / name, folder / name)
    return parse_config(
        {"paths": {"rules": "rules", "templates": "templates"}, "delivery": delivery}, folder
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def pipeline(config: Config):
    with open_app(config) as app:
        yield Pipeline(app)


@pytest.fixture(scope="session")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The whole corpus ingested once: config, counts, and `messages --json` records."""
    folder = tmp_path_factory.mktemp("corpus-ledger")
    config = make_config(folder)
    with open_app(config) as app:
        counts = run_ingest(Pipeline(app), [str(CORPUS)], quiet=True)
        records = message_records(app.db)
    return {"config": config, "counts": counts, "records": records}


SUPERVISORS = ["director@example.gov.cn", "ducha@example.gov.cn"]


def copy_ledger(corpus_run: dict, folder: Path) -> None:
    """The corpus run's ledger copied to `folder`/mailproc.db, for a test that changes it."""
    source = sqlite3.connect(corpus_run["config"].db)
    target = sqlite3.connect(folder / "mailproc.db")
    source.backup(target)
    source.close()
    target.close()


@pytest.fixture
def office(tmp_path: Path, corpus_run: dict) -> Path:
    """A copy of the corpus ledger and archive (a booking moves archived files), with
    supervisors configured; returns its config file."""
    make_config(tmp_path)
    shutil.copytree(corpus_run["config"].archive, tmp_path / "archive")
    copy_ledger(corpus_run, tmp_path)
    path = tmp_path / "config.toml"
    path.write_text(
        '[paths]\nrules = "rules"\ntemplates = "templates"\narchive = "archive"\n\n'
        f"[recipients]\nsupervisors = {json.dumps(SUPERVISORS)}\n",
        encoding="utf-8",
    )
    return path
