"""Schemathesis reads the app's own OpenAPI spec and throws generated requests, valid ones
and ones that break the spec, at every operation: never a 5xx, and the answers conform to
the documented statuses, content types and schemas.

Schemathesis' pytest plugin (`schema.parametrize` on a fixture) does not run under pytest 9
(it reads a private node attribute that pytest 9 removed), so the tests use its Hypothesis
strategies directly; the generation and the checks are schemathesis' own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis

# Imported at collection, not lazily inside a fixture: pytest rewrites a plugin's modules as
# they are imported (ast.parse), and CPython 3.11 fails ("AST constructor recursion depth
# mismatch") when another thread, such as a running app's, parses at the same moment.
import schemathesis.specs.openapi.schemas  # noqa: F401
from api_support import ADMIN, AUTH, api_client, api_settings, stop_apps
from conftest import SmallModel, install_model, make_settings
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.types import ASGIApp, Receive, Scope, Send

from feedback.db import dispose_engines

HEADERS = {**AUTH, "X-Admin-Token": ADMIN}
SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory,
               small_model: SmallModel) -> Iterator[schemathesis.BaseSchema]:
    base = make_settings(tmp_path_factory.mktemp("schema"))
    install_model(base, small_model, promote=True)
    client = api_client(api_settings(base, batch_max_texts=20))  # runs the app's lifespan once
    yield schemathesis.openapi.from_asgi("/api/openapi.json", without_lifespan(client.app))
    stop_apps()
    dispose_engines()


def without_lifespan(app: ASGIApp) -> ASGIApp:
    """The app for schemathesis, whose ASGI transport runs a lifespan around every call: the
    app's own lifespan already runs once (api_client), so these are answered here."""
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    return wrapped


def operations(schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    ops = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in ops} == {
        "/api/v1/predict", "/api/v1/predict/batch", "/api/v1/feedback", "/api/v1/health",
        "/api/v1/health/live", "/api/v1/health/ready", "/api/v1/models",
        "/api/v1/export/predictions.csv"}
    return ops


def has_inputs(operation: schemathesis.APIOperation) -> bool:
    return bool(len(operation.body) or len(operation.query) or len(operation.headers))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(api_schema: schemathesis.BaseSchema, mode: GenerationMode) -> None:
    for operation in operations(api_schema):
        if mode is GenerationMode.NEGATIVE and not has_inputs(operation):
            continue  # nothing to break in GET /health or GET /models
        @SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers=HEADERS)
            assert response.status_code < 500, \
                f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
            case.validate_response(response, checks=[not_a_server_error], headers=HEADERS)

        run()


def test_valid_requests_get_documented_answers(api_schema: schemathesis.BaseSchema) -> None:
    """Schemathesis' checks on valid requests: status documented, body matches the response
    schema, content type and headers as declared. Not "schema-valid data is accepted": a
    well-formed message can still be empty or binary, which the service refuses (422)."""
    for operation in operations(api_schema):
        @SETTINGS
        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=HEADERS, excluded_checks=[positive_data_acceptance])

        run()
