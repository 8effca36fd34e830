"""The console's pages and forms (Starlette): every page read from the ledger at each request,
with the words and counts of `status`, the digest and the dashboard, because it reuses their
code; every action the office function the command line calls, by the logged-in user.

Security: every page but /login needs a session (an HttpOnly, SameSite cookie; Secure behind
HTTPS); every POST needs the session's CSRF token, and a viewer's is refused; the headers forbid
framing, inline script and anything from elsewhere (the pages use no script at all).
"""

import datetime as dt
import hmac
import json
import mimetypes
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import jinja2
import markupsafe
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailproc import resources
from mailproc.app import App, open_app
from mailproc.config import Config
from mailproc.console import forms, users
from mailproc.display import printable
from mailproc.labels import DISPOSITION_WORDS, REPLY_WORDS, STATE_WORDS
from mailproc.office import actions
from mailproc.office.actions import OfficeError
from mailproc.read.mail import ParseError
from mailproc.reports import mail_list
from mailproc.reports.assess import assess, write_assessment
from mailproc.reports.dashboard import (
    matrix_context,
    unit_records,
    units_in_order,
)
from mailproc.reports.stats import StatsError
from mailproc.reports.status import (
    decisions_in_force,
    paper_owed,
    paper_owed_lines,
    status_matrix,
)
from mailproc.reports.workbook import write_workbook
from mailproc.rules import Rules, load_rules

SESSION_COOKIE = "mailproc_session"
PAGE_SIZE = 500  # mails on one page of the list: a page is as quick at 50,000 mails as at 500
LOGIN_COOKIE = "mailproc_login"  # the login form's CSRF token, before there is a session
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}


class SecurityHeaders:
    """The same headers on every response, error pages included; pages are never cached."""

    def __init__(self, app: ASGIApp, https: bool):
        self.app, self.https = app, https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                names = {name.lower() for name, _ in headers}
                extra = dict(HEADERS)
                if self.https:
                    extra["strict-transport-security"] = "max-age=31536000"
                if b"cache-control" not in names:
                    extra["cache-control"] = "no-store"
                headers.extend((k.encode(), v.encode()) for k, v in extra.items())
            await send(message)

        await self.app(scope, receive, with_headers)


