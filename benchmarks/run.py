"""Every speed and memory target of issue 15 in one run, each beside the floor it is held to,
measured in the same run on the same data.

    .venv/bin/python benchmarks/run.py [--scale 1.0] [--only NAME ...] [--work DIR]

It builds its own data (campaign mails: the corpus with new Message-IDs; ledgers of many
messages written through `mailproc.ledger.write`), starts a throwaway Dovecot and aiosmtpd the
way the tests do (`tests/servers.py`; Dovecot needs root), and prints one line per benchmark:
the figure, the floor, their ratio, the target and PASS/FAIL. `--scale` multiplies every size
(0.01 is a smoke run of a minute). Exit status 1 when a target is missed or a mail was read
wrong. Timings on a shared machine swing: the floors run in the same minute as mailproc, so
ratios are steadier than figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import email
import email.policy
import hashlib
import json
import os
import re
import shutil
import smtplib
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import hostile  # noqa: E402  (tests/ is put on the path above)
import mailparser  # noqa: E402
from corpus_check import CORPUS, expected_entries  # noqa: E402
from servers import VMAIL_UID, DovecotServer, SmtpServer  # noqa: E402

from mailproc.app import open_app  # noqa: E402
from mailproc.config import load_config  # noqa: E402
from mailproc.console import users  # noqa: E402
from mailproc.console.web import make_console  # noqa: E402
from mailproc.ledger import open_ledger, write  # noqa: E402
from mailproc.values import Classification, StatsTable  # noqa: E402

# Sizes at --scale 1: the table.
SIZES = {
    "ingest_imap": 5000,
    "ingest_files": 1000,
    "idle_small": 1000,
    "idle_large": 50000,
    "office_small": 5000,
    "office_large": 50000,
    "replies": 5000,
}
BIG_MEGABYTES = 30
PASSWORD = "bench-secret"
PASSWORD_ENV = "MAILPROC_BENCH_PASSWORD"
TICK_AT = "2019-06-13T11:05:00+08:00"
WEEK = "2019-06-13"
MESSAGE_ID = re.compile(rb"^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*", re.IGNORECASE | re.MULTILINE)
BENCHMARKS = ("ingest_imap", "ingest_files", "idle", "office", "big", "replies", "consolidate")


@dataclasses.dataclass
class Line:
    """One benchmark's result as printed."""

    name: str
    figure: str
    floor: str
    ratio: float
    target: str
    passed: bool

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{self.name:<34} {self.figure:>16}  floor {self.floor:>16}  "
            f"ratio {self.ratio:6.2f}  target {self.target:<26} {verdict}"
        )


def report(line: Line, lines: list[Line]) -> None:
    lines.append(line)
    print(line, flush=True)


# -- data ---------------------------------------------------------------------------------------


def campaign_mails(count: int) -> Iterator[tuple[bytes, dt.datetime]]:
    """`count` campaign mails with their receipt times: the corpus over and over, each copy
    under a Message-ID of its own (so none is a duplicate of another), in receipt order."""
    entries = sorted(expected_entries(), key=lambda e: e["received_at"])
    for index in range(count):
        entry = entries[index % len(entries)]
        raw = (CORPUS / entry["file"]).read_bytes()
        header_end = raw.find(b"\n\n") if b"\r\n\r\n" not in raw else raw.find(b"\r\n\r\n")
        head, body = raw[:header_end], raw[header_end:]
        newline = b"\r\n" if b"\r\n" in head else b"\n"
        head = MESSAGE_ID.sub(b"", head.replace(b"\r\n", b"\n") + b"\n").rstrip(b"\n")
        fresh = f"Message-ID: <bench-{index:06d}-{entry['file']}@bench.invalid>".encode()
        head = (fresh + b"\n" + head).replace(b"\n", newline)
        received = dt.datetime.fromisoformat(entry["received_at"])
        yield head + body, received + dt.timedelta(seconds=index // len(entries))


def tiny_mail(index: int) -> bytes:
    return (
        f"From: someone@example.com\r\nTo: office@example.com\r\nSubject: {index}\r\n"
        f"Message-ID: <idle-{index}@bench.invalid>\r\n\r\nhello\r\n"
    ).encode()


def campaign_folder(folder: Path, rules: bool = True) -> Path:
    """A folder with the bundled rules and templates and a config with only [paths]."""
    folder.mkdir(parents=True, exist_ok=True)
    if rules:
        for name in ("rules", "templates"):
            shutil.copytree(ROOT / name, folder / name, dirs_exist_ok=True)
    config = folder / "config.toml"
    config.write_text(
        '[paths]\nrules = "rules"\ntemplates = "templates"\n\n[delivery]\ntransport = "dir"\n',
        encoding="utf-8",
    )
    return config


def imap_config(folder: Path, server: DovecotServer, user: str) -> Path:
    """A fresh campaign folder reading `user`'s INBOX (a ledger left by an earlier run of
    the benchmark would know every mail already)."""
    shutil.rmtree(folder, ignore_errors=True)
    config = campaign_folder(folder)
    with config.open("a", encoding="utf-8") as out:
        out.write(
            f'\n[mailbox]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
            f'username = "{user}"\npassword_env = "{PASSWORD_ENV}"\nfolder = "INBOX"\n'
        )
    return config


def environment() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/root"),
        PASSWORD_ENV: PASSWORD,
    }


