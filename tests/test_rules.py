"""The rules files and the config through the one TOML reader: every table of every rules file
refuses keys nobody reads, and each caller keeps the inputs it has always accepted."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_config

from mailproc.cli import cli
from mailproc.config import ConfigError, parse_config
from mailproc.rules import CALENDAR_FILE, RULE_FILES, RulesError, load_rules
from mailproc.toml_tables import Table

ITEM_KEYS = (
    "activity_verbs, activity_words, cadence, carries, content, deadlines, id, label, "
    "late_grace_days, name, period_name, period_words, reports_on, short, signals"
)
TABLE_KEYS = (
    "file_words, header_prefixes, header_row_labels, header_suffixes, name, own_row_labels, "
    "reporter_labels, summary_title, title, total_row_labels, vertical_labels, "
    "vertical_value_labels"
)

# (file, text in it, the text with an unknown key added, where the error must point, allowed keys)
UNKNOWN_KEYS = [
    ("campaign.toml", "", "stray = 1\n", "stray", "campaign, office, tags, words"),
    (
        "campaign.toml",
        "[campaign]\n",
        '[campaign]\nslogan = "安全"\n',
        "[campaign] slogan",
        "name, roll_holiday_deadlines, short, subject_examples, timezone",
    ),
    (
        "campaign.toml",
        "[office]\n",
        '[office]\nfax = "6780437"\n',
        "[office] fax",
        "address, contact, full_name, name, phone",
    ),
    (
        "campaign.toml",
        "[words]\n",
        "[words]\ngreetings = []\n",
        "[words] greetings",
        "auto_reply_subjects, campaign, cloud_link_patterns, correction_words, region_words, "
        "reply_prefixes",
    ),
    (
        "campaign.toml",
        "[tags]\n",
        '[tags]\nthanks = "【感谢】"\n',
        "[tags] thanks",
        "ack, alert, assessment, digest, missing, overdue, reminder, unrecognized",
    ),
    ("units.toml", "", "stray = 1\n", "stray", "category, unit"),
    (
        "units.toml",
        '[[category]]\nid = "街道"\n',
        '[[category]]\nid = "街道"\ncolour = "red"\n',
        "第 1 个 [[category]]（街道）的 colour",
        "id, label",
    ),
    (
        "units.toml",
        '[[unit]]\nname = "大洼街道"\n',
        '[[unit]]\nname = "大洼街道"\nphone = "1"\n',
        "第 1 个 [[unit]]（大洼街道）的 phone",
        "addresses, aliases, category, name",
    ),
    ("items.toml", "", "stray = 1\n", "stray", "item"),
    (
        "items.toml",
        'id = "weekly"\n',
        'id = "weekly"\npriority = 1\n',
        "第 5 个 [[item]]（周报）的 priority",
        ITEM_KEYS,
    ),
    (
        "items.toml",
        "carries = { document = false, stats = false, paper = false }",
        "carries = { document = false, stats = false, paper = false, colour = true }",
        "第 1 个 [[item]]（重大活动信息）中 carries 的 colour",
        "body_counts, document, paper, stats",
    ),
    (
        "items.toml",
        '{ all = ["重大活动"] }',
        '{ all = ["重大活动"], any = ["活动"] }',
        "第 1 个 [[item]]（重大活动信息）中 signals 第 1 项的 any",
        "all, none",
    ),
    ("columns.toml", "", "stray = 1\n", "stray", "column, table, values"),
    ("columns.toml", "[table]\n", '[table]\ncaption = "统计表"\n', "[table] caption", TABLE_KEYS),
    (
        "columns.toml",
        "[values]\n",
        '[values]\ndecimal = "."\n',
        "[values] decimal",
        "approx_prefixes, approx_suffixes, multipliers, unit_suffixes, zero",
    ),
    (
        "columns.toml",
        '[[column]]\nid = "lectures"\n',
        '[[column]]\nid = "lectures"\nwidth = 8\n',
        "第 1 个 [[column]]（lectures）的 width",
        "approx, flat, group, group_synonyms, header, id, places, synonyms, type, unit",
    ),
    (
        "jobs.toml",
        "",
        "stray = 1\n",
        "stray",
        "alert, assessment, catch_up, digest, overdue, reminder",
    ),
    (
        "jobs.toml",
        "[catch_up]\n",
        "[catch_up]\ndrop_after_day = 3\n",
        "[catch_up] drop_after_day",
        "drop_after_days",
    ),
    (
        "jobs.toml",
        "[reminder]\n",
        "[reminder]\nworking_day_before = 3\n",
        "[reminder] working_day_before",
        "at, working_days_before",
    ),
    ("jobs.toml", "[overdue]\n", "[overdue]\ngrace = 5\n", "[overdue] grace", "grace_minutes"),
    ("jobs.toml", "[alert]\n", "[alert]\ngrace = 5\n", "[alert] grace", "grace_minutes"),
    (
        "jobs.toml",
        "[digest]\n",
        '[digest]\nat = "09:00"\n',
        "[digest] at",
        "grace_minutes, items, late_after_minutes",
    ),
    (
        "jobs.toml",
        "[assessment]\n",
        "[assessment]\nweights = {}\n",
        "[assessment] weights",
        "grace_minutes, item_weights, points",
    ),
    (
        "calendar.toml",
        "# 2027: the notice",
        "[[year]]\nyear = 2099\nholiday = []\n# 2027: the notice",
        "第 1 个 [[year]]（2099）的 holiday",
        "holidays, notice, workdays, year",
    ),
    ("calendar.toml", "# 2027: the notice", "[month]\n# 2027: the notice", "month", "year"),
    (
        "jobs.toml",
        "points = { on_time = 100,",
        "points = { bonus = 10, on_time = 100,",
        "[assessment.points] bonus",
        "late, missing, on_time",
    ),
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with a config and a copy of the repository's rules and templates."""
    folder = tmp_path.resolve()
    make_config(folder)
    (folder / "config.toml").write_text(
        '[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8"
    )
    return folder


