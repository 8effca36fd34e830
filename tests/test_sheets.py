"""Reading 附件1: the public corpus read exactly, and generated files for each drift units make."""

import codecs
import collections
import csv
import email
import email.policy
import io
import json
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

import docx
import openpyxl
import pytest
import xlwt

from mailproc.read.mail import sniff_kind
from mailproc.read.tables import UnreadableFile, read_stats
from mailproc.rules import load_rules
from mailproc.values import BadCell, StatsTable

CORPUS = Path(__file__).parent / "corpus"
DATA = Path(__file__).parent / "data"
RULES = load_rules(Path(__file__).parent.parent / "rules")
IDS = [c.id for c in RULES.columns]

# The template's two header rows, and one figure per column (lectures .. media_reports).
GROUPS = ["单位", "宣讲活动", "", "安全宣传咨询日", "", "发放宣传资料", "警示教育", "",
          "应急演练", "", "公众开放日", "", "网络知识答题", "隐患排查治理", "", "曝光问题",
          "受理举报", "媒体报道"]  # fmt: skip
SUBS = ["", "场次", "参加人次", "设置咨询点", "咨询群众", "份数", "场次", "观看人次", "场次",
        "参演人次", "开放企业", "参观人次", "参与人次", "排查隐患", "整改隐患", "条数", "条数",
        "篇数"]  # fmt: skip
FIGURES = [3, 120, 2, 310, 1500, 4, 260, 1, 85, 2, 40, 900, 6, 5, 1, 0, 2]
EXPECTED = dict(zip(IDS, FIGURES, strict=True))
TITLE = "盘锦市大洼区“安全生产月”和“安全生产大洼行”活动情况统计表"
REPORTER_LINE = (
    "填报单位：东风镇人民政府    填报人：张伟    联系电话：0427-6780436    填报日期：2019年6月12日"
)
NOTE = "注：本表数据截至填报日期，请于每周四11时前报送。"


def xlsx(sheets: dict[str, list[list[Any]]], merges: dict[str, list[str]] | None = None) -> bytes:
    """An .xlsx with the given sheets (rows from A1) and merged ranges."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(r, c, value)
        for area in (merges or {}).get(name, []):
            sheet.merge_cells(area)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def word(paragraphs_before: list[str], rows: list[list[str]]) -> bytes:
    """A .docx with paragraphs and one table (no table when `rows` is empty)."""
    document = docx.Document()
    for text in paragraphs_before:
        document.add_paragraph(text)
    if rows:
        table = document.add_table(rows=len(rows), cols=len(rows[0]))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                table.cell(r, c).text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


def template(data_rows: list[list[Any]]) -> bytes:
    """The official-looking table: title, 填报单位 line, merged two-level header, data, note."""
    rows = [[TITLE], [REPORTER_LINE], GROUPS, SUBS, *data_rows, [NOTE]]
    merges = ["A1:R1", "A2:R2", "A3:A4", "B3:C3", "D3:E3", "G3:H3", "I3:J3", "K3:L3", "N3:O3"]
    return xlsx({"附件1": rows}, {"附件1": merges})


def read(data: bytes, kind: str = "xlsx", filename: str = "附件1.xlsx") -> StatsTable:
    table = read_stats(data, filename, kind, RULES)
    assert table is not None
    return table


# ---------------------------------------------------------------------------------------------
# Layouts


def test_two_level_merged_header_with_cumulative_row() -> None:
    data = template([["东风镇", *FIGURES], ["累计", *(f * 3 for f in FIGURES)]])
    table = read(data)
    assert table.values == EXPECTED
    assert table.columns_found == IDS
    assert table.sheet == "附件1"
    assert table.reporter == "东风镇人民政府"
    assert table.bad_cells == []
    assert table.approximations == []
    assert table.notes == ["累计 row ignored"]


def test_rows_of_the_header_are_not_data() -> None:
    """A 栏次 row numbering the columns and a 计量单位 row come before the unit's figures."""
    numbering = ["栏次", *range(1, 18)]
    units = ["计量单位", "场", "人次", "个", "人次", "份", "场", "人次", "场", "人次", "家", "人次",
             "人次", "项", "项", "条", "条", "篇"]  # fmt: skip
    table = read(template([numbering, units, ["东风镇", *FIGURES]]))
    assert table.values == EXPECTED
    assert table.bad_cells == [] and table.data_rows == 1
    unlabelled = read(template([["", *range(1, 18)], ["东风镇", *FIGURES]]))
    assert unlabelled.values == EXPECTED


