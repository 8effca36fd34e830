"""Everything a person reads is Chinese: every template and every workbook of the corpus run,
and the command line (issue 13, "What it must show" and points 9, 10, 14)."""

import email
import html
import json
import re
from email import policy

import openpyxl
from click.testing import CliRunner
from conftest import make_config

from mailproc.app import open_app
from mailproc.cli import cli
from mailproc.config import KNOWN, SECURITY, TRANSPORTS, load_config
from mailproc.display import display_width, table
from mailproc.jobs import Ticker, scheduled_jobs
from mailproc.reports.dashboard import write_dashboard
from mailproc.reports.workbook import write_workbook
from mailproc.rules import CADENCES, KEYS

# Names of programs and formats a district office writes as they are (请另存为 Excel 或 WPS 表格)
PRODUCT_NAMES = {"Excel", "WPS", "Word", "PDF", "CSV", "Unicode"}
ASCII_WORD = re.compile(r"[A-Za-z]{3,}")
ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# What is code, not words: a command the clerk types (its name and option names are English by
# design), and a unit's own sheet name in a cell reference (Sheet1!C5)
CODE = re.compile(r"mailproc\s+[a-z-]+|--[a-z-]+|\S+![A-Z]{1,3}\d+")
FILE_NAME = re.compile(
    r"[\w.-]*\.(xlsx|xlsm|xlsb|xls|docx|doc|wps|et|pdf|csv|txt|eml|html)\b", re.I
)


def theirs(db) -> list[str]:
    """Text that came from the mail, not from mailproc: subjects, senders, file names, the
    cells a unit typed; longest first, so a longer one is taken out before its parts."""
    texts = set()
    for row in db.query("select subject, sender, sender_name, message_id, source from messages"):
        texts.update(v for v in row.values() if v)
    for row in db.query("select filename from attachments"):
        texts.add(row["filename"])
    for row in db.query("select to_addrs, subject from outbox where kind in ('ack', 'missing')"):
        texts.update(v for v in row.values() if v)
    return sorted((t for t in texts if t.strip()), key=len, reverse=True)


def english_in(text: str, foreign: list[str]) -> list[str]:
    """The ASCII words of 3+ letters left once the mail's own text, addresses, file names,
    Message-ID lines, commands and product names are taken out."""
    lines = [line for line in text.splitlines() if "Message-ID" not in line]
    text = "\n".join(lines)
    for words in foreign:
        text = text.replace(words, " ")
    text = CODE.sub(" ", FILE_NAME.sub(" ", ADDRESS.sub(" ", text)))
    return [w for w in ASCII_WORD.findall(text) if w not in PRODUCT_NAMES]


def page_text(page: str) -> str:
    """What a browser shows of a page: no styles, no tags, entities read."""
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def mail_text(eml: str) -> str:
    message = email.message_from_string(eml, policy=policy.default)
    parts = [str(message["Subject"])]
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            parts.append(part.get_content())
        elif part.get_content_type() == "text/html":
            parts.append(page_text(part.get_content()))
    return "\n".join(parts)


def test_no_english_in_any_template_or_workbook_of_the_corpus_run(office):
    config = load_config(office)
    with open_app(config) as app:
        ticker = Ticker(app)
        for job in scheduled_jobs(app.db, app.rules):
            ticker.tick(job.due)  # every notice, digest and the assessment, each when due
        last = max(job.due for job in scheduled_jobs(app.db, app.rules))
        dashboard = write_dashboard(
            app.db, app.rules, config.reports, config.archive, config.templates, last
        )
        for item in app.rules.items:  # the workbook of every period with 附件1
            for deadline in item.deadlines if item.needs_stats else ():
                write_workbook(
                    app.db, app.rules, item.period_of(deadline), config.reports, item.id, last
                )
        foreign = theirs(app.db)
        sent = list(app.db.query("select kind, eml from outbox"))
    kinds = {row["kind"] for row in sent}
    templates = {p.name.split(".")[0] for p in config.templates.glob("[!_]*.j2")}
    assert templates - {"dashboard"} <= kinds, "a template the run never rendered"
    found = {}
    for row in sent:
        if words := english_in(mail_text(row["eml"]), foreign):
            found.setdefault(row["kind"], set()).update(words)
    if words := english_in(page_text(dashboard.read_text(encoding="utf-8")), foreign):
        found["dashboard"] = set(words)
    workbooks = sorted(config.reports.glob("*.xlsx"))
    assert {p.name.split("_")[1] for p in workbooks} >= {"周报", "月总结", "考核"}
    for path in workbooks:
        for sheet in openpyxl.load_workbook(path).worksheets:
            for row in sheet.iter_rows(values_only=True):
                for value in row:
                    if isinstance(value, str) and (words := english_in(value, foreign)):
                        found.setdefault(f"{path.name}/{sheet.title}", set()).update(words)
    assert found == {}


