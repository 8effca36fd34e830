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

from mailproc import ledger, private, resources
from mailproc.app import App, open_app
from mailproc.config import Config, ConfigError, load_config
from mailproc.console.users import add_user
from mailproc.display import json_text, printable
from mailproc.fetch.files import in_receipt_order
from mailproc.jobs import Ticker
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
    decisions_in_force,
    paper_owed,
    paper_owed_lines,
    status_matrix,
)
from mailproc.reports.workbook import write_workbook
from mailproc.rules import CALENDAR_FILE, RulesError, load_rules


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
        help="Config file (also $MAILPROC_CONFIG).",
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
@click.version_option(package_name="mailproc")
@click.option("-v", "--verbose", is_flag=True, help="Log one line per mail handled.")
def cli(verbose: bool) -> None:
    """mailproc: runs an email reporting campaign — receipts, replies, reminders, statistics."""
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
        click.progressbar(timed, label="ingesting", file=sys.stderr)
        if show_bar
        else contextlib.nullcontext(timed)
    )
    with progress as bar:
        for path in bar:
            outcome = pipeline.ingest(path.read_bytes(), source=str(path))
            key = outcome.state if outcome.state != "new" else outcome.disposition
            counts[key] = counts.get(key, 0) + 1
            if outcome.state == "quarantined" and not quiet:
                click.echo(f"quarantined {path}: {outcome.reason}", err=True)
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


def summary_line(counts: dict[str, int]) -> str:
    handled = sum(v for k, v in counts.items() if not k.startswith("replies_"))
    parts = [f"{k} {v}" for k, v in sorted(counts.items()) if not k.startswith("replies_") and v]
    sent, failed = counts.get("replies_sent", 0), counts.get("replies_failed", 0)
    done = ", ".join(parts) or "nothing new"
    return f"{handled} mails: {done}; replies delivered {sent}, failed {failed}"


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@config_option
def ingest(config: Config, paths: tuple[str, ...]) -> None:
    """Process stored mail: .eml files, folders of them, or Maildirs, in receipt order."""
    try:
        with ProcessLock(config.db), open_app(config) as app:
            counts = run_ingest(Pipeline(app), list(paths))
    except (FileNotFoundError, AlreadyRunning) as exc:
        fail(str(exc))
    click.echo(summary_line(counts))


@cli.command()
@click.option("--once", is_flag=True, help="Fetch, process, send, then exit.")
@config_option
def poll(config: Config, once: bool) -> None:
    """Read the mailbox once: fetch new mail, process it, send the replies, exit."""
    if not once:
        fail("poll needs --once; `mailproc run` is the service that polls every few minutes")
    from mailproc.fetch.imap import MailboxError  # the IMAP and SMTP clients: only where they serve
    from mailproc.service import Service

    try:
        with ProcessLock(config.db), open_app(config) as app:
            done = Service(app).poll_once()
    except (MailboxError, AlreadyRunning) as exc:
        fail(str(exc), code=1)
    click.echo(
        f"fetched {done.polled.fetched} mails ({done.polled.new} new); replies sent "
        f"{done.delivered.sent}, to retry {done.delivered.retry}, failed {done.delivered.failed}"
    )
    if done.delivered.stopped:
        fail(done.delivered.stopped, code=1)


@cli.command()
@click.option(
    "--now", "now_text", help="Start the service's clock at this moment (ISO 8601; for drills)."
)
@config_option
def run(config: Config, now_text: str | None) -> None:
    """The service: poll every [mailbox] poll_minutes, run due jobs every minute; SIGTERM stops."""
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
def messages(config: Config, as_json: bool) -> None:
    """Every mail handled, in receipt order."""
    emit(
        message_records(ledger.open_ledger(config.db)),
        as_json,
        lambda r: (
            f"{r['received_at'][:16]}  {r['reply']:<12} {r['unit'] or '-':<12} "
            f"{r['item'] or '-':<13} {r['period'] or '-':<10} {r['status'] or '-':<7} "
            f"{printable(r['subject'])}"
        ),
    )


def emit(records: Iterable[dict], as_json: bool, line: Callable[[dict], str]) -> None:
    """One JSON object per line, or one readable line per record."""
    for record in records:
        click.echo(json_text(record) if as_json else line(record))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
