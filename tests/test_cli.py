"""The command line: config and rules errors, bad input, status, demo."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CORPUS
from mails import XLSX, make_mail, stats_xlsx

from mailproc.cli import cli

PEER_MAILS = Path(__file__).resolve().parents[2] / "shared" / "peer-mails"


def run(config, *args: str):
    return CliRunner().invoke(cli, [*args, "--config", str(config)], catch_exceptions=False)


@pytest.fixture
def config_file(config) -> Path:
    path = config.rules.parent / "config.toml"
    path.write_text('[paths]\nrules = "rules"\ntemplates = "templates"\n', encoding="utf-8")
    return path


def test_wrong_config_key_is_one_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[paths]\nrulez = "rules"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["status", "--config", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"mailproc: 配置文件 {path}：[paths] rulez：没有这一项，请检查是否写错；"
        "可写的项有：archive、db、outbox、reports、rules、templates"
    ]


def test_missing_config_file(tmp_path):
    result = CliRunner().invoke(cli, ["status", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert result.output == (
        f"mailproc: 配置文件 {tmp_path / 'nope.toml'}：找不到此文件；"
        "可复制 config.example.toml 改写，或用 --config 指明配置文件\n"
    )


def test_bad_transport_value(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[delivery]\ntransport = "pigeon"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["status", "--config", str(path)])
    assert result.output.strip() == (
        f"mailproc: 配置文件 {path}：[delivery] transport：应为 dir、smtp 之一，现写的是 “pigeon”"
    )


def test_check_rules_ok(config_file):
    result = run(config_file, "check-rules")
    assert result.exit_code == 0
    assert "34 个单位，5 个报送事项，7 个截止时间，附件1 统计 17 列" in result.output


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "units.toml",
            'category = "镇"\naliases = ["东风镇人民政府"]',
            'category = "村"\naliases = ["东风镇人民政府"]',
            "units.toml：第 10 个 [[unit]]（东风镇）的 category：“村”不是已列出的类别，"
            "应为 [[category]] 的 id 之一：",
        ),
        (
            "items.toml",
            'id = "plan"',
            'idd = "plan"',
            "items.toml：第 4 个 [[item]]（活动方案）的 idd：没有这一项",
        ),
        (
            "items.toml",
            '"2019-06-13T11:00:00"',
            '"2019-06-31T11:00:00"',
            "items.toml：第 5 个 [[item]]（周报）的 deadlines：“2019-06-31T11:00:00”"
            "不是有效的日期或时间，应写如 2019-06-13 或 2019-06-13T17:00:00",
        ),
        (
            "campaign.toml",
            'timezone = "Asia/Shanghai"',
            'timezone = "Asia/Shanghia"',
            "campaign.toml：[campaign] timezone：没有“Asia/Shanghia”这个时区，"
            "北京时间请写 Asia/Shanghai",
        ),
        (
            "columns.toml",
            '[[column]]\nid = "drills"',
            '[[column]\nid = "drills"',
            "columns.toml：第 {line} 行第 9 列附近写法有误，不符合 TOML 格式",
        ),
    ],
)
def test_rules_typo_names_file_and_key(config_file, file, old, new, message):
    path = config_file.parent / "rules" / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = run(config_file, "check-rules")
    assert result.exit_code == 2
    line = text[: text.index(old)].count("\n") + 1  # where a broken file is broken
    assert message.replace("{line}", str(line)) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert run(config_file, "ingest", str(CORPUS / "0004.eml")).exit_code == 2


def test_bad_input_is_recorded_and_does_not_stop_the_run(config_file, tmp_path):
    good = make_mail("东风镇第2周周报", files=[("统计表.xlsx", stats_xlsx(), XLSX)])
    cut = make_mail(
        "新兴镇第2周周报", sender="xinxing_aj@163.com", files=[("统计表.xlsx", stats_xlsx(), XLSX)]
    )
    files = {
        "empty.eml": b"",
        "binary.eml": bytes(range(256)) * 8,
        "truncated.eml": cut[: len(cut) - 3000],
        "good.eml": good,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = run(config_file, "ingest", *(str(tmp_path / n) for n in files))
    assert result.exit_code == 0
    assert (
        "无法处理，已隔离" in result.output and "无法解析：内容不是可以读取的邮件" in result.output
    )
    assert result.output.splitlines()[-1].startswith("共 4 封：")
    records = [
        json.loads(line) for line in run(config_file, "messages", "--json").output.splitlines()
    ]
    by_source = {Path(r["source"]).name: r for r in records}
    assert set(by_source) == set(files)
    assert by_source["empty.eml"]["reply"] == "none" and by_source["binary.eml"]["reply"] == "none"
    assert any("无法解析" in n for n in by_source["empty.eml"]["notes"])
    assert by_source["good.eml"]["reply"] == "ack"
    assert by_source["truncated.eml"]["reply"] == "missing"
    assert "unreadable_file" in by_source["truncated.eml"]["problems"]
    quarantine = config_file.parent / "archive" / "_quarantine"
    assert len(list(quarantine.iterdir())) == 2


def test_messages_json_fields(config_file):
    run(config_file, "ingest", str(CORPUS / "0004.eml"), str(CORPUS / "0001.eml"))
    lines = run(config_file, "messages", "--json").output.splitlines()
    first = json.loads(lines[0])
    assert {k: first[k] for k in ("unit", "item", "period", "status", "version", "reply")} == {
        "unit": None,
        "item": None,
        "period": None,
        "status": None,
        "version": None,
        "reply": "none",
    }
    second = json.loads(lines[1])
    assert (second["received_at"], second["unit"], second["problems"]) == (
        "2019-05-22T09:11:59+08:00",
        "于楼街道",
        [],
    )


def test_ingest_names_the_files_of_a_folder_it_skips(config_file, tmp_path):
    folder = tmp_path / "mails"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.eml").write_bytes(make_mail("东风镇第2周周报"))
    (folder / "说明.txt").write_text("不是邮件", encoding="utf-8")
    (folder / "sub" / "b.msg").write_bytes(b"\xd0\xcf\x11\xe0")
    result = run(config_file, "ingest", str(folder))
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"已跳过 {folder / 'sub' / 'b.msg'}：不是 .eml 邮件文件",
        f"已跳过 {folder / '说明.txt'}：不是 .eml 邮件文件",
    ]
    assert result.stdout.startswith("共 1 封：报送 1 封；")
    for number in range(6):
        (folder / f"{number}.txt").write_text("", encoding="utf-8")
    again = run(config_file, "ingest", str(folder))
    names = "、".join(str(folder / f"{number}.txt") for number in range(5))
    assert (again.exit_code, again.stderr) == (0, f"已跳过 8 个不是 .eml 邮件的文件：{names} 等\n")


def test_status_matrix_and_receipts(config_file):
    run(config_file, "ingest", str(CORPUS))
    status = run(config_file, "status", "--json")
    matrix = json.loads(status.output)
    assert len(matrix["units"]) == 34
    assert matrix["units"]["向海街道"]["plan/2019-05-31"]["state"] == "late"
    assert matrix["units"]["大洼街道"]["weekly/2019-06-06"]["versions"] == 2
    text = run(config_file, "status").output
    assert "向海街道" in text and "按时/逾期/未报" in text
    receipts = [
        json.loads(line) for line in run(config_file, "receipts", "--json").output.splitlines()
    ]
    assert all(r["unit"] and r["item"] and r["period"] for r in receipts)


def test_peer_mails_recorded_never_answered(config_file):
    if not PEER_MAILS.is_dir():
        pytest.skip("shared/peer-mails is not beside the project")
    result = run(config_file, "ingest", str(PEER_MAILS))
    assert result.exit_code == 0
    count = len(list(PEER_MAILS.rglob("*.eml")))
    records = run(config_file, "messages", "--json").output.splitlines()
    assert len(records) == count
    assert all(json.loads(r)["reply"] == "none" for r in records)
    assert not (config_file.parent / "outbox").exists() or not any(
        (config_file.parent / "outbox").iterdir()
    )


def test_demo_in_a_fresh_folder(tmp_path):
    folder = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0
    assert "共 272 封" in result.output and "回复已发出 259 封" in result.output
    for name in ("config.toml", "mailproc.db", "rules", "templates", "archive", "outbox"):
        assert (folder / name).exists(), name
    assert len(list((folder / "outbox").glob("*.eml"))) == 259
    # issue 13, point 15: an existing folder is refused in Chinese and left as it was
    before = sorted(p.name for p in folder.iterdir())
    again = CliRunner().invoke(cli, ["demo", str(folder)], catch_exceptions=False)
    assert again.exit_code == 2
    assert f"{folder} 已存在且不是空文件夹" in again.output
    assert sorted(p.name for p in folder.iterdir()) == before
    # the demo's config names example supervisors: its tick writes the 逾期通报
    config = folder / "config.toml"
    tick = CliRunner().invoke(
        cli, ["tick", "--now", "2019-06-13T16:00", "--config", str(config)],
        catch_exceptions=False,
    )  # fmt: skip
    assert "逾期通报：已发出" in tick.output, tick.output
    shutil.rmtree(folder)
