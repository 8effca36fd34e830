"""Who may use the console: a name, a role, a password kept as its scrypt hash; and the
sessions of those logged in, kept as the sha256 of their cookie.

A clerk acts, a viewer (a supervisor) reads. Five wrong passwords in a row lock the name for
15 minutes: the console faces the office network, and an office password is rarely strong.
"""

import base64
import datetime as dt
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

import sqlite_utils

from mailproc import ledger
from mailproc.ledger import write

Role = Literal["clerk", "viewer"]
ROLES: dict[str, str] = {"clerk": "办事员（可操作）", "viewer": "查看（只读）"}
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
MIN_PASSWORD = 8
# scrypt at n=2**14, r=8: 16 MiB and a few tens of milliseconds a login, per OWASP's minimum
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class UserError(Exception):
    """A user cannot be added or removed as asked; the message is one Chinese line."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    encoded = (base64.b64encode(part).decode("ascii") for part in (salt, digest))
    return "scrypt$16384$8$1$" + "$".join(encoded)


def password_matches(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    computed = hashlib.scrypt(
        password.encode("utf-8"),
        salt=base64.b64decode(salt),
        dklen=32,
        n=int(n),
        r=int(r),
        p=int(p),
    )
    return hmac.compare_digest(computed, base64.b64decode(digest))


@functools.cache
def _nobody() -> str:
    """A hash to check a password against when the name is unknown: the answer takes as long,
    so timing does not tell which names exist. Made at the first login, not at every start
    of every command (scrypt costs some 80 ms)."""
    return hash_password(secrets.token_hex(16))


def add_user(db: sqlite_utils.Database, tz: dt.tzinfo, name: str, role: str, password: str) -> None:
    name = name.strip()
    if not name or len(name) > 64 or any(ch.isspace() for ch in name):
        raise UserError("用户名不能为空、不能含空格，最长 64 个字符")
    if role not in ROLES:
        raise UserError(f"角色只能是 {' 或 '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"密码至少 {MIN_PASSWORD} 个字符")
    write.add_user(db, tz, name, role, hash_password(password))


def remove_user(db: sqlite_utils.Database, name: str) -> None:
    if ledger.console_user(db, name) is None:
        raise UserError(f"没有用户 {name}")
    write.remove_user(db, name)


def list_users(db: sqlite_utils.Database) -> list[dict]:
    return [
        {k: row[k] for k in ("name", "role", "created_at", "failures", "locked_until")}
        for row in db["users"].rows_where(order_by="name")
    ]


@dataclass(frozen=True)
class Session:
    user: str
    role: str
    csrf_token: str
    token_hash: str

    @property
    def can_act(self) -> bool:
        return self.role == "clerk"


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class LoginRefused(Exception):
    """Wrong name or password, or the name is locked; the message is what the page says."""


def log_in(
    db: sqlite_utils.Database, name: str, password: str, hours: float
) -> tuple[str, Session]:
    """A new session's cookie token, or LoginRefused. The lock is checked before the
    password, so a locked name cannot be tried further."""
    now = dt.datetime.now(dt.UTC)
    user = ledger.console_user(db, name.strip())
    if user is None:
        password_matches(password, _nobody())
        raise LoginRefused("用户名或密码不正确")
    if user["locked_until"] and user["locked_until"] > _utc(now):
        raise LoginRefused(
            f"连续输错密码 {MAX_FAILURES} 次，该用户已锁定 {LOCKOUT.seconds // 60} 分钟，请稍后再试"
        )
    if not password_matches(password, user["password_hash"]):
        failures = (0 if user["locked_until"] else user["failures"]) + 1
        locked = _utc(now + LOCKOUT) if failures >= MAX_FAILURES else None
        write.login_failed(db, user["name"], 0 if locked else failures, locked)
        if locked:
            raise LoginRefused(
                f"连续输错密码 {MAX_FAILURES} 次，该用户已锁定 {LOCKOUT.seconds // 60} 分钟"
            )
        raise LoginRefused("用户名或密码不正确")
    token = secrets.token_urlsafe(32)
    session = {
        "token_hash": _token_hash(token),
        "user": user["name"],
        "csrf_token": secrets.token_urlsafe(32),
        "created_at": _utc(now),
        "expires_at": _utc(now + dt.timedelta(hours=hours)),
    }
    write.login_succeeded(db, user["name"], session)
    return token, Session(user["name"], user["role"], session["csrf_token"], session["token_hash"])


def session_of(db: sqlite_utils.Database, token: str | None) -> Session | None:
    if not token:
        return None
    row = ledger.console_session(db, _token_hash(token), _utc(dt.datetime.now(dt.UTC)))
    if row is None:
        return None
    return Session(row["user"], row["role"], row["csrf_token"], row["token_hash"])


def log_out(db: sqlite_utils.Database, session: Session) -> None:
    write.end_session(db, session.token_hash, _utc(dt.datetime.now(dt.UTC)))
