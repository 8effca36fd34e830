"""The office console in a real headless Chromium (Playwright driving Debian's chromium): a
served `mailproc serve` over a copy of the corpus ledger, logged in as a clerk and as a viewer.
The last test clicks an action while `poll --once` reads the corpus from Dovecot."""

import email
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from conftest import ROOT, make_config
from corpus_check import expected_entries
from servers import free_port, port_open
from test_dashboard import ARTIFACTS, CHROMIUM_FLAGS, chromium  # noqa: F401 - the fixture
from test_mailbox import PASSWORD_ENV, SMTP_AUTH, SMTPS, append_corpus, write_config

from mailproc.config import load_config
from mailproc.ledger import open_ledger
from mailproc.reports.mail_list import message_records
from mailproc.reports.status import status_matrix
from mailproc.rules import load_rules

playwright = pytest.importorskip("playwright.sync_api")

CLERK, VIEWER = ("clerk1", "clerk-password-1"), ("viewer1", "viewer-password-1")
PAGES = [
    "/",
    "/inbox",
    "/units/东风镇",
    "/messages",
    "/messages?unit=东风镇",
    "/messages/1",
    "/reports",
]
SERVER_START = 30  # seconds for the console to listen


def mailproc(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mailproc", *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def add_users(config: Path) -> None:
    for (name, password), role in ((CLERK, "clerk"), (VIEWER, "viewer")):
        done = mailproc(config, "user", "add", name, "--role", role, "--password-stdin",
                        stdin=password + "\n")  # fmt: skip
        assert done.returncode == 0, done.stderr


@pytest.fixture
def serve() -> Iterator:
    """Start `mailproc serve` on a free port for a config; stopped at the end of the test."""
    started: list[subprocess.Popen] = []

    def start(config: Path) -> str:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mailproc",
                "serve",
                "--port",
                str(port),
                "--config",
                str(config),
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        deadline = time.monotonic() + SERVER_START
        while not port_open(port):
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the console did not start listening"
            time.sleep(0.1)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


@pytest.fixture
def office_config(tmp_path: Path, corpus_run: dict) -> Path:
    """A copy of the corpus ledger and archive's config, with a clerk and a viewer."""
    make_config(tmp_path)
    source, target = (
        sqlite3.connect(corpus_run["config"].db),
        sqlite3.connect(tmp_path / "mailproc.db"),
    )
    source.backup(target)
    source.close()
    target.close()
    path = tmp_path / "config.toml"
    path.write_text(
        '[paths]\nrules = "rules"\ntemplates = "templates"\n'
        f'archive = "{corpus_run["config"].archive}"\n',
        encoding="utf-8",
    )
    add_users(path)
    return path


@pytest.fixture
def browser(chromium: str) -> Iterator:  # noqa: F811 - pytest's fixture, imported above
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=chromium,
            args=[flag for flag in CHROMIUM_FLAGS if flag != "--headless"],
        )
        try:
            yield launched
        finally:
            launched.close()


