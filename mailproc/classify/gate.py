"""The gate: mail mailproc must never answer (its own, bounces, auto-replies, bulk), and mail
that answers one of mailproc's messages. See docs/campaign.md#gate."""

import re

from mailproc.classify.history import History
from mailproc.read.text import normalize
from mailproc.rules import Rules
from mailproc.values import GateReason, ParsedMail

_REPLY_PREFIX_SPLIT = re.compile(r"^\s*([^\s:：]{1,4})\s*[:：]\s*")


class Gate:
    """The rules' auto-reply subjects, reply prefixes and subject tags, normalised once."""

    def __init__(self, rules: Rules):
        self.tags = {kind: normalize(tag) for kind, tag in rules.tags.items()}
        self.raw_tags = list(rules.tags.values())
        self.auto_subjects = [normalize(w) for w in rules.words["auto_reply_subjects"]]
        self.reply_prefixes = {p.lower() for p in rules.words["reply_prefixes"]}

    def _header(self, mail: ParsedMail, name: str) -> str:
        values = mail.headers.get(name, [])
        return values[0].strip() if values else ""

    def reason(self, mail: ParsedMail, history: History) -> GateReason | None:
        """The reason mailproc must never answer this mail, or None."""
        if self._header(mail, "x-mailproc-kind") or history.is_ours(
            [mail.message_id] if mail.message_id else []
        ):
            return "own"
        return_path = self._header(mail, "return-path")
        sender = mail.from_address.split("@")[0].lower()
        if (
            return_path == "<>"
            or sender in {"mailer-daemon", "postmaster", "mail-daemon"}
            or mail.content_type == "multipart/report"
        ):
            return "bounce"
        auto = self._header(mail, "auto-submitted").lower()
        subject = normalize(mail.subject)
        if (
            (auto and auto != "no")
            or self._header(mail, "x-autoreply")
            or self._header(mail, "x-autorespond")
            or any(subject.startswith(w) for w in self.auto_subjects)
        ):
            return "auto_reply"
        precedence = self._header(mail, "precedence").lower()
        if precedence in {"bulk", "list", "junk"} or any(
            name.startswith("list-") for name in mail.headers
        ):
            return "bulk"
        return None

    def answers_us(self, mail: ParsedMail, history: History) -> dict | None:
        """The mail we answered, when this one replies to one of our messages; {} if unknown."""
        ids = [i for i in [mail.in_reply_to, *mail.references] if i]
        answered = history.answered_by_us(ids)
        if answered is not None:
            return answered
        if any(
            tag in normalize(self.strip_reply_prefixes(mail.subject))[:12]
            for tag in self.tags.values()
        ):
            return {}
        return None

    def strip_reply_prefixes(self, subject: str) -> str:
        text = subject
        while True:
            match = _REPLY_PREFIX_SPLIT.match(text)
            if not match or match.group(1).lower() not in self.reply_prefixes:
                return text
            text = text[match.end() :]

    def strip_tags(self, subject: str) -> str:
        text = self.strip_reply_prefixes(subject)
        for tag in self.raw_tags:
            text = text.replace(tag, " ")
        return text
