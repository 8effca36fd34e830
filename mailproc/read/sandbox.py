"""Reading in a sandbox: the mail parser and every file reader run in a worker process with hard
limits, so no mail can stop the service.

Several readers are native code (python-calamine, lxml, zlib) that can abort the process or ask
for gigabytes when a file lies about itself: an xlsx with cells at A1 and XFD1048576 makes
calamine request 512 GB and abort. In the worker, the address space is capped (RLIMIT_AS),
CPU seconds are counted per mail (RLIMIT_CPU, moved on before each piece of work) and the
parent waits only as long as the mail's wall time allows. A worker that dies or overruns costs
the one file it was reading (an `UnreadableFile` with a reason the office can read) or, while
parsing, the one mail (a `ParseError`: quarantined); the parent starts a fresh worker for the
next piece of work.

Reading is a pure function of bytes, so the work sent is just bytes and names, and what comes
back is plain values (`ParsedMail`, `Opened`).
"""

import multiprocessing
import resource
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from mailproc.read.budget import Budget, Limits
from mailproc.read.kinds import Container
from mailproc.read.mail import ParseError, parse_message
from mailproc.read.tables import Opened, UnreadableFile, open_file
from mailproc.values import Attachment, ParsedMail

# Modules the worker needs, imported once in the fork server rather than in every worker (not
# the PDF reader: `read.tables` imports it when a PDF is met, so a worker that reads none
# does not carry its memory)
_PRELOAD = ["mailproc.read.sandbox"]
_CPU_SLACK = 1  # seconds: RLIMIT_CPU counts whole seconds


def _parse(raw: bytes, budget: Budget) -> ParsedMail:
    mail = parse_message(raw, budget)
    mail.raw = b""  # the parent has the bytes: not sent back
    return mail


def _open(data: bytes, filename: str, kind: str, seconds: float, budget: Budget) -> Opened | None:
    return open_file(Container(data), filename, kind, budget, seconds)


_WORK: dict[str, Callable[..., Any]] = {"parse": _parse, "open": _open}


# Large bytes (the mail, a file, the files a parsed mail holds) cross the pipe on their own,
# beside the pickle of the rest: pickled, each would exist twice on both sides for a moment,
# and a 50 MB attachment would cost 200 MB more than it must.


def _send_work(conn: Connection, name: str, args: tuple, cpu_seconds: float) -> None:
    """`args[0]` is the bytes worked on; the rest are small."""
    conn.send((name, args[1:], cpu_seconds))
    conn.send_bytes(args[0])


def _files_of(mail: ParsedMail) -> list[Attachment]:
    """Every attachment of a mail and of the mails it forwards, each once, in a fixed order."""
    seen: dict[int, Attachment] = {}
    for part in mail.chain():
        for att in part.attachments:
            seen.setdefault(id(att), att)
    return list(seen.values())


def _send_reply(conn: Connection, reply: tuple) -> None:
    value = reply[1]
    files = _files_of(value) if isinstance(value, ParsedMail) else []
    contents = [att.data for att in files]
    for att in files:
        att.data = b""
    conn.send((*reply, len(contents)))
    for data in contents:
        conn.send_bytes(data)


def _receive_reply(conn: Connection) -> tuple:
    *reply, count = conn.recv()
    contents = [conn.recv_bytes() for _ in range(count)]
    if count:
        for att, data in zip(_files_of(reply[1]), contents, strict=True):
            att.data = data
    return tuple(reply)