class Visitor:
    """One browser context (its own cookies), with every console error and failed page kept."""

    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(accept_downloads=True, locale="zh-CN")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def go(self, path: str):
        response = self.page.goto(self.base + path)
        assert response is not None
        return response

    def log_in(self, name: str, password: str) -> None:
        self.go("/login")
        self.page.fill("input[name=username]", name)
        self.page.fill("input[name=password]", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()

    def csrf(self) -> str:
        return self.page.locator("input[name=csrf_token]").first.get_attribute("value")

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


def matrix_states(visitor: Visitor) -> dict[str, list[str]]:
    rows = visitor.page.locator("#matrix tbody tr[data-unit]")
    return {
        rows.nth(n).get_attribute("data-unit"): [
            cell.get_attribute("data-state") for cell in rows.nth(n).locator("td").all()
        ]
        for n in range(rows.count())
    }


def test_log_in_and_see_the_34_units(browser, serve, office_config: Path) -> None:
    visitor = Visitor(browser, serve(office_config))
    visitor.go("/")
    assert visitor.page.url.startswith(visitor.base + "/login")  # anonymous: the login form
    visitor.log_in(*CLERK)
    assert visitor.page.url == visitor.base + "/"
    states = matrix_states(visitor)
    config = load_config(office_config)
    rules = load_rules(config.rules)
    matrix = status_matrix(open_ledger(config.db), rules)
    assert len(states) == 34 == len(rules.units)
    assert states == {
        unit: [matrix.cell(unit, item, period).state for item, period, _ in matrix.deadlines]
        for unit, _ in matrix.units
    }
    visitor.page.set_viewport_size({"width": 1400, "height": 900})
    visitor.shot("console-matrix.png")
    assert visitor.errors == []


def test_every_page_in_chinese_without_console_errors(browser, serve, office_config: Path) -> None:
    visitor = Visitor(browser, serve(office_config))
    visitor.log_in(*CLERK)
    for path in PAGES:
        response = visitor.go(path)
        assert response.status == 200, path
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src" not in headers["content-security-policy"]  # default-src 'none'
        assert headers["x-content-type-options"] == "nosniff"
        assert visitor.page.locator("html").get_attribute("lang") == "zh-CN"
        text = visitor.page.inner_text("body")
        for senders_words in visitor.page.locator("pre.body, details, ol.story").all():
            text = text.replace(senders_words.inner_text(), "")  # the mail's own, and history's
        for english in ("None", "Traceback", "Error", "undefined"):
            assert english not in text, (path, english)
    visitor.page.set_viewport_size({"width": 390, "height": 844})  # a phone
    visitor.go("/inbox")
    visitor.shot("console-inbox-phone.png")
    assert visitor.errors == []
    cookie = next(c for c in visitor.context.cookies() if c["name"] == "mailproc_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"


def test_excuse_a_unit_from_the_inbox(browser, serve, office_config: Path) -> None:
    visitor = Visitor(browser, serve(office_config))
    visitor.log_in(*CLERK)
    before = matrix_states(visitor)
    visitor.go("/inbox")
    button = visitor.page.locator("button[data-action=excuse]").first
    unit = button.get_attribute("data-unit")
    form = button.locator("xpath=..")
    item = form.locator("input[name=item]").get_attribute("value")
    period = form.locator("input[name=period]").get_attribute("value")
    button.click()
    visitor.page.wait_for_load_state()
    assert visitor.page.locator("ul.changes").count() == 1, visitor.page.inner_text("main")
    changes = visitor.page.inner_text("ul.changes")
    assert unit in changes and "未报 → 免报" in changes  # what will change, before it does
    visitor.shot("console-preview.png")
    visitor.page.click("#confirm")
    visitor.page.wait_for_load_state()
    assert "已完成" in visitor.page.inner_text("main")
    visitor.go("/")
    after = matrix_states(visitor)
    config = load_config(office_config)
    rules = load_rules(config.rules)
    column = [(i.id, i.period_of(d)) for i, d in rules.deadlines()].index((item, period))
    assert before[unit][column] == "missing"
    assert after[unit][column] == "excused"
    assert {u: s for u, s in after.items() if u != unit} == {
        u: s for u, s in before.items() if u != unit
    }
    decision = (
        open_ledger(config.db)
        .execute(
            "select by, kind from decisions where unit = ? and item = ? and period = ?",
            [unit, item, period],
        )
        .fetchall()
    )
    assert decision == [(CLERK[0], "excuse")]
    assert visitor.errors == []


def test_export_one_units_mail_to_xlsx(browser, serve, office_config: Path, tmp_path) -> None:
    visitor = Visitor(browser, serve(office_config))
    visitor.log_in(*CLERK)
    visitor.go("/messages?unit=东风镇")
    with visitor.page.expect_download() as download:
        visitor.page.click("#export-xlsx")
    assert download.value.suggested_filename.endswith(".xlsx")
    path = tmp_path / "export.xlsx"
    download.value.save_as(path)
    sheet = openpyxl.load_workbook(path).active
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    headings = [c.value for c in sheet[2]]
    expected = [
        r
        for r in message_records(open_ledger(load_config(office_config).db))
        if r["unit"] == "东风镇"
    ]
    assert len(rows) == len(expected) > 0
    assert {row[headings.index("单位")] for row in rows} == {"东风镇"}
    assert [row[headings.index("编号")] for row in rows] == [r["id"] for r in expected]


def test_a_viewer_reads_but_cannot_act(browser, serve, office_config: Path) -> None:
    visitor = Visitor(browser, serve(office_config))
    visitor.log_in(*VIEWER)
    visitor.go("/inbox")
    assert visitor.page.locator("form[action^='/actions/']").count() == 0
    response = visitor.context.request.post(
        visitor.base + "/actions/excuse",
        form={
            "csrf_token": visitor.csrf(),
            "unit": "东风镇",
            "item": "weekly",
            "period": "2019-06-13",
            "confirm": "1",
        },
    )
    assert response.status == 403
    assert "只读" in response.text()
    db = open_ledger(load_config(office_config).db)
    assert db["decisions"].count_where("kind = 'excuse'") == 0


def test_a_post_without_the_csrf_token_is_refused(browser, serve, office_config: Path) -> None:
    visitor = Visitor(browser, serve(office_config))
    visitor.log_in(*CLERK)
    visitor.go("/inbox")
    form = {"unit": "东风镇", "item": "weekly", "period": "2019-06-13", "confirm": "1"}
    for token in ({}, {"csrf_token": "forged"}):
        response = visitor.context.request.post(visitor.base + "/actions/excuse", form=form | token)
        assert response.status == 403
    db = open_ledger(load_config(office_config).db)
    assert db["decisions"].count_where("kind = 'excuse'") == 0
    # and the login form itself needs its token
    anonymous = Visitor(browser, visitor.base)
    response = anonymous.context.request.post(
        visitor.base + "/login", form={"username": CLERK[0], "password": CLERK[1]}
    )
    assert response.status == 403


def test_five_wrong_passwords_lock_the_name(browser, serve, office_config: Path) -> None:
    visitor = Visitor(browser, serve(office_config))
    for _ in range(5):
        visitor.log_in(CLERK[0], "wrong-password")
        assert "/login" in visitor.page.url
    visitor.log_in(*CLERK)  # the right password, too late
    assert "锁定" in visitor.page.inner_text("main")
    assert "/login" in visitor.page.url
    other = Visitor(browser, visitor.base)
    other.log_in(*VIEWER)  # another name is not locked
    assert other.page.url == visitor.base + "/"


@pytest.fixture
def env(monkeypatch, mailbox) -> None:
    monkeypatch.setenv(PASSWORD_ENV, mailbox.password)
    monkeypatch.setenv(f"{PASSWORD_ENV}_SMTP", SMTP_AUTH[1])


@pytest.mark.slow
@pytest.mark.parametrize("smtp_server", SMTPS, indirect=True)
def test_an_action_while_poll_runs(browser, serve, tmp_path, mailbox, smtp_server, env) -> None:
    """`poll --once` reads the corpus from Dovecot while the clerk sends a 催报 from the
    console: both succeed, and every message goes out once."""
    config = write_config(tmp_path, mailbox, smtp_server)
    add_users(config)
    append_corpus(mailbox)
    visitor = Visitor(browser, serve(config))
    visitor.log_in(*CLERK)
    ledger = tmp_path / "mailproc.db"
    poll = subprocess.Popen(
        [sys.executable, "-m", "mailproc", "poll", "--once", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        db = open_ledger(ledger)
        deadline = time.monotonic() + 120
        while db["messages"].count < 20:  # the poll is under way
            assert poll.poll() is None, poll.stderr.read()
            assert time.monotonic() < deadline, "the poll recorded no mail"
            time.sleep(0.1)
        # a deadline no mail of the corpus meets: the 催报 is due however far the poll has got
        visitor.go("/units/榆树街道")
        week = "input[name=item][value=weekly]):has(input[name=period][value='2019-06-06']"
        visitor.page.locator(f"form:has({week}) button[data-action=remind]").click()
        visitor.page.wait_for_load_state()
        assert "榆树街道" in visitor.page.inner_text("ul.changes")
        visitor.page.click("#confirm")
        visitor.page.wait_for_load_state()
        assert "已完成" in visitor.page.inner_text("main"), visitor.page.inner_text("main")
        clicked_during_poll = poll.poll() is None
        _, err = poll.communicate(timeout=600)
    finally:
        if poll.poll() is None:
            poll.kill()
            poll.communicate()
    assert poll.returncode == 0, err
    assert clicked_during_poll
    db = open_ledger(ledger)
    assert db["messages"].count == len(expected_entries())
    reminders = list(db["outbox"].rows_where("cause like 'remind:%'"))
    assert [r["unit"] for r in reminders] == ["榆树街道"]
    # whatever was still queued goes out with the next delivery; then nothing is doubled
    assert mailproc(config, "tick", "--now", "2019-05-01T00:00:00+08:00").returncode == 0
    sent = [r["message_id"] for r in db["outbox"].rows_where("status = 'sent'")]
    received = [email.message_from_bytes(m.data)["Message-ID"] for m in smtp_server.messages]
    assert sorted(received) == sorted(sent)
    assert len(set(received)) == len(received)
    assert reminders[0]["message_id"] in received
    assert visitor.errors == []
