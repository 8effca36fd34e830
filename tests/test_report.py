"""Reports (mailproc/report.py, mailproc/workbook.py): the status matrix and the consolidated
workbook as the ledger stood at a moment, and `mailproc report` / `mailproc status`."""

import datetime as dt
import json
from pathlib import Path

import click
import openpyxl
import pytest
from click.testing import CliRunner
from mails import TZ, XLSX, make_mail, stats_xlsx

from mailproc.cli import cli
from mailproc.office import actions
from mailproc.pipeline import Pipeline
from mailproc.reports.assess import assess, write_assessment
from mailproc.reports.status import status_matrix
from mailproc.reports.workbook import write_workbook

WEEK_1 = ("weekly", "2019-06-06")  # deadline 2019-06-06 11:00


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2019, 6, day, hour, minute, tzinfo=TZ)


def table(unit: str, lectures: int) -> list[tuple[str, bytes, str]]:
    return [("附件1.xlsx", stats_xlsx(unit, lectures=lectures), XLSX)]


@pytest.fixture
def campaign(pipeline: Pipeline) -> Pipeline:
    """Week 1 of the campaign: on time, on time without its table, late twice, excused,
    extended and silent, extended and on time against the new deadline; nobody sent a plan."""
    mails = [
        make_mail("东风镇第1周周报", received=at(5, 9), files=table("东风镇", 3)),
        make_mail("清水镇第1周周报", sender="qingshui_aj@163.com", received=at(6, 10)),
        make_mail("新兴镇第1周周报", sender="xinxing_aj@163.com", received=at(6, 15),
                  files=table("新兴镇", 4)),
        make_mail("新兴镇第1周周报（更正）", sender="xinxing_aj@163.com", received=at(6, 16),
                  files=table("新兴镇", 6)),
        make_mail("赵圈河镇第1周周报", sender="zhaoquanhe_aj@163.com", received=at(7, 15),
                  files=table("赵圈河镇", 2)),
    ]  # fmt: skip
    actions.excuse(pipeline.app, "唐家镇", *WEEK_1, "防汛任务", "王明欣")
    actions.extend(pipeline.app, "平安镇", *WEEK_1, at(8, 18), "停电", "王明欣")
    actions.extend(pipeline.app, "赵圈河镇", *WEEK_1, at(8, 18), "停电", "王明欣")
    for raw in mails:
        pipeline.ingest(raw, source="test")
    return pipeline


def week_1_states(pipeline: Pipeline, as_of: dt.datetime) -> dict[str, tuple]:
    matrix = status_matrix(pipeline.db, pipeline.rules, as_of)
    shown = ("东风镇", "清水镇", "新兴镇", "唐家镇", "平安镇", "赵圈河镇", "大洼街道")
    return {
        unit: (cell.state, cell.versions, cell.complete)
        for unit in shown
        for cell in [matrix.cell(unit, *WEEK_1)]
    }


# -- the status matrix --------------------------------------------------------------------------


def test_before_the_deadline_only_mail_already_received_counts(campaign):
    assert week_1_states(campaign, at(6, 10, 30)) == {
        "东风镇": ("on_time", 1, True),
        "清水镇": ("on_time", 1, False),
        "新兴镇": ("not_due", 0, True),
        "唐家镇": ("excused", 0, True),
        "平安镇": ("not_due", 0, True),
        "赵圈河镇": ("not_due", 0, True),
        "大洼街道": ("not_due", 0, True),
    }
    matrix = status_matrix(campaign.db, campaign.rules, at(6, 10, 30))
    assert matrix.counts(*WEEK_1) == {
        "on_time": 2,
        "late": 0,
        "missing": 0,
        "not_due": 31,
        "excused": 1,
    }
    assert matrix.counts("plan", "2019-05-31")["missing"] == 34


