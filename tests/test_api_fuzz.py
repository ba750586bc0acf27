"""Fuzz the ingest API from its own OpenAPI document (Schemathesis), on a fixed budget.

Valid and invalid bodies (positive and negative generation) go to every
operation, with a valid gateway token (so they reach the handlers), and with
no token or a revoked one. Whatever comes: no 500, no crash, and no good data lost:
every event of a batch is accepted, a duplicate or refused by index, and
everything acknowledged is in the database; every client of an applied
snapshot that was not refused has an active session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from sqlmodel import Session, col, func, select

import active_sessions.api as api_module
from active_sessions import reconcile, tokens
from active_sessions.api import api
from active_sessions.models import Gateway, IngestEvent
from active_sessions.models import Session as VpnSession
from tests.factories import shared_engine

GATEWAY = "gw-fuzz"
# Per operation and test; with two tests over three operations this stays well under a minute.
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api)
# Tokens come from the tests (a valid one, or a bogus one), not from generation.
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], with_security_parameters=False
)


@pytest.fixture(scope="module")
def fuzz_db(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The API on a SQLite database of its own, with a token for GATEWAY."""
    for engine in shared_engine("sqlite", tmp_path_factory.mktemp("fuzz")):
        with Session(engine) as db:
            workspace_id = reconcile.get_or_create_workspace(db, "Fuzz").id
            token = tokens.create_token(db, workspace_id=workspace_id, gateway=GATEWAY)
            revoked = tokens.create_token(db, workspace_id=workspace_id, gateway="gw-retired")
            tokens.revoke_tokens(db, workspace_id=workspace_id, gateway="gw-retired")
            db.commit()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(api_module, "get_engine", lambda url=None, engine=engine: engine)
            yield {"engine": engine, "token": token, "revoked": revoked}


def _counts(engine: sa.Engine) -> tuple[int, int]:
    with Session(engine) as db:
        events = db.exec(select(func.count()).select_from(IngestEvent)).one()
        sessions = db.exec(select(func.count()).select_from(VpnSession)).one()
    return events, sessions


def _stored_event_ids(engine: sa.Engine, ids: list[str]) -> set[str]:
    with Session(engine) as db:
        statement = (
            select(IngestEvent.event_id)
            .join(Gateway, Gateway.id == IngestEvent.gateway_id)
            .where(Gateway.name == GATEWAY, col(IngestEvent.event_id).in_(ids))
        )
        return set(db.exec(statement))


def _active_keys(engine: sa.Engine) -> set[str]:
    with Session(engine) as db:
        statement = select(VpnSession.client_key).where(
            VpnSession.entry_gateway_name == GATEWAY, col(VpnSession.ended_at).is_(None)
        )
        return set(db.exec(statement))


def _is_post(case) -> bool:
    """A POST to a POST operation (negative generation also tries other methods)."""
    return case.method == "POST" and case.operation.method.upper() == "POST"


def _check_nothing_lost(case, response, engine: sa.Engine) -> None:
    """What the answer acknowledges is stored; every good item is acknowledged."""
    if response.status_code not in (200, 422) or not _is_post(case):
        return
    answer = response.json()
    refused = {refusal["index"] for refusal in answer.get("refused", [])}
    body = case.body
    if case.path.endswith("/events") and "accepted" in answer:
        items = body if isinstance(body, list) else body["events"]
        acknowledged = answer["accepted"] + answer["duplicates"]
        assert len(acknowledged) + len(refused) == len(items), "an event neither acknowledged nor refused"
        assert _stored_event_ids(engine, answer["accepted"]) == set(answer["accepted"])
    if case.path.endswith("/snapshots") and "connected" in answer and not answer["ignored"]:
        active = _active_keys(engine)
        for index, client in enumerate(body["clients"]):
            if index not in refused:
                assert f"api={client['id'].strip()}" in active, f"client {index} was kept but has no session"


@schema.parametrize()
@FUZZ
def test_fuzz_with_a_valid_token(case, fuzz_db):
    response = case.call(headers={"Authorization": f"Bearer {fuzz_db['token']}"})
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code != 401, "a valid token was refused"
    _check_nothing_lost(case, response, fuzz_db["engine"])


@schema.parametrize()
@FUZZ
def test_fuzz_without_a_valid_token(case, fuzz_db):
    before = _counts(fuzz_db["engine"])
    for headers in ({}, {"Authorization": f"Bearer {fuzz_db['revoked']}"}):
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error])
        if _is_post(case):
            # Refused before or at the token check (an unreadable body is refused before it).
            assert response.status_code in (400, 401, 413, 415), response.text
    assert _counts(fuzz_db["engine"]) == before, "a request without a valid token changed data"
