"""Statistics: consolidated figures per period, and the workbook the office sends upward."""

import datetime as dt
import io
import json
import shutil
import zipfile

import openpyxl
import pytest
from click.testing import CliRunner
from conftest import ROOT
from corpus_check import expected_entries
from mails import TZ, XLSX, make_mail
from python_calamine import CalamineWorkbook

from mailproc.cli import cli
from mailproc.ledger import open_ledger
from mailproc.reports.stats import StatsError, stats_item
from mailproc.reports.workbook import put, write_workbook
from mailproc.rules import load_rules

WEEKLY = ("2019-06-06", "2019-06-13", "2019-06-20", "2019-06-27")


def expected_period(item: str, period: str) -> tuple[dict[str, dict], list[str]]:
    """Each unit's latest expected stats for the period, and the units without any."""
    latest: dict[str, tuple[int, dict]] = {}
    for entry in expected_entries():
        if (entry["item"], entry["period"]) != (item, period) or not entry.get("stats"):
            continue
        if entry["unit"] not in latest or entry["version"] > latest[entry["unit"]][0]:
            latest[entry["unit"]] = (entry["version"], entry["stats"])
    units = [u.name for u in load_rules("rules").units]
    return {u: v for u, (_, v) in latest.items()}, [u for u in units if u not in latest]


def config_file(corpus_run) -> str:
    folder = corpus_run["config"].rules.parent
    path = folder / "stats-config.toml"
    path.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    return str(path)


def test_stats_json_equals_latest_expected_figures(corpus_run):
    config = config_file(corpus_run)
    for period in WEEKLY:
        result = CliRunner().invoke(
            cli, ["stats", "--period", period, "--json", "--config", config]
        )
        assert result.exit_code == 0, result.output
        got = json.loads(result.stdout)
        units, missing = expected_period("weekly", period)
        columns = sorted({c for values in units.values() for c in values})
        assert got["period"] == period
        assert got["units"] == units
        assert got["missing"] == missing
        assert got["totals"] == {c: sum(v.get(c, 0) for v in units.values()) for c in got["totals"]}
        assert set(columns) <= set(got["totals"])


