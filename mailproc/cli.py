"""The `mailproc` command: one click group, one subcommand per job."""

import contextlib
import datetime as dt
import functools
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from mailproc import click_words, ledger, private, resources
from mailproc.app import App, open_app
from mailproc.config import Config, ConfigError, load_config
from mailproc.console.users import add_user
from mailproc.display import json_text, printable, table
from mailproc.fetch.files import in_receipt_order
from mailproc.jobs import Ticker
from mailproc.labels import (
    DISPOSITION_WORDS,
    JOB_OUTCOME_WORDS,
    KIND_WORDS,
    REPLY_WORDS,
    STATE_WORDS,
    problem_words,
)
from mailproc.lock import AlreadyRunning, ProcessLock
from mailproc.office import actions, remind, replay
from mailproc.office.actions import Done, OfficeError
from mailproc.pipeline import Pipeline
from mailproc.reports.assess import assess as assess_units
from mailproc.reports.assess import write_assessment
from mailproc.reports.dashboard import write_dashboard
from mailproc.reports.mail_list import message_records
from mailproc.reports.stats import StatsError, period_stats
from mailproc.reports.status import (
    deadline_words,
    decisions_in_force,
    paper_owed,
    paper_owed_lines,
    status_matrix,
)
from mailproc.reports.workbook import write_workbook
from mailproc.rules import CALENDAR_FILE, Rules, RulesError, load_rules

click_words.install()  # before the commands below are declared: --help, errors in Chinese


def fail(message: str, code: int = 2) -> None:
    click.echo(f"mailproc: {message}", err=True)
    sys.exit(code)


def config_option(command: Callable) -> Callable:
    """Every command takes --config; errors in it or in the rules are one line, not a traceback."""

    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="MAILPROC_CONFIG",
        default="config.toml",
        show_default=True,
        help="配置文件（也可用环境变量 MAILPROC_CONFIG 指定）。",
    )
    @functools.wraps(command)
    def wrapper(config_path: Path, **kwargs: Any) -> Any:
        try:
            config = load_config(config_path)
            return command(config, **kwargs)
        except (ConfigError, RulesError) as exc:
            fail(str(exc))

    return wrapper


