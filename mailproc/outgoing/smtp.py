"""The SMTP transport: sends outbox rows through the office's own server (smtp.163.com).

163 throttles and rejects bursts (`451 MI:SFQ`, `554 DT:SPM`), so sending is paced by
`max_per_minute`; a 4xx answer leaves the row queued for a later try, a 5xx marks it failed
with the server's words, shown to the office, and never retried blindly. When `save_copy_to`
names a folder, each sent message is also appended there, which is how a restart after a crash
can tell whether a message in flight was delivered (see docs/deploy.md, "Exactly once").
"""

import collections
import datetime as dt
import logging
import smtplib
import time
from collections.abc import Callable
from email.utils import getaddresses

from mailproc.config import ServerConfig, SmtpConfig
from mailproc.fetch.imap import MailboxError, append_copy, copy_exists, link_problem, server_said
from mailproc.outgoing.delivery import DeliveryError

log = logging.getLogger("mailproc.outgoing.smtp")


class SmtpTransport:
    """One SMTP account; keeps its connection open across a batch, paces every send."""

    def __init__(
        self,
        config: SmtpConfig,
        from_address: str,
        mailbox: ServerConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.config, self.server = config, config.server
        self.from_address, self.mailbox = from_address, mailbox
        self.clock, self.sleep = clock, sleep
        self.recent: collections.deque[float] = collections.deque()
        self.connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        if server.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                server.host, server.port, timeout=server.timeout, context=server.ssl_context()
            )
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
            if server.security == "starttls":
                smtp.ehlo()
                if not smtp.has_extn("starttls"):  # stripped on the way, or never offered
                    smtp.close()
                    raise self._broken(
                        f"发信服务器 {server.address} 不支持 STARTTLS 加密，为免授权码明文传送，"
                        '未登录；请核对配置文件 [smtp] security，或改为 "ssl"（端口 465）'
                    )
                smtp.starttls(context=server.ssl_context())
        smtp.login(server.username, server.password())
        return smtp

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                self.connection.close()
            self.connection = None

    def _pace(self) -> None:
        """Wait until one more message keeps the last minute within max_per_minute."""
        window = 60.0
        while self.recent and self.clock() - self.recent[0] >= window:
            self.recent.popleft()
        if len(self.recent) >= self.config.max_per_minute:
            self.sleep(window - (self.clock() - self.recent[0]))
            self.recent.popleft()

    def send(self, row: dict) -> str:
        recipients = [
            a for _, a in getaddresses([row["to_addrs"] or "", row["cc_addrs"] or ""]) if a
        ]
        data = row["eml"].encode("utf-8")
        self._pace()
        try:
            if self.connection is None:
                self.connection = self._connect()
            self.connection.sendmail(self.from_address, recipients, data)
        except smtplib.SMTPAuthenticationError as exc:
            raise self._broken(
                f"发信邮箱 {self.server.username} 登录 {self.server.address} 被拒绝，"
                "请核对用户名和授权码（163 邮箱须用客户端授权码，不是网页登录密码）；"
                f"{server_said(f'{exc.smtp_code} {_text(exc.smtp_error)}')}"
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise self._broken(
                f"发信服务器 {self.server.address} 不接受登录，无法以 {self.server.username} 发信；"
                "请核对配置文件 [smtp] host 与 port"
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "；".join(
                f"{a}（{server_said(f'{c} {_text(m)}')}）" for a, (c, m) in exc.recipients.items()
            )
            raise DeliveryError(
                f"发信服务器拒收以下收件人：{detail}", permanent=all(c >= 500 for c in codes)
            ) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise DeliveryError(
                f"发信服务器拒绝发送；{server_said(f'{exc.smtp_code} {_text(exc.smtp_error)}')}",
                permanent=exc.smtp_code >= 500,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise self._broken(
                f"连接发信服务器 {self.server.address} 失败：{link_problem(exc)}"
            ) from None
        self.recent.append(self.clock())
        if self.config.save_copy_to and self.mailbox is not None:
            try:
                append_copy(self.mailbox, self.config.save_copy_to, data, dt.datetime.now(dt.UTC))
            except MailboxError as exc:
                log.warning("%s 已发出，但未能在邮箱中存留副本：%s", row["message_id"], exc)
        return f"smtp:{self.server.address}"

    def _broken(self, message: str) -> DeliveryError:
        """The connection cannot be used: drop it and end this delivery run, to retry later."""
        self.close()
        return DeliveryError(message, permanent=False, stop_batch=True)

    def already_sent(self, row: dict) -> bool:
        """Whether a message interrupted in flight reached the server (its copy is there)."""
        if not (self.config.save_copy_to and self.mailbox is not None):
            return False
        return copy_exists(self.mailbox, self.config.save_copy_to, row["message_id"])


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())
