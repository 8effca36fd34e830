"""A second campaign as data only: a district education bureau's school-safety campaign
(tests/campaigns/school/rules) run with the bundled templates. Its mails are read right, its
periods are 第N期, 月份 and a National Day roll, its figures decimals, and nothing mailproc
sends, pages or workbooks carries a word of the 2019 campaign."""

import datetime as dt
import email
import io
import re
import shutil
from email import policy
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from conftest import ROOT
from mails import docx_bytes, make_mail

from mailproc.app import open_app
from mailproc.cli import cli
from mailproc.config import parse_config
from mailproc.jobs import Ticker, scheduled_jobs
from mailproc.pipeline import Pipeline
from mailproc.reports.dashboard import write_dashboard
from mailproc.reports.mail_list import message_records
from mailproc.reports.workbook import write_workbook

RULES = Path(__file__).parent / "campaigns" / "school" / "rules"
TZ = dt.timezone(dt.timedelta(hours=8))
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HEADERS = ["学校", "安全教育课（节）", "参加师生（人次）", "疏散演练（次）", "排查隐患（处）",
           "整改隐患（处）", "投入资金（万元）", "致家长信（份）", "校车检查（辆次）",
           "培训教职工（人次）"]  # fmt: skip
# Words of the 2019 campaign that no mail, page or workbook of this one may carry.
FOREIGN = re.compile(
    r"安全生产|大洼|活动情况统计表|附件1|第[0-9一二三四五六七八九十]+周|本周|周汇总|镇"
)


def school(n: int) -> str:
    return f"bh_school{n:02d}@163.com"


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, minute, tzinfo=TZ)