@click.group()
@click.version_option(package_name="mailproc", message="%(prog)s 版本 %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="每处理一封邮件记录一行日志。")
def cli(verbose: bool) -> None:
    """mailproc：按邮件办理报送工作——登记、回执、催报、统计、考核。"""
    os.umask(private.UMASK)  # whatever the shell's umask, nothing mailproc writes is shared
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


def run_ingest(pipeline: Pipeline, paths: list[str], quiet: bool = False) -> dict[str, int]:
    """Ingest files in order of receipt, each read once when its turn comes, then deliver
    what they queued; returns the counts. The files of a folder that are no mail are named
    on stderr, so a clerk who dropped a .msg or .txt in with the .eml files knows."""
    skipped: list[Path] = []
    timed = in_receipt_order(paths, skipped)
    if not quiet:
        for line in skipped_lines(skipped):
            click.echo(line, err=True)
    counts: dict[str, int] = {}
    show_bar = not quiet and len(timed) > 50 and sys.stderr.isatty()
    progress = (
        click.progressbar(timed, label="正在处理", file=sys.stderr)
        if show_bar
        else contextlib.nullcontext(timed)
    )
    with progress as bar:
        for path in bar:
            outcome = pipeline.ingest(path.read_bytes(), source=str(path))
            key = outcome.state if outcome.state != "new" else outcome.disposition
            counts[key] = counts.get(key, 0) + 1
            if outcome.state == "quarantined" and not quiet:
                click.echo(f"无法处理，已隔离 {path}：{outcome.reason}", err=True)
    delivered = pipeline.app.deliver()
    counts["replies_sent"] = delivered.sent
    counts["replies_failed"] = delivered.failed
    return counts


SKIPPED_NAMED = 5  # files named one a line; more are counted, the first few named


def skipped_lines(skipped: list[Path]) -> list[str]:
    """What `ingest` passed over in the folders it read: every file, or a count and the first."""
    if len(skipped) <= SKIPPED_NAMED:
        return [f"已跳过 {path}：不是 .eml 邮件文件" for path in skipped]
    names = "、".join(str(path) for path in skipped[:SKIPPED_NAMED])
    return [f"已跳过 {len(skipped)} 个不是 .eml 邮件的文件：{names} 等"]


COUNT_WORDS = {**DISPOSITION_WORDS, "known": "此前已处理", "quarantined": "无法处理（已隔离）"}


def summary_line(counts: dict[str, int]) -> str:
    """What an ingest did, in the office's words: 共 3 封：报送 2 封、自动回复 1 封；…"""
    kinds = [k for k in COUNT_WORDS if counts.get(k)]
    handled = sum(counts.get(k, 0) for k in kinds)
    done = "、".join(f"{COUNT_WORDS[k]} {counts[k]} 封" for k in kinds) or "没有新邮件"
    sent, failed = counts.get("replies_sent", 0), counts.get("replies_failed", 0)
    return f"共 {handled} 封：{done}；回复已发出 {sent} 封，发送失败 {failed} 封"


@cli.command()
@click.argument("paths", nargs=-1, required=True, metavar="邮件文件或文件夹...")
@config_option
def ingest(config: Config, paths: tuple[str, ...]) -> None:
    """处理存下的邮件：.eml 文件、存放 .eml 的文件夹或 Maildir，按收到先后处理。"""
    try:
        with ProcessLock(config.db), open_app(config) as app:
            counts = run_ingest(Pipeline(app), list(paths))
    except FileNotFoundError as exc:
        fail(f"找不到 {exc.filename}")
    except AlreadyRunning as exc:
        fail(str(exc))
    click.echo(summary_line(counts))


@cli.command()
@click.option("--once", is_flag=True, help="收取、处理、发送一次后退出。")
@config_option
def poll(config: Config, once: bool) -> None:
    """收取一次邮箱：取回新邮件、处理、发出回复后退出。"""
    if not once:
        fail("poll 须加 --once；每隔几分钟收取一次的是服务 mailproc run")
    from mailproc.fetch.imap import MailboxError  # the IMAP and SMTP clients: only where they serve
    from mailproc.service import Service

    try:
        with ProcessLock(config.db), open_app(config) as app:
            done = Service(app).poll_once()
    except (MailboxError, AlreadyRunning) as exc:
        fail(str(exc), code=1)
    click.echo(
        f"收取邮件 {done.polled.fetched} 封（新邮件 {done.polled.new} 封）；回复已发出 "
        f"{done.delivered.sent} 封，待重试 {done.delivered.retry} 封，"
        f"发送失败 {done.delivered.failed} 封"
    )
    if done.delivered.stopped:
        fail(done.delivered.stopped, code=1)


@cli.command()
@click.option("--now", "now_text", help="服务时钟从此刻开始，如 2019-06-13T10:00（用于演练）。")
@config_option
def run(config: Config, now_text: str | None) -> None:
    """服务：定时收取邮箱，每分钟办理到期的提醒、通知和汇总；收到 SIGTERM 后停止。"""
    from mailproc.fetch.imap import MailboxError
    from mailproc.service import Service

    logging.getLogger().setLevel(logging.INFO)
    try:
        with ProcessLock(config.db), open_app(config) as app:
            service = Service(app, moment(now_text, config))
            stop_console = None
            if config.console.enabled:
                from mailproc.console.web import start_in_thread

                stop_console = start_in_thread(config)
                logging.info("console on http://%s:%d", config.console.host, config.console.port)
            try:
                service.run()
            finally:
                if stop_console:
                    stop_console()
    except (MailboxError, AlreadyRunning) as exc:
        fail(str(exc), code=1)


@cli.command()
@click.option("--host", help="监听地址（默认取 [console] listen）。")
@click.option("--port", type=int, help="监听端口（默认取 [console] listen）。")
@config_option
def serve(config: Config, host: str | None, port: int | None) -> None:
    """办公室网页控制台：实时报送情况、待办事项和办理操作（浏览器打开）。"""
    from mailproc.console.web import serve as serve_console

    with open_app(config) as app:
        if not app.db["users"].count:
            click.echo(
                "还没有控制台用户，请先添加：mailproc user add 用户名 --role clerk "
                "--password-stdin",
                err=True,
            )
    click.echo(
        f"控制台：http://{host or config.console.host}:{port or config.console.port}/ "
        "（Ctrl-C 停止）"
    )
    serve_console(config, host, port)


@cli.group()
def user() -> None:
    """控制台用户：clerk（办事员，可办理）或 viewer（只读）。"""


@user.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["clerk", "viewer"]),
    required=True,
    help="clerk：可办理；viewer：可查看全部，不能更改。",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    required=True,
    help="从标准输入读取密码（密码不出现在命令行上）。",
)
@config_option
def user_add(config: Config, name: str, role: str, password_stdin: bool) -> None:
    """添加控制台用户，或为已有用户重设角色和密码。"""
    from mailproc.console.users import UserError, add_user

    password = sys.stdin.readline().rstrip("\r\n")
    with open_app(config) as app:
        try:
            add_user(app.db, app.tz, name, role, password)
        except UserError as exc:
            fail(str(exc))
    click.echo(f"已保存用户 {name}（{role}）")


@user.command("list")
@config_option
def user_list(config: Config) -> None:
    """列出控制台用户、角色和锁定情况。"""
    from mailproc.console.users import list_users

    with open_app(config) as app:
        for row in list_users(app.db):
            locked = f"  锁定至 {row['locked_until'][:19]}（UTC）" if row["locked_until"] else ""
            click.echo(f"{row['name']:<20} {row['role']:<7} {row['created_at'][:10]} 添加{locked}")


@user.command("remove")
@click.argument("name")
@config_option
def user_remove(config: Config, name: str) -> None:
    """删除控制台用户，其登录立即失效。"""
    from mailproc.console.users import UserError, remove_user

    with open_app(config) as app:
        try:
            remove_user(app.db, name)
        except UserError as exc:
            fail(str(exc))
    click.echo(f"已删除用户 {name}")