def receipts(config: Config, as_json: bool) -> None:
    """Every receipt logged against a deadline, by unit, item, period and version."""
    db = ledger.open_ledger(config.db)
    rows = db.query(
        "select r.*, m.message_id, m.sender from receipts r join messages m on m.id = r.message "
        "order by r.received_at, r.id"
    )
    records = [
        {
            **{k: v for k, v in row.items() if k != "message"},
            "problems": json.loads(row["problems"] or "[]"),
            "on_time": bool(row["on_time"]),
            "complete": bool(row["complete"]),
        }
        for row in rows
    ]
    emit(
        records,
        as_json,
        lambda r: (
            f"{r['received_at'][:16]}  {r['unit']:<12} {r['item']:<13} {r['period']} "
            f"v{r['version']} {r['status']:<7} {'完整' if r['complete'] else '缺项'}"
        ),
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="The matrix as JSON.")
@config_option
def status(config: Config, as_json: bool) -> None:
    """Units × deadlines: on time, late, missing."""
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
@click.option("--period", required=True, help="The deadline's ISO date, e.g. 2019-06-13.")
@click.option("--item", "item_id", help="The item, when several have that deadline.")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.option("--as-of", "as_of", help="Only mail received by this moment (ISO 8601).")
@config_option
def stats(
    config: Config, period: str, item_id: str | None, as_json: bool, as_of: str | None
) -> None:
    """附件1 figures of one period: per unit (latest readable version), totals, missing units."""
    rules = load_rules(config.rules)
    try:
        result = period_stats(
            ledger.open_ledger(config.db), rules, period, item_id, moment(as_of, config)
        )
    except StatsError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    headers = {c.id: f"{c.group}{c.header}" for c in rules.columns}
    click.echo(f"{result.item.name} {period}: {len(result.units)} units counted")
    for column, total in result.totals.items():
        click.echo(f"  {headers[column]}: {total}")
    click.echo(f"missing ({len(result.missing)}): {'、'.join(result.missing) or '无'}")