def run(config, *args: str):
    return CliRunner().invoke(cli, [*args, "--config", str(config)])


def test_columns_line_up_by_display_width():
    # issue 13, point 10: one helper; a Chinese name is two columns a character
    lines = table(["单位", "得分"], [["东风镇", "90"], ["区安委会成员单位", "100"]], right=(1,))
    assert lines == [
        "单位              得分",
        "东风镇              90",
        "区安委会成员单位   100",
    ]
    assert len({display_width(line) for line in lines}) == 1


def test_listings_have_headers_filters_and_say_why_no_reply(office):
    # issue 13, points 10 and 14: header rows, filters as a clerk writes them, the reason a
    # mail got no reply
    listing = run(office, "messages", "--unit", "东风", "--item", "周报").stdout.splitlines()
    assert listing[0].split() == [
        "编号",
        "收到时间",
        "单位",
        "事项",
        "截止日期",
        "状态",
        "回复",
        "主题",
    ]
    assert listing[-1].startswith("共 ") and len(listing) > 3
    assert all("东风镇" in line and "周报" in line for line in listing[1:-1])
    starts = {display_width(line[: line.index("东风镇")]) for line in listing[1:-1]}
    assert len(starts) == 1  # the unit column starts at the same place on every line
    everything = run(office, "messages").stdout
    assert "不回复（自动回复）" in everything or "不回复（退信）" in everything
    assert not re.search(r"\bnone\b|\back\b|on_time", everything)
    week = run(office, "receipts", "--item", "weekly", "--period", "第2周").stdout.splitlines()
    assert week[0].split()[:4] == ["收到时间", "单位", "事项", "截止日期"]
    assert all("2019-06-13" in line for line in week[1:-1])
    json_rows = [
        json.loads(line)
        for line in run(office, "receipts", "--unit", "东风镇", "--json").stdout.splitlines()
    ]
    assert json_rows and {r["unit"] for r in json_rows} == {"东风镇"}
    late = run(office, "messages", "--status", "逾期", "--json").stdout.splitlines()
    assert late and all(json.loads(line)["status"] == "late" for line in late)
    wrong = run(office, "messages", "--unit", "东方")
    assert wrong.exit_code == 2 and "东方" in wrong.output and "mailproc: " in wrong.output
    assert run(office, "messages", "--period", "2019-06-31").output == (
        "mailproc: “2019-06-31”不是有效日期\n"
    )
    assess = run(office, "assess", "--now", "2019-07-05T09:00").stdout.splitlines()
    assert assess[0].split() == ["名次", "单位", "类别", "得分", "满分", "得分率"]


def test_paper_copies_of_several_units_at_once(office):
    # issue 13, point 14: one command for a pile of envelopes; a wrong name records none
    args = ["paper", "--item", "方案", "--received", "2019-06-03", "--yes"]
    refused = run(office, *args, "--unit", "东风镇", "--unit", "不存在的单位")
    assert refused.exit_code == 2
    with open_app(load_config(office)) as app:
        assert app.db["decisions"].count_where("kind = 'paper'") == 0
    done = run(office, *args, "--unit", "东风镇", "--unit", "新兴", "--unit", "东风镇")
    assert done.exit_code == 0, done.output
    assert "东风镇 方案（5月31日） 纸质文件已收（2019-06-03）" in done.output
    assert "新兴镇 方案（5月31日） 纸质文件已收（2019-06-03）" in done.output
    with open_app(load_config(office)) as app:
        rows = list(app.db["decisions"].rows_where("kind = 'paper'"))
    assert sorted(r["unit"] for r in rows) == ["东风镇", "新兴镇"]
    again = run(office, *args, "--unit", "东风镇", "--unit", "新兴镇")
    assert "无需重复办理" in again.output