def edit(folder: Path, file: str, old: str, new: str) -> Path:
    path = folder / "rules" / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def check_rules(folder: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["check-rules", "--config", str(folder / "config.toml")])
    return result.exit_code, result.output.splitlines()


@pytest.mark.parametrize(("file", "old", "new", "where", "allowed"), UNKNOWN_KEYS)
def test_unknown_key_is_one_line_naming_file_table_and_key(folder, file, old, new, where, allowed):
    path = edit(folder, file, old, new)
    code, lines = check_rules(folder)
    assert code != 0
    assert lines == [
        f"mailproc: 规则文件 {path}：{where}：没有这一项，请检查是否写错；"
        f"可写的项有：{allowed.replace(', ', '、')}"
    ]


def test_every_rules_file_has_an_unknown_key_case():
    assert {case[0] for case in UNKNOWN_KEYS} == {*RULE_FILES, CALENDAR_FILE}


CALENDAR_ENTRY = '[[year]]\nyear = 2099\nnotice = "测试用"\n'
NOTICE_LINE = "# 2027: the notice"  # where an entry goes in the shipped calendar.toml


def add_year(folder: Path, entry: str) -> Path:
    return edit(folder, CALENDAR_FILE, NOTICE_LINE, f"{CALENDAR_ENTRY}{entry}\n{NOTICE_LINE}")


@pytest.mark.parametrize(
    ("entry", "where", "problem"),
    [
        ('holidays = ["2099-13-01"]', "holidays",
         "“2099-13-01”不是有效日期，应写如 2027-02-06 或 2027-02-06..2027-02-12"),
        ('holidays = ["2098-05-01"]', "holidays",
         "“2098-05-01”不在2099年内（元旦假期可始于上一年12月），请写在对应年份下"),
        ('holidays = ["2099-02-16..2099-02-10"]', "holidays", "结束日期早于开始日期，请前后对调"),
        ('holidays = ["2099-02-14"]\nworkdays = ["2099-02-14"]', "workdays",
         "2099-02-14 同时写在 holidays（放假）里，请删去其中一处"),
        ('workdays = ["2099-02-16"]', "workdays",
         "2099-02-16 本是工作日，不用写；这里只写调休上班的周六、周日"),
        ("holidays = []\n[[year]]\nyear = 2099", "year",
         "2099年写了两次，同一年的安排请合在一个 [[year]] 里"),
    ],
)  # fmt: skip
def test_a_wrong_calendar_entry_is_one_line(folder, entry, where, problem):
    path = add_year(folder, entry)
    code, lines = check_rules(folder)
    assert code != 0 and len(lines) == 1
    assert (
        lines[0].startswith(f"mailproc: 规则文件 {path}：第 ")
        and f" [[year]]（2099）的 {where}：" in lines[0]
    )
    assert lines[0].endswith(problem)