def why_no_reply(record: dict) -> str:
    """Why a mail got no automatic reply, in the office's words (empty when it got one)."""
    if record["reply"] != "none":
        return ""
    if any(flag["kind"] == "reply_held" for flag in record.get("flags", [])):
        return "当天已自动回复 3 封，待办公室发出"
    for note in record["notes"]:
        if note.startswith("不回复："):
            return note.removeprefix("不回复：")
    if record["disposition"] == "submission":
        return "办公室登记的邮件"
    return DISPOSITION_WORDS.get(record["disposition"], "")


def filter_options(*names: str) -> Callable[[Callable], Callable]:
    """--unit, --item, --period (and --status) to narrow a listing, written as a clerk writes
    them in the office's commands."""
    help_texts = {
        "unit": "只列此单位（名称、简称或开头几个字）。",
        "item": "只列此事项（周报、方案…，或 weekly、plan…）。",
        "period": "只列此截止日期，如 2019-06-13；写了 --item 时也可写 第2周、6月13日。",
        "status": "只列按时或逾期的（按时、逾期）。",
    }

    def decorate(command: Callable) -> Callable:
        for name in reversed(names):
            command = click.option(f"--{name}", f"{name}_filter", help=help_texts[name])(command)
        return command

    return decorate


STATUS_NAMES = {"按时": "on_time", "逾期": "late", "on_time": "on_time", "late": "late"}


def wanted(config: Config, **given: str | None) -> dict[str, str]:
    """The filters given, checked and in the ledger's terms (东风 → 东风镇, 周报 → weekly,
    第2周 → 2019-06-13); a wrong one is one line with what may be written instead."""
    rules = load_rules(config.rules)
    chosen: dict[str, str] = {}
    try:
        if given.get("unit"):
            chosen["unit"] = actions.resolve_unit(rules, given["unit"])
        item = actions.resolve_item(rules, given["item"]) if given.get("item") else None
        if item is not None:
            chosen["item"] = item.id
        if given.get("period") and item is not None:
            period = actions.resolve_period(item, given["period"])
            if period:
                chosen["period"] = period
        elif given.get("period"):
            chosen["period"] = parse_day(given["period"]).isoformat()
    except (actions.OfficeError, ValueError) as exc:
        fail(str(exc))
    if given.get("status"):
        if given["status"] not in STATUS_NAMES:
            fail(f"--status 可写：按时、逾期（写的是“{given['status']}”）")
        chosen["status"] = STATUS_NAMES[given["status"]]
    return chosen


def matching(records: Iterable[dict], chosen: dict[str, str]) -> list[dict]:
    return [r for r in records if all(r.get(key) == value for key, value in chosen.items())]


def item_words(config: Config) -> dict[str, str]:
    return {item.id: item.label for item in load_rules(config.rules).items}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="每封一行 JSON。")
@filter_options("unit", "item", "period", "status")
@config_option
def messages(
    config: Config,
    as_json: bool,
    unit_filter: str | None,
    item_filter: str | None,
    period_filter: str | None,
    status_filter: str | None,
) -> None:
    """处理过的每封邮件，按收到先后：编号、判读、回复（不回复的写明原因）。"""
    chosen = wanted(
        config, unit=unit_filter, item=item_filter, period=period_filter, status=status_filter
    )
    records = matching(message_records(ledger.open_ledger(config.db)), chosen)
    if as_json:
        for record in records:
            click.echo(json_text(record))
        return
    labels = item_words(config)
    rows = [
        [
            f"#{r['id']}",
            r["received_at"][:16].replace("T", " "),
            printable(r["unit"]) or "—",
            labels.get(r["item"], "—"),
            r["period"] or "—",
            STATE_WORDS.get(r["status"], "—"),
            REPLY_WORDS[r["reply"]] + (f"（{why_no_reply(r)}）" if why_no_reply(r) else ""),
            printable(r["subject"]) or "（无主题）",
        ]
        for r in records
    ]
    headers = ["编号", "收到时间", "单位", "事项", "截止日期", "状态", "回复", "主题"]
    show_table(headers, rows, f"共 {len(rows)} 封")


def show_table(headers: list[str], rows: list[list[str]], total: str, right: tuple = ()) -> None:
    """A listing: the header row and aligned rows, then the count; nothing found is said."""
    if not rows:
        click.echo("没有符合条件的记录")
        return
    for line in table(headers, rows, right):
        click.echo(line)
    click.echo(total)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="每条一行 JSON。")