def test_after_the_deadline_an_extension_still_ahead_is_not_due(campaign):
    assert week_1_states(campaign, at(7, 9)) == {
        "东风镇": ("on_time", 1, True),
        "清水镇": ("on_time", 1, False),
        "新兴镇": ("late", 2, True),
        "唐家镇": ("excused", 0, True),
        "平安镇": ("not_due", 0, True),
        "赵圈河镇": ("not_due", 0, True),
        "大洼街道": ("missing", 0, True),
    }


def test_after_the_extended_deadline(campaign):
    assert week_1_states(campaign, at(9, 9)) == {
        "东风镇": ("on_time", 1, True),
        "清水镇": ("on_time", 1, False),
        "新兴镇": ("late", 2, True),
        "唐家镇": ("excused", 0, True),
        "平安镇": ("missing", 0, True),
        "赵圈河镇": ("on_time", 1, True),  # after the campaign's deadline, before its own
        "大洼街道": ("missing", 0, True),
    }
    matrix = status_matrix(campaign.db, campaign.rules, at(9, 9))
    assert matrix.counts(*WEEK_1) == {
        "on_time": 3,
        "late": 1,
        "missing": 29,
        "not_due": 0,
        "excused": 1,
    }


def test_a_moment_in_another_zone_is_read_in_the_campaigns(campaign):
    utc = dt.datetime(2019, 6, 6, 7, 30, tzinfo=dt.UTC)  # 15:30 in Dawa
    matrix = status_matrix(campaign.db, campaign.rules, utc)
    assert matrix.as_of.isoformat() == "2019-06-06T15:30:00+08:00"
    assert (matrix.cell("新兴镇", *WEEK_1).state, matrix.cell("新兴镇", *WEEK_1).versions) == (
        "late",
        1,
    )


def test_the_matrix_as_json(campaign):
    data = json.loads(json.dumps(status_matrix(campaign.db, campaign.rules, at(9, 9)).as_dict()))
    assert data["as_of"] == "2019-06-09T09:00:00+08:00"
    assert data["deadlines"][:2] == [
        {"item": "plan", "period": "2019-05-31", "deadline": "2019-05-31T23:59:59+08:00"},
        {"item": "weekly", "period": "2019-06-06", "deadline": "2019-06-06T11:00:00+08:00"},
    ]
    assert len(data["deadlines"]) == 7 and len(data["units"]) == 34
    assert data["units"]["新兴镇"]["weekly/2019-06-06"] == {
        "state": "late",
        "versions": 2,
        "complete": True,
        "received_at": "2019-06-06T15:00:00+08:00",
    }
    assert data["units"]["唐家镇"]["weekly/2019-06-06"] == {
        "state": "excused",
        "versions": 0,
        "complete": True,
        "received_at": None,
    }


def test_the_matrix_as_text(campaign):
    lines = status_matrix(campaign.db, campaign.rules, at(9, 9)).render().splitlines()
    assert lines[:4] == [
        "报送情况 截至 2019-06-09 09:00   ✔ 按时  迟 逾期  ✘ 未报  · 未到期  免 免报  ! 缺项未补齐",
        "                        方案     周报     周报     周报     周报     月总结   大洼行总结",
        "单位                    05-31    06-06    06-13    06-20    06-27    07-03    12-25    ",
        "【街道】",
    ]
    rows = {line.split()[0]: line for line in lines[4:]}
    assert {unit: rows[unit] for unit in ("东风镇", "清水镇", "新兴镇", "唐家镇", "平安镇")} == {
        "东风镇": "东风镇                  ✘        ✔        ·        ·        ·        ·        ·",
        "清水镇": "清水镇                  ✘        ✔!       ·        ·        ·        ·        ·",
        "新兴镇": "新兴镇                  ✘        迟       ·        ·        ·        ·        ·",
        "唐家镇": "唐家镇                  ✘        免       ·        ·        ·        ·        ·",
        "平安镇": "平安镇                  ✘        ✘        ·        ·        ·        ·        ·",
    }  # fmt: skip
    # issue 13, point 17: the groups named as the dashboard and the workbooks name them
    assert [line for line in lines if line.startswith("【")] == [
        "【街道】",
        "【镇】",
        "【重点园区】",
        "【区安委会成员单位】",
    ]
    assert lines[-1] == (
        "按时/逾期/未报          0/0/34   3/1/29   0/0/0    0/0/0    0/0/0    0/0/0    0/0/0"
    )  # fmt: skip