def mailproc(config: Path, *args: str) -> float:
    """Run one mailproc command in a fresh process; its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mailproc", *args, "--config", str(config)],
        cwd=config.parent,
        env=environment(),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"mailproc {' '.join(args)} failed: {done.stderr[-2000:]}")
    return seconds


def fill_mailbox(server: DovecotServer, user: str, mails: Iterator[tuple[bytes, dt.datetime]]):
    """APPEND every mail on one connection, each with its receipt time as INTERNALDATE."""
    server.add_user(user, PASSWORD)
    with server._helper(user) as imap:
        for raw, received in mails:
            imap.append("INBOX", raw, msg_time=received)


def fill_maildir(server: DovecotServer, user: str, count: int) -> tuple[int, int]:
    """`count` tiny mails written straight into the user's Maildir (APPENDing 50,000 takes
    minutes and only the count matters to an idle poll); (UIDVALIDITY, last UID)."""
    server.add_user(user, PASSWORD)
    with server._helper(user) as imap:
        imap.select_folder("INBOX")  # Dovecot makes the Maildir
    new = server.folder / "home" / user / "Maildir" / "new"
    for index in range(count):
        path = new / f"{1560000000 + index}.M{index}P1.bench"
        path.write_bytes(tiny_mail(index))
        os.chown(path, VMAIL_UID, VMAIL_UID)
    with server._helper(user) as imap:
        info = imap.select_folder("INBOX", readonly=True)
        return int(info[b"UIDVALIDITY"]), int(info[b"UIDNEXT"]) - 1


# -- a ledger of many messages ------------------------------------------------------------------


def demo_ledger(work: Path) -> Path:
    """The corpus ingested once: the rows a synthetic ledger copies."""
    folder = work / "demo"
    if not (folder / "mailproc.db").exists():
        shutil.rmtree(folder, ignore_errors=True)
        config = campaign_folder(folder)
        mailproc(config, "ingest", str(CORPUS))
    return folder / "mailproc.db"


def synthesise(template: Path, target: Path, count: int) -> None:
    """A ledger of `count` messages: the demo's mails again and again (a unit sending each
    report many times), each written as the pipeline writes a mail — message, files, receipt
    and figures, reply, log — through `mailproc.ledger.write`, one transaction per mail."""
    source = sqlite3.connect(template)
    source.row_factory = sqlite3.Row
    messages = [dict(r) for r in source.execute("select * from messages order by id")]
    files = {}
    for row in source.execute("select * from attachments"):
        files.setdefault(row["message"], []).append(dict(row))
    receipts = {r["message"]: dict(r) for r in source.execute("select * from receipts")}
    figures = {}
    for row in source.execute("select * from figures"):
        figures.setdefault(row["message"], {})[row["column"]] = row["value"]
    replies = {
        r["message"]: dict(r) for r in source.execute("select * from outbox where message > 0")
    }
    source.close()
    db = open_ledger(target)
    tz = dt.timezone(dt.timedelta(hours=8))
    versions: dict[tuple, int] = {
        (unit, item, period): top
        for unit, item, period, top in db.execute(
            "select unit, item, period, max(version) m from receipts group by 1, 2, 3"
        ).fetchall()
    }
    done = db["messages"].count
    for index in range(done, count):
        row = dict(messages[index % len(messages)])
        old = row.pop("id")
        digest = hashlib.sha256(f"bench-{index}".encode()).hexdigest()
        row.update(sha256=digest, message_id=f"<bench-{index}@bench.invalid>")
        with db.atomic():
            pk = write.record_message(db, row)
            write.record_attachments(
                db,
                [
                    {**{k: v for k, v in f.items() if k != "id"}, "message": pk}
                    for f in files.get(old, [])
                ],
            )
            receipt = receipts.get(old)
            if receipt:
                group = (receipt["unit"], receipt["item"], receipt["period"])
                versions[group] = versions.get(group, 0) + 1
                values = figures.get(old)
                result = Classification(
                    disposition=row["disposition"],
                    unit=receipt["unit"],
                    item=receipt["item"],
                    period=receipt["period"],
                    version=versions[group],
                    on_time=bool(receipt["on_time"]),
                    status=receipt["status"],
                    problems=tuple(json.loads(receipt["problems"])),
                    table=StatsTable("附件1.xlsx", "Sheet1", None, values) if values else None,
                )
                write.record_receipt(
                    db, pk, dt.datetime.fromisoformat(receipt["received_at"]), result
                )
            reply = replies.get(old)
            if reply:
                message = email.message_from_string(reply["eml"], policy=email.policy.default)
                del message["Message-ID"]
                message["Message-ID"] = f"<reply-{index}@bench.invalid>"
                queued = write.queue(
                    db,
                    kind=reply["kind"],
                    cause=f"bench:{index}",
                    message=message,
                    message_pk=pk,
                    unit=reply["unit"],
                    tz=tz,
                )
                write.delivery_sent(db, queued, "bench", tz)
            write.log(db, tz, pk, "ingested", {"source": "bench"})
    db.conn.close()


def ledgers(work: Path, sizes: list[int]) -> dict[int, Path]:
    """A synthetic ledger per size, each grown from the one before (kept in --work)."""
    template = demo_ledger(work)
    made: dict[int, Path] = {}
    previous: Path | None = None
    for size in sorted(set(sizes)):
        path = work / f"ledger-{size}.db"
        if not path.exists():
            partial = path.with_suffix(".partial")
            if previous:
                shutil.copyfile(previous, partial)
            synthesise(template, partial, size)
            partial.rename(path)
        made[size] = previous = path
    return made


def office_folder(work: Path, ledger: Path, name: str) -> Path:
    """A campaign folder whose ledger is a copy of `ledger`, with the demo's archive."""
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    config = campaign_folder(folder)
    shutil.copyfile(ledger, folder / "mailproc.db")
    shutil.copytree(work / "demo" / "archive", folder / "archive")
    return config