def test_the_units_own_row_among_its_villages() -> None:
    villages = [[name, *(f + n for f in FIGURES)] for n, name in enumerate(["红旗村", "东风村"], 1)]
    data = template([*villages, ["东风镇", *FIGURES]])
    first = read(data)
    assert (first.row_label, first.data_rows) == ("红旗村", 3)
    own = read_stats(data, "附件1.xlsx", "xlsx", RULES, own_row=lambda label: label == "东风镇")
    assert own is not None and own.values == EXPECTED and own.row_label == "东风镇"


def test_an_own_row_left_blank_reads_as_zeros() -> None:
    data = template([["东风镇", *([""] * 17)]])
    assert read(data).values == {} and read(data).data_rows == 0
    own = read_stats(data, "附件1.xlsx", "xlsx", RULES, own_row=lambda label: label == "东风镇")
    assert own is not None and own.values == dict.fromkeys(IDS, 0)


def test_a_hidden_sheet_is_not_read() -> None:
    workbook = openpyxl.load_workbook(io.BytesIO(template([["东风镇", *FIGURES]])))
    old = workbook.copy_worksheet(workbook["附件1"])
    old.title = "上周"
    old["B5"] = 999
    old.sheet_state = "hidden"
    workbook.move_sheet(old, offset=-1)  # first, where the search would look first
    out = io.BytesIO()
    workbook.save(out)
    table = read(out.getvalue())
    assert table.sheet == "附件1" and table.values == EXPECTED


def test_single_level_reworded_headers_and_blank_column() -> None:
    header = ["单位", "", "宣讲次数", "听讲人数", "咨询点(个)", "现场咨询人数", "宣传品发放数",
              "警示教育(场)", "受教育人次", "开展演练(场)", "参加演练人数", "开放日企业",
              "开放日参观人数", "网上答题人次", "发现隐患数", "隐患整改数", "曝光数", "接到举报",
              "新闻报道数"]  # fmt: skip
    rows = [[TITLE], ["填报单位", "东风镇", "填报人：张伟"], header, ["东风镇", "", *FIGURES]]
    table = read(xlsx({"Sheet1": rows}))
    assert table.values == EXPECTED
    assert table.columns_found == IDS
    assert table.reporter == "东风镇"


def test_vertical_layout() -> None:
    rows = [
        [TITLE],
        ["填报单位：新开镇"],
        ["项目", "单位", "数量"],
        ["宣讲场次", "场", 4],
        ["宣讲参加人次", "人次", "１２０"],
        ["应急演练场次", "场", "2场"],
        ["参演人次", "人次", "约80"],
        ["媒体报道篇数", "篇", "—"],
    ]
    table = read(xlsx({"Sheet1": rows}))
    assert table.values == {
        "lectures": 4,
        "lecture_attendance": 120,
        "drills": 2,
        "drill_participants": 80,
        "media_reports": 0,
    }
    assert table.reporter == "新开镇"
    assert [(a.cell, a.text) for a in table.approximations] == [("C7", "约80")]
    assert table.notes == ["竖排表格 (vertical layout)"]


def test_vertical_two_level_skips_cumulative_column() -> None:
    rows = [
        ["填报单位：", "清水镇"],
        ["项目", "", "累计", "本周"],
        ["宣讲活动", "场次", 9, 3],
        [None, "参加人次", 400, 150],
        ["警示教育", "场次", 5, 1],
        [None, "观看人次", 90, "若干"],
    ]
    table = read(
        xlsx({"Sheet1": rows}, {"Sheet1": ["A3:A4", "A5:A6"]}),
    )
    assert table.values == {"lectures": 3, "lecture_attendance": 150, "warning_sessions": 1}
    assert table.bad_cells == [
        BadCell("Sheet1", "D6", "warning_viewers", "警示教育/观看人次", "若干")
    ]
    assert table.reporter == "清水镇"


