"""The assessment (mailproc/assess.py): scores and ranks from a small ledger, as of a moment,
with excused and extended deadlines, and the ranked workbook."""

import datetime as dt

import openpyxl
import pytest
from mails import DOCX, TZ, XLSX, docx_bytes, make_mail, stats_xlsx

from mailproc.office import actions
from mailproc.pipeline import Pipeline
from mailproc.reports.assess import _rank, assess, first_ten, write_assessment

WEEK_1 = ("weekly", "2019-06-06")
SHOWN = ("东风镇", "清水镇", "新兴镇", "唐家镇", "平安镇", "大洼街道")


def at(day: int, hour: int, month: int = 6) -> dt.datetime:
    return dt.datetime(2019, month, day, hour, tzinfo=TZ)


def plan(unit: str, sender: str, received: dt.datetime) -> bytes:
    files = [(f"{unit}活动方案.docx", docx_bytes(), DOCX)]
    return make_mail(f"{unit}安全生产月活动方案", sender=sender, received=received, files=files)


def weekly(unit: str, sender: str, received: dt.datetime, with_table: bool = True) -> bytes:
    files = [("附件1.xlsx", stats_xlsx(unit), XLSX)] if with_table else []
    return make_mail(f"{unit}第1周周报", sender=sender, received=received, files=files)


@pytest.fixture
def ledger(pipeline: Pipeline) -> Pipeline:
    """The plan and week 1: 东风镇 on time twice, 清水镇 on time but week 1 without its table,
    新兴镇 late twice, 唐家镇 a plan on time and week 1 excused, 平安镇 no plan and week 1
    extended to 8 June 18:00 and not sent; every other unit sent nothing."""
    for raw in (
        plan("东风镇", "dongfeng_aj@163.com", at(30, 9, month=5)),
        plan("清水镇", "qingshui_aj@163.com", at(30, 10, month=5)),
        plan("唐家镇", "tangjia_aj@163.com", at(31, 9, month=5)),
        plan("新兴镇", "xinxing_aj@163.com", at(1, 9)),
        weekly("东风镇", "dongfeng_aj@163.com", at(5, 9)),
        weekly("清水镇", "qingshui_aj@163.com", at(5, 10), with_table=False),
        weekly("新兴镇", "xinxing_aj@163.com", at(6, 15)),
    ):
        pipeline.ingest(raw, source="test")
    actions.excuse(pipeline.app, "唐家镇", *WEEK_1, "防汛任务", "王明欣")
    actions.extend(pipeline.app, "平安镇", *WEEK_1, at(8, 18), "停电", "王明欣")
    return pipeline


def scores(result: dict) -> dict[str, tuple]:
    by_unit = {entry["unit"]: entry for entry in result["units"]}
    return {
        unit: (
            tuple(by_unit[unit]["record"][key] for key in result["deadlines"]),
            by_unit[unit]["score"],
            by_unit[unit]["possible"],
            by_unit[unit]["percent"],
            by_unit[unit]["rank"],
        )
        for unit in SHOWN
    }


def test_before_the_first_deadline_nothing_is_assessed(ledger):
    result = assess(ledger.db, ledger.rules, at(29, 9, month=5))
    assert result["deadlines"] == []
    assert {(u["score"], u["possible"], u["percent"], u["rank"]) for u in result["units"]} == {
        (0, 0, None, 1)
    }


