"""What a command works with, built once from the config: rules, ledger, archive, renderer and,
when mail is to be read or sent, the reading sandbox and the transport.

The transport is made on first use and its module imported only then, so the commands that
only read the ledger (status, stats, report, dashboard) never load the SMTP or IMAP clients.
"""

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlite_utils

from mailproc import ledger
from mailproc.archive import Archive
from mailproc.config import Config
from mailproc.lock import SendingLock
from mailproc.outgoing.delivery import Delivered, DirTransport, Transport, deliver
from mailproc.outgoing.render import Renderer
from mailproc.rules import Rules, load_rules

if TYPE_CHECKING:
    from mailproc.read.sandbox import Sandbox


@dataclass
class App:
    config: Config
    rules: Rules
    db: sqlite_utils.Database
    archive: Archive
    renderer: Renderer
    from_address: str

    @property
    def tz(self) -> dt.tzinfo:
        return self.rules.timezone

    @functools.cached_property
    def transport(self) -> Transport:
        if self.config.transport == "smtp" and self.config.smtp is not None:
            from mailproc.outgoing.smtp import SmtpTransport

            mailbox = self.config.mailbox.server if self.config.mailbox else None
            return SmtpTransport(self.config.smtp, self.from_address, mailbox)
        return DirTransport(self.config.outbox)

    @functools.cached_property
    def sandbox(self) -> "Sandbox":
        """The process that mail and files are read in, started on first need (its module,
        with every file reader, imported only then: half the start-up of a command that only
        reads the ledger)."""
        from mailproc.read.sandbox import Sandbox

        return Sandbox(self.config.limits)

    def deliver(
        self, should_stop: Callable[[], bool] = lambda: False, wait: bool = True
    ) -> Delivered:
        """Send what the outbox holds and is due. With `wait=False`, when another process or
        thread is sending, nothing is done (`Delivered.later`): that one sends these too."""
        retry = self.config.smtp.retry_minutes if self.config.smtp else 2
        with SendingLock(self.config.db, wait) as sending:
            if not sending.held:
                return Delivered(later=True)
            return deliver(self.db, self.transport, self.tz, retry, should_stop)

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if "transport" in self.__dict__:
            self.transport.close()
        if "sandbox" in self.__dict__:
            self.sandbox.close()
        self.db.close()


def open_app(config: Config, rules: Rules | None = None) -> App:
    rules = rules or load_rules(config.rules)
    from_address = config.from_address or rules.office["address"]
    return App(
        config=config,
        rules=rules,
        db=ledger.open_ledger(config.db),
        archive=Archive(config.archive),
        renderer=Renderer(
            config.templates, rules, from_address, config.from_name or rules.office["name"]
        ),
        from_address=from_address,
    )
