"""The service: poll the mailbox, process, deliver — once, or every N minutes until stopped.

One instance per ledger (a lock file beside it), because two pollers would race for the same
UIDs and two deliverers for the same outbox rows. SIGTERM and SIGINT finish the mail in hand
and stop cleanly. A broken mailbox connection is retried with growing pauses, never fatal.
"""

import datetime as dt
import fcntl
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import schedule

from mailproc.delivery import Delivered
from mailproc.imap import MailboxError, MailboxSource, PollResult
from mailproc.jobs import Ticker
from mailproc.pipeline import Pipeline

log = logging.getLogger("mailproc.service")

TICK_SECONDS = 60
FIRST_RETRY_SECONDS = 5
MAX_RETRY_SECONDS = 300


class AlreadyRunning(Exception):
    """Another mailproc holds the ledger's lock."""


class ProcessLock:
    """An exclusive lock on `<ledger>.lock`, released when the process ends however it ends."""

    def __init__(self, ledger: Path):
        self.path = Path(f"{ledger}.lock")
        self.handle = None

    def __enter__(self) -> "ProcessLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.path.open("a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise AlreadyRunning(
                f"another mailproc is already running on {self.path.with_suffix('')}"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


@dataclass
class Round:
    """One poll and delivery."""

    polled: PollResult
    delivered: Delivered


class Service:
    """Drives one pipeline from one mailbox; `stop()` may be called from a signal handler."""

    def __init__(self, pipeline: Pipeline, clock_start: dt.datetime | None = None):
        if pipeline.config.mailbox is None:
            raise MailboxError("no [mailbox] section in the config: nothing to poll")
        self.pipeline = pipeline
        self.source = MailboxSource(pipeline.config.mailbox)
        self.ticker = Ticker(pipeline)
        self.stopping = False
        self.failures = 0
        self.retry_at: float | None = None
        self.clock_start, self.started = clock_start, time.monotonic()

    def now(self) -> dt.datetime:
        """The service's clock: real time, or time running on from a given start (--now)."""
        if self.clock_start is None:
            return dt.datetime.now(self.pipeline.tz)
        return self.clock_start + dt.timedelta(seconds=time.monotonic() - self.started)

    def _tick(self) -> None:
        """Run the jobs due now; a failing job is logged and retried at the next tick."""
        try:
            if self.ticker.tick(self.now()):
                self.pipeline.deliver(self.should_stop)  # reminders need not wait for a poll
        except Exception:
            log.exception("jobs failed; trying again at the next tick")

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self.stopping = True

    def should_stop(self) -> bool:
        return self.stopping

    def poll_once(self) -> Round:
        """Fetch and process new mail, then send what is due. Raises MailboxError."""
        polled = self.source.poll(self.pipeline, self.should_stop)
        delivered = self.pipeline.deliver(self.should_stop)
        return Round(polled, delivered)

    def _job(self) -> None:
        try:
            done = self.poll_once()
        except MailboxError as exc:
            self.failures += 1
            pause = min(FIRST_RETRY_SECONDS * 2 ** (self.failures - 1), MAX_RETRY_SECONDS)
            self.retry_at = time.monotonic() + pause
            log.error("%s; trying again in %d s", exc, pause)
            return
        self.failures, self.retry_at = 0, None
        if done.delivered.stopped:
            log.error("delivery stopped: %s", done.delivered.stopped)
        log.info(
            "polled: %d new of %d fetched; replies sent %d, to retry %d, failed %d",
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
        seconds = max(1, round(self.pipeline.config.mailbox.poll_minutes * 60))
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
        log.info("stopped")