# -- benchmarks ---------------------------------------------------------------------------------


def fetch_floor(server: DovecotServer, user: str) -> float:
    """Seconds for imapclient to fetch every mail in batches and mail-parser to parse each."""
    start = time.perf_counter()
    with server.client(user) as imap:
        imap.select_folder("INBOX", readonly=True)
        uids = sorted(imap.search(["ALL"]))
        for first in range(0, len(uids), 50):
            fetched = imap.fetch(uids[first : first + 50], ["BODY.PEEK[]", "INTERNALDATE"])
            for data in fetched.values():
                mailparser.parse_from_bytes(data[b"BODY[]"])
    return time.perf_counter() - start


def bench_ingest_imap(work: Path, server: DovecotServer, count: int, lines: list[Line]) -> None:
    fill_mailbox(server, "ingest", campaign_mails(count))
    floor = fetch_floor(server, "ingest")
    config = imap_config(work / "ingest-imap", server, "ingest")
    seconds = mailproc(config, "poll", "--once")
    rate, floor_rate = count / seconds, count / floor
    report(
        Line(
            f"ingest poll --once ({count} mails)",
            f"{rate:.0f} mails/s",
            f"{floor_rate:.0f} mails/s",
            rate / floor_rate,
            ">= 0.5x fetch floor",
            rate >= 0.5 * floor_rate,
        ),
        lines,
    )


