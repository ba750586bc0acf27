"""The ingest API (`/api/v1`), mounted on the app's backend.

Gateways authenticate with their own token and report snapshots or events.
Every acknowledged report is committed before the answer is sent; while the
database is unreachable a report is refused with 503 (and a Retry-After), never
acknowledged, so the gateway sends it again.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from active_sessions import reconcile, tokens
from active_sessions.db import database_unavailable, get_engine
from active_sessions.ingest import BadRequest, EventBatchDoc, SnapshotDoc, parse_events, parse_snapshot
from active_sessions.models import Gateway, utcnow

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024
API_PREFIX = "/api/v1"
RETRY_AFTER_SECONDS = 5

router = APIRouter()


class ApiError(Exception):
    def __init__(self, status: int, problem: str, errors: list[dict[str, str]] | None = None):
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.errors = errors or []


class _AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: a field name echoed from a request may be a lone surrogate."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
    return _AsciiJSONResponse({"error": error.problem, "errors": error.errors}, status_code=error.status)


async def _database_error(_request: Request, error: sa.exc.SQLAlchemyError) -> JSONResponse:
    if not database_unavailable(error):
        raise error
    # The request's transaction was rolled back: nothing of it was kept.
    log.warning("database unavailable, refused a request with 503: %s", str(error).splitlines()[0])
    return _AsciiJSONResponse(
        {"error": "database unavailable: nothing was stored, send the request again", "errors": []},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _read_json(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise ApiError(413, f"body larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"body larger than {MAX_BODY_BYTES} bytes")
    content_type = request.headers.get("content-type", "")
    if not content_type.split(";")[0].strip().lower() == "application/json":
        raise ApiError(415, "send application/json")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        # ValueError: not UTF-8, not JSON, or an integer of more than 4300 digits;
        # RecursionError: nested too deep.
        raise ApiError(400, f"body is not valid JSON: {error}") from error


# Database work runs in a worker thread, so that it never blocks the event loop
# (in the app, that loop also serves the consoles' websockets), and one report at a
# time per process: SQLite takes one writer anyway, and two batches of a gateway must
# not race (an event stored twice, a session started twice). Parsing runs outside
# the lock, alongside another report's database work.
_writer = threading.Lock()


def _gateway(authorization: str) -> Gateway:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "send the gateway's token as 'Authorization: Bearer <token>'")
    with Session(get_engine(), expire_on_commit=False) as db:
        gateway = tokens.authenticate(db, token.strip())
    if gateway is None:
        raise ApiError(401, "unknown or revoked token")
    return gateway


def _answer(payload: dict[str, Any], refused: list) -> JSONResponse:
    payload["refused"] = [refusal.as_dict() for refusal in refused]
    # Some items refused: a client error, though the good items were kept.
    return _AsciiJSONResponse(payload, status_code=422 if refused else 200)


def _body_schema(model) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


_RESPONSES = {
    401: {"description": "No token, or an unknown or revoked one"},
    413: {"description": "Body too large"},
    415: {"description": "Not JSON"},
    422: {"description": "Some items (or the whole request) refused; good items were kept"},
    503: {"description": "Database unavailable: nothing was stored; send again after Retry-After seconds"},
}


def _parse(parse, body: Any, **kwargs):
    try:
        return parse(body, **kwargs)
    except BadRequest as error:
        raise ApiError(422, "request refused", error.errors) from error


def _apply(apply, reporter: Gateway, **kwargs):
    """Apply a report of the gateway and commit it, one at a time; received now."""
    with _writer, Session(get_engine(), expire_on_commit=False) as db:
        result = apply(db, workspace_id=reporter.workspace_id, received_at=utcnow(), **kwargs)
        db.commit()
    return result


@router.post(f"{API_PREFIX}/snapshots", openapi_extra=_body_schema(SnapshotDoc), responses=_RESPONSES)
async def post_snapshot(request: Request) -> JSONResponse:
    """Everything connected to the token's gateway now; sessions not listed end."""
    # Who asks first: a stranger's body is not even read.
    gateway = await run_in_threadpool(_gateway, request.headers.get("authorization", ""))
    body = await _read_json(request)
    snapshot, refused = await run_in_threadpool(
        _parse, parse_snapshot, body, gateway=gateway.name, received_at=utcnow()
    )
    result = await run_in_threadpool(_apply, reconcile.apply_snapshot, gateway, snapshot=snapshot)
    return _answer(
        {
            "ignored": result.ignored,
            "started": result.started,
            "ended": result.ended,
            "connected": result.updated + result.started,
        },
        refused,
    )


@router.post(f"{API_PREFIX}/events", openapi_extra=_body_schema(EventBatchDoc), responses=_RESPONSES)
async def post_events(request: Request) -> JSONResponse:
    """Session events of the token's gateway; retries and any order are fine."""
    gateway = await run_in_threadpool(_gateway, request.headers.get("authorization", ""))
    body = await _read_json(request)
    parsed = await run_in_threadpool(_parse, parse_events, body)
    result = await run_in_threadpool(
        _apply, reconcile.apply_events, gateway, gateway=gateway.name, events=parsed.items
    )
    return _answer({"accepted": result.accepted, "duplicates": result.duplicates}, parsed.refused)


@router.get(f"{API_PREFIX}/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def _openapi_of(app: FastAPI) -> dict:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (SnapshotDoc, EventBatchDoc):
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(definition.pop("$defs", {}))
            components[model.__name__] = definition
        schema["components"]["securitySchemes"] = {"gatewayToken": {"type": "http", "scheme": "bearer"}}
        schema["security"] = [{"gatewayToken": []}]
        app.openapi_schema = schema
    return app.openapi_schema


def create_api() -> FastAPI:
    """The backend's HTTP endpoints: the ingest API, the sign-in form's and the export's.

    A new app each time: Reflex adds its CORS middleware to the app it is given,
    which Starlette refuses once that app has served a request (as the tests' do).
    """
    from active_sessions.auth_api import router as auth_router
    from active_sessions.export_api import router as export_router

    app = FastAPI(
        title="Active Sessions ingest API",
        version="1",
        description="Gateways report who is connected: snapshots or events, authenticated by a gateway token.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(sa.exc.SQLAlchemyError, _database_error)
    app.include_router(router)
    app.include_router(auth_router)
    app.include_router(export_router)
    app.openapi = lambda: _openapi_of(app)
    return app


# For tests and tools that serve the API alone (`tests/api_server.py`).
api = create_api()