def _cpu_time() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _serve(conn: Connection, memory_bytes: int) -> None:
    """The worker: limits set once, then one piece of work at a time until the pipe closes.
    Each reply carries what is left of the mail's budget and the CPU seconds the work took."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the worker stops
    while True:
        try:
            name, rest, cpu_seconds = conn.recv()
            args = (conn.recv_bytes(), *rest)
        except EOFError:
            return
        start = _cpu_time()
        ceiling = int(start + cpu_seconds) + _CPU_SLACK
        resource.setrlimit(resource.RLIMIT_CPU, (ceiling, resource.RLIM_INFINITY))
        try:
            status, value = "done", _WORK[name](*args)
        except (ParseError, UnreadableFile) as refused:
            status, value = "refused", str(refused)
        except MemoryError:
            status, value = "memory", None
        except RecursionError:
            status, value = "refused", "结构嵌套过深，无法读取"
        except Exception:  # a reader's bug costs this piece of work, not the worker
            status, value = "refused", "读取时出错，文件可能已损坏"
        _send_reply(conn, (status, value, args[-1], _cpu_time() - start))
        # not held while the next piece of work arrives: a large mail would be twice in memory
        del args, value


class Overrun(Exception):
    """The worker died, ran out of memory, CPU or time; the message says which, in Chinese."""


class Sandbox:
    """One worker process at a time, started when first needed and again after it died."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        self._worker: Any = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        if self._conn is None:
            parent, child = self._context.Pipe()
            worker = self._context.Process(
                target=_serve, args=(child, self.limits.memory_bytes), daemon=True
            )
            worker.start()
            child.close()
            self._worker, self._conn = worker, parent
        return self._conn

    def _stop(self) -> int | None:
        """End the worker (it is no longer trusted); its exit code."""
        worker, conn = self._worker, self._conn
        self._worker = self._conn = None
        if conn is not None:
            conn.close()
        if worker is None:
            return None
        if worker.is_alive():
            worker.kill()
        worker.join(5)
        return worker.exitcode

    def run(
        self, name: str, args: tuple, cpu_seconds: float, wall_seconds: float
    ) -> tuple[str, Any, Budget, float]:
        """One piece of work in the worker: (status, value, budget left, CPU seconds used).
        Raises `Overrun` when the worker died or ran out of time (it is then ended)."""
        conn = self._start()
        try:
            _send_work(conn, name, args, max(cpu_seconds, 0))
            if not conn.poll(max(wall_seconds, 0)):
                self._stop()
                raise Overrun(f"读取超时（超过 {self.limits.wall_seconds:g} 秒）")
            status, value, budget, cpu = _receive_reply(conn)
        except (EOFError, OSError):
            code = self._stop()
            raise Overrun(_death(code, self.limits)) from None
        if status == "memory":
            self._stop()  # after a MemoryError, the worker's heap is not to be trusted
            raise Overrun(f"读取所需内存超过上限（{self.limits.memory_bytes >> 20} MB）")
        return status, value, budget, cpu

    def close(self) -> None:
        self._stop()

    def mail(self) -> "MailReading":
        """The reading of one mail: its limits of CPU, wall time and unpacking start here."""
        return MailReading(self)


def _death(code: int | None, limits: Limits) -> str:
    if code is not None and code < 0:
        number = -code
        if number == signal.SIGXCPU:
            return f"读取耗时超过上限（处理器时间 {limits.cpu_seconds:g} 秒）"
        # the signal by number: its name (SIGABRT) is English, and the office reads this line
        return f"读取时程序异常退出（系统信号 {number}），可能是文件结构异常或所需内存超过上限"
    return f"读取进程意外结束（退出码 {code}）"


class MailReading:
    """One mail's share of the sandbox: every piece of work draws on the same CPU seconds, wall
    time and unpacking budget."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        limits = sandbox.limits
        self.budget = Budget.of(limits)
        self.deadline = time.monotonic() + limits.wall_seconds
        self.cpu_left = float(limits.cpu_seconds)

    def _run(self, name: str, *args: Any) -> Any:
        """The work's result; `Overrun`, or the reader's refusal as `Refused`."""
        wall = self.deadline - time.monotonic()
        status, value, self.budget, cpu = self.sandbox.run(
            name, (*args, self.budget), self.cpu_left, wall
        )
        self.cpu_left -= cpu
        if status == "refused":
            raise Refused(value)
        return value

    def parse(self, raw: bytes) -> ParsedMail:
        """The mail parsed in the worker; ParseError when it is not a mail or overran."""
        try:
            mail: ParsedMail = self._run("parse", raw)
        except (Refused, Overrun) as failed:
            raise ParseError(str(failed)) from None
        mail.raw = raw
        return mail

    def open_file(self, att: Attachment) -> Opened | None:
        """One attachment opened in the worker; UnreadableFile when it cannot be, or overran."""
        try:
            seconds = self.deadline - time.monotonic()  # for a program reading a .doc
            return self._run("open", att.data, att.filename, att.kind, seconds)
        except (Refused, Overrun) as failed:
            raise UnreadableFile(str(failed)) from None


class Refused(Exception):
    """A reader refused the input (not a mail, a file it cannot open); its own words."""