def test_an_extension_still_ahead_counts_neither_way(ledger):
    # issue 13, point 2, by hand from domain.md "Assessment": points 100 / 60 / 0 a deadline;
    # 唐家镇's excused week counts neither way (100 of 100 possible); 清水镇's week 1 lacks its
    # table and never made it good, so it scores as late (100 + 60 of 200); ranks by share.
    result = assess(ledger.db, ledger.rules, at(7, 9))
    assert result["as_of"] == "2019-06-07T09:00:00+08:00"
    assert result["points"] == {"on_time": 100, "late": 60, "missing": 0}
    assert result["deadlines"] == ["plan/2019-05-31", "weekly/2019-06-06"]
    assert scores(result) == {
        "东风镇": (("on_time", "on_time"), 200, 200, 100.0, 1),
        "清水镇": (("on_time", "incomplete"), 160, 200, 80.0, 3),
        "新兴镇": (("late", "late"), 120, 200, 60.0, 4),
        "唐家镇": (("on_time", "excused"), 100, 100, 100.0, 1),
        "平安镇": (("missing", "not_due"), 0, 100, 0.0, 5),
        "大洼街道": (("missing", "missing"), 0, 200, 0.0, 5),
    }  # fmt: skip
    # competition ranking: 1, 1, 3, 4, then 30 units share the 5th place
    assert [u["rank"] for u in result["units"]] == [1, 1, 3, 4] + [5] * 30
    assert [u["unit"] for u in result["units"][:4]] == ["东风镇", "唐家镇", "清水镇", "新兴镇"]
    # the tenth place is shared by 30 units: the first ten keep them all
    assert len(first_ten(result["units"])) == 34


def test_a_tie_at_the_tenth_place_is_kept_whole():
    units = [{"unit": str(n), "score": s, "possible": 100} for n, s in enumerate(
        [100, 90, 90, 80, 70, 60, 50, 40, 30, 20, 20, 20, 10])]  # fmt: skip
    _rank(units)
    assert [u["rank"] for u in units] == [1, 2, 2, 4, 5, 6, 7, 8, 9, 10, 10, 10, 13]
    assert [u["unit"] for u in first_ten(units)] == [str(n) for n in range(12)]


def test_after_the_extension_the_silent_unit_is_missing(ledger):
    result = assess(ledger.db, ledger.rules, at(9, 9))
    entry = next(u for u in result["units"] if u["unit"] == "平安镇")
    assert entry["record"] == {"plan/2019-05-31": "missing", "weekly/2019-06-06": "missing"}
    assert scores(result)["平安镇"] == (("missing", "missing"), 0, 200, 0.0, 5)


def test_a_later_deadline_passing_adds_to_what_is_possible(ledger):
    result = assess(ledger.db, ledger.rules, at(13, 12))
    assert result["deadlines"] == ["plan/2019-05-31", "weekly/2019-06-06", "weekly/2019-06-13"]
    assert {unit: entry[1:4] for unit, entry in scores(result).items()} == {
        "东风镇": (200, 300, 66.7),
        "清水镇": (160, 300, 53.3),
        "新兴镇": (120, 300, 40.0),
        "唐家镇": (100, 200, 50.0),
        "平安镇": (0, 300, 0.0),
        "大洼街道": (0, 300, 0.0),
    }


def test_the_ranked_workbook(ledger, tmp_path):
    path = write_assessment(assess(ledger.db, ledger.rules, at(9, 9)), ledger.rules, tmp_path)
    assert path.parent == tmp_path and path.name.startswith("安全生产月_考核_截至")
    sheet = openpyxl.load_workbook(path)["考核"]
    assert sheet["A1"].value == (
        "2019年“安全生产月”和“安全生产大洼行”活动报送情况考核（截至 2019-06-09 09:00）"
    )
    assert sheet["A2"].value == (
        "计分（每个截止时间）：按时 100，逾期 60，未报 0；"
        "缺项未补按逾期计分，免报不计；按得分率排名"
    )
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    assert rows[0] == (
        "名次",
        "单位",
        "类别",
        "方案\n05-31",
        "周报\n06-06",
        "得分",
        "满分",
        "得分率%",
    )
    assert rows[1:5] == [
        (1, "东风镇", "镇", "按时", "按时", 200, 200, 100),
        (1, "唐家镇", "镇", "按时", "免报", 100, 100, 100),
        (3, "清水镇", "镇", "按时", "缺项未补", 160, 200, 80),
        (4, "新兴镇", "镇", "逾期", "逾期", 120, 200, 60),
    ]
    assert rows[5] == (5, "大洼街道", "街道", "未报", "未报", 0, 200, 0)
    assert len(rows) == 1 + 34
    assert sheet.cell(7, 4).fill.fgColor.rgb == "00FFE699"  # 新兴镇 late
    assert sheet.cell(8, 4).fill.fgColor.rgb == "00F8CBAD"  # 大洼街道 missing