@filter_options("unit", "item", "period")
@config_option
def receipts(
    config: Config,
    as_json: bool,
    unit_filter: str | None,
    item_filter: str | None,
    period_filter: str | None,
) -> None:
    """按截止日期登记的每一版报送：单位、事项、截止日期、版本、是否按时、是否完整。"""
    chosen = wanted(config, unit=unit_filter, item=item_filter, period=period_filter)
    db = ledger.open_ledger(config.db)
    rows = db.query(
        "select r.*, m.message_id, m.sender from receipts r join messages m on m.id = r.message "
        "order by r.received_at, r.id"
    )
    records = matching(
        (
            {
                **{k: v for k, v in row.items() if k != "message"},
                "mail": row["message"],
                "problems": json.loads(row["problems"] or "[]"),
                "on_time": bool(row["on_time"]),
                "complete": bool(row["complete"]),
            }
            for row in rows
        ),
        chosen,
    )
    if as_json:
        for record in records:
            click.echo(json_text(record))
        return
    labels = item_words(config)
    lines = [
        [
            r["received_at"][:16].replace("T", " "),
            printable(r["unit"]),
            labels.get(r["item"], r["item"]),
            r["period"],
            f"第{r['version']}版",
            STATE_WORDS.get(r["status"], r["status"]),
            "完整" if r["complete"] else f"缺项（{problem_words(r['problems'])}）",
            f"#{r['mail']}",
        ]
        for r in records
    ]
    headers = ["收到时间", "单位", "事项", "截止日期", "版本", "状态", "是否完整", "邮件"]
    show_table(headers, lines, f"共 {len(lines)} 条")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出。")
@config_option
def status(config: Config, as_json: bool) -> None:
    """各单位在每个截止日期的报送情况：按时、逾期、未报；办公室决定、纸质文件、发送失败。"""
    rules = load_rules(config.rules)
    db = ledger.open_ledger(config.db)
    matrix = status_matrix(db, rules)
    failed = list(db["outbox"].rows_where("status = 'failed'", order_by="id"))
    owed = paper_owed(db, rules, matrix.as_of)
    decided = decisions_in_force(db, rules)
    if as_json:
        report = matrix.as_dict()
        report["decisions"] = decided
        report["paper_owed"] = [{"unit": u, "item": i, "period": p} for u, i, p in owed]
        report["failed_sends"] = [
            {k: row[k] for k in ("id", "kind", "unit", "to_addrs", "subject", "last_error")}
            for row in failed
        ]
        click.echo(json_text(report, indent=1))
        return
    click.echo(matrix.render(color=sys.stdout.isatty()))
    if decided:
        click.echo("\n办公室决定：")
        for row in decided:
            click.echo(f"  {row['text']}")
    if owed:
        click.echo(f"\n纸质文件未交 {len(owed)} 份：")
        for deadline, who in paper_owed_lines(owed, rules):
            click.echo(f"  {deadline}：{who}")
    if failed:
        click.echo(f"\n发送失败 {len(failed)} 封（不会自动重发）：")
        for row in failed:
            click.echo(
                f"  #{row['id']} {printable(row['to_addrs'])} {printable(row['subject'])}："
                f"{printable(row['last_error'])}"
            )


@cli.command()
@click.option("--period", required=True, help="截止日期，如 2019-06-13。")
@click.option("--item", "item_id", help="事项（同一天有几个截止日期时写明），如 周报、weekly。")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出。")
@click.option("--as-of", "as_of", help="只计此刻以前收到的邮件，如 2019-06-13T11:05。")
@config_option
def stats(
    config: Config, period: str, item_id: str | None, as_json: bool, as_of: str | None
) -> None:
    """某一期附件1的数字：各单位（以最新一版可读取的为准）、合计、未计入的单位。"""
    rules = load_rules(config.rules)
    try:
        item = actions.resolve_item(rules, item_id).id if item_id else None
        result = period_stats(
            ledger.open_ledger(config.db), rules, period, item, moment(as_of, config)
        )
    except (StatsError, actions.OfficeError) as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    click.echo(f"{result.item.name} {period}：已计入 {len(result.units)} 个单位")
    rows = [
        [c.group, f"{c.header}（{c.unit}）", str(result.totals[c.id])]
        for c in rules.columns
        if c.id in result.totals
    ]
    for line in table(["项目", "指标", "合计"], rows, right=(2,)):
        click.echo(f"  {line}")
    click.echo(f"未计入（{len(result.missing)} 个）：{'、'.join(result.missing) or '无'}")


@cli.command()
@click.argument("item_id", metavar="事项")
@click.option("--period", required=True, help="截止日期，如 2019-06-13。")
@click.option("--as-of", "as_of", help="只计此刻以前收到的邮件，如 2019-06-13T11:05。")
@config_option
def report(config: Config, item_id: str, period: str, as_of: str | None) -> None:
    """写出某事项某一期的附件1汇总表（Excel），文件名带汇总时刻，不覆盖以前的。"""
    rules = load_rules(config.rules)
    try:
        path, _ = write_workbook(
            ledger.open_ledger(config.db),
            rules,
            period,
            config.reports,
            actions.resolve_item(rules, item_id).id,
            moment(as_of, config),
        )
    except (StatsError, actions.OfficeError) as exc:
        fail(str(exc))
    click.echo(f"已写出：{path}")