def test_check_rules_warns_of_a_deadline_or_reminder_in_a_year_without_a_calendar(folder):
    edit(folder, "items.toml", '"2019-12-25"', '"2099-01-02"')
    code, lines = check_rules(folder)
    assert code == 0 and [line[:13] for line in lines[1:]] == ["注意：2099年有截止时间"]
    add_year(folder, 'holidays = ["2099-01-01"]')  # 2099 known: the reminder moves to 2098
    code, lines = check_rules(folder)
    assert code == 0 and lines[1:] == [
        "注意：2098年有截止时间或催报提醒，但该年的节假日和调休安排尚未录入"
        f"（{folder / 'rules' / CALENDAR_FILE}），工作日暂按周一至周五计算；"
        "国务院公布该年安排后，请补入该文件。"
    ]


def test_a_rules_folder_without_a_calendar_file_loads(folder):
    (folder / "rules" / CALENDAR_FILE).unlink()
    assert load_rules(folder / "rules").calendar.years == frozenset()


def test_shipped_rules_pass(folder):
    code, lines = check_rules(folder)
    assert code == 0 and len(lines) == 1 and lines[0].startswith("规则无误")


def test_config_blank_text_means_unset(tmp_path):
    mailbox = {"host": "imap.example.org", "username": "u", "password_env": "PW"}
    config = parse_config(
        {"mailbox": {**mailbox, "processed_folder": "", "folder": ""}}, tmp_path.resolve()
    )
    assert config.mailbox.processed_folder is None
    assert config.mailbox.folder == "INBOX"
    with pytest.raises(ConfigError, match=r"^配置文件：\[mailbox\] host：缺少此项，请补写$"):
        parse_config({"mailbox": {**mailbox, "host": ""}}, tmp_path)


def test_config_blank_path_is_refused_not_unset(tmp_path):
    with pytest.raises(
        ConfigError, match=r"^配置文件：\[paths\] db：应为文件或文件夹的路径.*现写的是 “”$"
    ):
        parse_config({"paths": {"db": ""}}, tmp_path)


def test_rules_blank_text_is_an_error(folder):
    path = edit(folder, "campaign.toml", 'name = "大洼区安委会办公室"', 'name = ""')
    code, lines = check_rules(folder)
    assert code != 0
    assert lines == [
        f"mailproc: 规则文件 {path}：[office] name："
        "应为文字（用英文双引号括起，不能为空），现写的是 “”"
    ]


@pytest.mark.parametrize(
    ("file", "old", "new", "where", "value"),
    [
        (
            "items.toml",
            "late_grace_days = 1",
            "late_grace_days = 1.5",
            "第 5 个 [[item]]（周报）的",
            "1.5",
        ),
        ("jobs.toml", "working_days_before = 1", "working_days_before = 1.0", "[reminder]", "1.0"),
        ("jobs.toml", "drop_after_days = 3", "drop_after_days = true", "[catch_up]", "true"),
    ],
)
def test_rules_whole_number_refuses_float_and_flag(folder, file, old, new, where, value):
    path = edit(folder, file, old, new)
    key = new.split(" = ")[0]
    code, lines = check_rules(folder)
    assert code != 0
    assert lines == [
        f"mailproc: 规则文件 {path}：{where} {key}：应为不小于 0 的整数，现写的是 {value}"
    ]


def test_config_numbers_take_floats(tmp_path):
    mailbox = {"host": "imap.example.org", "username": "u", "password_env": "PW"}
    config = parse_config(
        {"mailbox": {**mailbox, "poll_minutes": 0.5, "port": 993.0}}, tmp_path.resolve()
    )
    assert (config.mailbox.poll_minutes, config.mailbox.server.port) == (0.5, 993)
    with pytest.raises(
        ConfigError, match=r"^配置文件：\[mailbox\] port：应为 1 到 65535 之间的端口号"
    ):
        parse_config({"mailbox": {**mailbox, "port": 993.5}}, tmp_path)