CLICK_ENGLISH = re.compile(r"Usage|Options|Commands|Show this|Error|TEXT|INTEGER|OPTIONS|COMMAND")
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_help_and_usage_errors_are_chinese():
    # issue 13, point 9: --help of every command, and click's own words and errors
    for name in ["", *cli.commands]:
        text = CliRunner().invoke(cli, [name, "--help"] if name else ["--help"]).output
        assert text.startswith("用法：") and not CLICK_ENGLISH.search(text), name
        help_lines = [line for line in text.splitlines() if line.strip().startswith("--")]
        assert all(CJK.search(line) for line in help_lines if "--help" not in line), name
    missing = CliRunner().invoke(cli, ["stats"])
    assert "错误：缺少选项 '--period'" in missing.output


# What an installer or clerk writes in a config or rules file and reads back as written: the
# names of tables and keys, and the values an error suggests (`ssl`, `Asia/Shanghai`)
WRITTEN_NAMES = (
    {*KNOWN, *(k for keys in KNOWN.values() for k in keys), *SECURITY, *TRANSPORTS}
    | {*(k.split(".")[-1] for k in KEYS), *(k for keys in KEYS.values() for k in keys)}
    | {*CADENCES, "Asia/Shanghai", "localhost"}
)
# Formats an installer knows by these names
FORMAT_NAMES = {"TOML", "UTF"}
TOML_NAME = re.compile(r"\[\[?[\w.]+\]\]?")
QUOTED = re.compile(r"“[^”]*”")  # a value the person wrote, quoted back
KEY_AS_WRITTEN = re.compile(r"(?<=\] |的 )\S+?(?=：)")  # the key an error is about, even a typo
MAILBOX = '[mailbox]\nhost = "imap.163.com"\nusername = "u"\npassword_env = "PW"\n'


def file_error_english(output: str) -> list[str]:
    """The English words of a config or rules error once the program's name, files and folders,
    what the person wrote and the names of tables and keys (written as in the file) are out."""
    text = re.sub(r"(?<!\w)/[\w./-]+|\b\w+\.toml\b", " ", output.removeprefix("mailproc: "))
    text = QUOTED.sub(" ", TOML_NAME.sub(" ", KEY_AS_WRITTEN.sub(" ", text)))
    names = "|".join(re.escape(n) for n in sorted(WRITTEN_NAMES, key=len, reverse=True))
    text = re.sub(rf"(?<![\w/])({names})(?![\w/])", " ", text)
    return [w for w in english_in(text, []) if w not in FORMAT_NAMES]


def test_config_and_rules_errors_are_chinese(tmp_path):
    # issue 13, point 9: what `check-rules` prints for a broken config or rules file
    make_config(tmp_path)
    config = tmp_path / "config.toml"
    rules = tmp_path / "rules"
    configs = [
        '[paths]\nrulez = "rules"\n',
        '[delivery]\ntransport = "pigeon"\n',
        f'{MAILBOX}security = "none"\n',
        f"{MAILBOX}port = 0\n",
        '[console]\nlisten = "8080"\n',
        '[paths]\nrules = "nowhere"\n',
        "[paths\n",
    ]
    edits = [  # (rules file, text in it, the text broken)
        ("units.toml", 'category = "镇"', 'category = "村"'),
        ("units.toml", 'category = "镇"', 'category = "镇"\nphone = "1"'),
        ("items.toml", '"2019-06-13T11:00:00"', '"2019-06-31T11:00:00"'),
        ("items.toml", 'id = "plan"', 'id = "weekly"'),
        ("campaign.toml", 'timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghia"'),
        ("columns.toml", '[[column]]\nid = "drills"', '[[column]\nid = "drills"'),
        ("jobs.toml", 'at = "09:00"', 'at = "9点"'),
        ("jobs.toml", "plan = 1", "plans = 1"),
        ("calendar.toml", "# 2027: the notice", '[[year]]\nyear = 2099\nworkdays = ["2099-02-16"]'),
    ]
    seen = []
    for text in configs:
        config.write_text(text, encoding="utf-8")
        result = run(config, "check-rules")
        assert result.exit_code == 2 and len(result.output.splitlines()) == 1, result.output
        seen.append((result.output, file_error_english(result.output)))
    config.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    for file, old, new in edits:
        original = (rules / file).read_text(encoding="utf-8")
        assert old in original
        (rules / file).write_text(original.replace(old, new, 1), encoding="utf-8")
        result = run(config, "check-rules")
        (rules / file).write_text(original, encoding="utf-8")
        assert result.exit_code == 2 and len(result.output.splitlines()) == 1, result.output
        seen.append((result.output, file_error_english(result.output)))
    assert [(output, words) for output, words in seen if words] == []
    assert all(CJK.search(output) for output, _ in seen)