def moment(text: str | None, config: Config) -> dt.datetime | None:
    """An --now / --as-of value: a date and a time; without an offset, the campaign's zone."""
    if text is None:
        return None
    try:
        return parse_moment(text, load_rules(config.rules).timezone)
    except ValueError as exc:
        fail(str(exc))


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?([+-]\d{2}:\d{2}|Z)?")


def parse_day(text: str) -> dt.date:
    """A date typed as 2019-06-13, checked: 2019-06-31 is no date."""
    text = text.strip()
    if not _DAY.fullmatch(text):
        raise ValueError(f"“{text}”不是日期，请写成 2019-06-13 的形式")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"“{text}”不是有效日期") from None


def parse_moment(text: str, tz: dt.tzinfo, day_end: bool = False) -> dt.datetime:
    """A moment typed as 2019-06-13T11:05 (or with a space, seconds, an offset). A date alone
    is refused, since midnight is rarely what a clerk means; with `day_end` it means the end
    of that day, as a deadline "6月14日前" does."""
    text = text.strip()
    if _DAY.fullmatch(text):
        if not day_end:
            raise ValueError(f"“{text}”缺少时刻，请写成 {text}T11:05 的形式")
        return dt.datetime.combine(parse_day(text), dt.time(23, 59, 59), tz)
    if not _MOMENT.fullmatch(text):
        raise ValueError(f"“{text}”不是时间，请写成 2019-06-13T11:05 的形式")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"“{text}”不是有效的日期时间") from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


@cli.command()
@click.option("--now", "now_text", help="按此刻办理，如 2019-06-13T11:05（默认：现在）。")
@config_option
def tick(config: Config, now_text: str | None) -> None:
    """办理已到时间、尚未办理的事：催报提醒、逾期通知、逾期通报、汇总、考核结果。"""
    try:
        with ProcessLock(config.db), open_app(config) as app:
            now = moment(now_text, config) or dt.datetime.now(app.tz)
            done = Ticker(app).tick(now)
            delivered = app.deliver()
    except AlreadyRunning as exc:
        fail(str(exc))
    rules = load_rules(config.rules)
    for job in done:
        click.echo(job_line(job, rules))
    click.echo(
        f"共办理 {len(done)} 项；邮件已发出 {delivered.sent} 封，待重试 {delivered.retry} 封，"
        f"发送失败 {delivered.failed} 封"
    )


def job_line(job: dict, rules: Rules) -> str:
    """One job the tick ran: 周报 第2周（6月13日）催报提醒：已发出（5 个单位）."""
    item = rules.item(job["item"]) if job.get("item") else None
    what = KIND_WORDS[job["kind"]]
    if item is not None and job.get("period"):
        what = f"{deadline_words(item, item.deadline_for(job['period']))}{what}"
    if job.get("unit"):
        what = f"{job['unit']} {what}"
    outcome = JOB_OUTCOME_WORDS.get(job["outcome"], job["outcome"])
    units = job.get("units", job.get("missing"))
    if job.get("reason"):
        outcome += f"：{job['reason']}"
    elif units:
        outcome += f"（{len(units)} 个单位）"
    if job.get("workbook"):
        outcome += f"，汇总表 {job['workbook']}"
    return f"{what}：{outcome}"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出。")
@click.option("--now", "now_text", help="按此刻考核，如 2019-07-05T09:00（默认：现在）。")
@config_option
def assess(config: Config, as_json: bool, now_text: str | None) -> None:
    """考核：各单位的报送记录、得分、得分率和名次；写出考核表（Excel）。"""
    rules = load_rules(config.rules)
    result = assess_units(ledger.open_ledger(config.db), rules, moment(now_text, config))
    path = write_assessment(result, rules, config.reports)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    categories = dict(rules.categories)
    rows = [
        [
            str(entry["rank"]),
            entry["unit"],
            categories.get(entry["category"], entry["category"]),
            str(entry["score"]),
            str(entry["possible"]),
            "—" if entry["percent"] is None else f"{entry['percent']}%",
        ]
        for entry in result["units"]
    ]
    show_table(
        ["名次", "单位", "类别", "得分", "满分", "得分率"],
        rows,
        f"考核表已写出：{path}",
        right=(0, 3, 4, 5),
    )


@cli.command()
@click.option("--now", "now_text", help="显示此刻的情况，如 2019-06-13T11:05（默认：现在）。")
@config_option
def dashboard(config: Config, now_text: str | None) -> None:
    """写出 reports/index.html：报送情况一览，用任何浏览器直接打开。"""
    rules = load_rules(config.rules)
    path = write_dashboard(
        ledger.open_ledger(config.db),
        rules,
        config.reports,
        config.archive,
        config.templates,
        moment(now_text, config),
    )
    click.echo(f"已写出：{path}")


