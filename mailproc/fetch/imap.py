"""The live mailbox: reads new mail over IMAP the way a careful mail client does.

Every session logs in and sends `ID` at once (163.com's Coremail refuses SELECT without it),
fetches only UIDs it has not handled, with `BODY.PEEK[]` so the clerk's unread marks in webmail
stay as they were, and takes INTERNALDATE as the receipt time. The (account, folder,
UIDVALIDITY, last UID) it has handled lives in the ledger, updated after each mail is committed,
so a crash at any point means at most re-reading mail the ledger already knows by its sha256.
"""

import contextlib
import datetime as dt
import logging
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import imapclient
import sqlite_utils
from imapclient.exceptions import IMAPClientError, LoginError

from mailproc import __version__
from mailproc.config import MailboxConfig, ServerConfig
from mailproc.ledger import write
from mailproc.values import Outcome

# What the pipeline does with one fetched mail: its bytes, where it came from, the server's
# receipt time (INTERNALDATE).
Ingest = Callable[[bytes, str, dt.datetime], Outcome]

log = logging.getLogger("mailproc.fetch.imap")

CLIENT_ID = {"name": "mailproc", "version": __version__, "vendor": "mailproc"}


class MailboxError(Exception):
    """The mailbox cannot be used right now; the message is one line for the log."""


def connect(server: ServerConfig) -> imapclient.IMAPClient:
    """Log in and identify; every failure becomes one clear MailboxError line."""
    try:
        client = imapclient.IMAPClient(
            server.host,
            server.port,
            ssl=server.security == "ssl",
            ssl_context=server.ssl_context() if server.security != "none" else None,
            timeout=server.timeout,
        )
        client.normalise_times = False  # INTERNALDATE with its zone, not naive local time
        if server.security == "starttls":
            if not client.has_capability("STARTTLS"):  # stripped on the way, or never offered
                client.shutdown()
                raise MailboxError(
                    f"收信服务器 {server.address} 不支持 STARTTLS 加密，为免授权码明文传送，"
                    '未登录；请核对配置文件 [mailbox] security，或改为 "ssl"（端口 993）'
                )
            client.starttls(server.ssl_context())
        client.login(server.username, server.password())
        client.id_(CLIENT_ID)
        return client
    except LoginError as exc:
        raise MailboxError(
            f"收信邮箱 {server.username} 登录 {server.address} 被拒绝，请核对用户名和授权码"
            f"（163 邮箱须用客户端授权码，不是网页登录密码）；{server_said(_text(exc))}"
        ) from None
    except (OSError, IMAPClientError) as exc:
        raise MailboxError(f"连接收信服务器 {server.address} 失败：{link_problem(exc)}") from None


@contextlib.contextmanager
def session(server: ServerConfig) -> Iterator[imapclient.IMAPClient]:
    """A logged-in, identified client that logs out however the block ends."""
    client = connect(server)
    try:
        yield client
    except (OSError, IMAPClientError) as exc:
        raise MailboxError(
            f"与收信服务器 {server.address} 的连接中断：{link_problem(exc)}"
        ) from None
    finally:
        with contextlib.suppress(OSError, IMAPClientError):
            client.logout()


def link_problem(exc: BaseException) -> str:
    """Why a connection failed, in words; the system's text is English, and a server's answer
    (an IMAP error) is quoted as its own."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            "服务器证书未通过验证（不受信任、已过期或与服务器名称不符）；"
            "自建服务器的证书请写在配置文件 [tls] ca_file"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            "加密连接（TLS）未能建立，请核对 security 与 port 是否相符"
            "（ssl 一般用 993 或 465 端口，starttls 一般用 143 或 587 端口）"
        )
    if isinstance(exc, socket.gaierror):
        return "找不到这个服务器名称，请核对 host 一项和本机网络"
    if isinstance(exc, TimeoutError):
        return "服务器在规定时间内没有应答（超时），请稍后再试或核对网络"
    if isinstance(exc, ConnectionRefusedError):
        return "服务器拒绝连接，请核对 port 一项，或服务器是否已开启"
    if isinstance(exc, ConnectionError | EOFError):
        return "连接被对方断开"
    if isinstance(exc, OSError):
        return f"网络出错（系统错误号 {exc.errno}）" if exc.errno else "连接被对方断开或通信出错"
    return server_said(_text(exc))


def server_said(text: str) -> str:
    """A server's own words, quoted so they are not read as ours."""
    return f"服务器答复：“{text}”"


def _text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text.split())


@dataclass
class PollResult:
    fetched: int = 0
    new: int = 0