def test_vertical_layout_without_reporter_line_and_error_cell() -> None:
    rows = [["项目", "单位", "数量"], ["宣讲场次", "场", 2], ["参演人次", "人次", "#REF!"]]
    rows.append(["媒体报道篇数", "篇", 1])
    table = read(xlsx({"Sheet1": rows}))
    assert table.reporter is None  # not "数量", the cell beside the 单位 header
    assert table.values == {"lectures": 2, "media_reports": 1}
    assert table.bad_cells == [BadCell("Sheet1", "C3", "drill_participants", "参演人次", "#REF!")]


def test_word_table_with_merged_cells() -> None:
    document = docx.Document()
    table = document.add_table(rows=3, cols=7)
    texts = [["单位", "宣讲活动", "", "应急演练", "", "媒体报道", "备注"],
             ["", "场次", "参加人次", "场次", "参演人次", "篇数", ""],
             ["新兴镇", "2", "1,500", "－", "", "3篇", "无"]]  # fmt: skip
    for r, row in enumerate(texts):
        for c, text in enumerate(row):
            if text:
                table.cell(r, c).text = text
    table.cell(0, 0).merge(table.cell(1, 0))
    table.cell(0, 1).merge(table.cell(0, 2))
    table.cell(0, 3).merge(table.cell(0, 4))
    out = io.BytesIO()
    document.save(out)
    result = read(out.getvalue(), "docx", "附件1.docx")
    assert result.values == {
        "lectures": 2,
        "lecture_attendance": 1500,
        "drills": 0,
        "drill_participants": 0,
        "media_reports": 3,
    }
    assert result.reporter == "新兴镇"
    assert result.bad_cells == []


def test_traditional_word_table_with_bad_cell() -> None:
    groups = ["單位", "宣講活動", "宣講活動", "應急演練", "應急演練", "媒體報道"]
    subs = ["", "場次", "參加人次", "場次", "參演人次", "篇數"]
    data = word(
        ["盤錦市大窪區活動情況統計表", "填報單位：東風鎮    填報人：陳靜"],
        [groups, subs, ["東風鎮", "７", "300餘", "2場", "見附件", "1"]],
    )
    table = read(data, "docx", "附件1.docx")
    assert table.sheet == "表格1"
    assert table.reporter == "東風鎮"
    assert table.values == {
        "lectures": 7,
        "lecture_attendance": 300,
        "drills": 2,
        "media_reports": 1,
    }
    assert table.bad_cells == [
        BadCell("表格1", "E3", "drill_participants", "應急演練/參演人次", "見附件")
    ]
    assert table.approximations == [
        BadCell("表格1", "C3", "lecture_attendance", "宣講活動/參加人次", "300餘")
    ]


def test_word_documents_without_the_table_are_none() -> None:
    report = word(["东风镇安全生产月第二周活动开展情况", "本周开展宣讲活动。"], [])
    assert read_stats(report, "周报.docx", "docx", RULES) is None
    schedule = word(["活动安排"], [["时间", "地点", "内容"], ["6月3日", "东风镇", "宣讲"]])
    assert read_stats(schedule, "安排.docx", "docx", RULES) is None


@pytest.mark.parametrize("kind", ["doc", "wps", "image", "other", "zip"])
def test_files_that_cannot_hold_a_readable_table_are_none(kind: str) -> None:
    """A compound file with nothing in it: no program reads tables out of it as .doc or .wps
    (PDFs: tests/test_formats.py)."""
    assert read_stats(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "x", kind, RULES) is None


def test_notes_sheet_first_and_totals_ignored() -> None:
    rows = [GROUPS, SUBS, ["合计", *(f * 2 for f in FIGURES)], ["东风镇", *FIGURES]]
    rows.append(["累計", *(f * 3 for f in FIGURES)])
    data = xlsx({"填表说明": [["请按实际开展情况填写，无数据填0。"]], "统计表": rows})
    table = read(data)
    assert table.sheet == "统计表"
    assert table.values == EXPECTED
    assert table.notes == ["合计 row ignored", "累計 row ignored"]
    assert table.reporter == "东风镇"  # no 填报单位 line: the data row's 单位 cell


def test_missing_columns_are_left_out() -> None:
    rows = [["单位", "宣讲场次", "发放宣传资料份数", "媒体报道篇数"], ["唐家镇", 2, 300, 1]]
    table = read(xlsx({"Sheet1": rows}))
    assert table.values == {"lectures": 2, "materials": 300, "media_reports": 1}
    assert table.columns_found == ["lectures", "materials", "media_reports"]