def office_action(command: Callable) -> Callable:
    """The office's commands: --note and --by; the action is first previewed, its changes
    shown, and applied once the clerk agrees (or gave --yes); --dry-run only shows. A
    refusal is one clear line; the replies an action makes due are delivered at once, or by
    `run` when it is sending. They take no process lock: each is one short transaction, so
    they work while `run` polls."""

    @click.option("--note", help="办理说明（与办理记录一同保存）。")
    @click.option(
        "--by", default=lambda: os.environ.get("USER", "office"), help="办理人（默认为当前用户）。"
    )
    @click.option("--yes", "-y", is_flag=True, help="不再询问，直接办理。")
    @click.option("--dry-run", is_flag=True, help="只列出将发生的变化，不作任何更改。")
    @config_option
    @functools.wraps(command)
    def wrapper(config: Config, yes: bool, dry_run: bool, **kwargs: Any) -> None:
        delivered = None
        try:
            with open_app(config) as app:
                done = command(app, preview=True, **kwargs)
                show_done(done)
                if not done.changes or dry_run:
                    if done.changes:
                        click.echo("（预览，未作任何更改）")
                    return
                if not yes and not click.confirm("确认办理？", default=False):
                    click.echo("未作任何更改")
                    return
                done = command(app, preview=False, **kwargs)
                click.echo("已办理。")
                delivered = app.deliver(wait=False) if done.queued else None
        except OfficeError as exc:
            fail(str(exc))
        except click.Abort:
            click.echo("\n未作任何更改")
            return
        if delivered is not None and delivered.later:
            click.echo("邮件已排入发送队列，由正在运行的 mailproc 发出")
        elif delivered is not None:
            click.echo(f"邮件已发出 {delivered.sent} 封，待重试 {delivered.retry} 封")

    return wrapper


def show_done(done: Done) -> None:
    """An action's summary and, one a line, what it changes."""
    click.echo(("将办理：" if done.preview else "") + done.summary)
    for line in done.changes:
        click.echo(f"  {printable(line)}")


def target_options(command: Callable) -> Callable:
    for option in reversed(
        [
            click.option(
                "--unit", required=True, help="单位：名称、简称或名称开头几个字，如 东风镇、东风。"
            ),
            click.option(
                "--item", required=True, help="报送事项：周报、方案、月总结…，或 weekly、plan…。"
            ),
            click.option(
                "--period",
                help="截止日期，如 2019-06-13、6月13日；周报也可写 第2周"
                "（只有一个截止日期的事项可省略）。",
            ),
        ]
    ):
        command = option(command)
    return command


@cli.command("assign")
@click.argument("message_id", metavar="邮件")
@target_options
@office_action
def assign_command(
    app: App,
    message_id: str,
    unit: str,
    item: str,
    period: str | None,
    note: str | None,
    by: str,
    preview: bool,
) -> Done:
    """把系统未能识别或识别有误的邮件登记到某单位、某事项（邮件写 #编号 或 Message-ID）。"""
    return actions.assign(app, message_id, unit, item, period, note, by, preview=preview)


@cli.command("unassign")
@click.argument("message_id", metavar="邮件")
@office_action
def unassign_command(app: App, message_id: str, note: str | None, by: str, preview: bool) -> Done:
    """撤销办公室对邮件的登记，恢复系统判读。"""
    return actions.unassign(app, message_id, note, by, preview=preview)


@cli.command("excuse")
@target_options
@click.option("--undo", is_flag=True, help="撤销免报。")
@office_action
def excuse_command(
    app: App,
    unit: str,
    item: str,
    period: str | None,
    undo: bool,
    note: str | None,
    by: str,
    preview: bool,
) -> Done:
    """某单位某期免报：不催报、不发逾期通知、不计入考核。"""
    return actions.excuse(app, unit, item, period, note, by, undo, preview=preview)


@cli.command("extend")
@target_options
@click.option(
    "--until",
    "until_text",
    help="新的截止时间，如 2019-06-14T17:00；只写日期即到当日 24 时。须晚于原截止时间。",
)
@click.option("--undo", is_flag=True, help="撤销延期。")
@office_action
def extend_command(
    app: App,
    unit: str,
    item: str,
    period: str | None,
    until_text: str | None,
    undo: bool,
    note: str | None,
    by: str,
    preview: bool,
) -> Done:
    """延长某单位某期的截止时间（只能延后）。"""
    until = None
    if until_text is not None:
        try:
            until = parse_moment(until_text, app.tz, day_end=True)
        except ValueError as exc:
            raise OfficeError(str(exc)) from None
    return actions.extend(app, unit, item, period, until, note, by, undo, preview=preview)


@cli.command("paper")
@click.option(
    "--unit",
    "units",
    multiple=True,
    required=True,
    help="单位：名称、简称或开头几个字；一次登记几个单位就写几次 --unit。",
)
@click.option("--item", required=True, help="报送事项：方案、月总结、总结…，或 plan…。")
@click.option("--period", help="截止日期，如 2019-05-31（只有一个截止日期的事项可省略）。")
@click.option("--received", "received_text", help="纸质文件收到的日期，如 2019-06-03。")
@click.option("--waive", is_flag=True, help="该单位免交纸质文件。")
@click.option("--undo", is_flag=True, help="撤销记录，纸质文件记为未交。")
@office_action
def paper_command(
    app: App,
    units: tuple[str, ...],
    item: str,
    period: str | None,
    received_text: str | None,
    waive: bool,
    undo: bool,
    note: str | None,
    by: str,
    preview: bool,
) -> Done:
    """登记方案、总结的纸质文件已收到或免交；几个单位的可一次登记（--unit 写几次）。"""
    day = None
    if received_text is not None:
        try:
            day = parse_day(received_text)
        except ValueError as exc:
            raise OfficeError(str(exc)) from None
    return actions.paper(
        app, list(units), item, period, day, waive, note, by, undo, preview=preview
    )