def table(unit: str, figures: list[object]) -> tuple[str, bytes, str]:
    """附表 as a school fills it: a title, the school, one header row, its row of figures."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["学校安全工作情况统计表"])
    sheet.append([f"填报学校：{unit}"])
    sheet.append(HEADERS)
    sheet.append([unit, *figures])
    data = io.BytesIO()
    book.save(data)
    return "附表.xlsx", data.getvalue(), XLSX


REPORT = ("自查报告.docx", docx_bytes(), DOCX)
# (subject, sender, received, body, files) and what the mail must be booked as:
# (unit, item, period, status, reply, problems)
MAILS = [
    (("滨湖区实验小学校园安全双周报（第1期）", school(7), at(9, 6),
      [table("滨湖区实验小学", [12, 860, 1, 3, 3, 3.5, 860, 0, 45])]),
     ("滨湖区实验小学", "biweekly", "2024-09-09", "on_time", "ack", [])),
    (("第一中学双周报", school(1), at(9, 9, 11, 30),
      [table("滨湖区第一中学", [20, "约1200", 2, 6, 5, "2.8万元", 1500, 4, 120])]),
     ("滨湖区第一中学", "biweekly", "2024-09-09", "on_time", "ack", [])),
    (("第二中学双周报", school(2), at(9, 9, 15),
      [table("滨湖区第二中学", [8, 600, 1, 2, 2, "约2万", 600, 2, 60])]),
     ("滨湖区第二中学", "biweekly", "2024-09-09", "late", "missing", ["bad_cells"])),
    (("湖滨路小学8月份校园安全月报", school(8), at(9, 4), [REPORT]),
     ("滨湖区湖滨路小学", "monthly", "2024-09-05", "on_time", "ack", [])),
    (("青石小学校园安全工作月报", school(9), at(9, 8), [REPORT]),
     ("滨湖区青石小学", "monthly", "2024-09-05", "late", "ack", [])),
    (("南苑小学9月份月报", school(10), at(10, 9), [REPORT]),
     ("滨湖区南苑小学", "monthly", "2024-10-05", "late", "ack", [])),
    (("实验中学9月月报", school(3), at(10, 8, 20), [REPORT]),
     ("滨湖区实验中学", "monthly", "2024-10-05", "on_time", "ack", [])),
    (("实验中学校园安全自查报告", school(3), at(10, 8, 9), [REPORT]),
     ("滨湖区实验中学", "selfcheck", "2024-10-03", "on_time", "ack", [])),
    (("东港小学双周报第3期", school(11), at(10, 8, 10),
      [table("滨湖区东港小学", [6, 420, 1, 1, 1, 0.45, 420, 0, 30])]),
     ("滨湖区东港小学", "biweekly", "2024-10-07", "on_time", "ack", [])),
    (("柳堤小学第3期双周报", school(12), at(10, 8, 14), []),
     ("滨湖区柳堤小学", "biweekly", "2024-10-07", "late", "missing", ["no_stats"])),
    (("第一幼儿园突发情况报告：园外道路积水", school(15), at(9, 20), []),
     ("滨湖区第一幼儿园", "incident", None, None, "ack", [])),
    (("湖光中学双周报（9月10日-9月23日）", school(4), at(9, 22),
      [table("滨湖区湖光中学", [10, 700, 1, 0, 0, 0, 700, 3, 50])]),
     ("滨湖区湖光中学", "biweekly", "2024-09-23", "on_time", "ack", [])),
    (("关于专项整治的材料", "someone@qq.com", at(9, 12), [REPORT]),
     (None, None, None, None, "unrecognized", [])),
]  # fmt: skip


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The school campaign: its mails ingested, every job ticked at its time to the end."""
    folder = tmp_path_factory.mktemp("school")
    shutil.copytree(RULES, folder / "rules")
    shutil.copytree(ROOT / "templates", folder / "templates")
    settings = {
        "paths": {"rules": "rules", "templates": "templates"},
        "recipients": {"supervisors": ["jiaoyuju@example.gov.cn"]},
    }
    (folder / "config.toml").write_text(
        '[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8"
    )
    config = parse_config(settings, folder)
    with open_app(config) as app:
        pipeline = Pipeline(app)
        for (subject, sender, received, files), _ in MAILS:
            body = "本期工作情况见附件。" if files else "本期开展安全教育课6节，附表稍后补报。"
            raw = make_mail(subject, sender, received, body=body, files=files)
            pipeline.ingest(raw, source="test")
        records = message_records(app.db)
        ticker = Ticker(app)
        for due in sorted({job.due for job in scheduled_jobs(app.db, app.rules)}):
            ticker.tick(due + dt.timedelta(minutes=1))
        outbox = [
            email.message_from_string(row["eml"], policy=policy.default)
            for row in app.db["outbox"].rows
        ]
        workbook, _ = write_workbook(app.db, app.rules, "2024-10-08", folder, "biweekly")
        page = write_dashboard(
            app.db, app.rules, config.reports, config.archive, config.templates, at(11, 20)
        )
    return {"folder": folder, "records": records, "outbox": outbox, "workbook": workbook,
            "page": page}  # fmt: skip


def text_of(message: email.message.EmailMessage) -> str:
    """Subject, text parts and the cells of any workbook attached."""
    parts = [str(message["Subject"])]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
        elif (part.get_filename() or "").endswith(".xlsx"):
            parts.append(cells(openpyxl.load_workbook(io.BytesIO(part.get_content()))))
    return "\n".join(parts)


def cells(book: openpyxl.Workbook) -> str:
    return "\n".join(
        str(value) for sheet in book for row in sheet.iter_rows(values_only=True)
        for value in row if value is not None
    )  # fmt: skip


def test_every_mail_of_the_second_campaign_is_read_right(campaign):
    got = [
        (r["unit"], r["item"], r["period"], r["status"], r["reply"], r["problems"])
        for r in sorted(campaign["records"], key=lambda r: r["id"])
    ]
    assert got == [expected for _, expected in MAILS]