def test_points_take_any_number_weights_none_below_zero(folder):
    edit(folder, "jobs.toml", "late = 60,", "late = -12.5,")
    assert load_rules(folder / "rules").jobs.points["late"] == -12.5
    path = edit(folder, "jobs.toml", "plan = 1", "plan = -1")
    code, lines = check_rules(folder)
    assert code != 0
    assert lines == [
        f"mailproc: 规则文件 {path}：[assessment.item_weights] plan：应为不小于 0 的数，现写的是 -1"
    ]


def test_a_key_holding_a_line_break_stays_on_one_line(folder):
    path = edit(folder, "campaign.toml", "[tags]\n", '[tags]\n"a\\nb" = "x"\n')
    code, lines = check_rules(folder)
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith(
        f"mailproc: 规则文件 {path}：[tags] 'a\\nb'：没有这一项"
    )


def test_a_time_zone_naming_a_folder_is_one_line(folder):
    path = edit(folder, "campaign.toml", 'timezone = "Asia/Shanghai"', 'timezone = "Asia"')
    code, lines = check_rules(folder)
    assert code != 0
    assert lines == [
        f"mailproc: 规则文件 {path}：[campaign] timezone："
        "没有“Asia”这个时区，北京时间请写 Asia/Shanghai"
    ]


def test_a_table_written_as_a_value_is_one_line(folder):
    carries = "carries = { document = false, stats = false, paper = false }"
    path = edit(folder, "items.toml", carries, 'carries = "document"')
    code, lines = check_rules(folder)
    assert code != 0
    assert lines == [
        f"mailproc: 规则文件 {path}：第 1 个 [[item]]（重大活动信息）的 carries："
        "应为一个表（[名称] 下逐行写“项 = 值”），不是单个值"
    ]


def test_file_errors_keep_each_callers_wording(tmp_path):
    with pytest.raises(RulesError, match=r"^规则文件 .*jobs\.toml：文件不存在$"):
        Table.read(tmp_path / "jobs.toml", RulesError)
    with pytest.raises(
        ConfigError, match=r"config\.toml：找不到此文件；可复制 config\.example\.toml 改写"
    ):
        Table.read(tmp_path / "config.toml", ConfigError)
    (tmp_path / "latin.toml").write_bytes('name = "é"\n'.encode("latin-1"))
    with pytest.raises(
        RulesError, match=r"latin\.toml：不是 UTF-8 编码的文本，请另存为 UTF-8 编码$"
    ):
        Table.read(tmp_path / "latin.toml", RulesError)


MAILBOX = {"host": "imap.163.com", "username": "u", "password_env": "PW"}


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.0.1", "::1", "LOCALHOST."])
def test_security_none_only_for_this_machine(tmp_path, host):
    config = parse_config({"mailbox": {**MAILBOX, "host": host, "security": "none"}}, tmp_path)
    assert (config.mailbox.server.security, config.mailbox.server.port) == ("none", 143)


@pytest.mark.parametrize("host", ["imap.163.com", "10.0.0.5", "localhost.evil.example", "::2"])
def test_security_none_refused_for_another_host(tmp_path, host):
    problem = (
        f"配置文件：[smtp] security：写 none 会把密码以明文发给“{host}”，只允许用于本机的服务器"
        "（localhost、127.0.0.1、::1）；请改为 ssl 或 starttls"
    )
    with pytest.raises(ConfigError) as refused:
        parse_config({"smtp": {**MAILBOX, "host": host, "security": "none"}}, tmp_path)
    assert str(refused.value) == problem


def test_exactly_one_of_password_env_and_password_file(tmp_path):
    both = {**MAILBOX, "password_file": "163-code"}
    with pytest.raises(ConfigError) as refused:
        parse_config({"mailbox": both}, tmp_path)
    assert (
        str(refused.value) == "配置文件：[mailbox] password_file："
        "password_env 与 password_file 只能写一项，请删去其中一项"
    )
    neither = {k: v for k, v in MAILBOX.items() if k != "password_env"}
    with pytest.raises(ConfigError) as refused:
        parse_config({"smtp": neither}, tmp_path)
    assert str(refused.value).startswith(
        "配置文件：[smtp] password_env：缺少此项：请写 password_env"
    )