@cli.command("confirm")
@click.argument("message_id", metavar="邮件")
@office_action
def confirm_command(app: App, message_id: str, note: str | None, by: str, preview: bool) -> Done:
    """确认代报、填报单位不符或存疑的发件人无误；暂缓的回复随即发出。"""
    return actions.confirm(app, message_id, note, by, preview=preview)


@cli.command("register")
@click.argument("address", metavar="地址")
@click.option("--unit", required=True, help="单位名称。")
@click.option("--undo", is_flag=True, help="该地址不再是该单位的。")
@office_action
def register_command(
    app: App, address: str, unit: str, undo: bool, note: str | None, by: str, preview: bool
) -> Done:
    """登记某地址为某单位的邮箱（如经办人个人邮箱），此后其邮件计为该单位报送。"""
    return actions.register(app, address, unit, note, by, undo, preview=preview)


@cli.command("remind")
@click.option("--unit", help="单位（不填：向该期所有未报的单位催报）。")
@click.option("--item", required=True, help="项目：plan、weekly、month_summary……")
@click.option("--period", help="截止日期，如 2019-06-13（只有一个截止日期的项目可不填）。")
@office_action
def remind_command(
    app: App,
    unit: str | None,
    item: str,
    period: str | None,
    note: str | None,
    by: str,
    preview: bool,
) -> Done:
    """催报：向一个单位，或向该期所有未报的单位，立即发出提醒或逾期通知。"""
    return remind.remind(app, unit, item, period, note, by, preview=preview)


@cli.command("resend")
@click.argument("outbox_id", type=int, metavar="编号")
@office_action
def resend_command(app: App, outbox_id: int, note: str | None, by: str, preview: bool) -> Done:
    """发送失败的邮件在排除原因后重新发送（编号见 mailproc status）。"""
    return actions.resend(app, outbox_id, note, by, preview=preview)


@cli.command("inbox")
@click.option("--json", "as_json", is_flag=True, help="每件一行 JSON。")
@config_option
def inbox_command(config: Config, as_json: bool) -> None:
    """需要办公室处理的邮件，每件附上办理的命令。"""
    with open_app(config) as app:
        entries = actions.inbox(app.db)
        owed = paper_owed(app.db, app.rules, dt.datetime.now(app.tz))
    if as_json:
        for entry in entries:
            click.echo(json_text(entry))
        return
    rows = [
        [
            entry["label"],
            entry["received_at"][:16].replace("T", " "),
            printable(entry["unit"]) or "—",
            printable(entry["sender"]) or "（发件人不明）",
            printable(entry["subject"]) or "（无主题）",
        ]
        for entry in entries
    ]
    if rows:
        header, *lines = table(["编号", "收到时间", "单位", "发件人", "主题"], rows)
        click.echo(header)
        for line, entry in zip(lines, entries, strict=True):
            click.echo(f"{line}\n    {entry['what']}\n    → {printable(entry['command'])}")
    click.echo(f"待办 {len(entries)} 件；纸质文件未交 {len(owed)} 份（mailproc status 列出）")


@cli.command("history")
@click.argument("message_id", metavar="邮件")
@config_option
def history_command(config: Config, message_id: str) -> None:
    """一封邮件的全部经过：收到、判读、办公室的办理、回复（邮件写 #编号 或 Message-ID）。"""
    with open_app(config) as app:
        try:
            lines = actions.history(app, message_id)
        except OfficeError as exc:
            fail(str(exc))
    click.echo("\n".join(lines))


@cli.command("replay")
@click.option("--dry-run", is_flag=True, help="只列出将发生的变化，不作任何更改。")
@click.option("--yes", "-y", is_flag=True, help="不再询问，直接办理。")
@config_option
def replay_command(config: Config, dry_run: bool, yes: bool) -> None:
    """按现行的 rules/ 重新判读存档的每封邮件；先列出变化，确认后再更改。"""
    try:
        with ProcessLock(config.db), open_app(config) as app:
            pipeline = Pipeline(app)
            rereads = replay.reread_all(pipeline)
            changed = replay.changes(rereads)
            for reread in changed:
                old, new = (reading_words(app.rules, v) for v in (reread.old, reread.new))
                click.echo(f"#{reread.row['id']}：{old} → {new}")
            click.echo(f"共 {len(rereads)} 封邮件，判读有变化的 {len(changed)} 封")
            if dry_run or not changed:
                if dry_run and changed:
                    click.echo("（预览，未作任何更改）")
                return
            if not yes and not click.confirm("确认按新的判读更改？", default=False):
                click.echo("未作任何更改")
                return
            queued = replay.apply(pipeline, rereads)
            delivered = app.deliver()
    except AlreadyRunning as exc:
        fail(str(exc))
    click.echo(f"已更改；新发出回复 {delivered.sent} 封（共 {queued} 封待发）")