@cli.command()
@click.argument("item_id", metavar="ITEM")
@click.option("--period", required=True, help="The deadline's ISO date, e.g. 2019-06-13.")
@click.option("--as-of", "as_of", help="Only mail received by this moment (ISO 8601).")
@config_option
def report(config: Config, item_id: str, period: str, as_of: str | None) -> None:
    """Write the consolidated 附件1 workbook of ITEM (weekly, month_summary) for one period."""
    rules = load_rules(config.rules)
    try:
        path, _ = write_workbook(
            ledger.open_ledger(config.db),
            rules,
            period,
            config.reports,
            item_id,
            moment(as_of, config),
        )
    except StatsError as exc:
        fail(str(exc))
    click.echo(str(path))


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
@click.option("--now", "now_text", help="Run as if it were this moment (ISO 8601). Default: now.")
@config_option
def tick(config: Config, now_text: str | None) -> None:
    """Run every job due now and not run before: reminders, overdue notices, alerts, digests."""
    try:
        with ProcessLock(config.db), open_app(config) as app:
            now = moment(now_text, config) or dt.datetime.now(app.tz)
            done = Ticker(app).tick(now)
            delivered = app.deliver()
    except AlreadyRunning as exc:
        fail(str(exc))
    for job in done:
        units = job.get("units", job.get("missing"))
        click.echo(f"{job['job']}: {job['outcome']}" + (f" ({len(units)} units)" if units else ""))
    click.echo(
        f"{len(done)} jobs run; messages sent {delivered.sent}, to retry {delivered.retry}, "
        f"failed {delivered.failed}"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.option("--now", "now_text", help="Assess as of this moment (ISO 8601). Default: now.")
@config_option
def assess(config: Config, as_json: bool, now_text: str | None) -> None:
    """The assessment (考核): each unit's record, score and rank; writes the ranked xlsx."""
    rules = load_rules(config.rules)
    result = assess_units(ledger.open_ledger(config.db), rules, moment(now_text, config))
    path = write_assessment(result, rules, config.reports)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    for entry in result["units"]:
        click.echo(
            f"{entry['rank']:>3}  {entry['unit']:<14} {entry['score']} / {entry['possible']}"
        )
    click.echo(str(path))


@cli.command()
@click.option("--now", "now_text", help="Show the campaign as of this moment (ISO 8601).")
@config_option
def dashboard(config: Config, now_text: str | None) -> None:
    """Write reports/index.html: the campaign at a glance, to open in any browser from disk."""
    rules = load_rules(config.rules)
    path = write_dashboard(
        ledger.open_ledger(config.db),
        rules,
        config.reports,
        config.archive,
        config.templates,
        moment(now_text, config),
    )
    click.echo(str(path))


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
@target_options
@click.option("--received", "received_text", help="纸质文件收到的日期，如 2019-06-03。")
@click.option("--waive", is_flag=True, help="该单位免交纸质文件。")
@click.option("--undo", is_flag=True, help="撤销记录，纸质文件记为未交。")
@office_action
def paper_command(
    app: App,
    unit: str,
    item: str,
    period: str | None,
    received_text: str | None,
    waive: bool,
    undo: bool,
    note: str | None,
    by: str,
    preview: bool,
) -> Done:
    """登记方案、总结的纸质文件已收到或免交（方案、总结均需报正式纸质文件）。"""
    day = None
    if received_text is not None:
        try:
            day = parse_day(received_text)
        except ValueError as exc:
            raise OfficeError(str(exc)) from None
    return actions.paper(app, unit, item, period, day, waive, note, by, undo, preview=preview)


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
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
def inbox_command(config: Config, as_json: bool) -> None:
    """What needs a person, each with the command that settles it."""
    with open_app(config) as app:
        entries = actions.inbox(app.db)
        owed = paper_owed(app.db, app.rules, dt.datetime.now(app.tz))
    for entry in entries:
        if as_json:
            click.echo(json_text(entry))
        else:
            click.echo(
                f"{entry['received_at'][:16].replace('T', ' ')}  {entry['what']}  "
                f"{printable(entry['unit'] or entry['sender']) or '（发件人不明）'}："
                f"{printable(entry['subject']) or '（无主题）'}\n"
                f"    → {printable(entry['command'])}"
            )
    if not as_json:
        click.echo(
            f"{len(entries)} to settle; paper copies still owed: {len(owed)} "
            "(mailproc status lists them)"
        )


@cli.command("history")
@click.argument("message_id")
@config_option
def history_command(config: Config, message_id: str) -> None:
    """The whole story of one mail: receipt, readings, the office's actions, replies."""
    with open_app(config) as app:
        try:
            lines = actions.history(app, message_id)
        except OfficeError as exc:
            fail(str(exc))
    click.echo("\n".join(lines))


@cli.command("replay")
@click.option("--dry-run", is_flag=True, help="Only list what would change.")
@click.option("--yes", is_flag=True, help="Apply without asking.")
@config_option
def replay_command(config: Config, dry_run: bool, yes: bool) -> None:
    """Read every stored mail again with the current rules/; show, then apply, what changes."""
    try:
        with ProcessLock(config.db), open_app(config) as app:
            pipeline = Pipeline(app)
            rereads = replay.reread_all(pipeline)
            changed = replay.changes(rereads)
            for reread in changed:
                old = " ".join(str(v) for v in reread.old)
                new = " ".join(str(v) for v in reread.new)
                click.echo(f"{printable(reread.row['message_id'])}: {old} → {new}")
            click.echo(f"{len(changed)} of {len(rereads)} mails would change")
            if dry_run or not changed:
                return
            if not yes and not click.confirm("apply these changes?", default=False):
                click.echo("nothing changed")
                return
            queued = replay.apply(pipeline, rereads)
            delivered = app.deliver()
    except AlreadyRunning as exc:
        fail(str(exc))
    click.echo(f"applied; {queued} replies newly due, sent {delivered.sent}")


@cli.command("check-rules")
@config_option
def check_rules(config: Config) -> None:
    """Validate the rules files; name file, key and problem on any error."""
    rules = load_rules(config.rules)
    missing = [
        kind
        for kind in ("ack", "missing", "unrecognized")
        if not (config.templates / f"{kind}.txt.j2").is_file()
    ]
    if missing:
        fail(f"{config.templates}: template missing for {', '.join(missing)}")
    deadlines = sum(len(i.deadlines) for i in rules.items)
    click.echo(
        f"rules OK ({rules.folder}): {len(rules.units)} units, {len(rules.items)} items, "
        f"{deadlines} deadlines, {len(rules.columns)} statistics columns"
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
"""


def copy_private(source: Path, target: Path) -> None:
    """A copy of a bundled folder, 0600 and 0700 like everything else in the demo's folder."""
    for file in sorted(source.rglob("*")):
        if file.is_file():
            private.write_private(target / file.relative_to(source), file.read_bytes())


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default="mailproc-demo")
def demo(folder: Path) -> None:
    """Run the main job on the bundled sample: a fresh folder, its ledger, archive and replies."""
    private.make_folder(folder)
    for name in ("rules", "templates"):
        if not (folder / name).exists():
            copy_private(resources.bundled(name), folder / name)
    config_file = folder / "config.toml"
    if not config_file.exists():
        private.write_private(config_file, DEMO_CONFIG.encode("utf-8"))
    try:
        config = load_config(config_file)
        app = open_app(config)
    except (ConfigError, RulesError) as exc:
        fail(str(exc))
    sample = resources.bundled("sample")
    click.echo(f"ingesting the bundled sample ({sample}) ...")
    with app:
        counts = run_ingest(Pipeline(app), [str(sample)], quiet=True)
        matrix = status_matrix(app.db, app.rules)
        demo_password = secrets.token_urlsafe(9)  # a fresh one each run: the demo's is printed
        add_user(app.db, app.tz, DEMO_USER, "clerk", demo_password)
    click.echo(summary_line(counts))
    click.echo(
        f"\nconfig   {config.file}\nledger   {config.db}\narchive  {config.archive}\n"
        f"replies  {config.outbox}\n"
    )
    click.echo(matrix.render(color=sys.stdout.isatty()))
    click.echo(f"\nnext: mailproc --help;  MAILPROC_CONFIG={config.file} mailproc messages")
    click.echo(
        f"console: MAILPROC_CONFIG={config.file} mailproc serve, then log in at "
        f"http://{config.console.host}:{config.console.port}/ as {DEMO_USER} / {demo_password}"
    )