def test_colours_only_when_asked(campaign):
    matrix = status_matrix(campaign.db, campaign.rules, at(9, 9))
    plain = matrix.render().splitlines()
    coloured = matrix.render(color=True).splitlines()
    late = next(line for line in coloured if line.startswith("新兴镇"))
    assert late.split()[1:3] == [click.style("✘", fg="red"), click.style("迟", fg="yellow")]
    assert click.unstyle("\n".join(coloured)).splitlines() == plain


# -- the consolidated workbook ------------------------------------------------------------------


def rows_by_unit(sheet) -> dict[str, tuple]:
    return {row[1]: row for row in sheet.iter_rows(min_row=5, values_only=True) if row[1]}


def row_numbers(sheet) -> dict[str, int]:
    """Unit → its row number on the sheet."""
    return {
        sheet.cell(r, 2).value: r for r in range(5, sheet.max_row + 1) if sheet.cell(r, 2).value
    }


def test_the_workbook_of_a_week(campaign, tmp_path):
    path, stats = write_workbook(
        campaign.db, campaign.rules, "2019-06-06", tmp_path / "reports", "weekly", at(9, 9)
    )
    assert path == tmp_path / "reports" / "安全生产月_周报_2019-06-06_截至0609-0900.xlsx"
    assert (stats["units"]["新兴镇"]["lectures"], stats["totals"]["lectures"]) == (6, 11)
    assert (stats["excused"], stats["extended"], len(stats["missing"])) == (["唐家镇"], {}, 30)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["本期汇总", "累计", "报送记录"]

    summary = book["本期汇总"]
    assert summary["A1"].value == (
        "2019年“安全生产月”和“安全生产大洼行”活动情况统计表 · 第1周（6月6日）"
    )
    assert summary["A2"].value == (
        "大洼区安委会办公室汇总  截止时间：2019年6月6日（周四）11:00  已计入 3 个单位，"
        "未计入 30 个  生成：2019-06-09 09:00"
    )
    assert [summary.cell(3, c).value for c in (1, 2, 3, 20, 21, 22)] == [
        "序号", "单位", "宣讲活动", "报送情况", "首次接收", "版本数",
    ]  # fmt: skip
    # issue 13, point 18: the unit on a line of its own, never 参加人次（人\n次）
    assert [summary.cell(4, c).value for c in (3, 4)] == ["场次\n（场）", "参加人次\n（人次）"]
    rows = rows_by_unit(summary)
    assert rows["东风镇"][:4] == (10, "东风镇", 3, 120)
    assert rows["东风镇"][-3:] == ("按时", "06-05 09:00", 1)
    assert rows["新兴镇"][:3] == (13, "新兴镇", 6)  # the latest readable version counts
    assert rows["新兴镇"][-3:] == ("逾期", "06-06 15:00", 2)
    assert rows["清水镇"][2:4] == (None, None)
    assert rows["清水镇"][-3:] == ("按时，附件1待更正", "06-06 10:00", 1)
    assert rows["唐家镇"][-3:] == ("免报", None, None)
    assert rows["平安镇"][-3:] == ("未报送", None, None)
    assert rows["赵圈河镇"][-3:] == ("按时", "06-07 15:00", 1)
    assert rows["合计"][2:4] == (11, 360)
    status_fill = {  # column 20, 报送情况: late yellow, missing red, on time plain
        unit: summary.cell(row, 20).fill.fgColor.rgb for unit, row in row_numbers(summary).items()
    }
    assert (status_fill["东风镇"], status_fill["新兴镇"], status_fill["大洼街道"]) == (
        "00000000",
        "00FFE699",
        "00F8CBAD",
    )

    assert rows_by_unit(book["累计"])["新兴镇"][:3] == (13, "新兴镇", 6)
    log = list(book["报送记录"].iter_rows(min_row=3, values_only=True))
    assert [row[:7] for row in log] == [
        ("东风镇", "镇", 1, "2019-06-05 09:00:00", "按时", "完整", None),
        ("清水镇", "镇", 1, "2019-06-06 10:00:00", "按时", "缺项", "缺少统计表"),
        ("新兴镇", "镇", 1, "2019-06-06 15:00:00", "逾期", "完整", None),
        ("新兴镇", "镇", 2, "2019-06-06 16:00:00", "逾期", "完整", None),
        ("赵圈河镇", "镇", 1, "2019-06-07 15:00:00", "按时", "完整", None),
    ]


