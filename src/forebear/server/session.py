"""The web UI of a forebear server, behind a login.

The login form takes an API token; the session cookie then carries it (``HttpOnly``,
``SameSite=Strict``, ``Secure`` over HTTPS), so every page is checked against the token's
user exactly as an API request is, and a revoked token ends the session at once on every
replica. A bearer header works too. Forms that change state (logging in and out) carry a
CSRF token matching a cookie, and a request from another origin is refused.

Each user sees the web UI over their own `GuardedBackend`: only the projects they may read.
"""

from __future__ import annotations

import hmac
import html
import secrets
import urllib.parse
from collections import OrderedDict
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import AuthenticationError, PermissionDenied
from ..records import Principal
from ..store import Store
from ..web.app import create_app
from .policy import GuardedBackend

if TYPE_CHECKING:
    from ..local import LocalBackend

SESSION = "forebear_session"
CSRF = "forebear_csrf"
FORM_BYTES = 8192
APPS_KEPT = 64  # web UIs built for recent users (one per user and set of grants)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>forebear: log in</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body><main class="login"><h1>forebear</h1>{message}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<label>API token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Log in</button></form>
<p>An admin creates tokens with <code>forebear token create USER --name NAME</code>.</p>
</main></body></html>"""


class WebLogin:
    """The login and logout routes, and the web UI behind them."""

    def __init__(self, inner: LocalBackend) -> None:
        self.inner = inner

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
        ]

    async def login_page(self, request: Request, message: str = "") -> Response:
        csrf = request.cookies.get(CSRF) or secrets.token_urlsafe(24)
        target = safe_next(request.query_params.get("next", "/"))
        body = PAGE.format(
            message=f'<p class="error">{html.escape(message)}</p>' if message else "",
            csrf=html.escape(csrf),
            next=html.escape(target),
        )
        response = HTMLResponse(body, status_code=401 if message else 200)
        response.set_cookie(
            CSRF, csrf, httponly=True, samesite="strict", secure=is_https(request), path="/"
        )
        return response

    async def login(self, request: Request) -> Response:
        form = await small_form(request)
        checked_form(request, form.get("csrf", ""))
        token = form.get("token", "").strip()
        try:
            await run_in_threadpool(self.inner.authenticate, token)
        except AuthenticationError:
            return await self.login_page(request, "That token was not accepted.")
        response = RedirectResponse(safe_next(form.get("next", "/")), status_code=303)
        response.set_cookie(
            SESSION, token, httponly=True, samesite="strict", secure=is_https(request), path="/"
        )
        return response

    async def logout(self, request: Request) -> Response:
        form = await small_form(request)
        checked_form(request, form.get("csrf", ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION, path="/")
        return response

    def web_ui(self, store: Store) -> ASGIApp:
        return SignedIn(self.inner, store)


class SignedIn:
    """The web UI for whoever the session (or bearer token) belongs to; others are sent
    to the login page (or answered 401 when they are not a browser asking for a page)."""

    def __init__(self, inner: LocalBackend, store: Store) -> None:
        self.inner = inner
        self.store = store
        self.apps: OrderedDict[tuple[object, ...], ASGIApp] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        static = scope["path"].startswith("/static/")
        token = request.cookies.get(SESSION) or bearer(request)
        principal: Principal | None = None
        if token:
            try:
                principal = await run_in_threadpool(self.inner.authenticate, token)
            except AuthenticationError:
                principal = None
        if principal is None and not static:
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                target = f"/login?next={request.url.path}"
                await RedirectResponse(target, status_code=303)(scope, receive, send)
            else:
                body = b'{"error":"AuthenticationError","message":"log in first"}'
                headers = {"www-authenticate": "Bearer"}
                await Response(body, 401, headers, "application/json")(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = principal.name if principal else None
        app = self.app_for(principal)
        if principal is None:
            await app(scope, receive, send)
            return
        with self.inner.acting_for(principal):
            await app(scope, receive, send)

    def app_for(self, principal: Principal | None) -> ASGIApp:
        if principal is None:  # static files only
            principal = Principal(0, "", False, {})
        key = (principal.id, principal.admin, tuple(sorted(principal.roles.items())))
        app = self.apps.get(key)
        if app is None:
            store = Store.over(GuardedBackend(self.inner, principal), self.store.cache_dir)
            app = create_app(store, {"*"})  # the server checks Host names itself
            self.apps[key] = app
            while len(self.apps) > APPS_KEPT:
                self.apps.popitem(last=False)
        self.apps.move_to_end(key)
        return app


async def small_form(request: Request) -> dict[str, str]:
    """A URL-encoded form of a few fields (a login form), refused past a few kilobytes."""
    body = b""
    async for piece in request.stream():
        body += piece
        if len(body) > FORM_BYTES:
            raise PermissionDenied("that form is larger than a login form")
    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items()}


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.lower() == "https"


def safe_next(target: str) -> str:
    """Only a path on this server: never another site (an open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def checked_form(request: Request, sent: str) -> None:
    """A state-changing form must carry the CSRF cookie's value and come from this site."""
    expected = request.cookies.get(CSRF, "")
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and origin.split("://", 1)[-1] != host:
        raise PermissionDenied("a form from another site was refused")
    if not expected or not hmac.compare_digest(expected, sent):
        raise PermissionDenied("the form's CSRF token is missing or wrong; reload the page")