def _clean(value: Any) -> Any:
    """What a page shows of a mail's words: no control characters (see display.printable)."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return printable(value, multiline=True)
    return value


class Console:
    """The console over one config: rules read once, the ledger opened for each request."""

    def __init__(self, config: Config):
        self.config = config
        self.rules: Rules = load_rules(config.rules)
        folders = [config.templates / "console", resources.bundled("templates") / "console"]
        self.folders = [f for f in folders if f.is_dir()]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(f) for f in self.folders]),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            finalize=_clean,
        )
        self.env.filters["when"] = self._when
        self.env.filters["quote"] = lambda text: urllib.parse.quote(str(text), safe="")
        with open_app(config, self.rules):  # the schema brought up to date once, here
            pass

    def _when(self, text: str | None) -> str:
        if not text:
            return ""
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(self.rules.timezone)
        return f"{moment:%Y-%m-%d %H:%M}"

    def app(self) -> App:
        return open_app(self.config, self.rules)

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> Response:
        session: users.Session | None = request.scope.get("console_session")
        html = self.env.get_template(template).render(
            campaign=self.rules.campaign,
            office=self.rules.office,
            table=self.rules.table,
            user=session,
            csrf_token=session.csrf_token if session else "",
            path=request.url.path,
            state_text=STATE_WORDS,
            reply_text=REPLY_WORDS,
            disposition_text=DISPOSITION_WORDS,
            items=self.rules.items,
            units=[u.name for u in self.rules.units],
            titles=forms.TITLES,
            **context,
        )
        return Response(html, status_code, media_type="text/html; charset=utf-8")

    def refuse(self, request: Request, reason: str) -> Response:
        return self.render(request, "refused.html.j2", 403, reason=reason)

    # -- the pages -------------------------------------------------------------------------

    def matrix_page(self, request: Request) -> Response:
        with self.app() as app:
            matrix = status_matrix(app.db, self.rules)
            owed = paper_owed(app.db, self.rules, matrix.as_of)
            context = matrix_context(matrix, self.rules, units_in_order(matrix, self.rules))
            decided = [d["text"] for d in decisions_in_force(app.db, self.rules)]
            waiting = len(actions.inbox(app.db))
        refresh = request.query_params.get("refresh", "")
        return self.render(
            request,
            "matrix.html.j2",
            as_of=f"{matrix.as_of:%Y-%m-%d %H:%M}",
            unit_count=len(matrix.units),
            refresh=int(refresh) if refresh.isdigit() and 10 <= int(refresh) <= 3600 else None,
            paper_owed=paper_owed_lines(owed, self.rules),
            paper_owed_count=len(owed),
            decisions=decided,
            waiting=waiting,
            **context,
        )

    def _missing(self, app: App) -> list[dict]:
        """Each deadline passed with units still missing: the office's 催报, 免报, 延期."""
        matrix = status_matrix(app.db, self.rules)
        rows = []
        for (item, period, deadline), label in zip(matrix.deadlines, matrix.labels, strict=True):
            missing = [
                unit
                for unit, _ in matrix.units
                if matrix.cell(unit, item, period).state == "missing"
            ]
            if missing:
                rows.append(
                    {
                        "item": item,
                        "label": label,
                        "period": period,
                        "deadline": f"{deadline:%Y-%m-%d %H:%M}",
                        "units": missing,
                    }
                )
        return rows

    def inbox_page(self, request: Request) -> Response:
        with self.app() as app:
            entries = actions.inbox(app.db)
            owed = paper_owed(app.db, self.rules, dt.datetime.now(app.tz))
            missing = self._missing(app)
        return self.render(
            request,
            "inbox.html.j2",
            entries=entries,
            missing=missing,
            paper_owed=paper_owed_lines(owed, self.rules),
            paper_owed_count=len(owed),
        )

    def unit_page(self, request: Request) -> Response:
        name = request.path_params["name"]
        unit = self.rules.unit(name)
        if unit is None:
            return self.render(request, "missing.html.j2", 404, what=f"单位“{name}”")
        with self.app() as app:
            matrix = status_matrix(app.db, self.rules)
            anchors = units_in_order(matrix, self.rules)
            context = matrix_context(matrix, self.rules, anchors)
            row = next(r for g in context["groups"] for r in g["rows"] if r["name"] == name)
            links = self._file_link(app, name)
            records = unit_records(app.db, self.rules, matrix, {name: anchors[name]}, links)
            record = records[0]
            addresses = sorted(unit.addresses)
            mails = mail_list.message_records(
                app.db,
                where=f"unit = ? or sender in ({', '.join('?' * len(addresses))})",
                params=[name, *addresses],
            )
            sent = list(app.db["outbox"].rows_where("unit = ?", [name], order_by="id"))
            decided = [
                d["text"] for d in decisions_in_force(app.db, self.rules) if d["unit"] == name
            ]
        return self.render(
            request,
            "unit.html.j2",
            unit=unit,
            columns=context["columns"],
            deadlines=matrix.deadlines,
            row=row,
            record=record,
            mails=mails,
            sent=sent,
            decisions=decided,
        )

    def _file_link(self, app: App, unit: str) -> Callable[[str | None], str | None]:
        """Links from a unit's record to the files: by the ledger's numbers, never by path."""
        by_path = {
            row["archive_path"]: f"/messages/{row['id']}/original"
            for row in app.db.query("select id, archive_path from messages where unit = ?", [unit])
        }
        by_path.update(
            {
                row["archive_path"]: f"/messages/{row['message']}/files/{row['id']}"
                for row in app.db.query(
                    "select a.id, a.message, a.archive_path from attachments a"
                    " join messages m on m.id = a.message"
                    " where m.unit = ? and a.archive_path is not null",
                    [unit],
                )
            }
        )
        return lambda path: by_path.get(path) if path else None

    def _filters(self, request: Request) -> dict[str, str]:
        return {k: request.query_params.get(k, "").strip() for k in mail_list.FILTERS}

    def messages_page(self, request: Request) -> Response:
        wanted = self._filters(request)
        export = request.query_params.get("format")
        page = request.query_params.get("page", "1")
        page = int(page) if page.isdigit() and int(page) > 0 else 1
        with self.app() as app:
            if export in ("csv", "xlsx") or any(wanted.values()):
                records = mail_list.matching(mail_list.message_records(app.db), wanted)
                total = len(records)
                shown = records[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            else:  # the whole ledger: only the page shown is read
                total = app.db["messages"].count
                shown = mail_list.message_records(app.db, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        labels = {item.id: item.label for item in self.rules.items}
        if export in ("csv", "xlsx"):
            stamp = dt.datetime.now(self.rules.timezone).strftime("%Y%m%d-%H%M")
            filename = f"邮件清单-{stamp}.{export}"
            if export == "csv":
                body, media = mail_list.as_csv(records, labels), "text/csv; charset=utf-8"
            else:
                shown = "，".join(f"{k}={v}" for k, v in wanted.items() if v) or "全部"
                title = f"{self.rules.campaign['name']} 邮件清单（{shown}），导出于 {stamp}"
                body, media = mail_list.as_xlsx(records, labels, title), XLSX
            return _download(body, filename, media)
        periods = sorted({p for item in self.rules.items for p in _periods(item)})
        query = urllib.parse.urlencode({k: v for k, v in wanted.items() if v})
        return self.render(
            request,
            "messages.html.j2",
            records=shown,
            total=total,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            page_size=PAGE_SIZE,
            wanted=wanted,
            periods=periods,
            query=query,
            item_labels=labels,
        )

    def _message(self, app: App, number: str) -> dict | None:
        if not number.isdigit():
            return None
        return next(app.db["messages"].rows_where("id = ?", [int(number)]), None)

    def message_page(self, request: Request) -> Response:
        with self.app() as app:
            row = self._message(app, request.path_params["number"])
            if row is None:
                return self.render(request, "missing.html.j2", 404, what="这封邮件")
            files = list(
                app.db["attachments"].rows_where("message = ?", [row["id"]], order_by="id")
            )
            replies = list(app.db["outbox"].rows_where("message = ?", [row["id"]], order_by="id"))
            story = actions.history(app, f"#{row['id']}") if row["archive_path"] else []
            text, headers = "", []
            if row["archive_path"]:
                raw = (self.config.archive / row["archive_path"]).read_bytes()
                try:
                    parsed = app.sandbox.mail().parse(raw)  # a mail's bytes are read only there
                    text = parsed.body_text or parsed.body_html
                    headers = [(k, v) for k, values in parsed.headers.items() for v in values]
                except ParseError:
                    text = "（邮件正文无法解析，请下载原邮件查看）"
        return self.render(
            request,
            "message.html.j2",
            mail=row,
            notes=json.loads(row["notes"] or "[]"),
            problems=json.loads(row["problems"] or "[]"),
            flags=json.loads(row["flags"] or "[]"),
            machine=json.loads(row["machine_reading"] or "{}"),
            files=files,
            replies=replies,
            story=story,
            text=text,
            headers=headers,
            label=actions.mail_label(row),
        )

    def original(self, request: Request) -> Response:
        with self.app() as app:
            row = self._message(app, request.path_params["number"])
        if row is None or not row["archive_path"]:
            return self.render(request, "missing.html.j2", 404, what="原邮件")
        return self._archived(row["archive_path"], f"邮件{row['id']}.eml", "message/rfc822")

    def attachment(self, request: Request) -> Response:
        number, file_id = request.path_params["number"], request.path_params["file"]
        with self.app() as app:
            row = next(
                app.db["attachments"].rows_where(
                    "id = ? and message = ?",
                    [int(file_id) if file_id.isdigit() else -1, number if number.isdigit() else -1],
                ),
                None,
            )
        if row is None or not row["archive_path"]:
            return self.render(request, "missing.html.j2", 404, what="附件")
        media = mimetypes.guess_type(row["filename"] or "")[0] or "application/octet-stream"
        return self._archived(row["archive_path"], row["filename"] or f"附件{row['id']}", media)

    def _archived(self, archive_path: str, filename: str, media: str) -> Response:
        root = self.config.archive.resolve()
        path = (root / archive_path).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return Response("文件不存在", 404, media_type="text/plain; charset=utf-8")
        return _download(path.read_bytes(), filename, media)

    def reports_page(self, request: Request) -> Response:
        folder = self.config.reports
        files = sorted(
            (p for p in folder.glob("*") if p.is_file() and p.suffix in {".xlsx", ".html"}),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        deadlines = [
            {"item": item.id, "label": item.label, "period": item.period_of(d)}
            for item, d in self.rules.deadlines()
        ]
        return self.render(
            request,
            "reports.html.j2",
            files=[
                {
                    "name": p.name,
                    "size": p.stat().st_size,
                    "at": dt.datetime.fromtimestamp(p.stat().st_mtime, self.rules.timezone),
                }
                for p in files
            ],
            deadlines=deadlines,
            error=request.query_params.get("error"),
        )

    def report_file(self, request: Request) -> Response:
        name = request.path_params["name"]
        path = self.config.reports / name
        if "/" in name or name.startswith(".") or not path.is_file():
            return self.render(request, "missing.html.j2", 404, what="报表文件")
        media = XLSX if path.suffix == ".xlsx" else "text/html; charset=utf-8"
        return _download(path.read_bytes(), name, media)

    def make_report(self, request: Request) -> Response:
        """The consolidated workbook of one deadline, or the assessment, made now (a report
        is made from the ledger, changes nothing in it, and so a viewer may ask for one)."""
        kind = request.query_params.get("kind", "workbook")
        with self.app() as app:
            if kind == "assessment":
                path = write_assessment(assess(app.db, self.rules), self.rules, self.config.reports)
            else:
                item, _, period = request.query_params.get("target", "").rpartition(":")
                try:
                    path, _ = write_workbook(
                        app.db, self.rules, period, self.config.reports, item or None
                    )
                except StatsError as exc:
                    return self.render(request, "error.html.j2", 400, reason=str(exc))
        return _download(path.read_bytes(), path.name, XLSX)

    # -- actions ---------------------------------------------------------------------------

    async def action(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in forms.RUNNERS:
            return self.render(request, "missing.html.j2", 404, what=f"操作“{name}”")
        form = forms.Form(
            [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
        )
        session: users.Session = request.scope["console_session"]
        confirmed = form.get("confirm") == "1"
        back = _local(form.get("back"), "/inbox")
        try:
            result, delivered = await run_in_threadpool(
                self._act, name, form, session.user, not confirmed
            )
        except OfficeError as exc:
            return self.render(request, "action.html.j2", 400, name=name, error=str(exc), back=back)
        return self.render(
            request,
            "action.html.j2",
            name=name,
            error=None,
            preview=not confirmed,
            lines=result.lines,
            queued=result.queued,
            delivered=delivered,
            fields=[(k, v) for k, v in form.pairs if k not in {"confirm", "csrf_token"}],
            back=back,
        )

    def _act(self, name: str, form: forms.Form, by: str, preview: bool) -> tuple[Any, Any]:
        with self.app() as app:
            result = forms.run(app, name, form, by, preview)
            delivered = app.deliver(wait=False) if result.queued else None
        return result, delivered

    # -- logging in ------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            token = secrets.token_urlsafe(32)
            response = self.render(
                request, "login.html.j2", login_token=token, error=None, username=""
            )
            self._cookie(response, LOGIN_COOKIE, token, "strict", 3600)
            return response
        data = await request.form()
        posted = str(data.get("csrf_token", ""))
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(posted.encode(), expected.encode()):
            return self.refuse(request, "登录表单已过期或来源不明，请重新打开登录页面")
        name, password = str(data.get("username", "")), str(data.get("password", ""))
        try:
            token, _ = await run_in_threadpool(self._log_in, name, password)
        except users.LoginRefused as exc:
            response = self.render(
                request, "login.html.j2", 401, login_token=expected, error=str(exc), username=name
            )
            return response
        response = RedirectResponse(_local(request.query_params.get("next"), "/"), 303)
        self._cookie(
            response, SESSION_COOKIE, token, "lax", int(self.config.console.session_hours * 3600)
        )
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    def _log_in(self, name: str, password: str) -> tuple[str, users.Session]:
        with self.app() as app:
            return users.log_in(app.db, name, password, self.config.console.session_hours)

    def _cookie(self, response: Response, name: str, value: str, samesite: str, age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=age,
            path="/",
            httponly=True,
            samesite=samesite,  # type: ignore[arg-type]
            secure=self.config.console.https,
        )

    async def logout(self, request: Request) -> Response:
        session: users.Session = request.scope["console_session"]
        await run_in_threadpool(self._log_out, session)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def _log_out(self, session: users.Session) -> None:
        with self.app() as app:
            users.log_out(app.db, session)

    async def stylesheet(self, request: Request) -> Response:
        for folder in self.folders:
            path = folder / "console.css"
            if path.is_file():
                return Response(
                    path.read_bytes(),
                    media_type="text/css; charset=utf-8",
                    headers={"cache-control": "max-age=3600"},
                )
        return Response("", 404)

    # -- who may see and do what -----------------------------------------------------------

    def guarded(
        self, handler: Callable[[Request], Any], acts: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """A page for the logged-in only; a POST needs the session's CSRF token and, when it
        changes anything (`acts`), a clerk."""

        async def endpoint(request: Request) -> Response:
            token = request.cookies.get(SESSION_COOKIE)
            session = await run_in_threadpool(self._session, token)
            if session is None:
                if request.method != "GET":
                    return Response("请先登录", 403, media_type="text/plain; charset=utf-8")
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/login?" + urllib.parse.urlencode({"next": target}), 303)
            request.scope["console_session"] = session
            if request.method == "POST":
                posted = str((await request.form()).get("csrf_token", ""))
                if not hmac.compare_digest(posted.encode(), session.csrf_token.encode()):
                    return self.refuse(
                        request, "表单已过期或来源不明（缺少有效的校验码），未执行任何操作"
                    )
                if acts and not session.can_act:
                    return self.refuse(request, "您的账号为只读（查看）账号，不能执行操作")
            if getattr(handler, "__code__", None) and handler.__code__.co_flags & 0x80:
                return await handler(request)
            return await run_in_threadpool(handler, request)

        return endpoint

    def _session(self, token: str | None) -> users.Session | None:
        with self.app() as app:
            return users.session_of(app.db, token)


def _local(target: str | None, default: str) -> str:
    """A path on this console to go back to: never another site (//host, /\\host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _periods(item: Any) -> list[str]:
    return [item.period_of(d) for d in item.deadlines]


def _download(body: bytes, filename: str, media: str) -> Response:
    quoted = urllib.parse.quote(filename)
    return Response(
        body,
        media_type=media,
        headers={
            "content-disposition": f"attachment; filename*=UTF-8''{quoted}",
            "cache-control": "no-store",
        },
    )


def make_console(config: Config) -> ASGIApp:
    """The console as an ASGI application, for uvicorn (or any ASGI server)."""
    console = Console(config)
    guard = console.guarded
    routes = [
        Route("/login", console.login, methods=["GET", "POST"]),
        Route("/static/console.css", console.stylesheet),
        Route("/", guard(console.matrix_page)),
        Route("/inbox", guard(console.inbox_page)),
        Route("/units/{name}", guard(console.unit_page)),
        Route("/messages", guard(console.messages_page)),
        Route("/messages/{number}", guard(console.message_page)),
        Route("/messages/{number}/original", guard(console.original)),
        Route("/messages/{number}/files/{file}", guard(console.attachment)),
        Route("/reports", guard(console.reports_page)),
        Route("/reports/make", guard(console.make_report)),
        Route("/reports/files/{name}", guard(console.report_file)),
        Route("/actions/{name}", guard(console.action, acts=True), methods=["POST"]),
        Route("/logout", guard(console.logout), methods=["POST"]),
    ]
    application = Starlette(routes=routes)
    return SecurityHeaders(application, config.console.https)


def serve(config: Config, host: str | None = None, port: int | None = None) -> None:
    """Serve the console until SIGTERM or Ctrl-C."""
    import uvicorn

    uvicorn.run(
        make_console(config),
        host=host or config.console.host,
        port=port or config.console.port,
        log_level="warning",
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )


def start_in_thread(config: Config) -> Callable[[], None]:
    """The console beside `run`'s loop, in a thread of the same process; returns its stop."""
    import threading

    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            make_console(config),
            host=config.console.host,
            port=config.console.port,
            log_level="warning",
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
        )
    )
    # uvicorn leaves the signals alone outside the main thread: `run` keeps its own handlers
    thread = threading.Thread(target=server.run, name="console", daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return stop