def reading_words(rules: Rules, reading: tuple) -> str:
    """(unit, item, period, status) as a clerk reads it: 东风镇 周报 2019-06-13 按时, or
    未识别 for a mail read as no unit's."""
    unit, item, period, status = reading
    if unit is None and item is None:
        return "未识别"
    words = [
        unit or "（单位不明）",
        rules.item(item).label if item else "（事项不明）",
        period or "",
        STATE_WORDS.get(status, "") if status else "",
    ]
    return " ".join(word for word in words if word)


@cli.command("check-rules")
@config_option
def check_rules(config: Config) -> None:
    """检查 rules/ 中的规则文件；有错时写明文件、键和问题。"""
    rules = load_rules(config.rules)
    missing = [
        f"{kind}.txt.j2"
        for kind in ("ack", "missing", "unrecognized")
        if not (config.templates / f"{kind}.txt.j2").is_file()
    ]
    if missing:
        fail(f"{config.templates}：缺少模板 {'、'.join(missing)}")
    deadlines = sum(len(i.deadlines) for i in rules.items)
    click.echo(
        f"规则无误（{rules.folder}）：{len(rules.units)} 个单位，{len(rules.items)} 个报送事项，"
        f"{deadlines} 个截止时间，附件1 统计 {len(rules.columns)} 列"
    )
    for year in rules.calendar_gaps():
        click.echo(calendar_gap_warning(year, rules.folder / CALENDAR_FILE), err=True)


def calendar_gap_warning(year: int, calendar_file: Path) -> str:
    """The office's warning for a campaign year whose holidays nobody knows yet."""
    return (
        f"注意：{year}年有截止时间或催报提醒，但该年的节假日和调休安排尚未录入（{calendar_file}），"
        "工作日暂按周一至周五计算；国务院公布该年安排后，请补入该文件。"
    )


DEMO_USER = "demo"
DEMO_CONFIG = """\
# Written by `mailproc demo`. Paths are relative to this file's folder.
[paths]
rules = "rules"
templates = "templates"
db = "mailproc.db"
archive = "archive"
outbox = "outbox"
reports = "reports"

[delivery]
transport = "dir"

# Example addresses, so that `mailproc tick` writes the 逾期通报 into outbox/ as it would send
# it; in a real config, the office's director and 督查室.
[recipients]
supervisors = ["局长 <director@example.gov.cn>", "督查室 <ducha@example.gov.cn>"]
"""


def copy_private(source: Path, target: Path) -> None:
    """A copy of a bundled folder, 0600 and 0700 like everything else in the demo's folder."""
    for file in sorted(source.rglob("*")):
        if file.is_file():
            private.write_private(target / file.relative_to(source), file.read_bytes())


@cli.command()
@click.argument(
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default="mailproc-demo",
    metavar="[文件夹]",
)
def demo(folder: Path) -> None:
    """用附带的样例邮件演示：在一个新文件夹里建立台账、存档和回复（默认 mailproc-demo）。"""
    if folder.exists() and any(folder.iterdir()):
        fail(
            f"{folder} 已存在且不是空文件夹。演示每次从新文件夹开始，以免与以前的台账混在一起："
            f"请另写一个文件夹名（mailproc demo 新文件夹名），或先删除 {folder}"
        )
    private.make_folder(folder)
    for name in ("rules", "templates"):
        copy_private(resources.bundled(name), folder / name)
    config_file = folder / "config.toml"
    private.write_private(config_file, DEMO_CONFIG.encode("utf-8"))
    try:
        config = load_config(config_file)
        app = open_app(config)
    except (ConfigError, RulesError) as exc:
        fail(str(exc))
    sample = resources.bundled("sample")
    click.echo(f"正在处理附带的样例邮件（{sample}）……")
    with app:
        counts = run_ingest(Pipeline(app), [str(sample)], quiet=True)
        matrix = status_matrix(app.db, app.rules)
        demo_password = secrets.token_urlsafe(9)  # a fresh one each run: the demo's is printed
        add_user(app.db, app.tz, DEMO_USER, "clerk", demo_password)
    click.echo(summary_line(counts))
    click.echo(
        f"\n配置  {config.file}\n台账  {config.db}\n存档  {config.archive}\n回复  {config.outbox}\n"
    )
    click.echo(matrix.render(color=sys.stdout.isatty()))
    click.echo(f"\n下一步：mailproc --help；MAILPROC_CONFIG={config.file} mailproc messages")
    click.echo(
        f"控制台：MAILPROC_CONFIG={config.file} mailproc serve，然后在 "
        f"http://{config.console.host}:{config.console.port}/ 以 {DEMO_USER} / {demo_password} 登录"
    )


click_words.localize(cli)
