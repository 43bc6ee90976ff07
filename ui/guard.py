"""Every Gradio handler checks its caller on the server.

Gradio lets anyone call any event handler by its index (`/gradio_api/queue/join` with a
`fn_index`), private ones included, so hiding a button protects nothing. Each handler is
wrapped by `UiGuard.handler(role, action)`: the wrapper learns who is calling from the HTTP
request (the sign-in cookie, or the Hugging Face session on a Space), refuses with a plain
message below the needed role, and hands the handler the `caller` if it asks for one, so
what it writes records the person.
"""

from __future__ import annotations

import inspect
import time
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypedDict, TypeVar

import gradio as gr

from feedback.access import AccessPolicy, Caller, Role, came_through_proxy

SIGN_IN_COOKIE = "st_sign_in"
F = TypeVar("F", bound=Callable[..., Any])


class Private(TypedDict):
    """Listener keywords that keep an event off the API page and the Python client (as
    `**PRIVATE`); it can still be called by index, so the guard, not this, protects it."""
    api_visibility: Literal["private"]


PRIVATE: Private = {"api_visibility": "private"}


def _request_parts(request: Any) -> tuple[Mapping[str, str], Mapping[str, Any] | None]:
    """(cookies, server-side session) of a starlette Request or a gr.Request."""
    raw = getattr(request, "request", None) if isinstance(request, gr.Request) else request
    if raw is None:  # a gr.Request rebuilt without its HTTP request: nothing to trust
        return {}, None
    return raw.cookies, raw.scope.get("session")


def _proxied(request: Any) -> bool:
    raw = getattr(request, "request", None) if isinstance(request, gr.Request) else request
    return came_through_proxy(getattr(raw, "headers", None) or {})


def hugging_face_username(session: Mapping[str, Any] | None) -> str | None:
    """The user signed in with Hugging Face in this session (Gradio's OAuth), if unexpired."""
    info = (session or {}).get("oauth_info") or {}
    expires_at = info.get("expires_at")
    if expires_at is not None and expires_at < time.time():
        return None
    name = (info.get("userinfo") or {}).get("preferred_username")
    return name if isinstance(name, str) and name else None


class UiGuard:
    def __init__(self, policy: AccessPolicy) -> None:
        self.policy = policy

    def caller(self, request: Any) -> Caller:
        """Who sent this request: a signed-in person, a Hugging Face user, or anonymous."""
        if request is None:
            return self.policy.anonymous()
        cookies, session = _request_parts(request)
        token = cookies.get(SIGN_IN_COOKIE)
        if token:
            found = self.policy.caller_for_token(token)
            if found is not None:
                return found
        if self.policy.hugging_face_sign_in:
            name = hugging_face_username(session)
            if name:
                return self.policy.caller_for_hugging_face(name)
        return self.policy.anonymous(proxied=_proxied(request))

    def handler(self, needed: Role, action: str, *, quiet: bool = False) -> Callable[[F], F]:
        """Wrap a Gradio handler so it runs only for callers with `needed` role.

        `action` completes "to …" in the refusal. A refused call raises gr.Error, or with
        `quiet` (panels that load when a tab opens) leaves every output as it is. A handler
        with a `caller` parameter receives the Caller, one with a `session` parameter the
        caller's Gradio session id (None without one); Gradio sees neither parameter.
        """
        def decorate(fn: F) -> F:
            signature = inspect.signature(fn)
            hints = typing.get_type_hints(fn)
            wants_caller = "caller" in signature.parameters
            wants_session = "session" in signature.parameters
            visible = [p for name, p in signature.parameters.items()
                       if name not in ("caller", "session")]
            request_param = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                              default=None, annotation=gr.Request | None)
            outer = signature.replace(parameters=[*visible, request_param])

            def guarded(*args: Any, **kwargs: Any) -> Any:
                bound = outer.bind(*args, **kwargs)
                request = bound.arguments.pop("request", None)
                if wants_session:
                    bound.arguments["session"] = getattr(request, "session_hash", None)
                if needed == Role.AGENT and not wants_caller:
                    return fn(**bound.arguments)  # every caller is an agent: no lookup
                caller = self.caller(request)
                reason = self.policy.refusal(caller, needed, action)
                if reason:
                    if quiet:
                        return gr.skip()
                    raise gr.Error(reason, title="Not allowed", print_exception=False)
                if wants_caller:
                    bound.arguments["caller"] = caller
                return fn(**bound.arguments)

            guarded.__name__ = fn.__name__
            guarded.__qualname__ = fn.__qualname__
            guarded.__doc__ = fn.__doc__
            guarded.__signature__ = outer  # type: ignore[attr-defined]  # read by inspect.signature
            # Real objects, not strings: Gradio finds gr.Request and gr.Progress by type hint.
            guarded.__annotations__ = {**{p.name: hints[p.name] for p in visible
                                          if p.name in hints}, "request": gr.Request | None}
            guarded.access = (needed, action)  # type: ignore[attr-defined]  # test_access.py reads it
            return typing.cast(F, guarded)

        return decorate