def test_two_columns_are_not_the_table() -> None:
    rows = [["单位", "宣讲场次", "媒体报道篇数"], ["唐家镇", 2, 1]]
    assert read_stats(xlsx({"Sheet1": rows}), "a.xlsx", "xlsx", RULES) is None


def test_blank_reporter_is_none() -> None:
    blank = "填报单位：    填报人：冯堃    联系电话：0427-5582301    填报日期：2019年6月"
    data = xlsx({"附件1": [[TITLE], [blank], GROUPS, SUBS, ["", *FIGURES]]})
    table = read(data)
    assert table.reporter is None
    assert table.values == EXPECTED


# ---------------------------------------------------------------------------------------------
# Cell values


def one_cell(value: Any) -> StatsTable:
    """A small single-level table whose 宣讲场次 cell (B2) holds `value`."""
    rows = [["单位", "宣讲场次", "演练场次", "媒体报道篇数"], ["东风镇", value, 1, 2]]
    return read(xlsx({"Sheet1": rows}))


@pytest.mark.parametrize(
    ("value", "figure"),
    [
        ("１２", 12),
        ("3场", 3),
        ("3場", 3),
        ("500人次", 500),
        ("5（场）", 5),
        ("5个", 5),
        ("1,200", 1200),
        ("1，200", 1200),
        (" 45 ", 45),
        ("—", 0),
        ("-", 0),
        ("无", 0),
        ("", 0),
        (None, 0),
        (12.0, 12),
        (7, 7),
        ("12.0", 12),
    ],
)
def test_exact_figures(value: Any, figure: int) -> None:
    table = one_cell(value)
    assert table.values == {"lectures": figure, "drills": 1, "media_reports": 2}
    assert table.bad_cells == []
    assert table.approximations == []


@pytest.mark.parametrize(
    ("value", "figure"),
    [("3000余", 3000), ("约500", 500), ("0.3万", 3000), ("约1,200人次", 1200), ("２００多", 200)],
)
def test_approximations_are_taken_and_flagged(value: str, figure: int) -> None:
    table = one_cell(value)
    assert table.values["lectures"] == figure
    assert table.approximations == [BadCell("Sheet1", "B2", "lectures", "宣讲场次", value)]
    assert table.bad_cells == []


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("若干", "若干"),
        ("见附件", "见附件"),
        ("待统计", "待统计"),
        ("#REF!", "#REF!"),  # openpyxl writes an error cell; calamine alone reads it as ''
        ("#DIV/0!", "#DIV/0!"),
        ("-7", "-7"),
        (-7, "-7"),
        (2.5, "2.5"),
        ("0.00005万", "0.00005万"),
        ("三场", "三场"),
        ("3-5", "3-5"),
        ("(5)", "(5)"),
    ],
)
def test_bad_cells_are_reported_not_guessed(value: Any, text: str) -> None:
    table = one_cell(value)
    assert table.bad_cells == [BadCell("Sheet1", "B2", "lectures", "宣讲场次", text)]
    assert table.values == {"drills": 1, "media_reports": 2}
    assert table.columns_found == ["lectures", "drills", "media_reports"]


def xls_with_errors(errors: dict[int, str]) -> bytes:
    """A small .xls (BIFF8, written by xlwt) whose data row holds error cells (BOOLERR records)
    at the given columns, a blank at column 3 and figures elsewhere."""
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Sheet1")
    for c, text in enumerate(["单位", "宣讲场次", "演练场次", "参演人次", "媒体报道篇数"]):
        sheet.write(0, c, text)
    sheet.write(1, 0, "东风镇")
    row = sheet.row(1)
    for c in (1, 2, 4):
        if c in errors:
            row.set_cell_error(c, errors[c])
        else:
            sheet.write(1, c, 7)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_xls_error_cells_are_bad_cells_and_blanks_zero() -> None:
    """calamine reads an .xls error cell as blank; it must not count as 0."""
    table = read(xls_with_errors({1: "#REF!", 4: "#DIV/0!"}), "xls", "附件1.xls")
    assert table.bad_cells == [
        BadCell("Sheet1", "B2", "lectures", "宣讲场次", "#REF!"),
        BadCell("Sheet1", "E2", "media_reports", "媒体报道篇数", "#DIV/0!"),
    ]
    assert table.values == {"drills": 7, "drill_participants": 0}