def test_the_workbook_as_of_a_moment(campaign, tmp_path):
    path, stats = write_workbook(
        campaign.db, campaign.rules, "2019-06-06", tmp_path, "weekly", at(6, 15, 30)
    )
    assert stats["extended"] == {"平安镇": "2019-06-08T18:00:00+08:00",
                                 "赵圈河镇": "2019-06-08T18:00:00+08:00"}  # fmt: skip
    rows = rows_by_unit(openpyxl.load_workbook(path)["本期汇总"])
    assert rows["新兴镇"][2] == 4  # its correction came at 16:00
    assert rows["新兴镇"][-3:] == ("逾期", "06-06 15:00", 1)
    assert rows["平安镇"][-3:] == ("延期至 06-08 18:00", None, None)
    assert rows["合计"][2] == 7


def test_no_text_a_unit_wrote_becomes_a_formula_in_any_workbook(pipeline, tmp_path):
    subject = "=1+2东风镇第1周周报"
    pipeline.ingest(make_mail(subject, received=at(5, 9), files=table("东风镇", 3)), "test")
    path, _ = write_workbook(
        pipeline.db, pipeline.rules, "2019-06-06", tmp_path, "weekly", at(9, 9)
    )
    assessment = write_assessment(assess(pipeline.db, pipeline.rules, at(9, 9)), pipeline.rules,
                                  tmp_path)  # fmt: skip
    book = openpyxl.load_workbook(path)
    subject_cell = book["报送记录"]["I3"]
    assert (subject_cell.value, subject_cell.data_type, subject_cell.quotePrefix) == (
        subject,
        "s",
        True,
    )
    sheets = [*book.worksheets, *openpyxl.load_workbook(assessment).worksheets]
    cells = [cell for sheet in sheets for row in sheet.iter_rows() for cell in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    texts = [c for c in cells if isinstance(c.value, str) and c.value[:1] in "=+-@"]
    assert [(c.value, c.quotePrefix) for c in texts] == [(subject, True)]


# -- through the command line -----------------------------------------------------------------


@pytest.fixture
def config_file(campaign: Pipeline) -> Path:
    path = campaign.app.config.rules.parent / "config.toml"
    path.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    return path


def test_mailproc_report_writes_the_workbook(config_file):
    result = CliRunner().invoke(
        cli,
        ["report", "weekly", "--period", "2019-06-06", "--as-of", "2019-06-09T09:00",
         "--config", str(config_file)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    path = config_file.parent / "reports" / "安全生产月_周报_2019-06-06_截至0609-0900.xlsx"
    assert result.output == f"已写出：{path}\n"
    summary = openpyxl.load_workbook(path)["本期汇总"]
    assert rows_by_unit(summary)["合计"][2:4] == (11, 360)


def test_mailproc_report_of_a_period_without_statistics_is_one_line(config_file):
    result = CliRunner().invoke(
        cli, ["report", "weekly", "--period", "2019-06-07", "--config", str(config_file)]
    )
    assert result.exit_code == 2
    assert result.output.startswith("mailproc: 没有 2019-06-07 这一期的统计（可选：周报 ")


def test_mailproc_status_json_holds_the_matrix_and_the_decisions(config_file):
    result = CliRunner().invoke(cli, ["status", "--json", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    week = {unit: cells["weekly/2019-06-06"]["state"] for unit, cells in data["units"].items()}
    assert (week["东风镇"], week["新兴镇"], week["唐家镇"], week["平安镇"]) == (
        "on_time",
        "late",
        "excused",
        "missing",
    )
    assert [(d["kind"], d["unit"]) for d in data["decisions"]] == [
        ("excuse", "唐家镇"),
        ("extend", "平安镇"),
        ("extend", "赵圈河镇"),
    ]


def test_a_report_is_never_overwritten_by_a_later_one(campaign, tmp_path):
    # issue 13, point 7: the office's report and the tick's, of the same period at two
    # moments, are two files; the same moment twice is two files too
    folder = tmp_path / "reports"
    early, _ = write_workbook(campaign.db, campaign.rules, "2019-06-06", folder, "weekly",
                              at(6, 11, 5))  # fmt: skip
    kept = early.read_bytes()
    later, _ = write_workbook(campaign.db, campaign.rules, "2019-06-06", folder, "weekly",
                              at(9, 9))  # fmt: skip
    again, _ = write_workbook(campaign.db, campaign.rules, "2019-06-06", folder, "weekly",
                              at(6, 11, 5))  # fmt: skip
    assert len({early, later, again}) == 3
    assert early.name == "安全生产月_周报_2019-06-06_截至0606-1105.xlsx"
    assert again.name == "安全生产月_周报_2019-06-06_截至0606-1105_2.xlsx"
    assert early.read_bytes() == kept
    assert rows_by_unit(openpyxl.load_workbook(early)["本期汇总"])["合计"][2] == 3
    assert rows_by_unit(openpyxl.load_workbook(later)["本期汇总"])["合计"][2] == 11


def test_workbooks_print_readably(campaign, tmp_path):
    # issue 13, point 18: landscape A4; the 17 columns go across two pages at full size,
    # each page repeating the unit names and the header rows, rather than shrunk to 6 pt
    path, _ = write_workbook(
        campaign.db, campaign.rules, "2019-06-06", tmp_path, "weekly", at(9, 9)
    )
    assessment = write_assessment(assess(campaign.db, campaign.rules, at(9, 9)),
                                  campaign.rules, tmp_path)  # fmt: skip
    book = openpyxl.load_workbook(path)
    sheets = {**{s.title: s for s in book.worksheets}, "考核": openpyxl.load_workbook(
        assessment)["考核"]}  # fmt: skip
    for sheet in sheets.values():
        assert (sheet.page_setup.orientation, sheet.page_setup.paperSize) == ("landscape", 9)
        assert sheet.page_setup.fitToWidth in (1, 2)
    summary = sheets["本期汇总"]
    assert summary.page_setup.fitToWidth == 2
    assert (summary.print_title_rows, summary.print_title_cols) == ("$3:$4", "$A:$B")
    assert sheets["报送记录"].print_title_rows == "$2:$2"
    assert sheets["考核"].print_title_rows == "$3:$3"
    assert sheets["报送记录"].column_dimensions["B"].width >= 2 * len("区安委会成员单位")


def test_stats_of_a_day_that_does_not_exist_says_so(config_file):
    # issue 13, point 13: 2019-06-31 is no date, not a period without statistics
    for command in (["stats"], ["report", "周报"]):
        result = CliRunner().invoke(
            cli, [*command, "--period", "2019-06-31", "--config", str(config_file)]
        )
        assert (result.exit_code, result.output) == (2, "mailproc: “2019-06-31”不是有效日期\n")