class MailboxSource:
    """One configured folder of one account."""

    def __init__(self, config: MailboxConfig):
        self.config = config
        self.account = f"{config.server.username}@{config.server.host}:{config.server.port}"

    def _state(self, db: sqlite_utils.Database) -> dict | None:
        return next(
            db["mailbox_state"].rows_where(
                "account = ? and folder = ?", [self.account, self.config.folder], limit=1
            ),
            None,
        )

    def _save_state(
        self, db: sqlite_utils.Database, uidvalidity: int, last_uid: int, tz: dt.tzinfo
    ) -> None:
        write.save_mailbox_state(db, tz, self.account, self.config.folder, uidvalidity, last_uid)

    def _initial_criteria(self) -> list:
        return ["SINCE", self.config.since] if self.config.since else ["ALL"]

    def _unknown_after_reset(self, client, uids: list[int], db) -> list[int]:
        """After a UIDVALIDITY change, the UIDs whose Message-ID the ledger does not know."""
        if not uids:
            return []
        headers = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        unknown = []
        for uid in uids:
            data = headers.get(uid, {})
            raw = next((v for k, v in data.items() if k.startswith(b"BODY[HEADER")), b"")
            message_id = raw.decode("ascii", "replace").partition(":")[2].strip()
            if not message_id or not db["messages"].count_where("message_id = ?", [message_id]):
                unknown.append(uid)
        return unknown

    def poll(
        self,
        db: sqlite_utils.Database,
        tz: dt.tzinfo,
        ingest: Ingest,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> PollResult:
        """Fetch every mail not handled yet and hand it to `ingest`; the ledger `db` keeps how
        far the folder was read. Returns what was done."""
        with session(self.config.server) as client:
            return self._poll(client, db, tz, ingest, should_stop)

    def _poll(
        self,
        client: imapclient.IMAPClient,
        db: sqlite_utils.Database,
        tz: dt.tzinfo,
        ingest: Ingest,
        should_stop: Callable[[], bool],
    ) -> PollResult:
        config = self.config
        writable = bool(config.processed_folder) or config.mark_seen
        info = client.select_folder(config.folder, readonly=not writable)
        uidvalidity = int(info[b"UIDVALIDITY"])
        state = self._state(db)
        if state is None:
            uids = client.search(self._initial_criteria())
        elif state["uidvalidity"] != uidvalidity:
            log.warning(
                "邮件夹 %s 的 UIDVALIDITY 已变（%s → %s），改按 Message-ID 对照已收邮件",
                config.folder,
                state["uidvalidity"],
                uidvalidity,
            )
            uids = self._unknown_after_reset(client, client.search(self._initial_criteria()), db)
        else:
            last = state["last_uid"]
            uids = [uid for uid in client.search(["UID", f"{last + 1}:*"]) if uid > last]
        uids = sorted(uids)
        result = PollResult()
        if state is None or state["uidvalidity"] != uidvalidity:
            self._save_state(db, uidvalidity, uids[0] - 1 if uids else 0, tz)
        move = config.processed_folder and client.has_capability("MOVE")
        for start in range(0, len(uids), config.batch_size):
            batch = uids[start : start + config.batch_size]
            fetched = client.fetch(batch, ["BODY.PEEK[]", "INTERNALDATE"])
            for uid in batch:
                if should_stop():
                    return result
                data = fetched.get(uid)
                if data is None:  # expunged meanwhile
                    continue
                received = data[b"INTERNALDATE"]
                if received.tzinfo is None:  # a server that sends no zone: take it as UTC
                    received = received.replace(tzinfo=dt.UTC)
                source = f"imap:{self.account}/{config.folder};UIDVALIDITY={uidvalidity};UID={uid}"
                outcome = ingest(data[b"BODY[]"], source, received)
                result.fetched += 1
                result.new += outcome.state != "known"
                self._save_state(db, uidvalidity, uid, tz)
                if config.mark_seen:
                    client.add_flags([uid], [imapclient.SEEN])
                if config.processed_folder:
                    if move:
                        client.move([uid], config.processed_folder)
                    else:
                        client.copy([uid], config.processed_folder)
                        client.delete_messages([uid])
                        if client.has_capability("UIDPLUS"):  # else: never expunge others' mail
                            client.uid_expunge([uid])
        # Everything below UIDNEXT at SELECT was seen: skipped mail (before `since`, or known
        # after a UIDVALIDITY change) is not searched again.
        seen_up_to = int(info.get(b"UIDNEXT", 1)) - 1
        self._save_state(db, uidvalidity, max(seen_up_to, self._state(db)["last_uid"]), tz)
        return result


def append_copy(server: ServerConfig, folder: str, message: bytes, when: dt.datetime) -> None:
    """Put a copy of a sent message in a folder (the clerk's 已发送) so webmail shows it."""
    with session(server) as client:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        client.append(folder, message, flags=[imapclient.SEEN], msg_time=when)


def copy_exists(server: ServerConfig, folder: str, message_id: str) -> bool:
    """Whether a message with this Message-ID is already in the folder."""
    with session(server) as client:
        if not client.folder_exists(folder):
            return False
        client.select_folder(folder, readonly=True)
        return bool(client.search(["HEADER", "Message-ID", message_id]))
