"""The dashboard (reports/index.html): its content checked against the ledger, then the page
loaded in a real headless Chromium, which must render one matrix row per unit, log no console
error, and take a screenshot (kept in test-artifacts/ for people to look at)."""

import datetime as dt
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlite_utils

from mailproc.reports.dashboard import write_dashboard
from mailproc.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
STATES = ("on_time", "late", "missing", "not_due")
STATE_TEXT = {"on_time": "按时", "late": "逾期", "missing": "未报", "not_due": "未到期"}
# Chromium prints each console message of the page as, e.g.
# [31278:31278:1128/171209.344380:INFO:CONSOLE:1] "Uncaught ReferenceError: …", source: file:///…
# (older versions wrote CONSOLE(1)); nothing else it logs contains ":CONSOLE".
CONSOLE_LINE = re.compile(r":CONSOLE[:(]\d+\)?\]\s*(.*)")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)
CHROMIUM_TIMEOUT = 120  # seconds; a run takes about one


class Page(HTMLParser):
    """What the tests read from a page: the matrix rows and cells, every link, every id."""

    def __init__(self, html: str):
        super().__init__()
        self.rows: dict[str, list[dict[str, str]]] = {}
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._in_matrix = False
        self._row: str | None = None
        self._cell: dict[str, str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "table":
            self._in_matrix = a.get("id") == "matrix"
        elif self._in_matrix and tag == "tr":
            self._row = a.get("data-unit")
            if self._row is not None:
                self.rows[self._row] = []
        elif self._in_matrix and self._row is not None and tag == "td":
            self._cell = {**a, "text": ""}
            self.rows[self._row].append(self._cell)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_matrix = False
        elif tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data.strip()


@pytest.fixture(scope="module")
def setup(corpus_run: dict) -> dict:
    config = corpus_run["config"]
    db = sqlite_utils.Database(config.db)
    rules = load_rules(config.rules)
    path = write_dashboard(db, rules, config.reports, config.archive, config.templates)
    return {"config": config, "db": db, "rules": rules, "path": path}


@pytest.fixture(scope="module")
def page(setup: dict) -> Page:
    return Page(setup["path"].read_text(encoding="utf-8"))


def columns(rules) -> list[tuple[str, str]]:
    return [(item.id, item.period_of(d)) for item, d in rules.deadlines()]


def cell(page: Page, rules, unit: str, item: str, period: str) -> dict[str, str]:
    return page.rows[unit][columns(rules).index((item, period))]


def test_one_matrix_row_per_unit_in_category_order(setup: dict, page: Page) -> None:
    rules = setup["rules"]
    order = [c for c, _ in rules.categories]
    expected = [u.name for u in sorted(rules.units, key=lambda u: order.index(u.category))]
    assert list(page.rows) == expected
    assert len(page.rows) == 34
    assert all(len(cells) == len(columns(rules)) for cells in page.rows.values())


def test_cells_match_the_ledger(setup: dict, page: Page) -> None:
    db, rules = setup["db"], setup["rules"]

    def receipts(unit: str, item: str, period: str) -> list[dict]:
        return list(
            db["receipts"].rows_where(
                "unit = ? and item = ? and period = ?", [unit, item, period], order_by="version"
            )
        )

    # 向海街道 sent its plan on 1 June, after the 31 May deadline: late, amber.
    [plan] = receipts("向海街道", "plan", "2019-05-31")
    assert plan["status"] == "late"
    late = cell(page, rules, "向海街道", "plan", "2019-05-31")
    assert (late["data-state"], late["class"], late["text"]) == ("late", "late", "逾期")
    assert "2019-06-01 08:09" in late["title"]
    # 唐家镇 never sent the 13 June weekly report: missing, red.
    assert receipts("唐家镇", "weekly", "2019-06-13") == []
    missing = cell(page, rules, "唐家镇", "weekly", "2019-06-13")
    assert (missing["class"], missing["text"]) == ("missing", "未报")
    # Two versions of 唐家镇's 27 June report, the first on time.
    assert [r["version"] for r in receipts("唐家镇", "weekly", "2019-06-27")] == [1, 2]
    assert cell(page, rules, "唐家镇", "weekly", "2019-06-27")["text"] == "按时×2"
    # 唐家镇's tour summary came as a cloud link and was never completed.
    [tour] = receipts("唐家镇", "tour_summary", "2019-12-25")
    assert not tour["complete"]
    assert cell(page, rules, "唐家镇", "tour_summary", "2019-12-25")["text"] == "按时缺项"
    # Every cell: class and text agree with its state, and every state has its colour.
    html = setup["path"].read_text(encoding="utf-8")
    for cells in page.rows.values():
        for c in cells:
            assert c["class"] == c["data-state"] in STATES
            assert c["text"].startswith(STATE_TEXT[c["data-state"]])
    for state in STATES:
        assert re.search(rf"\.{state} {{ background: var\(--{state}\)", html)


def test_links_open_archived_files(setup: dict, page: Page) -> None:
    config, db = setup["config"], setup["db"]
    files = [h for h in page.links if not h.startswith("#")]
    assert all(h.isascii() for h in files)  # Chinese names are percent-encoded
    for href in files:
        target = config.reports / urllib.parse.unquote(href)
        assert target.resolve().is_relative_to(config.archive.resolve()), href
        assert target.is_file(), href
    submissions = db.execute(
        "select count(*) from messages where disposition = 'submission' and item is not null"
    ).fetchone()[0]
    attachments = db.execute(
        "select count(*) from attachments a join messages m on m.id = a.message "
        "where m.disposition = 'submission' and m.item is not null"
    ).fetchone()[0]
    unknown = db.execute(
        "select count(*) from messages where disposition in ('unrecognized', 'quarantined')"
    ).fetchone()[0]
    flagged = db.execute(
        "select count(*) from messages where disposition = 'submission' and flags != '[]'"
    ).fetchone()[0]
    assert (unknown, flagged) == (2, 29)  # 9 代报, 20 from addresses no unit registered
    assert len(files) == submissions + attachments + unknown + flagged
    assert {h[1:] for h in page.links if h.startswith("#")} <= page.ids


def test_page_is_self_contained(page: Page) -> None:
    assert not [t for t, _ in page.tags if t in ("script", "link", "img", "iframe")]
    for _, attrs in page.tags:
        for name in ("src", "href"):
            assert not re.match(r"(https?:)?//", attrs.get(name, "")), attrs


def test_problems_for_the_office(setup: dict) -> None:
    html = setup["path"].read_text(encoding="utf-8")
    assert "无法识别或无法处理的邮件（2）" in html
    assert html.count("安全生产月活动统计表") >= 2
    assert "代报、填报单位不符、未登记地址等，请核对（29）" in html
    assert "代报：区住房和城乡建设局 的邮箱为 区公安分局 报送" in html
    assert "发送失败的邮件，不会自动重发（0）" in html


def test_as_of_counts_only_mail_received_by_then(setup: dict, tmp_path: Path) -> None:
    """A copy of the ledger with a failed send, seen at noon on the 13 June deadline."""
    config, rules = setup["config"], setup["rules"]
    with sqlite3.connect(config.db) as source, sqlite3.connect(tmp_path / "copy.db") as copy:
        source.backup(copy)
    db = sqlite_utils.Database(tmp_path / "copy.db")
    db["outbox"].insert(
        {
            "kind": "ack",
            "cause": "reply:test-failed-send",
            "unit": "唐家镇",
            "to_addrs": "tangjia_aj@163.com",
            "subject": "【回执】唐家镇 周报",
            "status": "failed",
            "attempts": 1,
            "last_error": "554 DT:SPM mail content denied",
            "created_at": "2019-06-13T11:30:00+08:00",
        }
    )
    as_of = dt.datetime.fromisoformat("2019-06-13T12:00:00+08:00")
    path = write_dashboard(db, rules, tmp_path / "reports", config.archive, config.templates, as_of)
    html = path.read_text(encoding="utf-8")
    page = Page(html)
    assert "截至 2019-06-13 12:00" in html
    # 前进街道's report came on 14 June: at noon on the 13th it is missing (late in the end).
    assert cell(page, rules, "前进街道", "weekly", "2019-06-13")["data-state"] == "missing"
    # 区消防救援大队 sent at 11:00:45 (late) and again at 14:14: one version by noon.
    assert cell(page, rules, "区消防救援大队", "weekly", "2019-06-13")["text"] == "逾期"
    later = [c for c in columns(rules) if c[1] > "2019-06-13"]
    assert {cell(page, rules, u, *c)["data-state"] for u in page.rows for c in later} == {"not_due"}
    assert "2019-06-14" not in html  # no receipt of a later day in the units' records
    assert "无法识别或无法处理的邮件（0）" in html  # the first came at 16:31
    assert "554 DT:SPM mail content denied" in html
    links = [h for h in Page(html).links if not h.startswith("#")]
    assert links and all((path.parent / urllib.parse.unquote(h)).is_file() for h in links)


# --- a real browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium; scripts/test.sh installs it, so in CI its absence is a failure."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_chromium(chromium: str, profile: Path, url: str, *args: str) -> tuple[str, list[str]]:
    """Run one headless Chromium to completion; its stdout and the page's console messages."""
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its helper processes share the group, so all can be stopped
    ) as process:
        try:
            out, err = process.communicate(timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"chromium did not finish in {CHROMIUM_TIMEOUT}s: {command}")
    assert process.returncode == 0, err[-2000:]
    return out, [m.group(1) for m in map(CONSOLE_LINE.search, err.splitlines()) if m]