def test_unknown_period_is_one_line(corpus_run):
    result = CliRunner().invoke(
        cli, ["stats", "--period", "2019-06-14", "--config", config_file(corpus_run)]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("mailproc: 没有 2019-06-14 这一期的统计")


def test_a_period_that_names_two_items_is_refused(tmp_path):
    """A date two statistics items share (here the month summary moved onto the last weekly
    report's Thursday) names no one period: refused with both, never one picked silently."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    items = rules / "items.toml"
    text = items.read_text(encoding="utf-8")
    assert text.count('deadlines = ["2019-07-03"]') == 1
    items.write_text(text.replace('deadlines = ["2019-07-03"]', 'deadlines = ["2019-06-27"]'))
    with pytest.raises(StatsError) as refused:
        stats_item(load_rules(rules), "2019-06-27")
    assert str(refused.value).startswith("“2019-06-27”可指多个报送期次：")
    assert "请用 --item 或日期指明其中一个" in str(refused.value)
    item, period = stats_item(load_rules(rules), "2019-06-27", "weekly")
    assert (item.id, period) == ("weekly", "2019-06-27")


def read_with_calamine(path) -> dict[str, list[list]]:
    book = CalamineWorkbook.from_filelike(io.BytesIO(path.read_bytes()))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


def test_workbook_totals_equal_stats_and_marks_units(corpus_run, tmp_path):
    db = open_ledger(corpus_run["config"].db)
    rules = load_rules(corpus_run["config"].rules)
    path, stats = write_workbook(db, rules, "2019-06-13", tmp_path)
    assert path.name.startswith("安全生产月_周报_2019-06-13_截至")
    sheets = read_with_calamine(path)
    assert list(sheets) == ["本期汇总", "累计", "报送记录"]
    table = sheets["本期汇总"]
    total_row = next(row for row in table if row[1] == "合计")
    figures = [int(v) for v in total_row[2 : 2 + len(rules.columns)]]
    assert figures == [stats["totals"][c.id] for c in rules.columns]
    rows = {row[1]: row for row in table if row[1] in {u.name for u in rules.units}}
    assert len(rows) == 34
    status_column = 2 + len(rules.columns)
    for unit in stats["missing"]:
        assert rows[unit][status_column].startswith(
            ("未报送", "按时，附件1待更正", "逾期，附件1待更正")
        )
    assert rows["唐家镇"][status_column] == "未报送"
    assert rows["二界沟街道"][status_column] == "逾期"  # 11:00:xx on the deadline
    assert rows["大洼街道"][status_column] == "逾期"

    book = openpyxl.load_workbook(path)
    sheet = book["本期汇总"]
    assert sheet.freeze_panes == "C5"
    assert sheet.page_setup.orientation == "landscape"
    assert int(sheet.page_setup.paperSize) == 9  # A4
    assert sheet["A3"].value == "序号" and sheet["C3"].value == "宣讲活动"
    assert sheet["C4"].value == "场次\n（场）"
    assert sheet["C4"].font.name == "宋体"

    cumulative = sheets["累计"]
    cumulative_total = next(row for row in cumulative if row[1] == "合计")
    first, second = (
        write_workbook(db, rules, p, tmp_path)[1]["totals"] for p in ("2019-06-06", "2019-06-13")
    )
    assert [int(v) for v in cumulative_total[2:]] == [
        first[c.id] + second[c.id] for c in rules.columns
    ]
    log = sheets["报送记录"]
    assert log[1][0] == "单位"
    assert len(log) - 2 == db["receipts"].count_where("item = 'weekly' and period = '2019-06-13'")


def test_month_summary_workbook(corpus_run, tmp_path):
    db = open_ledger(corpus_run["config"].db)
    rules = load_rules(corpus_run["config"].rules)
    path, stats = write_workbook(db, rules, "2019-07-03", tmp_path, "month_summary")
    units, missing = expected_period("month_summary", "2019-07-03")
    assert stats["units"] == units and stats["missing"] == missing
    assert list(read_with_calamine(path)) == ["本期汇总", "报送记录"]


def test_text_that_looks_like_a_formula_stays_text(tmp_path):
    book = openpyxl.Workbook()
    for row, text in enumerate(['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)"], 1):
        put(book.active, row, 1, text)
    path = tmp_path / "t.xlsx"
    book.save(path)
    sheet = openpyxl.load_workbook(path).active
    assert [(c.value, c.data_type) for c in sheet["A"]] == [
        ('=HYPERLINK("http://x")', "s"),
        ("+1", "s"),
        ("-2", "s"),
        ("@SUM(A1)", "s"),
    ]
    assert read_with_calamine(path)["Sheet"] == [
        ['=HYPERLINK("http://x")'],
        ["+1"],
        ["-2"],
        ["@SUM(A1)"],
    ]


def at(day: int) -> dt.datetime:
    return dt.datetime(2019, 6, day, 9, tzinfo=TZ)


def ingest(pipeline, raw: bytes) -> dict:
    outcome = pipeline.ingest(raw, source="test")
    row = pipeline.db["messages"].get(outcome.message_pk)
    return {"reply": row["reply"], "problems": json.loads(row["problems"])}


def big_sheet_xlsx(unpacked_mb: int) -> bytes:
    """An xlsx whose one sheet unpacks to `unpacked_mb` MB (it compresses to almost nothing)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            chunk = b" " * (1 << 20)
            for _ in range(unpacked_mb):
                sheet.write(chunk)
    return buffer.getvalue()


def many_rows_xlsx(rows: int) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("附件1")
    sheet.append(["单位", "宣讲活动场次", "应急演练场次", "排查隐患"])
    for number in range(rows):
        sheet.append(["东风镇", number, 1, 2])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_hostile_statistics_files_are_unreadable_not_fatal(pipeline):
    good = many_rows_xlsx(1)
    files = {
        "encrypted": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(2000)
        + "EncryptedPackage".encode("utf-16-le"),
        "corrupt zip": good[: len(good) // 2],
        "100 MB unpacked": big_sheet_xlsx(100),
        "100,000 rows": many_rows_xlsx(100_000),
    }
    outcomes = {}
    for day, (case, data) in enumerate(files.items(), 10):
        raw = make_mail("东风镇第3周周报", received=at(day), files=[("附件1.xlsx", data, XLSX)])
        outcomes[case] = ingest(pipeline, raw)
    csv = bytes(range(128, 256)) * 40
    outcomes["unknown csv"] = ingest(
        pipeline,
        make_mail("东风镇第3周周报", received=at(15), files=[("附件1.csv", csv, "text/csv")]),
    )
    for case, record in outcomes.items():
        assert (record["reply"], record["problems"][:1]) == ("missing", ["unreadable_file"]), case
    reasons = [json.loads(r["problems"]) for r in pipeline.db["attachments"].rows]
    assert all(reasons), reasons
