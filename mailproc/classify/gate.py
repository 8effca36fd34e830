"""The gate: mail mailproc must never answer (its own, bounces, auto-replies, bulk), mail that
answers one of mailproc's messages, and mail whose unit address our own receiving server found
forged. See docs/campaign.md#gate."""

import re

from mailproc.classify.history import History
from mailproc.read.text import normalize
from mailproc.rules import Rules
from mailproc.values import Flag, GateReason, ParsedMail

_OUR_MESSAGE_ID = re.compile(r"<mailproc\.[0-9a-f]{24}@")  # see outgoing.render.outbox_message_id
_REPLY_PREFIX_SPLIT = re.compile(r"^\s*([^\s:：]{1,4})\s*[:：]\s*")
_COMMENT = re.compile(r"\([^()]*\)")  # (a comment) in a structured header, innermost first
_METHOD_RESULT = re.compile(r"\s*([\w.-]+)\s*=\s*([\w-]+)")  # spf=fail, dmarc = fail


class Gate:
    """The rules' auto-reply subjects, reply prefixes and subject tags, normalised once."""

    def __init__(self, rules: Rules, authserv_id: str | None = None):
        self.rules = rules
        self.authserv_id = authserv_id.strip().lower() if authserv_id else None
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

    def authentication(self, mail: ParsedMail) -> dict[str, str]:
        """Method → result (spf → fail) of the topmost Authentication-Results header that our
        own receiving server signed with its authserv-id; {} when none did or no id is
        configured. Any other such header may have been written by the sender (RFC 8601 §5)."""
        if not self.authserv_id:
            return {}
        for value in mail.headers.get("authentication-results", []):
            text = value
            while (bare := _COMMENT.sub(" ", text)) != text:
                text = bare
            server, *results = text.split(";")
            if server.lower().split()[:1] == [self.authserv_id]:
                found = (_METHOD_RESULT.match(part) for part in results)
                return {m[1].lower(): m[2].lower() for m in found if m}
        return {}

    def spoofed(self, mail: ParsedMail) -> Flag | None:
        """A flag for the office when the mail comes from a unit's registered address and our
        receiving server found it failing both SPF and DMARC: someone may be writing in the
        unit's name (a forged 免报 request). The mail is still read and answered as usual."""
        unit = self.rules.unit_by_address(mail.from_address)
        results = self.authentication(mail)
        if unit is None or (results.get("spf"), results.get("dmarc")) != ("fail", "fail"):
            return None
        return Flag(
            "spoofed",
            f"发件地址验证未通过（SPF/DMARC）：{mail.from_address}（{unit.name}的登记地址）"
            "可能被冒用",
        )

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
        if self.quotes_us(mail):
            return {}
        return None

    def quotes_us(self, mail: ParsedMail) -> bool:
        """Whether the text of a mail quotes one of ours: a subject tag or a Message-ID of
        mailproc's in its body. An auto-responder that sends our words back is answering us,
        whatever subject it puts on its answer (domain.md: a mail that quotes mailproc)."""
        for part in mail.chain():
            text = f"{part.body_text}\n{part.body_html}"
            if _OUR_MESSAGE_ID.search(text) or any(tag in text for tag in self.raw_tags):
                return True
        return False

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
