"""The `mailproc` command: one click group, one subcommand per job."""

import contextlib
import datetime as dt
import functools
import json
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mailproc import ledger, resources
from mailproc.assess import assess as assess_units
from mailproc.assess import write_assessment
from mailproc.config import Config, ConfigError, load_config
from mailproc.dashboard import write_dashboard
from mailproc.imap import MailboxError
from mailproc.jobs import Ticker
from mailproc.pipeline import Pipeline, header_receipt_time, mail_files
from mailproc.report import status_matrix
from mailproc.rules import RulesError, load_rules
from mailproc.service import AlreadyRunning, ProcessLock, Service
from mailproc.stats import StatsError, period_stats
from mailproc.workbook import write_workbook

MESSAGE_FIELDS = (
    "message_id", "received_at", "sender", "unit", "item", "period", "status", "version",
    "reply", "problems",
)  # fmt: skip


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
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


def run_ingest(pipeline: Pipeline, paths: list[str], quiet: bool = False) -> dict[str, int]:
    """Ingest files in order of receipt, then deliver what they queued; returns the counts."""
    files = list(mail_files(paths))
    timed = []
    for path in files:
        raw = path.read_bytes()
        moment = header_receipt_time(raw)
        timed.append((moment is None, moment.timestamp() if moment else 0.0, str(path)))
    timed.sort()
    counts: dict[str, int] = {}
    show_bar = not quiet and len(timed) > 50 and sys.stderr.isatty()
    progress = (
        click.progressbar(timed, label="ingesting", file=sys.stderr)
        if show_bar
        else contextlib.nullcontext(timed)
    )
    with progress as bar:
        for _, _, path in bar:
            outcome = pipeline.ingest(Path(path).read_bytes(), source=path)
            key = outcome.state if outcome.state != "new" else outcome.disposition
            counts[key] = counts.get(key, 0) + 1
            if outcome.state == "quarantined" and not quiet:
                click.echo(f"quarantined {path}: {outcome.reason}", err=True)
    delivered = pipeline.deliver()
    counts["replies_sent"] = delivered.sent
    counts["replies_failed"] = delivered.failed
    return counts


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
        with ProcessLock(config.db):
            pipeline = Pipeline(config)
            try:
                counts = run_ingest(pipeline, list(paths))
            finally:
                pipeline.close()
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
    try:
        with ProcessLock(config.db):
            pipeline = Pipeline(config)
            try:
                done = Service(pipeline).poll_once()
            finally:
                pipeline.close()
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
    logging.getLogger().setLevel(logging.INFO)
    try:
        with ProcessLock(config.db):
            pipeline = Pipeline(config)
            try:
                Service(pipeline, moment(now_text, config)).run()
            finally:
                pipeline.close()
    except (MailboxError, AlreadyRunning) as exc:
        fail(str(exc), code=1)


def message_records(db) -> list[dict]:
    rows = db.query("select * from messages order by received_at, id")
    records = []
    for row in rows:
        record = {key: row[key] for key in MESSAGE_FIELDS}
        record["problems"] = json.loads(row["problems"] or "[]")
        record.update(
            disposition=row["disposition"],
            subject=row["subject"],
            source=row["source"],
            notes=json.loads(row["notes"] or "[]"),
        )
        records.append(record)
    return records


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
def messages(config: Config, as_json: bool) -> None:
    """Every mail handled, in receipt order."""
    db = ledger.open_ledger(config.db)
    for record in message_records(db):
        if as_json:
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            click.echo(
                f"{record['received_at'][:16]}  {record['reply']:<12} {record['unit'] or '-':<12} "
                f"{record['item'] or '-':<13} {record['period'] or '-':<10} "
                f"{record['status'] or '-':<7} {record['subject'] or ''}"
            )


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
    for row in rows:
        row["problems"] = json.loads(row["problems"] or "[]")
        row["on_time"] = bool(row["on_time"])
        row["complete"] = bool(row["complete"])
        row.pop("message")
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            click.echo(
                f"{row['received_at'][:16]}  {row['unit']:<12} {row['item']:<13} {row['period']} "
                f"v{row['version']} {row['status']:<7} {'完整' if row['complete'] else '缺项'}"
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
    if as_json:
        report = matrix.as_dict()
        report["failed_sends"] = [
            {k: row[k] for k in ("id", "kind", "unit", "to_addrs", "subject", "last_error")}
            for row in failed
        ]
        click.echo(json.dumps(report, ensure_ascii=False, indent=1))
        return
    click.echo(matrix.render(color=sys.stdout.isatty()))
    if failed:
        click.echo(f"\n发送失败 {len(failed)} 封（不会自动重发）：")
        for row in failed:
            click.echo(f"  #{row['id']} {row['to_addrs']} {row['subject']}：{row['last_error']}")


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
    """An --now / --as-of value: ISO 8601; without an offset, the campaign's time zone."""
    if text is None:
        return None
    tz = load_rules(config.rules).timezone
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not an ISO 8601 time like 2019-06-13T11:05:00+08:00")
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


@cli.command()
@click.option("--now", "now_text", help="Run as if it were this moment (ISO 8601). Default: now.")
@config_option
def tick(config: Config, now_text: str | None) -> None:
    """Run every job due now and not run before: reminders, overdue notices, alerts, digests."""
    try:
        with ProcessLock(config.db):
            pipeline = Pipeline(config)
            try:
                now = moment(now_text, config) or dt.datetime.now(pipeline.tz)
                done = Ticker(pipeline).tick(now)
                delivered = pipeline.deliver()
            finally:
                pipeline.close()
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


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default="mailproc-demo")
def demo(folder: Path) -> None:
    """Run the main job on the bundled sample: a fresh folder, its ledger, archive and replies."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("rules", "templates"):
        if not (folder / name).exists():
            shutil.copytree(resources.bundled(name), folder / name)
    config_file = folder / "config.toml"
    if not config_file.exists():
        config_file.write_text(DEMO_CONFIG, encoding="utf-8")
    try:
        config = load_config(config_file)
        pipeline = Pipeline(config)
    except (ConfigError, RulesError) as exc:
        fail(str(exc))
    sample = resources.bundled("sample")
    click.echo(f"ingesting the bundled sample ({sample}) ...")
    try:
        counts = run_ingest(pipeline, [str(sample)], quiet=True)
        matrix = status_matrix(pipeline.db, pipeline.rules)
    finally:
        pipeline.close()
    click.echo(summary_line(counts))
    click.echo(
        f"\nconfig   {config.file}\nledger   {config.db}\narchive  {config.archive}\n"
        f"replies  {config.outbox}\n"
    )
    click.echo(matrix.render(color=sys.stdout.isatty()))
    click.echo(f"\nnext: mailproc --help;  MAILPROC_CONFIG={config.file} mailproc messages")