def test_console_check_catches_a_script_error(chromium: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><p>坏页面</p><script>console.error('出错'); undefinedFunction();</script>",
        encoding="utf-8",
    )
    _, console = run_chromium(chromium, tmp_path / "profile", bad.as_uri(), "--dump-dom")
    assert any("出错" in m for m in console), console
    assert any("ReferenceError: undefinedFunction is not defined" in m for m in console), console


def test_chromium_renders_the_dashboard(chromium: str, setup: dict, tmp_path: Path) -> None:
    url = setup["path"].as_uri()
    dom, console = run_chromium(chromium, tmp_path / "profile", url, "--dump-dom")
    assert console == []
    rendered = Page(dom)
    assert len(rendered.rows) == 34
    assert list(rendered.rows) == list(Page(setup["path"].read_text(encoding="utf-8")).rows)
    assert 'id="chart"' in dom


def test_chromium_screenshot(chromium: str, setup: dict, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    url = setup["path"].as_uri()
    _, console = run_chromium(
        chromium, tmp_path / "profile", url, f"--screenshot={shot}", "--window-size=1400,1800"
    )
    assert console == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1400, 1800)
    assert len(data) > 100_000  # a blank page of that size is a few kilobytes


def test_records_list_receipts_by_unit(page: Page, setup: dict) -> None:
    db = setup["db"]
    html = setup["path"].read_text(encoding="utf-8")
    units = re.findall(r'<details id="unit-\d+" data-unit="([^"]+)"', html)
    assert units == list(page.rows)
    section = html.split('data-unit="唐家镇"', 2)[2].split("</details>")[0]
    for row in db["receipts"].rows_where("unit = ?", ["唐家镇"]):
        assert row["received_at"][:16].replace("T", " ") in section
    problems = json.loads(
        next(db["receipts"].rows_where("unit = '唐家镇' and item = 'tour_summary'"))["problems"]
    )
    assert problems[0] == "cloud_link"
    assert "用网盘链接代替附件" in section
