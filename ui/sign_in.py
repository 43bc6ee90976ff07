"""Sign-in and sign-out pages for local accounts and the admin token (`/sign-in`).

A plain HTML form, outside Gradio, because Gradio's own login would close the whole app and
anonymous agents must still classify. A correct password sets an HttpOnly cookie holding a
random token; the database keeps only its hash (feedback.accounts), so every replica knows
the sign-in and signing out ends it everywhere. On a Space with `hf_oauth: true`, the page
also offers Gradio's Sign in with Hugging Face.
"""

from __future__ import annotations

import html
import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from classifier.serving.ratelimit import TokenBucketLimiter
from feedback.access import AccessPolicy
from feedback.errors import NotAuthorizedError, StorageError
from ui.guard import SIGN_IN_COOKIE, UiGuard

log = logging.getLogger(__name__)
SIGN_IN_PATH = "/sign-in"
SIGN_OUT_PATH = "/sign-out"
# Password guesses per client address: a burst of 5, then one every 6 seconds. With scrypt's
# cost per check this keeps a guessing attack slow without bothering a person who mistypes.
SIGN_IN_PER_MINUTE, SIGN_IN_BURST = 10, 5
MAX_FIELD_CHARS = 1024

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Support Triage</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f4f5f7; color: #1f2328; margin: 0; }}
main {{ max-width: 24rem; margin: 4rem auto; background: #fff; padding: 2rem;
        border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.15); }}
h1 {{ font-size: 1.4rem; margin-top: 0; }}
label {{ display: block; margin: 1rem 0 .3rem; font-weight: 600; }}
input {{ width: 100%; box-sizing: border-box; padding: .6rem; font-size: 1rem;
         border: 1px solid #6e7781; border-radius: 4px; }}
button, .button {{ display: inline-block; margin-top: 1.2rem; padding: .6rem 1.2rem;
         font-size: 1rem; border: 0; border-radius: 4px; background: #0b57d0; color: #fff;
         text-decoration: none; cursor: pointer; }}
.error {{ color: #a4000f; font-weight: 600; }}
.note {{ color: #424a53; font-size: .9rem; }}
a {{ color: #0b57d0; }}
</style></head>
<body><main>
<h1>Sign in to Support Triage</h1>
{body}
<p class="note"><a href="/">Back to the app</a>: classifying and rating need no sign-in.</p>
</main></body></html>
"""


def _form(message: str, username: str, hugging_face: bool) -> str:
    error = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    hf = ('<p><a class="button" href="/login/huggingface">Sign in with Hugging Face</a></p>'
          '<p class="note">Or with a local account:</p>' if hugging_face else "")
    return f"""{error}{hf}
<form method="post" action="{SIGN_IN_PATH}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" value="{html.escape(username)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
<p class="note">Accounts are made by an operator with <code>python -m classifier users add
NAME --role reviewer</code>. Whoever holds the admin token signs in with it as the password
(user name <code>admin</code> or empty).</p>"""


def build_sign_in_router(policy: AccessPolicy, guard: UiGuard) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    limiter = TokenBucketLimiter(SIGN_IN_PER_MINUTE, SIGN_IN_BURST)
    hugging_face = policy.hugging_face_sign_in

    def page(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(PAGE.format(body=body), status_code=status,
                            headers={"Cache-Control": "no-store"})

    @router.get(SIGN_IN_PATH)
    def sign_in_page(request: Request) -> HTMLResponse:
        try:
            caller = guard.caller(request)
        except StorageError as exc:
            return page(_form(f"Sign-in is unavailable: {exc}", "", hugging_face), 503)
        if caller.signed_in:
            return page(f"<p>Signed in as <strong>{html.escape(caller.label)}</strong> "
                        f"({caller.role.title}).</p><form method='post' "
                        f"action='{SIGN_OUT_PATH}'><button type='submit'>Sign out</button>"
                        "</form>")
        return page(_form("", "", hugging_face))

    @router.post(SIGN_IN_PATH)
    async def sign_in(request: Request,
                      username: Annotated[str, Form(max_length=MAX_FIELD_CHARS)] = "",
                      password: Annotated[str, Form(max_length=MAX_FIELD_CHARS)] = "",
                      ) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = limiter.acquire(client)
        if wait > 0:
            return page(_form(f"Too many attempts from your address: wait {wait:.0f} s.",
                              username, hugging_face), 429)
        try:
            token, caller = await run_in_threadpool(policy.sign_in, username, password)
        except NotAuthorizedError as exc:
            log.warning("failed sign-in for %r from %s", username[:100], client)
            return page(_form(str(exc), username, hugging_face), 401)
        except StorageError as exc:
            return page(_form(f"Sign-in is unavailable: {exc}", username, hugging_face), 503)
        log.info("%s signed in as %s from %s", caller.label, caller.role.title, client)
        response = RedirectResponse("/", status_code=303)
        secure = request.url.scheme == "https"
        response.set_cookie(SIGN_IN_COOKIE, token, httponly=True, path="/",
                            max_age=int(policy.settings.sign_in_hours * 3600),
                            # A Space shows the app inside huggingface.co: an embedded page
                            # only gets its cookie back with SameSite=None over https.
                            samesite="none" if secure and policy.settings.space_id else "lax",
                            secure=secure)
        return response

    async def sign_out(request: Request) -> Response:
        token = request.cookies.get(SIGN_IN_COOKIE)
        if token:
            try:
                await run_in_threadpool(policy.sign_out, token)
            except StorageError as exc:
                log.error("could not end a sign-in: %s", exc)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SIGN_IN_COOKIE, path="/")
        return response

    router.add_api_route(SIGN_OUT_PATH, sign_out, methods=["GET", "POST"])
    return router