def test_replies_name_periods_tables_and_decimals_as_the_rules_say(campaign):
    texts = {str(m["Subject"]): text_of(m) for m in campaign["outbox"]}
    subjects = [s.replace("\u3000", " ") for s in texts]
    texts = {s.replace("\u3000", " "): t for s, t in texts.items()}
    assert "【回执】滨湖区实验小学 双周报（第1期，9月9日）已收到（第1版，9月6日 10:00）" in subjects
    assert any(s.startswith("【回执】滨湖区湖滨路小学 月报（8月份，9月5日）") for s in subjects)
    ack = next(t for s, t in texts.items() if s.startswith("【回执】滨湖区第一中学"))
    assert "附表 统计数据已读取（共 9 项，请核对）" in ack and "约1200" in ack
    assert "  · 投入资金：2.80 万元\n" in ack
    bad = next(t for s, t in texts.items() if s.startswith("【缺项通知】滨湖区第二中学"))
    assert "附表有无法识别的数字" in bad and "“约2万”" in bad
    none = next(t for s, t in texts.items() if s.startswith("【缺项通知】滨湖区柳堤小学"))
    assert "附表《学校安全工作情况统计表》" in none and "本期安全工作开展情况可写在正文" in none
    unknown = next(t for s, t in texts.items() if s.startswith("【无法识别】"))
    assert "【XX小学】校园安全双周报（第2期）" in unknown and "双周报请附上附表" in unknown
    selfcheck = next(t for s, t in texts.items() if s.startswith("【回执】滨湖区实验中学 自查报告"))
    assert "10月8日（周二）17时" in selfcheck  # 10月3日 rolled past National Day
    reminders = [s for s in subjects if s.startswith("【催报提醒】") and "第3期" in s]
    assert reminders and all("第3期，10月7日" in s for s in reminders)


def test_no_word_of_the_2019_campaign_reaches_a_mail_page_or_workbook(campaign):
    kinds = {str(m["X-Mailproc-Kind"]) for m in campaign["outbox"]}
    assert {"ack", "missing", "unrecognized", "reminder", "overdue", "alert", "digest",
            "assessment"} <= kinds  # fmt: skip
    for message in campaign["outbox"]:
        found = FOREIGN.findall(text_of(message))
        assert not found, (str(message["Subject"]), found)
    assert not FOREIGN.findall(Path(campaign["page"]).read_text(encoding="utf-8"))
    assert not FOREIGN.findall(cells(openpyxl.load_workbook(campaign["workbook"])))


def test_the_workbook_has_one_level_headers_and_decimal_totals(campaign):
    book = openpyxl.load_workbook(campaign["workbook"])
    sheet = book["本期汇总"]
    assert sheet["A1"].value.startswith("滨湖区学校安全工作情况汇总表 · 第3期（10月7日）")
    # each unit on a line of its own under its header
    assert [sheet.cell(3, c).value for c in range(3, 12)] == [
        h.replace("（", "\n（") for h in HEADERS[1:]
    ]
    funds = next(c for c in range(3, 12) if sheet.cell(3, c).value == "投入资金\n（万元）")
    total = next(r for r in range(5, sheet.max_row + 1) if sheet.cell(r, 2).value == "合计")
    assert sheet.cell(total, funds).value == 0.45
    assert sheet.cell(total, funds).number_format == "0.00"
    running = book["累计"]
    total = next(r for r in range(5, running.max_row + 1) if running.cell(r, 2).value == "合计")
    assert running.cell(total, funds).value == round(3.5 + 2.8 + 0 + 0.45, 2)


def test_a_rolled_period_is_named_by_its_own_date_or_its_deadline(campaign):
    config = str(campaign["folder"] / "config.toml")
    for period in ("2024-10-07", "2024-10-08", "第3期", "10月7日"):
        result = CliRunner().invoke(
            cli, ["stats", "--period", period, "--json", "--config", config]
        )
        assert result.exit_code == 0, result.output
        assert '"period": "2024-10-07"' in result.output
