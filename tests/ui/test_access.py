"""People and roles (feedback.access, ui.guard, ui.sign_in): who may do what, decided on the
server for every Gradio handler, including the ones the page never shows.

The sweep tests call every dependency listed in /config by `fn_index`, as an outsider can,
with a known request id in every text input, against a server with roles configured.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import itsdangerous
import pytest
from conftest import Server, SmallModel, add_account, install_model, start_server, stop_server
from gradio_queue import Outcome, call_fn, dependencies
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session
from starlette.requests import Request

from classifier.serving.service import PredictionService
from classifier.serving.startup import Startup
from feedback import accounts, api_keys
from feedback.access import ADMIN_TOKEN_NAME, AccessPolicy, Role
from feedback.db import describe_storage, session_scope
from feedback.errors import NotAuthorizedError
from feedback.settings import Settings
from feedback.tables import ModelEvent, SignIn
from ui.guard import SIGN_IN_COOKIE, UiGuard
from ui.layout import build_ui

ADMIN_TOKEN = "access-test-admin-token-0123"
REVIEWER, REVIEWER_PASSWORD = "rita", "rita-password-123"
ADMIN, ADMIN_PASSWORD = "adam", "adam-password-123"
SECRET_TEXT = "Zebra quartz violet: my card was charged twice at the aquarium"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- the policy -----------------------------------------------------------------------------

def test_loopback_without_any_identity_is_one_persons_machine(sqlite_settings: Settings) -> None:
    policy = AccessPolicy(sqlite_settings)
    caller = policy.anonymous()
    assert not policy.configured() and caller.role == Role.REVIEWER
    policy.require(caller, Role.REVIEWER, "work the review queue")
    with pytest.raises(NotAuthorizedError, match="Sign in as admin to retrain"):
        policy.require(caller, Role.ADMIN, "retrain")


@pytest.mark.parametrize("overrides", [{"admin_token": "t" * 20}, {"api_keys": "k" * 20},
                                       {"reviewer_users": ("someone",)}])
def test_any_configured_secret_leaves_anonymous_an_agent(sqlite_settings: Settings,
                                                         overrides: dict[str, Any]) -> None:
    policy = AccessPolicy(dataclasses.replace(sqlite_settings, **overrides))
    caller = policy.anonymous()
    assert caller.role == Role.AGENT and not caller.signed_in
    policy.require(caller, Role.AGENT, "classify")
    with pytest.raises(NotAuthorizedError, match="Sign in as reviewer to read the queue"):
        policy.require(caller, Role.REVIEWER, "read the queue")


@pytest.mark.parametrize("stored", ["account", "api key"])
def test_accounts_or_keys_in_the_database_count_as_configured(settings: Settings,
                                                              stored: str) -> None:
    clock = Clock()
    policy = AccessPolicy(settings, clock=clock)
    assert policy.anonymous().role == Role.REVIEWER
    with session_scope(settings) as session:
        if stored == "account":
            accounts.create_account(session=session, username="ann", role="agent",
                                    password="long-enough-1")
        else:
            api_keys.create_api_key(session=session, name="crm")
    policy.refresh()  # as the app's background loop does every few seconds
    assert policy.anonymous().role == Role.AGENT


def test_public_address_without_sign_in_keeps_review_closed_and_says_why(
        sqlite_settings: Settings) -> None:
    policy = AccessPolicy(dataclasses.replace(sqlite_settings, server_name="0.0.0.0"))
    caller = policy.anonymous()
    assert caller.role == Role.AGENT
    reason = policy.refusal(caller, Role.REVIEWER, "work the review queue")
    assert reason is not None and reason.startswith("Closed")
    assert "no sign-in configured" in reason and "users add" in reason


@pytest.mark.parametrize("header", ["x-forwarded-for", "forwarded", "x-real-ip"])
def test_a_proxy_on_the_same_host_does_not_make_visitors_the_owner(
        sqlite_settings: Settings, header: str) -> None:
    """Loopback with nothing configured is one person's machine, but not for requests a
    reverse proxy forwards from other machines."""
    guard = UiGuard(AccessPolicy(sqlite_settings))

    def request(headers: list[tuple[bytes, bytes]]) -> Request:
        return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})

    assert guard.caller(request([])).role == Role.REVIEWER
    visitor = guard.caller(request([(header.encode(), b"203.0.113.9")]))
    assert visitor.role == Role.AGENT and visitor.proxied
    reason = guard.policy.refusal(visitor, Role.REVIEWER, "work the review queue")
    assert reason is not None and reason.startswith("Closed")


def test_hugging_face_users_get_the_role_of_their_allow_list(sqlite_settings: Settings) -> None:
    policy = AccessPolicy(dataclasses.replace(
        sqlite_settings, server_name="0.0.0.0", space_id="team/triage", oauth_client_id="x",
        admin_users=("alice",), reviewer_users=("bob",)))
    assert policy.hugging_face_sign_in
    assert policy.caller_for_hugging_face("alice").role == Role.ADMIN
    assert policy.caller_for_hugging_face("bob").role == Role.REVIEWER
    carol = policy.caller_for_hugging_face("carol")
    assert carol.role == Role.AGENT and carol.label == "carol"
    assert "signed in as agent" in (policy.refusal(carol, Role.REVIEWER, "review") or "")


def test_sign_in_with_accounts_and_the_admin_token(settings: Settings) -> None:
    clock = Clock()
    policy = AccessPolicy(dataclasses.replace(settings, admin_token=ADMIN_TOKEN), clock=clock)
    with session_scope(settings) as session:
        accounts.create_account(session=session, username=REVIEWER, role="reviewer",
                                password=REVIEWER_PASSWORD)
    token, caller = policy.sign_in(REVIEWER, REVIEWER_PASSWORD)
    assert (caller.label, caller.role, caller.via) == (REVIEWER, Role.REVIEWER, "account")
    assert policy.caller_for_token(token) == caller
    for name, password in ((REVIEWER, "wrong-password"), ("nobody", REVIEWER_PASSWORD),
                           (REVIEWER, ""), ("admin", "wrong-token")):
        with pytest.raises(NotAuthorizedError, match="^Wrong user name or password.$"):
            policy.sign_in(name, password)
    admin_token, admin = policy.sign_in("admin", ADMIN_TOKEN)
    assert (admin.label, admin.role) == (ADMIN_TOKEN_NAME, Role.ADMIN)

    with session_scope(settings) as session:  # only hashes are stored
        stored = set(session.scalars(select(SignIn.token_sha256)))
        assert token not in stored and accounts.token_hash(token) in stored
        accounts.set_role(session=session, username=REVIEWER, role="agent")
    clock.now += 10
    assert policy.caller_for_token(token) is None  # a role change ends the sign-in
    policy.sign_out(admin_token)
    assert policy.caller_for_token(admin_token) is None


def test_disabled_and_expired_sign_ins_stop_working(settings: Settings) -> None:
    policy = AccessPolicy(settings)
    with session_scope(settings) as session:
        accounts.create_account(session=session, username="old", role="admin",
                                password="long-enough-1")
        expired, _ = accounts.open_sign_in(session=session, username="old", role="admin",
                                           lifetime=timedelta(seconds=-1))
        accounts.disable_account(session=session, username="old")
    assert policy.caller_for_token(expired) is None
    with pytest.raises(NotAuthorizedError):
        policy.sign_in("old", "long-enough-1")


def test_expired_sign_ins_are_purged_and_live_ones_kept(settings: Settings) -> None:
    policy = AccessPolicy(settings)
    with session_scope(settings) as session:
        accounts.create_account(session=session, username="ann", role="agent",
                                password="long-enough-1")
        for lifetime in (timedelta(seconds=-1), timedelta(seconds=-60), timedelta(hours=1)):
            accounts.open_sign_in(session=session, username="ann", role="agent",
                                  lifetime=lifetime)
    token, _ = policy.sign_in("ann", "long-enough-1")
    assert policy.purge_expired_sign_ins() == 2
    assert policy.purge_expired_sign_ins() == 0
    assert policy.caller_for_token(token) is not None


@pytest.mark.parametrize(("username", "role", "password", "match"), [
    ("", "agent", "long-enough-1", "user name"),
    ("a b", "agent", "long-enough-1", "user name"),
    ("ann", "boss", "long-enough-1", "Unknown role"),
    ("ann", "agent", "short", "10 to 1024"),
])
def test_account_rules(sqlite_settings: Settings, username: str, role: str, password: str,
                       match: str) -> None:
    with (session_scope(sqlite_settings) as session,
          pytest.raises(accounts.InvalidInputError, match=match)):
        accounts.create_account(session=session, username=username, role=role,
                                password=password)


# --- every handler is guarded ---------------------------------------------------------------

def test_every_gradio_handler_checks_its_caller(sqlite_settings: Settings) -> None:
    """A handler added later without the guard fails here, before any outsider finds it."""
    service = PredictionService(sqlite_settings)
    blocks = build_ui(service, Startup(sqlite_settings, service.models),
                      describe_storage(sqlite_settings), UiGuard(AccessPolicy(sqlite_settings)))
    unguarded = [(i, fn.name) for i, fn in blocks.fns.items()
                 if fn.fn is not None and not hasattr(fn.fn, "access")
                 and not fn.fn.__module__.startswith("gradio")]  # Gradio's own (examples)
    assert unguarded == []
    assert len(blocks.fns) > 30


# --- the sweep against a running server -----------------------------------------------------

def snapshot(data_dir: Path, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(f"sqlite:///file:{data_dir / 'support_triage.db'}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:
            return {t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))]
                    for t in tables}
    finally:
        engine.dispose()


GUARDED_TABLES = ("reviews", "model_events", "model_versions", "deployment", "retrain_jobs",
                  "feedback_datasets", "feedback", "accounts")


@pytest.fixture(scope="module")
def roles_server(trained_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("roles")
    data_dir = tmp / "data"
    shutil.copytree(trained_data_dir, data_dir)
    add_account(data_dir, REVIEWER, "reviewer", REVIEWER_PASSWORD)
    add_account(data_dir, ADMIN, "admin", ADMIN_PASSWORD)
    running = start_server(data_dir, tmp / "server.log", extra_env={
        "ADMIN_TOKEN": ADMIN_TOKEN, "UI_RATE_LIMIT_PER_MINUTE": "0"})
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def victim(roles_server: Server) -> str:
    """Someone else's message, classified and rated thumbs-down in their own session: its
    request id is known to the outsider, its text must never reach them."""
    with httpx.Client(base_url=roles_server.url, timeout=30) as client:
        deps, _ = dependencies(client)
        by_name = {d["api_name"]: d["id"] for d in deps}
        session = "victimsess1"
        answer = call_fn(client, by_name["classify"], [SECRET_TEXT], session_hash=session)
        assert answer.success, answer.output
        request_id = answer.output["data"][2]
        rated = call_fn(client, by_name["rate_down"], [None, SECRET_TEXT, None],
                        session_hash=session)
        assert rated.success, rated.output
    return request_id


def sweep_inputs(dep: dict[str, Any], components: dict[int, dict[str, Any]],
                 request_id: str) -> list[Any]:
    """A value for every input: the known request id wherever text goes, else a valid one."""
    values = []
    for component_id in dep["inputs"]:
        component = components[component_id]
        kind, props = component["type"], component.get("props", {})
        choices = [c[1] if isinstance(c, list) else c for c in props.get("choices") or []]
        if kind == "textbox":
            values.append(request_id)
        elif kind in ("dropdown", "radio"):
            values.append(choices[0] if choices else None)
        elif kind in ("number", "slider"):
            values.append(props.get("value") or 10)
        elif kind == "dataset":
            values.append(0)
        else:  # state, file: nothing the caller could point at
            values.append(None)
    return values


def sweep(server: Server, request_id: str, cookies: dict[str, str] | None = None
          ) -> dict[str, Outcome]:
    """Every handler, by fn_index, once; {api_name: outcome}."""
    outcomes = {}
    with httpx.Client(base_url=server.url, timeout=60, cookies=cookies) as client:
        deps, components = dependencies(client)
        for dep in deps:
            target = dep["targets"][0][0] if dep["targets"] else None
            outcomes[dep["api_name"]] = call_fn(
                client, dep["id"], sweep_inputs(dep, components, request_id),
                event_data={"index": [0, 0], "value": request_id, "row_value": [request_id]},
                trigger_id=target)
    return outcomes


def sign_in_cookie(server: Server, name: str, password: str) -> dict[str, str]:
    response = httpx.post(f"{server.url}/sign-in", data={"username": name,
                                                          "password": password}, timeout=30)
    assert response.status_code == 303, response.text
    return {SIGN_IN_COOKIE: response.cookies[SIGN_IN_COOKIE]}


def test_anonymous_callers_get_no_ones_messages_and_change_nothing(
        roles_server: Server, victim: str) -> None:
    before = snapshot(roles_server.data_dir, GUARDED_TABLES)
    assert before["feedback"], "the victim's rating is there to be leaked"
    outcomes = sweep(roles_server, victim)
    leaked = {name: o.text[:200] for name, o in outcomes.items()
              if "zebra" in o.text.lower() or "aquarium" in o.text.lower()}
    assert leaked == {}
    assert snapshot(roles_server.data_dir, GUARDED_TABLES) == before
    refused = {name for name, o in outcomes.items() if "Not allowed" in o.text}
    assert {"pick", "accept", "correct", "discard", "import_csv", "start_retrain"} <= refused
    assert {"ask", "confirm", "cancel", "show_version"} <= refused  # the Models tab
    assert outcomes["classify"].success  # what an anonymous agent may do still works


# The Models tab's buttons (each opens a confirmation) and the confirm button, by elem_id.
LIFECYCLE_BUTTONS = ("action-canary", "action-promote", "action-stop", "action-rollback",
                     "action-reject", "action-confirm")


def button_handler(deps: list[dict[str, Any]], components: dict[int, dict[str, Any]],
                   label: str) -> dict[str, Any]:
    """The dependency a click on the button labelled `label` (or with that elem_id) runs."""
    return next(d for d in deps if d["targets"] and d["targets"][0][1] == "click"
                and label in (components[d["targets"][0][0]].get("props", {}).get(key)
                              for key in ("value", "elem_id")))


def test_a_reviewer_reads_the_queue_but_cannot_promote(roles_server: Server,
                                                        victim: str) -> None:
    cookies = sign_in_cookie(roles_server, REVIEWER, REVIEWER_PASSWORD)
    registry_tables = ("model_events", "model_versions", "deployment", "retrain_jobs")
    before = snapshot(roles_server.data_dir, registry_tables)
    with httpx.Client(base_url=roles_server.url, timeout=60, cookies=cookies) as client:
        deps, components = dependencies(client)
        queue = next(d for d in deps if d["api_name"] == "load_queue")
        shown = call_fn(client, queue["id"], sweep_inputs(queue, components, victim))
        assert shown.success and "Zebra quartz violet" in shown.text
        for label in (*LIFECYCLE_BUTTONS, "Retrain now"):
            dep = button_handler(deps, components, label)
            refused = call_fn(client, dep["id"], sweep_inputs(dep, components, victim))
            assert "need the admin role" in refused.text, (label, refused.text)
    assert snapshot(roles_server.data_dir, registry_tables) == before


def test_lifecycle_actions_record_the_signed_in_person(live_sqlite_settings: Settings,
                                                      small_model: SmallModel) -> None:
    settings = live_sqlite_settings
    candidate = install_model(settings, small_model, promote=False)
    policy = AccessPolicy(settings)
    token, _ = policy.sign_in(*_admin_account(settings))
    service = PredictionService(settings)
    blocks = build_ui(service, Startup(settings, service.models), describe_storage(settings),
                      UiGuard(policy))

    def clicked(elem_id: str) -> Any:
        return next(fn.fn for fn in blocks.fns.values() if fn.targets
                    and fn.targets[0][0] in blocks.blocks
                    and getattr(blocks.blocks[fn.targets[0][0]], "elem_id", None) == elem_id)

    request = Request({"type": "http", "headers": [
        (b"cookie", f"{SIGN_IN_COOKIE}={token}".encode())]})
    *_, pending, _outcome = clicked("action-canary")(candidate, request=request)
    done = clicked("action-confirm")(pending, 10, "try it", request=request)
    assert "st-icon-ok" in done[-1] and f"by **{ADMIN}**" in done[-1]
    anonymous = Request({"type": "http", "headers": []})
    with pytest.raises(gr.Error, match="Sign in as admin"):
        clicked("action-confirm")(pending, 10, "again", request=anonymous)
    with session_scope(settings) as session:
        events = registry_events(session)
    action, actor, reason = events[-1]
    assert (action, actor) == ("canary_start", ADMIN) and "try it" in reason


def _admin_account(settings: Settings) -> tuple[str, str]:
    with session_scope(settings) as session:
        accounts.create_account(session=session, username=ADMIN, role="admin",
                                password=ADMIN_PASSWORD)
    return ADMIN, ADMIN_PASSWORD


def registry_events(session: Session) -> list[tuple[str, str, str]]:
    return [(e.action, e.actor, e.reason)
            for e in session.scalars(select(ModelEvent).order_by(ModelEvent.id))]


# --- the sign-in page -----------------------------------------------------------------------

def test_sign_in_page(roles_server: Server) -> None:
    with httpx.Client(base_url=roles_server.url, timeout=30) as client:
        form = client.get("/sign-in")
        assert form.status_code == 200 and 'name="password"' in form.text
        wrong = client.post("/sign-in", data={"username": ADMIN, "password": "nope-nope"})
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        assert SIGN_IN_COOKIE not in wrong.cookies
        right = client.post("/sign-in", data={"username": ADMIN, "password": ADMIN_PASSWORD})
        assert right.status_code == 303 and right.headers["location"] == "/"
        cookie = right.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert f"Signed in as <strong>{ADMIN}</strong>" in client.get("/sign-in").text
        client.post("/sign-out")
        assert 'name="password"' in client.get("/sign-in").text
    with httpx.Client(base_url=roles_server.url, timeout=30) as guesser:
        statuses = [guesser.post("/sign-in", data={"username": ADMIN,
                                                    "password": f"guess-{i}"}).status_code
                    for i in range(8)]
    assert 429 in statuses and statuses[0] == 401  # guessing is slowed down per address


@pytest.mark.e2e
def test_ui_rate_limit_per_client(trained_data_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(trained_data_dir, data_dir)
    server = start_server(data_dir, tmp_path / "server.log", extra_env={
        "UI_RATE_LIMIT_PER_MINUTE": "6", "UI_RATE_LIMIT_BURST": "3"})
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            deps, _ = dependencies(client)
            classify = next(d["id"] for d in deps if d["api_name"] == "classify")
            outcomes = [call_fn(client, classify, ["refund my card payment"]) for _ in range(5)]
            metrics = client.get("/metrics").text
    finally:
        stop_server(server)
    assert [o.success for o in outcomes[:3]] == [True] * 3
    assert [o.output.get("status") for o in outcomes[3:]] == [429, 429]
    assert "Too many requests" in outcomes[3].text
    assert "support_triage_ui_rate_limited_requests_total 2.0" in metrics


# --- Sign in with Hugging Face on a Space ---------------------------------------------------

OAUTH_SECRET = "oauth-client-secret-for-tests"


def hugging_face_session_cookie(username: str) -> dict[str, str]:
    """The cookie Gradio's OAuth callback leaves after a Hugging Face sign-in (a Starlette
    session signed with the Space's OAuth secret, as gradio.oauth configures it)."""
    signer = itsdangerous.TimestampSigner(
        hashlib.sha256((OAUTH_SECRET + "-v4").encode()).hexdigest())
    session = {"oauth_info": {"userinfo": {"preferred_username": username, "name": username},
                              "access_token": "hf_test", "expires_at": time.time() + 3600}}
    data = base64.b64encode(json.dumps(session).encode())
    return {"session": signer.sign(data).decode()}


