"""The sessions export over HTTP: the file the admin's browser saves.

The grid's Export buttons go through `ExportState.export` (the admin check, the
view the tab shows), which sends the browser here with that view in the URL.
Anyone can ask for a URL, so this answer checks the sign-in cookie again, as
strictly: an admin of the workspace, or nothing. Over HTTP the file streams to
the browser's download as it would from any file server, instead of riding the
websocket as base64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from active_sessions import auth, queries
from active_sessions.db import session_scope, side_session
from active_sessions.display import now_utc, valid_timezone, zone
from active_sessions.export import EXPORT_FORMATS, check_columns, export_filename, export_sessions
from active_sessions.view import InvalidView, SessionView

router = APIRouter(prefix="/export", include_in_schema=False)

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# Export-only parameters beside the view's own (`SessionView.to_query_params`).
COLUMNS_PARAM = "columns"
TIMEZONE_PARAM = "tz"
# The view's page and page size do not apply: an export starts at the first row.
_PAGING_PARAMS = ("page", "size")


@dataclass(frozen=True)
class ExportRequest:
    fmt: str
    view: SessionView
    columns: tuple[str, ...]
    timezone: str

    def path(self) -> str:
        """The URL path and query that asks for this export."""
        params = {
            key: value for key, value in self.view.to_query_params().items() if key not in _PAGING_PARAMS
        }
        params[COLUMNS_PARAM] = ",".join(self.columns)
        params[TIMEZONE_PARAM] = self.timezone
        return f"{router.prefix}/sessions.{self.fmt}?{urlencode(params)}"


def parse_export_request(fmt: str, params: Mapping[str, str]) -> ExportRequest:
    """The export a URL asks for, or InvalidView naming what is wrong (nothing falls back)."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidView(f"unknown export format {fmt!r}: expected one of {EXPORT_FORMATS}")
    view_params = {key: value for key, value in params.items() if key not in (COLUMNS_PARAM, TIMEZONE_PARAM)}
    view = SessionView.from_query_params(view_params, strict=True)
    if not params.get(COLUMNS_PARAM):
        raise InvalidView(f"name the columns to export: {COLUMNS_PARAM}=member,device,...")
    columns = tuple(params[COLUMNS_PARAM].split(","))
    try:
        check_columns(columns)
    except ValueError as error:
        raise InvalidView(str(error)) from error
    timezone = valid_timezone(params.get(TIMEZONE_PARAM))
    if timezone is None:
        raise InvalidView(f"unknown time zone {params.get(TIMEZONE_PARAM)!r}")
    return ExportRequest(fmt=fmt, view=view, columns=columns, timezone=timezone)


def audit_details(request: ExportRequest, *, rows: int, matching: int) -> dict:
    """What the audit log keeps of an export: the view, the columns and the row counts."""
    view = request.view
    return {
        "format": request.fmt,
        "filters": {key: list(values) for key, values in view.filters.items()},
        "search": view.search,
        "sort": ("-" if view.descending else "") + view.sort,
        "columns": list(request.columns),
        "rows": rows,
        "matching": matching,
    }


class _Refused(Exception):
    def __init__(self, status: int, problem: str):
        super().__init__(problem)
        self.status = status
        self.problem = problem


def _export(request: ExportRequest, token: str | None, address: str | None) -> tuple[bytes, dict[str, str]]:
    """The file and its headers, after the admin check; the export goes to the audit log."""
    # The second session counts the matches while the first reads the rows.
    with session_scope() as db, side_session() as count_db:
        identity = auth.identify(db, token)
        if identity is None:
            raise _Refused(401, "sign in to the console to export")
        if not identity.is_admin:
            raise _Refused(403, "the Active Sessions console is for workspace admins")
        now = now_utc()
        page = queries.export_rows(
            session=db, workspace_id=identity.workspace_id, view=request.view, count_session=count_db
        )
        data = export_sessions(
            page.fields, request.columns, fmt=request.fmt, now=now, tz=zone(request.timezone)
        )
        auth.record_export(
            db,
            identity,
            address=address,
            details=audit_details(request, rows=page.count, matching=page.total),
        )
    headers = {
        "Content-Disposition": f'attachment; filename="{export_filename(request.fmt, now)}"',
        "Cache-Control": "no-store",
        # For scripts: how many sessions matched, and how many the file holds.
        "X-Matching-Sessions": str(page.total),
        "X-Exported-Sessions": str(page.count),
    }
    return data, headers


@router.get("/sessions.{fmt}")
async def sessions_file(fmt: str, request: Request) -> Response:
    # A page of another site may link here: the browser would send the cookie along
    # (SameSite=Lax) and save a file its admin did not ask for.
    if request.headers.get("sec-fetch-site") == "cross-site":
        return JSONResponse({"error": "export from the console's own page"}, status_code=403)
    try:
        export = parse_export_request(fmt, _single_values(request.query_params.multi_items()))
    except InvalidView as invalid:
        return JSONResponse({"error": f"bad export request: {invalid}"}, status_code=400)
    address = request.client.host if request.client else None
    try:
        data, headers = await run_in_threadpool(
            _export, export, request.cookies.get(auth.COOKIE_NAME), address
        )
    except _Refused as refused:
        return JSONResponse({"error": refused.problem}, status_code=refused.status)
    return Response(data, media_type=MEDIA_TYPES[export.fmt], headers=headers)


def _single_values(items: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Query parameters by name; a name given twice is refused rather than one copy picked."""
    params: dict[str, str] = {}
    for key, value in items:
        if key in params:
            raise InvalidView(f"parameter {key!r} given more than once")
        params[key] = value
    return params
