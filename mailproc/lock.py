"""One mailproc at a time on a ledger: two pollers would race for the same UIDs, two
deliverers for the same outbox rows, two office actions for the same group of receipts."""

import fcntl
import os
from pathlib import Path

from mailproc.private import make_folder, open_private


class AlreadyRunning(Exception):
    """Another mailproc holds the ledger's lock."""


class ProcessLock:
    """An exclusive lock on `<ledger>.lock`, released when the process ends however it ends."""

    def __init__(self, ledger: Path):
        self.path = Path(f"{ledger}.lock")
        self.handle = None

    def __enter__(self) -> "ProcessLock":
        make_folder(self.path.parent)
        self.handle = os.fdopen(open_private(self.path, os.O_WRONLY | os.O_APPEND), "a")
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