@pytest.mark.e2e
def test_hugging_face_sign_in_on_a_space(trained_data_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(trained_data_dir, data_dir)
    server = start_server(data_dir, tmp_path / "server.log", extra_env={
        "SYSTEM": "spaces", "SPACE_ID": "team/triage", "OAUTH_CLIENT_ID": "client-id",
        "OAUTH_CLIENT_SECRET": OAUTH_SECRET, "OAUTH_SCOPES": "openid profile",
        "OPENID_PROVIDER_URL": "http://127.0.0.1:9", "ADMIN_USERS": "alice",
        "REVIEWER_USERS": "bob, carol", "UI_RATE_LIMIT_PER_MINUTE": "0"})
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            deps, components = dependencies(client)
            assert any("Sign in with Hugging Face" in str(c.get("props", {}).get("value"))
                       for c in components.values())  # Gradio's LoginButton
            on_load = next(d for d in deps if d["api_name"] == "on_load")
            queue = next(d for d in deps if d["api_name"] == "load_queue")
            retrain = button_handler(deps, components, "Retrain now")
            seen = {}
            for who in ("alice", "bob", "mallory", None):
                client.cookies.clear()
                if who:
                    client.cookies.update(hugging_face_session_cookie(who))
                seen[who] = (call_fn(client, on_load["id"], []).text,
                             call_fn(client, queue["id"],
                                     sweep_inputs(queue, components, "x")).text,
                             call_fn(client, retrain["id"], []).text)
    finally:
        stop_server(server)
    assert "Signed in as **alice** (admin)" in seen["alice"][0]
    assert "Signed in as **bob** (reviewer)" in seen["bob"][0]
    assert " pending" in seen["bob"][1] and "need the admin role" in seen["bob"][2]
    assert "Signed in as **mallory** (agent)" in seen["mallory"][0]
    assert " pending" not in seen["mallory"][1]
    assert "Not signed in" in seen[None][0] and " pending" not in seen[None][1]