def bench_ingest_files(work: Path, count: int, lines: list[Line]) -> None:
    folder = work / "ingest-files"
    shutil.rmtree(folder, ignore_errors=True)
    mails = folder / "mails"
    mails.mkdir(parents=True)
    for index, (raw, _received) in enumerate(campaign_mails(count)):
        (mails / f"{index:06d}.eml").write_bytes(raw)
    start = time.perf_counter()
    for path in sorted(mails.iterdir()):
        mailparser.parse_from_bytes(path.read_bytes())
    floor = time.perf_counter() - start
    seconds = mailproc(campaign_folder(folder), "ingest", str(mails))
    rate, floor_rate = count / seconds, count / floor
    report(
        Line(
            f"ingest files ({count} .eml)",
            f"{rate:.0f} mails/s",
            f"{floor_rate:.0f} mails/s",
            rate / floor_rate,
            ">= 0.5x parse floor",
            rate >= 0.5 * floor_rate,
        ),
        lines,
    )


def bench_idle(
    work: Path, server: DovecotServer, small: int, large: int, made: dict, lines: list[Line]
) -> None:
    times = {}
    for size in (small, large):
        user = f"idle{size}"
        uidvalidity, last_uid = fill_maildir(server, user, size)
        config = imap_config(work / f"idle-{size}", server, user)
        shutil.copyfile(made[size], config.parent / "mailproc.db")
        app_config = load_config(config)
        db = open_ledger(app_config.db)
        write.save_mailbox_state(
            db,
            dt.UTC,
            f"{user}@127.0.0.1:{server.port}",
            "INBOX",
            uidvalidity,
            last_uid,
        )
        db.conn.close()
        mailproc(config, "poll", "--once")  # warm: the files cached like on a running server
        times[size] = min(mailproc(config, "poll", "--once") for _ in range(3))
    ratio = times[large] / times[small]
    report(
        Line(
            f"idle poll ({large} vs {small} done)",
            f"{times[large]:.2f} s",
            f"{times[small]:.2f} s",
            ratio,
            "< 1 s and <= 1.5x",
            times[large] < 1 and ratio <= 1.5,
        ),
        lines,
    )


OFFICE_COMMANDS: dict[str, list[str]] = {
    "status": ["status"],
    "stats": ["stats", "--period", WEEK, "--json"],
    "dashboard": ["dashboard", "--now", "2019-06-21T09:00"],
    "report weekly": ["report", "weekly", "--period", WEEK],
    "tick": ["tick", "--now", TICK_AT],
}
CONSOLE_PAGES = ["/", "/inbox", "/units/东风镇", "/messages", "/messages/1", "/reports"]


def console_times(config: Path) -> dict[str, float]:
    """Seconds for each console page, asked of the ASGI application in this process (the
    first request of each page warms templates and is not counted)."""
    app_config = load_config(config)
    with open_app(app_config) as app:
        users.add_user(app.db, app.tz, "bench", "clerk", "a-long-password")
        token, _session = users.log_in(app.db, "bench", "a-long-password", 8)
    console = make_console(app_config)

    async def get(path: str) -> int:
        status = 0

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"cookie", f"mailproc_session={token}".encode()), (b"host", b"x")],
            "scheme": "http",
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
            "http_version": "1.1",
        }
        await console(scope, receive, send)
        return status

    times = {}
    for path in CONSOLE_PAGES:
        if asyncio.run(get(path)) != 200:
            raise RuntimeError(f"console page {path} did not answer 200")
        start = time.perf_counter()
        asyncio.run(get(path))
        times[f"console {path}"] = time.perf_counter() - start
    return times


def office_times(work: Path, ledger: Path, size: int) -> dict[str, float]:
    config = office_folder(work, ledger, f"office-{size}")
    times = {name: mailproc(config, *args) for name, args in OFFICE_COMMANDS.items()}
    times.update(console_times(config))
    return times


