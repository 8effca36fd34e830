"""The service: poll the mailbox, process, deliver — once, or every N minutes until stopped.

One instance per ledger (`lock.ProcessLock`, taken by the command), because two pollers would
race for the same UIDs and two deliverers for the same outbox rows. SIGTERM and SIGINT finish
the mail in hand and stop cleanly. A broken mailbox connection is retried with growing
pauses, never fatal.
"""

import datetime as dt
import logging
import signal
import time
from dataclasses import dataclass
from types import FrameType

import schedule

from mailproc.app import App
from mailproc.fetch.imap import MailboxError, MailboxSource, PollResult
from mailproc.jobs import Ticker
from mailproc.outgoing.delivery import Delivered
from mailproc.pipeline import Pipeline

log = logging.getLogger("mailproc.service")

TICK_SECONDS = 60
FIRST_RETRY_SECONDS = 5
MAX_RETRY_SECONDS = 300


@dataclass
class Round:
    """One poll and delivery."""

    polled: PollResult
    delivered: Delivered


class Service:
    """Drives one pipeline from one mailbox; `stop()` may be called from a signal handler."""

    def __init__(self, app: App, clock_start: dt.datetime | None = None):
        if app.config.mailbox is None:
            raise MailboxError(
                "配置文件中没有 [mailbox] 一节，不知从哪个邮箱收信；请先写明收信邮箱"
            )
        self.app = app
        self.pipeline = Pipeline(app)
        self.source = MailboxSource(app.config.mailbox)
        self.ticker = Ticker(app)
        self.stopping = False
        self.failures = 0
        self.retry_at: float | None = None
        self.clock_start, self.started = clock_start, time.monotonic()

    def now(self) -> dt.datetime:
        """The service's clock: real time, or time running on from a given start (--now)."""
        if self.clock_start is None:
            return dt.datetime.now(self.app.tz)
        return self.clock_start + dt.timedelta(seconds=time.monotonic() - self.started)

    def _tick(self) -> None:
        """Run the jobs due now; a failing job is logged and retried at the next tick."""
        try:
            # reminders, and what the office queued from the console, need not wait for a poll
            if self.ticker.tick(self.now()) or self._due():
                self.app.deliver(self.should_stop)
        except Exception:
            log.exception("定时任务出错，下一次定时检查时重试")

    def _due(self) -> bool:
        return bool(
            self.app.db["outbox"].count_where(
                "status = 'queued' and (next_attempt_at is null or next_attempt_at <= ?)",
                [dt.datetime.now(self.app.tz).isoformat()],  # delivery's clock: real time
            )
        )

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self.stopping = True

    def should_stop(self) -> bool:
        return self.stopping

    def poll_once(self) -> Round:
        """Fetch and process new mail, then send what is due. Raises MailboxError."""
        polled = self.source.poll(self.app.db, self.app.tz, self.pipeline.ingest, self.should_stop)
        delivered = self.app.deliver(self.should_stop)
        return Round(polled, delivered)

    def _job(self) -> None:
        try:
            done = self.poll_once()
        except MailboxError as exc:
            self.failures += 1
            pause = min(FIRST_RETRY_SECONDS * 2 ** (self.failures - 1), MAX_RETRY_SECONDS)
            self.retry_at = time.monotonic() + pause
            log.error("%s；%d 秒后重试", exc, pause)
            return
        self.failures, self.retry_at = 0, None
        if done.delivered.stopped:
            log.error("发信已暂停：%s", done.delivered.stopped)
        log.info(
            "收取邮件 %d 封（新邮件 %d 封）；回复已发出 %d 封，待重试 %d 封，发送失败 %d 封",
            done.polled.new,
            done.polled.fetched,
            done.delivered.sent,
            done.delivered.retry,
            done.delivered.failed,
        )

    def run(self) -> None:
        """Poll every `poll_minutes` until SIGTERM or SIGINT."""
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        scheduler = schedule.Scheduler()
        seconds = max(1, round(self.app.config.mailbox.poll_minutes * 60))
        scheduler.every(seconds).seconds.do(self._job)
        scheduler.every(TICK_SECONDS).seconds.do(self._tick)
        try:
            self._tick()  # catch up on what came due while mailproc was not running
            self._job()
            while not self.stopping:
                if self.retry_at is not None and time.monotonic() >= self.retry_at:
                    self._job()
                scheduler.run_pending()
                time.sleep(0.2)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("已停止")
