"""What classification needs to know of mail already in the ledger, as a Protocol: the
pipeline answers it from SQLite, a replay from what it has rebuilt so far, a test from a dict."""

import datetime as dt
from collections.abc import Iterable
from typing import Protocol


class History(Protocol):
    def receipts(self, unit: str, item: str, period: str) -> list[dict]:
        """The receipts of one unit for one deadline, earliest version first."""
        ...

    def answered_by_us(self, message_ids: Iterable[str]) -> dict | None:
        """The ledger row of the mail that one of our outgoing messages (by Message-ID)
        answered; for a notice that answered no mail, the unit, item and period it was about."""
        ...

    def is_ours(self, message_ids: Iterable[str]) -> bool: ...

    def registered_unit(self, address: str) -> str | None:
        """The unit the office registered this address for (`mailproc register`), if any."""
        ...

    def deadline(self, unit: str, item: str, period: str, deadline: dt.datetime) -> dt.datetime:
        """The deadline that holds for this unit: the campaign's, or one the office extended."""
        ...