def bench_office(work: Path, small: int, large: int, made: dict, lines: list[Line]) -> None:
    before, after = office_times(work, made[small], small), office_times(work, made[large], large)
    for name in after:
        ratio = after[name] / before[name]
        report(
            Line(
                f"{name} ({large} vs {small})",
                f"{after[name]:.2f} s",
                f"{before[name]:.2f} s",
                ratio,
                "< 1.5 s and <= 2x",
                after[name] < 1.5 and ratio <= 2,
            ),
            lines,
        )


def peak_memory(args: list[str], cwd: Path) -> tuple[int, int]:
    """(exit status, the largest peak resident size of any process of the command's tree), as
    the hostile tests measure it: each process's own high-water mark, not the kernel's maximum
    that `wait4` reports, which starts from the size of the process that forked the command
    (here this benchmark, holding the mail and every module)."""
    run = hostile.run_measured(args, cwd=cwd, env=environment(), timeout=600)
    return run.returncode, run.peak_process


def bench_big(work: Path, megabytes: int, lines: list[Line]) -> None:
    """One mail whose 附件1 is a real xlsx made `megabytes` MB by a stored picture."""
    folder = work / "big"
    shutil.rmtree(folder, ignore_errors=True)
    config = campaign_folder(folder)
    raw = hostile._weekly(
        "区商务局",
        "dwswj@163.com",
        8,
        [("附件1.xlsx", hostile.big_xlsx(megabytes), hostile.XLSX)],
    )
    mail = folder / "big.eml"
    mail.write_bytes(raw)
    size = len(raw)
    del raw  # not to be counted in what the measured processes are forked from
    _, baseline = peak_memory([sys.executable, "-c", f"open({str(mail)!r}, 'rb').read()"], folder)
    returncode, peak = peak_memory(
        [sys.executable, "-m", "mailproc", "ingest", str(mail), "--config", str(config)], folder
    )
    with sqlite3.connect(folder / "mailproc.db") as db:
        reply = db.execute("select reply from messages").fetchone()
        lectures = db.execute("select value from figures where \"column\" = 'lectures'").fetchone()
    read_right = returncode == 0 and reply == ("ack",) and lectures == (3,)
    ratio = peak / size
    mib = 1024 * 1024
    report(
        Line(
            f"big attachment ({size / mib:.0f} MiB mail)",
            f"{peak / mib:.0f} MiB peak",
            f"{baseline / mib:.0f} MiB read",
            ratio,
            "peak <= 4x the mail" + ("" if read_right else " (READ WRONG)"),
            read_right and ratio <= 4,
        ),
        lines,
    )


def bench_replies(work: Path, count: int, lines: list[Line]) -> None:
    """`count` replies queued in a ledger, sent by mailproc's delivery to a local aiosmtpd,
    against smtplib sending the same messages on one connection."""
    folder = work / "replies"
    shutil.rmtree(folder, ignore_errors=True)
    demo = sqlite3.connect(demo_ledger(work))
    texts = [r[0] for r in demo.execute("select eml from outbox where message > 0")]
    demo.close()
    smtp = SmtpServer(auth=("office", PASSWORD), tls="implicit")
    smtp.start()
    try:
        config = campaign_folder(folder)
        config.write_text(
            config.read_text(encoding="utf-8").replace('"dir"', '"smtp"')
            + f'\n[smtp]\nhost = "localhost"\nport = {smtp.port}\nsecurity = "ssl"\n'
            f'username = "office"\npassword_env = "{PASSWORD_ENV}"\n'
            'from_address = "dwajj6780436@163.com"\nmax_per_minute = 1000000\n'
            f'\n[tls]\nca_file = "{smtp.ca_file}"\n',
            encoding="utf-8",
        )
        db = open_ledger(load_config(config).db)
        tz = dt.timezone(dt.timedelta(hours=8))
        messages = []
        for index in range(count):
            message = email.message_from_string(
                texts[index % len(texts)], policy=email.policy.default
            )
            del message["Message-ID"]
            message["Message-ID"] = f"<reply-{index}@bench.invalid>"
            messages.append(message)
            write.queue(
                db,
                kind="ack",
                cause=f"bench:{index}",
                message=message,
                message_pk=None,
                unit=None,
                tz=tz,
            )
        db.conn.close()
        wire = [m.as_bytes(policy=email.policy.SMTP) for m in messages]
        start = time.perf_counter()
        context = ssl.create_default_context(cafile=str(smtp.ca_file))
        with smtplib.SMTP_SSL("localhost", smtp.port, context=context) as client:
            client.login("office", PASSWORD)
            for message, data in zip(messages, wire, strict=True):
                client.sendmail("dwajj6780436@163.com", [message["To"]], data)
        floor = time.perf_counter() - start
        start = time.perf_counter()
        os.environ[PASSWORD_ENV] = PASSWORD
        with open_app(load_config(config)) as app:
            delivered = app.deliver()
        seconds = time.perf_counter() - start
        if delivered.sent != count:
            raise RuntimeError(f"sent {delivered.sent} of {count} replies")
    finally:
        smtp.stop()
    rate, floor_rate = count / seconds, count / floor
    report(
        Line(
            f"replies over SMTP ({count})",
            f"{rate:.0f} msgs/s",
            f"{floor_rate:.0f} msgs/s",
            rate / floor_rate,
            ">= 0.5x raw smtplib",
            rate >= 0.5 * floor_rate,
        ),
        lines,
    )