def file_server(tmp_path: Path, name: str):
    mailbox = {k: v for k, v in MAILBOX.items() if k != "password_env"}
    config = parse_config({"mailbox": {**mailbox, "password_file": name}}, tmp_path)
    return config.mailbox.server


def test_password_file_beside_the_config_or_a_systemd_credential(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    (tmp_path / "163-code").write_text("beside-the-config\n", encoding="utf-8")
    (tmp_path / "163-code").chmod(0o600)
    server = file_server(tmp_path, "163-code")
    assert server.password() == "beside-the-config"
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "163-code").write_text("from-systemd", encoding="utf-8")
    (credentials / "163-code").chmod(0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert server.password() == "from-systemd"
    assert file_server(tmp_path, str(tmp_path / "163-code")).password() == "beside-the-config"


def test_password_file_problems_are_one_line_without_the_code(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = tmp_path / "163-code"
    server = file_server(tmp_path, "163-code")
    problems = []
    for content, mode in ((None, None), ("secret-code", 0o644), (" \n", 0o600)):
        if content is not None:
            path.write_text(content, encoding="utf-8")
            path.chmod(mode)
        with pytest.raises(ConfigError) as refused:
            server.password()
        problems.append(str(refused.value))
    assert problems == [
        f"配置文件：[mailbox] password_file：授权码文件 {path} 无法读取：文件不存在",
        f"配置文件：[mailbox] password_file：授权码文件 {path} 本机所有用户都能读取，不安全；"
        f"请执行 chmod o-r {path}（权限改为 0600 或 0640）",
        f"配置文件：[mailbox] password_file：授权码文件 {path} 是空的，请写入邮箱授权码",
    ]


# (file, text, its replacement, where the error points, words the one-line explanation holds)
# Where an error in the shipped rules points: the [[list]] entry, named as the file names it
WEEKLY = "第 5 个 [[item]]（周报）的 "
EVENT = "第 1 个 [[item]]（重大活动信息）的 "
PLAN = "第 4 个 [[item]]（活动方案）的 "
LECTURES = "第 1 个 [[column]]（lectures）的 "
NEW_KEY_ERRORS = [
    ("items.toml", 'cadence = "weekly"', 'cadence = "daily"', WEEKLY + "cadence", "每两周"),
    ("items.toml", '"2019-06-13T11:00:00",', '"2019-06-14T11:00:00",', WEEKLY + "deadlines",
     "相隔 7 天"),
    ("items.toml", 'period_words = ["第{n}周"]', 'period_words = ["第几周"]',
     WEEKLY + "period_words", "{n}"),
    ("items.toml", 'period_name = "第{n}周"', 'period_name = "第{week}周"',
     WEEKLY + "period_name", "只能使用"),
    ("items.toml", 'period_name = "第{n}周"', 'reports_on = "last_month"', WEEKLY + "reports_on",
     "上一个月"),
    ("items.toml", 'cadence = "any"', 'cadence = "any"\nperiod_name = "第{n}次"',
     EVENT + "period_name", "随时报送"),
    ("items.toml", 'label = "方案"\n', 'label = "方案"\ncadence = "any"\n', PLAN + "deadlines",
     "不设截止时间"),
    ("columns.toml", 'id = "lectures"\n', 'id = "lectures"\ntype = "float"\n', LECTURES + "type",
     "decimal（小数）"),
    ("columns.toml", 'id = "lectures"\n', 'id = "lectures"\nplaces = 2\n', LECTURES + "places",
     "整数列"),
    ("columns.toml", 'id = "lectures"\n', 'id = "lectures"\ntype = "decimal"\nplaces = 9\n',
     LECTURES + "places", "1 到 6"),
    ("columns.toml", 'id = "lectures"\n', 'id = "lectures"\napprox = "yes"\n',
     LECTURES + "approx", "约数"),
    ("columns.toml", 'name = "附件1"\n', "", "[table] name", "表格的称呼"),
]  # fmt: skip


@pytest.mark.parametrize(("file", "old", "new", "where", "words"), NEW_KEY_ERRORS)
def test_each_new_key_s_mistake_is_explained_in_one_chinese_line(
    folder, file, old, new, where, words
):
    path = edit(folder, file, old, new)
    code, lines = check_rules(folder)
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith(f"mailproc: 规则文件 {path}：{where}：")
    assert words in lines[0]
