"""Locks beside the ledger.

`ProcessLock`: one poller at a time. Two pollers would race for the same UIDs and two tick
loops for the same jobs, so `run`, `poll`, `ingest`, `tick` and `replay` each hold it. The
office's actions (the command line's and the console's) do not: each is one short IMMEDIATE
transaction (`ledger.schema.Ledger`), so a click during a poll waits a moment for the poll's
transaction and then goes through.

`SendingLock`: one deliverer at a time. Delivery marks a row `sending` before handing it to
the transport and takes a row still `sending` at its start for one a crash interrupted; a second
deliverer running beside the first would take the first's rows for crashed ones and send them
again.
"""

import fcntl
import os
from pathlib import Path
from typing import IO

from mailproc.private import make_folder, open_private


class AlreadyRunning(Exception):
    """Another mailproc holds the ledger's lock."""


def _lock_file(path: Path) -> IO[str]:
    make_folder(path.parent)
    return os.fdopen(open_private(path, os.O_WRONLY | os.O_APPEND), "a")


class ProcessLock:
    """An exclusive lock on `<ledger>.lock`, released when the process ends however it ends."""

    def __init__(self, ledger: Path):
        self.path = Path(f"{ledger}.lock")
        self.handle: IO[str] | None = None

    def __enter__(self) -> "ProcessLock":
        self.handle = _lock_file(self.path)
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise AlreadyRunning(
                f"另一个 mailproc 正在使用台账 {self.path.with_suffix('')}，请等它结束后再运行"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


class SendingLock:
    """An exclusive lock on `<ledger>.sending`: waited for, or (`wait=False`) `held` is False
    when another process or thread is delivering (it will send what is queued)."""

    def __init__(self, ledger: Path, wait: bool = True):
        self.path = Path(f"{ledger}.sending")
        self.wait = wait
        self.held = False
        self.handle: IO[str] | None = None

    def __enter__(self) -> "SendingLock":
        self.handle = _lock_file(self.path)
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
            self.held = True
        except BlockingIOError:
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        if self.held:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