def bench_consolidate(work: Path, count: int, lines: list[Line]) -> None:
    """The weekly digest's 附件1 reading against calamine's bare read (benchmarks/consolidate.py
    has the details and checks every table's figures)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import consolidate

    from mailproc.rules import load_rules

    rules = load_rules(ROOT / "rules")
    files = consolidate.generate(count, rules)
    wrong = consolidate.mismatches(files, rules)
    (floor, _cells), (seconds, _totals) = consolidate.best_of(
        3, lambda: consolidate.calamine_read(files), lambda: consolidate.consolidate(files, rules)
    )
    report(
        Line(
            f"consolidate ({count} tables)",
            f"{seconds:.2f} s",
            f"{floor:.2f} s",
            seconds / floor,
            "< 5 s (2x withdrawn)" + (" (READ WRONG)" if wrong else ""),
            seconds < 5 and not wrong,
        ),
        lines,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run only these")
    parser.add_argument(
        "--big-megabytes", type=int, default=BIG_MEGABYTES, help="the big attachment's size"
    )
    parser.add_argument("--work", type=Path, help="keep data here and reuse it next time")
    options = parser.parse_args()
    sizes = {name: max(10, round(size * options.scale)) for name, size in SIZES.items()}
    chosen = set(options.only or BENCHMARKS)
    work = options.work or Path(tempfile.mkdtemp(prefix="mailproc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1 and 5 min); sizes {sizes}")
    lines: list[Line] = []
    server: DovecotServer | None = None
    try:
        made = {}
        if chosen & {"idle", "office"}:
            wanted = [sizes["idle_small"], sizes["idle_large"]] if "idle" in chosen else []
            if "office" in chosen:
                wanted += [sizes["office_small"], sizes["office_large"]]
            made = ledgers(work, wanted)
        if chosen & {"ingest_imap", "idle"}:
            server = DovecotServer()
            server.start()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("ingest_imap", lambda: bench_ingest_imap(work, server, sizes["ingest_imap"], lines)),
            ("ingest_files", lambda: bench_ingest_files(work, sizes["ingest_files"], lines)),
            (
                "idle",
                lambda: bench_idle(
                    work, server, sizes["idle_small"], sizes["idle_large"], made, lines
                ),
            ),
            (
                "office",
                lambda: bench_office(
                    work, sizes["office_small"], sizes["office_large"], made, lines
                ),
            ),
            (
                "big",
                lambda: bench_big(work, options.big_megabytes, lines),
            ),
            ("replies", lambda: bench_replies(work, sizes["replies"], lines)),
            ("consolidate", lambda: bench_consolidate(work, sizes["ingest_files"], lines)),
        ]
        for name, step in steps:
            if name in chosen:
                step()
    finally:
        if server is not None:
            server.close()
        if not options.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1 and 5 min)")
    return 0 if lines and all(line.passed for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