def test_xls_without_error_cells_reads_blanks_as_zero() -> None:
    table = read(xls_with_errors({}), "xls", "附件1.xls")
    assert table.bad_cells == []
    assert table.values == {"lectures": 7, "drills": 7, "drill_participants": 0, "media_reports": 7}


def test_xls_formula_results_that_are_errors() -> None:
    """data/formula-errors.xls: LibreOffice's .xls of a sheet with =1/0 in B2 and =#REF!+1 in
    C2; the cached results are errors (FORMULA records), calamine reads both as blank."""
    table = read((DATA / "formula-errors.xls").read_bytes(), "xls", "附件1.xls")
    assert table.bad_cells == [
        BadCell("附件1", "B2", "lectures", "宣讲场次", "#DIV/0!"),
        BadCell("附件1", "C2", "drills", "演练场次", "#REF!"),
    ]
    assert table.values == {"media_reports": 3}


def test_bad_cell_addresses_in_the_template() -> None:
    figures: list[Any] = list(FIGURES)
    figures[4] = "若干"  # materials, column F
    figures[16] = "#REF!"  # media_reports, column R
    table = read(template([["东风镇", *figures]]))
    assert table.bad_cells == [
        BadCell("附件1", "F5", "materials", "发放宣传资料/份数", "若干"),
        BadCell("附件1", "R5", "media_reports", "媒体报道/篇数", "#REF!"),
    ]
    assert table.values == {
        k: v for k, v in EXPECTED.items() if k not in ("materials", "media_reports")
    }


# ---------------------------------------------------------------------------------------------
# CSV


def test_csv_in_gbk_and_utf8() -> None:
    rows = [["填报单位：区教育局"], ["单位", "宣讲场次", "参演人次", "媒体报道篇数"],
            ["区教育局", "1,200", "约30", "—"]]  # fmt: skip
    expected = {"lectures": 1200, "drill_participants": 30, "media_reports": 0}
    for encoding in ("gbk", "utf-8", "utf-8-sig"):
        table = read(csv_bytes(rows, encoding), "csv", "统计表.csv")
        assert table.values == expected
        assert table.reporter == "区教育局"
        assert table.sheet == "csv"


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-16-le", b""),  # Excel's 另存为“Unicode 文本”, as some exports write it
    ],
)
def test_csv_in_utf16_as_excel_exports_unicode_text(encoding, bom) -> None:
    rows = [["填报单位：区教育局"], ["单位", "宣讲场次", "参演人次", "媒体报道篇数"],
            ["区教育局", "1,200", "约30", "—"]]  # fmt: skip
    text = "\r\n".join("\t".join(row) for row in rows) + "\r\n"
    data = bom + text.encode(encoding)
    kind = sniff_kind(data, "统计表.csv")
    table = read(data, kind, "统计表.csv")
    assert table.values == {"lectures": 1200, "drill_participants": 30, "media_reports": 0}
    assert (table.reporter, table.sheet) == ("区教育局", "csv")
    with pytest.raises(UnreadableFile, match="UTF-16"):  # cut off inside its last character
        read_stats(data[:-1], "统计表.csv", kind, RULES)


def test_csv_in_unknown_encoding_is_unreadable() -> None:
    rng = random.Random(7)
    noise = bytes(rng.randrange(0x80, 0x100) for _ in range(2000))
    with pytest.raises(UnreadableFile, match="编码"):
        read_stats(noise, "统计表.csv", "csv", RULES)


# ---------------------------------------------------------------------------------------------
# Files that cannot be opened


def test_truncated_and_corrupt_files() -> None:
    good = template([["东风镇", *FIGURES]])
    with pytest.raises(UnreadableFile, match="文件已损坏或不完整"):
        read_stats(good[: len(good) // 2], "附件1.xlsx", "xlsx", RULES)
    with pytest.raises(UnreadableFile):
        read_stats(b"PK\x03\x04" + bytes(3000), "附件1.xlsx", "xlsx", RULES)
    report = word(["报告"], [["单位", "宣讲场次"], ["东风镇", "1"]])
    with pytest.raises(UnreadableFile):
        read_stats(report[:-200], "附件1.docx", "docx", RULES)
    with pytest.raises(UnreadableFile):
        read_stats(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000), "附件1.xls", "xls", RULES)


def test_file_over_50_mb() -> None:
    with pytest.raises(UnreadableFile, match="文件过大"):
        read_stats(b"PK" + bytes(50 * 1024 * 1024), "附件1.xlsx", "xlsx", RULES)


def test_too_many_columns() -> None:
    data = xlsx({"Sheet1": [["单位", *(f"列{n}" for n in range(250))]]})
    with pytest.raises(UnreadableFile, match="表格过大"):
        read_stats(data, "附件1.xlsx", "xlsx", RULES)


@pytest.fixture(scope="module")
def huge_xlsx(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """100,000 rows, generated once per run."""
    path = tmp_path_factory.mktemp("huge") / "huge.xlsx"
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Sheet1")
    sheet.append(["单位", "宣讲场次", "演练场次", "媒体报道篇数"])
    for n in range(100_000):
        sheet.append([n, n])
    workbook.save(path)
    return path.read_bytes()


def test_huge_sheet_fails_fast_in_bounded_memory(huge_xlsx: bytes) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(UnreadableFile, match="100001 行"):
        read_stats(huge_xlsx, "附件1.xlsx", "xlsx", RULES)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 5
    assert peak < 10 * 1024 * 1024  # the rows never became Python objects


def test_huge_csv() -> None:
    rows = [["单位", "宣讲场次", "演练场次", "媒体报道篇数"]] + [["x", "1", "1", "1"]] * 10_000
    with pytest.raises(UnreadableFile, match="表格过大"):
        read_stats(csv_bytes(rows, "utf-8"), "a.csv", "csv", RULES)


# ---------------------------------------------------------------------------------------------
# The public corpus


def sniff(data: bytes) -> str:
    """The kind a mail parser's sniffer would give (enough for the corpus' attachments)."""
    if data.startswith(b"PK"):
        return "docx" if b"word/" in data else "xlsx"
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        return "doc" if "WordDocument".encode("utf-16-le") in data else "xls"
    if data.startswith(b"%PDF"):
        return "pdf"
    if data.startswith(b"\xff\xd8"):
        return "image"
    return "other"


def attachments(path: Path) -> list[bytes]:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        if part.get_filename() or not part.get_content_type().startswith("text/"):
            found.append(part.get_payload(decode=True) or b"")
    return found


def test_corpus() -> None:
    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    right: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    problems = []
    for entry in expected:
        tables, unreadable = [], []
        for data in attachments(CORPUS / entry["file"]):
            try:
                table = read_stats(data, "attachment", sniff(data), RULES)
            except UnreadableFile as exc:
                unreadable.append(str(exc))
            else:
                if table is not None:
                    tables.append(table)
        name = entry["file"]
        if entry.get("stats"):
            for column, figure in entry["stats"].items():
                total[column] += 1
                right[column] += any(t.values.get(column) == figure for t in tables)
            if [t.values for t in tables] != [entry["stats"]] or unreadable:
                problems.append(f"{name}: {[t.values for t in tables]} {unreadable}")
        elif entry["problem"] == "bad_cells":
            if len(tables) != 1 or not tables[0].bad_cells:
                problems.append(f"{name}: expected bad cells, got {tables}")
        elif entry["problem"] == "unreadable_file":
            if len(unreadable) != 1 or tables:
                problems.append(f"{name}: expected one unreadable file, got {unreadable}")
        elif "unknown_unit" in entry["features"]:  # a readable table naming no unit
            if [t.reporter for t in tables] != [None] or unreadable:
                problems.append(f"{name}: expected a table without 填报单位, got {tables}")
        elif tables or unreadable:
            problems.append(f"{name}: unexpected {tables} {unreadable}")
    print("\nper-column accuracy on the corpus:")
    for column in IDS:
        print(f"  {column:20} {right[column]}/{total[column]}")
    assert problems == []
    assert right == total and sum(total.values()) == 155 * 17


def test_the_weeks_table_beats_the_running_totals_above_it() -> None:
    header = ["单位", "宣讲场次", "演练场次", "媒体报道篇数"]
    rows = [["一、截至6月18日累计"], header, ["东风镇", 15, 3, 12], [],
            ["二、本周"], header, ["东风镇", 5, 1, 4]]  # fmt: skip
    table = read(xlsx({"Sheet1": rows}))
    assert table.values == {"lectures": 5, "drills": 1, "media_reports": 4}
