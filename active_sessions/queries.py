"""Every database query of the project.

Plain functions that take the database session as the keyword argument
`session` and a workspace id: nothing here reads another workspace's rows.
Filtering, sorting, counting and paging all happen in SQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col, select

from active_sessions.columns import COLUMNS_BY_KEY, EXPORT_FIELDS, EXPORT_LIMIT
from active_sessions.models import (
    SEARCH_SEPARATOR,
    Application,
    AuditEntry,
    ChangeCounter,
    ConnectionType,
    Device,
    DeviceOS,
    DeviceType,
    Gateway,
    GatewayToken,
    IngestEvent,
    LoginSession,
    Member,
    Network,
    SessionGateway,
    WireGuardPeer,
    Workspace,
)
from active_sessions.models import Session as VpnSession
from active_sessions.view import SessionView

MEMBER_OPTION_LIMIT = 50

# Filter key -> the session column it matches (the gateway filter goes through
# SessionGateway, see `_filter_condition`).
_FILTER_COLUMNS = {
    "member": VpnSession.member_id,
    "device_type": VpnSession.device_type,
    "device_os": VpnSession.device_os,
    "connection_type": VpnSession.connection_type,
    "app": VpnSession.app_name,
    "network": VpnSession.network_name,
    "region": VpnSession.region,
}

# What the grid reads of a session, under the row's own keys.
_ROW_COLUMNS = {
    "id": VpnSession.id,
    "member_id": VpnSession.member_id,
    "member": VpnSession.member_name,
    "member_email": VpnSession.member_email,
    "device": VpnSession.device_name,
    "device_type": VpnSession.device_type,
    "device_os": VpnSession.device_os,
    "connection_type": VpnSession.connection_type,
    "app": VpnSession.app_name,
    "started_at": VpnSession.started_at,
    "origin": VpnSession.origin_ip,
    "network": VpnSession.network_name,
    "region": VpnSession.region,
    # JSON lists, read as they are stored and decoded by `_name_list`.
    "gateways": sa.type_coerce(VpnSession.gateway_names, sa.Text()),
    "flags": sa.type_coerce(VpnSession.flags, sa.Text()),
}
# What an export reads: its fields and the id (no flags: a thousand rows need not decode them).
_EXPORT_KEYS = ("id", *EXPORT_FIELDS)


def _row_columns(keys: Iterable[str] = _ROW_COLUMNS) -> list:
    return [_ROW_COLUMNS[key].label(key) for key in keys]


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int


@dataclass(frozen=True)
class FacetOption:
    value: str
    label: str
    count: int


# ---------------------------------------------------------------- lookups


def workspace_by_name(*, session: Session, name: str) -> Workspace | None:
    return session.exec(select(Workspace).where(Workspace.name == name)).first()


def workspace_names(*, session: Session) -> list[str]:
    return list(session.exec(select(Workspace.name).order_by(Workspace.name)))


def gateway_by_name(*, session: Session, workspace_id: int, name: str) -> Gateway | None:
    return session.exec(
        select(Gateway).where(Gateway.workspace_id == workspace_id, Gateway.name == name)
    ).first()


def network_by_name(*, session: Session, workspace_id: int, name: str) -> Network | None:
    return session.exec(
        select(Network).where(Network.workspace_id == workspace_id, Network.name == name)
    ).first()


def networks_by_id(*, session: Session, workspace_id: int) -> dict[int, Network]:
    rows = session.exec(select(Network).where(Network.workspace_id == workspace_id))
    return {network.id: network for network in rows}


def _in_chunks(values: Sequence, size: int = 500) -> Iterable[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def members_by_name(*, session: Session, workspace_id: int, names: Iterable[str]) -> dict[str, Member]:
    found: dict[str, Member] = {}
    for chunk in _in_chunks(sorted(set(names))):
        rows = session.exec(
            select(Member).where(Member.workspace_id == workspace_id, col(Member.name).in_(chunk))
        )
        found.update({member.name: member for member in rows})
    return found


def devices_by_member_and_name(
    *, session: Session, member_ids: Iterable[int]
) -> dict[tuple[int, str], Device]:
    found: dict[tuple[int, str], Device] = {}
    for chunk in _in_chunks(sorted(set(member_ids))):
        rows = session.exec(select(Device).where(col(Device.member_id).in_(chunk)))
        found.update({(device.member_id, device.name): device for device in rows})
    return found


def applications_by_name(
    *, session: Session, workspace_id: int, names: Iterable[str]
) -> dict[str, Application]:
    names = sorted(set(names))
    if not names:
        return {}
    rows = session.exec(
        select(Application).where(Application.workspace_id == workspace_id, col(Application.name).in_(names))
    )
    return {app.name: app for app in rows}


def gateways_by_name(*, session: Session, workspace_id: int, names: Iterable[str]) -> dict[str, Gateway]:
    names = sorted(set(names))
    if not names:
        return {}
    rows = session.exec(
        select(Gateway).where(Gateway.workspace_id == workspace_id, col(Gateway.name).in_(names))
    )
    return {gateway.name: gateway for gateway in rows}


def active_sessions_at_gateway(*, session: Session, gateway_id: int) -> dict[str, VpnSession]:
    """The active sessions that entered through a gateway, by client key."""
    rows = session.exec(
        select(VpnSession).where(
            VpnSession.entry_gateway_id == gateway_id,
            col(VpnSession.ended_at).is_(None),
        )
    )
    return {row.client_key: row for row in rows}


def gateway_ids_of_sessions(*, session: Session, session_ids: Iterable[int]) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    for chunk in _in_chunks(sorted(set(session_ids))):
        rows = session.exec(
            select(SessionGateway.session_id, SessionGateway.gateway_id).where(
                col(SessionGateway.session_id).in_(chunk)
            )
        )
        for session_id, gateway_id in rows:
            found.setdefault(session_id, set()).add(gateway_id)
    return found


def deactivate_session_gateways(*, session: Session, session_ids: Sequence[int]) -> None:
    """Mark the gateway links of ended sessions as no longer live."""
    for chunk in _in_chunks(list(session_ids)):
        session.exec(
            sa.update(SessionGateway).where(col(SessionGateway.session_id).in_(chunk)).values(active=False)
        )


def silent_gateways(*, session: Session, reported_before: datetime) -> list[Gateway]:
    """Gateways with active sessions whose last report is older than `reported_before`."""
    has_active = (
        select(VpnSession.id)
        .where(
            VpnSession.entry_gateway_id == Gateway.id,
            col(VpnSession.ended_at).is_(None),
        )
        .exists()
    )
    return list(
        session.exec(
            select(Gateway).where(
                sa.or_(
                    col(Gateway.last_report_at).is_(None),
                    col(Gateway.last_report_at) < reported_before,
                ),
                has_active,
            )
        )
    )


# ---------------------------------------------------------------- change counter


def change_version(*, session: Session, workspace_id: int) -> int:
    version = session.exec(
        select(ChangeCounter.version).where(ChangeCounter.workspace_id == workspace_id)
    ).first()
    return version or 0


def bump_change_version(*, session: Session, workspace_id: int, now: datetime) -> None:
    updated = session.exec(
        sa.update(ChangeCounter)
        .where(ChangeCounter.workspace_id == workspace_id)
        .values(version=ChangeCounter.version + 1, changed_at=now)
    )
    if updated.rowcount == 0:
        session.add(ChangeCounter(workspace_id=workspace_id, version=1, changed_at=now))


# ---------------------------------------------------------------- the grid


class _unindexed(FunctionElement):
    """An integer column that SQLite's planner must not look up by an index.

    Written `+column` on SQLite (its documented way to keep a term off an index, free
    on each entry of a walk where `column + 0` was an addition), which then walks the
    sort index and checks each row instead of fetching every match and sorting them
    all; PostgreSQL plans the other way well (an index lookup of each match, then a
    top-N sort), so there it is the plain column.
    """

    type = sa.Integer()
    inherit_cache = True


@compiles(_unindexed)
def _plain_column(element, compiler, **kw) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_unindexed, "sqlite")
def _unary_plus(element, compiler, **kw) -> str:
    return f"(+{compiler.process(element.clauses, **kw)})"


class _checked_on_the_walk(FunctionElement):
    """A subquery condition that PostgreSQL checks on each entry of an index walk.

    Written `coalesce(condition, false)` on PostgreSQL, which does not turn a subquery
    inside a function into a join: it walks the sort index in order, checks each entry
    against a hash of the subquery's ids and stops at the page, instead of joining all
    the matches and sorting them (a deep page of one gateway: 30 -> 13-16 ms). SQLite
    gets the condition as it is (see `_unindexed` for its walk).
    """

    type = sa.Boolean()
    inherit_cache = True


@compiles(_checked_on_the_walk)
def _condition_as_is(element, compiler, **kw) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_checked_on_the_walk, "postgresql")
def _condition_coalesced(element, compiler, **kw) -> str:
    return f"coalesce({compiler.process(element.clauses, **kw)}, false)"


class _IdArray(sa.types.TypeDecorator):
    """Integer ids bound as one parameter: a JSON array on SQLite, an integer array on PostgreSQL."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(sa.Integer))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value, dialect):
        ids = [int(each) for each in value]
        return ids if dialect.name == "postgresql" else json.dumps(ids)


class _in_id_array(FunctionElement):
    """`column IN ids`, the ids an `_IdArray` parameter (see `_among`)."""

    # Not Boolean: SQLite would get `... = 1`, which its planner cannot use.
    type = sa.types.NullType()
    inherit_cache = True


@compiles(_in_id_array, "sqlite")
def _in_json_each(element, compiler, **kw) -> str:
    column, ids = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{column} IN (SELECT value FROM json_each({ids}))"


@compiles(_in_id_array, "postgresql")
def _equals_any(element, compiler, **kw) -> str:
    column, ids = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{column} = ANY({ids})"


def _among(column, ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """`column IN ids` with the ids in one parameter: a thousand of them as a parameter
    each took longer to compile and bind than the query that reads their rows."""
    return _in_id_array(column, sa.bindparam("ids", list(ids), type_=_IdArray(), unique=True))


def _active(workspace_id: int) -> list[sa.ColumnElement[bool]]:
    return [VpnSession.workspace_id == workspace_id, col(VpnSession.ended_at).is_(None)]


def _live_links(workspace_id: int) -> list[sa.ColumnElement[bool]]:
    """The gateway links of the workspace's active sessions.

    A link's `active` mirrors its session's state (set on start, cleared on end),
    so this reads the small partial indexes of live links and never the history.
    """
    return [SessionGateway.workspace_id == workspace_id, SessionGateway.active]


def _filter_condition(
    workspace_id: int, key: str, values: tuple[str, ...], *, walked: bool = False
) -> sa.ColumnElement[bool]:
    if key == "gateway":
        # Any gateway the session accessed: its id among the live links to those gateways.
        # `_unindexed` keeps SQLite from fetching and sorting every linked session by id;
        # it walks the sort index instead and looks each id up in the set. `walked`: the
        # same on PostgreSQL (a deep page), which otherwise chooses the join.
        linked = _unindexed(VpnSession.id).in_(
            select(SessionGateway.session_id).where(
                *_live_links(workspace_id), col(SessionGateway.gateway_name).in_(values)
            )
        )
        return _checked_on_the_walk(linked) if walked else linked
    if key == "member":
        return col(VpnSession.member_id).in_([int(value) for value in values])
    return col(_FILTER_COLUMNS[key]).in_(values)


class _holds_text(FunctionElement):
    """`text` holds a needle literally: (text, LIKE pattern, needle) (see `_holds`)."""

    # Not Boolean: SQLite would get `... = 1` around it.
    type = sa.types.NullType()
    inherit_cache = True


@compiles(_holds_text)
def _like(element, compiler, **kw) -> str:
    text, pattern, _ = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{text} LIKE {pattern} ESCAPE '{_LIKE_ESCAPE}'"


@compiles(_holds_text, "postgresql")
def _strpos(element, compiler, **kw) -> str:
    text, _, needle = element.clauses
    return f"strpos({compiler.process(text, **kw)}, {compiler.process(needle, **kw)}) > 0"


_LIKE_ESCAPE = "/"


def _holds(column, needle: str) -> sa.ColumnElement[bool]:
    """`column` holds `needle` as it is (no wildcards): SQLite's LIKE, PostgreSQL's strpos,
    each the faster of the two there (a search of 100,000 sessions on PostgreSQL: LIKE 18 ms,
    strpos 12-15; on SQLite instr took a third longer than LIKE)."""
    escaped = "".join(_LIKE_ESCAPE + character if character in "%_/" else character for character in needle)
    return _holds_text(
        column,
        sa.bindparam("pattern", f"%{escaped}%", type_=sa.Text(), unique=True),
        sa.bindparam("needle", needle, type_=sa.Text(), unique=True),
    )


def _search_condition(text: str) -> sa.ColumnElement[bool]:
    # Literal matching (`_holds`): %, _ and the escape character are plain.
    needle = text.lower()
    if SEARCH_SEPARATOR not in needle:
        # `search_text` holds the searched fields lowercased and joined by the
        # separator, so a needle without it matches there exactly when it
        # matches one of the fields.
        return _holds(VpnSession.search_text, needle)
    return sa.or_(
        *(
            _holds(sa.func.lower(column), needle)
            for column in (
                VpnSession.member_name,
                VpnSession.member_email,
                VpnSession.device_name,
                VpnSession.origin_ip,
            )
        )
    )


def _view_conditions(
    workspace_id: int, view: SessionView, *, except_filters: Collection[str] = (), walked: bool = False
) -> list[sa.ColumnElement[bool]]:
    conditions = _active(workspace_id)
    for key, values in view.filters.items():
        if key not in except_filters:
            conditions.append(_filter_condition(workspace_id, key, values, walked=walked))
    if view.search:
        conditions.append(_search_condition(view.search))
    return conditions


def _order_by(view: SessionView) -> list:
    column = getattr(VpnSession, COLUMNS_BY_KEY[view.sort].sort_column)
    # Longest duration first is the earliest start first.
    descending = not view.descending if view.sort == "duration" else view.descending
    if descending:
        return [sa.desc(column), sa.desc(VpnSession.id)]
    return [sa.asc(column), sa.asc(VpnSession.id)]


# Columns read as JSON lists of names.
_LIST_KEYS = frozenset({"gateways", "flags"})


def _records(session: Session, statement, keys: Sequence[str]) -> list[tuple]:
    """The statement's records (values in `keys` order), each column converted by its type.

    The driver's rows are taken from its cursor and converted a column at a time:
    SQLAlchemy's row objects, one per record with a call per converted value, cost a
    thousand-row export as much as the query. Name lists come decoded.
    """
    result = session.connection().execute(statement)
    try:
        fetched = result.cursor.fetchall()
    finally:
        result.close()
    if not fetched:
        return []
    dialect = session.get_bind().dialect
    columns: list[Sequence] = list(zip(*fetched, strict=True))
    for index, (key, column) in enumerate(zip(keys, statement.selected_columns, strict=True)):
        convert = _name_list if key in _LIST_KEYS else column.type.result_processor(dialect, None)
        if convert is not None:
            columns[index] = list(map(convert, columns[index]))
    return list(zip(*columns, strict=True))


def _as_dicts(records: Sequence[tuple], keys: Sequence[str]) -> list[dict[str, Any]]:
    return [dict(zip(keys, record, strict=True)) for record in records]


def _name_list(stored: str | list | None) -> list[str]:
    """A JSON list column's value as a list of its own (a NULL from an older row reads as none)."""
    if isinstance(stored, str):
        # SQLite gives the stored text: the same few gateway lists recur on every page,
        # so each text is decoded once (a thousand rows decoded cost a fifth of an export).
        return list(_decoded_names(stored))
    return list(stored or ())


@lru_cache(maxsize=4096)
def _decoded_names(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text) or ())


def _count(session: Session, workspace_id: int, view: SessionView) -> int:
    if list(view.filters) == ["gateway"] and not view.search:
        # Only the gateway filter: count live links, no session row needed. A session
        # has one link per gateway (names are unique in a workspace), so only links to
        # several chosen gateways need DISTINCT, which costs a set of every id.
        gateways = view.filters["gateway"]
        counted = SessionGateway.session_id if len(gateways) == 1 else sa.distinct(SessionGateway.session_id)
        statement = select(sa.func.count(counted)).where(
            *_live_links(workspace_id), col(SessionGateway.gateway_name).in_(gateways)
        )
        return session.exec(statement).one()
    conditions = _view_conditions(workspace_id, view)
    return session.exec(select(sa.func.count()).select_from(VpnSession).where(*conditions)).one()


def count_active_sessions(*, session: Session, workspace_id: int, view: SessionView | None = None) -> int:
    return _count(session, workspace_id, view or SessionView())


# From this offset on, a page on PostgreSQL is found as ids first (see `_sorted_rows`).
DEEP_OFFSET = 1000
# From this offset on, a page nearer the end than the start is walked from the end.
REVERSE_OFFSET = 1000


def _sorted_rows(
    session: Session,
    workspace_id: int,
    view: SessionView,
    *,
    limit: int,
    offset: int,
    total: int,
    keys: Sequence[str],
) -> list[tuple]:
    """`limit` records from `offset` in the view's order, of the `total` that match."""
    # Each sort column's partial index carries every filter column, so this walks
    # one index in order, skipping non-matching and offset rows inside it; the
    # table is read for the rows returned (and, with a search, for the search
    # text of the rows that pass the filters).
    conditions = _view_conditions(workspace_id, view)
    order = _order_by(view)
    reverse = offset >= REVERSE_OFFSET and total - offset - limit < offset
    if reverse:
        # A page in the second half: the same rows are fewer index entries away from the
        # end, walked in the opposite order (the exact mirror, ties and NULLs included).
        limit, offset = min(limit, total - offset), max(0, total - offset - limit)
        order = _order_by(replace(view, descending=not view.descending))
    if offset >= DEEP_OFFSET and session.get_bind().dialect.name == "postgresql":
        # A deep page: its ids from the index alone, then those rows. PostgreSQL
        # would otherwise read and sort every matching row in full to skip them;
        # SQLite skips inside the index already, and the second query costs it more.
        walked = _view_conditions(workspace_id, view, walked=True)
        ids = list(
            session.exec(select(VpnSession.id).where(*walked).order_by(*order).limit(limit).offset(offset))
        )
        if not ids:
            return []
        conditions = [*_active(workspace_id), _among(VpnSession.id, ids)]
        offset = 0
    statement = select(*_row_columns(keys)).where(*conditions).order_by(*order).limit(limit).offset(offset)
    records = _records(session, statement, keys)
    return records[::-1] if reverse else records


# A search (without filters) matching at most this many sessions is paged from its ids.
SEARCH_ID_LIMIT = 2000


def _search_matches(
    session: Session, workspace_id: int, view: SessionView, count_session: Session | None = None
) -> tuple[int, list[int] | None]:
    """How many active sessions match the view's search, and their ids if at most SEARCH_ID_LIMIT.

    A search must look at every active session to count, and a rare needle makes
    the page walk look at all of them too. Instead: one pass over the narrow
    search index listing matches up to the limit, and only past it a count of all.
    With `count_session`, the index's lower half is searched there at the same time.
    """
    conditions = _view_conditions(workspace_id, view)
    split = _search_split(session, workspace_id) if count_session is not None else None
    if split is None:
        return _search_range(session, conditions)
    text = col(VpnSession.search_text)
    lower = _COUNTING.submit(_search_range, count_session, [*conditions, text < split])
    try:
        upper_total, upper_ids = _search_range(session, [*conditions, text >= split])
    finally:
        futures.wait([lower])
    lower_total, lower_ids = lower.result()
    total = lower_total + upper_total
    listed = lower_ids is not None and upper_ids is not None and total <= SEARCH_ID_LIMIT
    return total, (lower_ids + upper_ids if listed else None)


def _search_range(session: Session, conditions: list) -> tuple[int, list[int] | None]:
    """`_search_matches` over the index entries that meet `conditions`."""
    # One pass counts and lists together: listing up to the limit first and counting
    # after it passed read the index twice, the slowest searches (bench/run.py). The ids
    # come in one value: a row each would take the GIL back thousands of times from the
    # other half's thread. Listing every match costs little beside the pass itself (at
    # most ~8 bytes an active session, for a needle that matches every one).
    counted, listed = session.exec(
        select(sa.func.count(), _id_list(VpnSession.id)).select_from(VpnSession).where(*conditions)
    ).one()
    return counted, _few_ids(counted, listed)


def _few_ids(counted: int, listed: str | None) -> list[int] | None:
    """The ids an `_id_list` gave for `counted` sessions, or None past SEARCH_ID_LIMIT."""
    if counted > SEARCH_ID_LIMIT:
        return None
    return [int(value) for value in listed.split(",")] if listed else []


class _id_list(FunctionElement):
    """The ids of a column joined by commas, in one value (any order)."""

    type = sa.Text()
    inherit_cache = True


@compiles(_id_list, "sqlite")
def _group_concat(element, compiler, **kw) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)}, ',')"


@compiles(_id_list, "postgresql")
def _string_agg(element, compiler, **kw) -> str:
    return f"string_agg(CAST({compiler.process(element.clauses, **kw)} AS TEXT), ',')"


# The middle of a workspace's search index, by (database, workspace): (found at, text).
# Only a hint where to split a search in two, so it may be minutes old.
_SEARCH_SPLITS: dict[tuple[str, int], tuple[float, str | None]] = {}
SEARCH_SPLIT_MAX_AGE_S = 300.0
# Fewer active sessions than this are searched in one piece.
SEARCH_SPLIT_MIN_SESSIONS = 10_000


def _search_split(session: Session, workspace_id: int) -> str | None:
    """The search text halfway through the workspace's active sessions (None: do not split)."""
    key = (session.get_bind().url.render_as_string(hide_password=True), workspace_id)
    found = _SEARCH_SPLITS.get(key)
    if found is not None and time.monotonic() - found[0] < SEARCH_SPLIT_MAX_AGE_S:
        return found[1]
    active = _count(session, workspace_id, SessionView())
    split = None
    if active >= SEARCH_SPLIT_MIN_SESSIONS:
        split = session.exec(
            select(VpnSession.search_text)
            .where(*_active(workspace_id))
            .order_by(VpnSession.search_text)
            .limit(1)
            .offset(active // 2)
        ).first()
    _SEARCH_SPLITS[key] = (time.monotonic(), split)
    return split


def _rows_of(
    session: Session,
    workspace_id: int,
    view: SessionView,
    ids: list[int],
    *,
    limit: int,
    offset: int,
    keys: Sequence[str],
) -> list[tuple]:
    """`limit` records from `offset`, in the view's order, of the sessions `ids`."""
    # Few ids, or a deep page: read them and sort. Many and a shallow page: walk
    # the sort index (`_unindexed` keeps SQLite from reading them all) and stop early.
    walk = len(ids) >= SEARCH_ID_LIMIT // 2 and offset + limit <= len(ids) // 4
    matching = _among(_unindexed(VpnSession.id) if walk else VpnSession.id, ids)
    statement = (
        select(*_row_columns(keys))
        .where(*_active(workspace_id), matching)
        .order_by(*_order_by(view))
        .limit(limit)
        .offset(offset)
    )
    return _records(session, statement, keys)


def _page(
    session: Session,
    workspace_id: int,
    view: SessionView,
    *,
    limit: int,
    offset: int,
    keys: Sequence[str],
    count_session: Session | None = None,
) -> tuple[list[tuple], int]:
    """`limit` records (values in `keys` order) from `offset` in the view's order, and how
    many sessions match.

    With `count_session` (a second session, holding nothing uncommitted that the
    count must see; in the app `db.side_session`, whose pool the waiting caller never
    holds), a first page is counted there while its records are read, and a search is
    split in two halves searched at once: the database does both together, on a
    connection each.
    """
    if view.search and not view.filters:
        total, ids = _search_matches(session, workspace_id, view, count_session)
        if ids is not None:
            records = (
                _rows_of(session, workspace_id, view, ids, limit=limit, offset=offset, keys=keys)
                if offset < total
                else []
            )
            return records, total
    elif offset == 0:
        return _first_page(session, workspace_id, view, limit=limit, keys=keys, count_session=count_session)
    else:
        total = _count(session, workspace_id, view)
    # Past the end (or nothing matches) there is nothing to walk for.
    records = (
        _sorted_rows(session, workspace_id, view, limit=limit, offset=offset, total=total, keys=keys)
        if offset < total
        else []
    )
    return records, total


def _first_page(
    session: Session,
    workspace_id: int,
    view: SessionView,
    *,
    limit: int,
    keys: Sequence[str],
    count_session: Session | None,
) -> tuple[list[tuple], int]:
    """The first `limit` records: found without the count, and a short page is its own count."""
    if count_session is None:
        records = _sorted_rows(session, workspace_id, view, limit=limit, offset=0, total=limit, keys=keys)
        total = len(records) if len(records) < limit else _count(session, workspace_id, view)
        return records, total
    counting = _COUNTING.submit(_count, count_session, workspace_id, view)
    try:
        records = _sorted_rows(session, workspace_id, view, limit=limit, offset=0, total=limit, keys=keys)
    finally:
        # Never leave the count running on a session its owner is about to close.
        futures.wait([counting])
    # The count's snapshot may be a moment apart from the records': it is never fewer than they.
    total = max(counting.result(), len(records)) if len(records) == limit else len(records)
    return records, total


def active_sessions_page(
    *, session: Session, workspace_id: int, view: SessionView, count_session: Session | None = None
) -> Page:
    """One page of the active sessions in the view's order, and how many match (see `_page`)."""
    keys = tuple(_ROW_COLUMNS)
    records, total = _page(
        session,
        workspace_id,
        view,
        limit=view.page_size,
        offset=view.page * view.page_size,
        keys=keys,
        count_session=count_session,
    )
    return Page(rows=_as_dicts(records, keys), total=total)


# Counts and search halves that run beside a read, each on a session (connection) of its own.
_COUNTING = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="count")


@dataclass(frozen=True)
class ExportRows:
    """The sessions of an export, field by field, and how many sessions matched the view.

    `fields` maps the id and each field an export reads (`EXPORT_FIELDS`) to the sessions' values in
    the view's order: a file is written a column at a time, and a thousand rows as
    records would cost it a dict each.
    """

    fields: dict[str, list[Any]]
    total: int

    @property
    def count(self) -> int:
        """How many sessions the export holds."""
        return len(self.fields["id"])

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The same sessions as one dict each, in order."""
        return _as_dicts(list(zip(*self.fields.values(), strict=True)), tuple(self.fields))


def export_rows(
    *,
    session: Session,
    workspace_id: int,
    view: SessionView,
    limit: int = EXPORT_LIMIT,
    count_session: Session | None = None,
) -> ExportRows:
    """The first `limit` sessions of the view in its order (all pages), and how many match.

    They hold what an export shows (`EXPORT_FIELDS`), not the flags and member ids of
    the grid. `count_session`: see `_page`.
    """
    # A search alone lists its few matches already (`_search_matches`).
    few = None if view.search and not view.filters else _few_matches(session, workspace_id, view)
    if few is not None:
        records = _rows_of(session, workspace_id, view, few, limit=limit, offset=0, keys=_EXPORT_KEYS)
        total = max(len(few), len(records))
    else:
        records, total = _page(
            session, workspace_id, view, limit=limit, offset=0, keys=_EXPORT_KEYS, count_session=count_session
        )
    values = list(zip(*records, strict=True)) if records else [()] * len(_EXPORT_KEYS)
    fields = {key: list(column) for key, column in zip(_EXPORT_KEYS, values, strict=True)}
    return ExportRows(fields=fields, total=total)


def _few_matches(session: Session, workspace_id: int, view: SessionView) -> list[int] | None:
    """The ids of the view's active sessions (any order) if at most SEARCH_ID_LIMIT match.

    A thousand rows of a rare view, walked for in the sort index, pass nearly every
    entry of it (a view of 1% of the sessions: all of them). Its matches, found by the
    filters' indexes, read and sorted, cost a fraction of that, and their number is the
    count. A common view stops this look at SEARCH_ID_LIMIT + 1 matches.
    """
    matching = (
        select(VpnSession.id)
        .where(*_view_conditions(workspace_id, view))
        .limit(SEARCH_ID_LIMIT + 1)
        .subquery()
    )
    counted, listed = session.exec(select(sa.func.count(), _id_list(matching.c.id))).one()
    return _few_ids(counted, listed)


# ---------------------------------------------------------------- facets


def _column_counts(session: Session, column, conditions: list) -> dict[str, int]:
    statement = select(column, sa.func.count()).where(*conditions).group_by(column)
    return {value: count for value, count in session.exec(statement) if value is not None}


# The facets that are plain session columns, in the order of `ix_session_active_facets`.
_CUBE_KEYS = ("device_type", "device_os", "connection_type", "app", "network", "region")


def _cube_counts(
    session: Session, workspace_id: int, view: SessionView, keys: Collection[str]
) -> dict[str, dict[str, int]]:
    """The counts of the column facets in `keys`, from one GROUP BY.

    Grouping by all six columns under the other conditions (member, gateway,
    search) gives small groups; a group counts towards facet K exactly when it
    passes every selected column filter but K's own, which is "under the other
    filters". One index-ordered pass instead of one query per facet.
    """
    columns = [_FILTER_COLUMNS[key] for key in _CUBE_KEYS]
    conditions = _view_conditions(workspace_id, view, except_filters=_CUBE_KEYS)
    statement = select(*columns, sa.func.count()).where(*conditions).group_by(*columns)
    selected = {key: set(view.filters[key]) for key in _CUBE_KEYS if key in view.filters}
    counts: dict[str, dict[str, int]] = {key: {} for key in keys}
    for *values, count in session.exec(statement):
        group = dict(zip(_CUBE_KEYS, values, strict=True))
        failed = [key for key, allowed in selected.items() if group[key] not in allowed]
        if len(failed) > 1:
            continue
        for key in keys:
            value = group[key]
            if value is not None and (not failed or failed == [key]):
                counts[key][value] = counts[key].get(value, 0) + count
    return counts


def _gateway_counts(session: Session, workspace_id: int, view: SessionView) -> dict[str, int]:
    conditions = _view_conditions(workspace_id, view, except_filters=("gateway",))
    count = sa.func.count()
    if len(conditions) == len(_active(workspace_id)):
        # No other filter nor search: the live links alone.
        statement = select(SessionGateway.gateway_name, count).where(*_live_links(workspace_id))
    else:
        # The matching sessions, then each one's live links (index by session).
        statement = (
            select(SessionGateway.gateway_name, count)
            .select_from(VpnSession)
            .join(SessionGateway, sa.and_(SessionGateway.session_id == VpnSession.id, SessionGateway.active))
            .where(*conditions)
        )
    return dict(session.exec(statement.group_by(SessionGateway.gateway_name)).all())


def _member_options(
    session: Session,
    workspace_id: int,
    conditions: list,
    view: SessionView,
    member_search: str,
) -> list[FacetOption]:
    """The members with most sessions (matching `member_search`), plus the selected ones."""
    counts = sa.func.count().label("count")
    member_id = VpnSession.member_id
    if len(conditions) > len(_active(workspace_id)) or member_search:
        # Filtered: `_unindexed` stops SQLite walking the member index (in group order)
        # and reading every row's filter columns from the table; it reads a
        # covering index instead and groups in a temporary b-tree.
        member_id = _unindexed(VpnSession.member_id).label("member_id")
    statement = select(member_id, counts).where(*conditions)
    if member_search:
        needle = member_search.strip().lower()
        statement = statement.where(
            sa.or_(
                sa.func.lower(VpnSession.member_name).contains(needle, autoescape=True),
                sa.func.lower(VpnSession.member_email).contains(needle, autoescape=True),
            )
        )
    statement = statement.group_by(member_id).order_by(sa.desc(counts), member_id)
    top = dict(session.exec(statement.limit(MEMBER_OPTION_LIMIT)).all())
    selected = [int(value) for value in view.filters.get("member", ())]
    missing = [member_id for member_id in selected if member_id not in top]
    if missing:
        statement = (
            select(VpnSession.member_id, sa.func.count())
            .where(*conditions, col(VpnSession.member_id).in_(missing))
            .group_by(VpnSession.member_id)
        )
        top.update(dict(session.exec(statement).all()))
    wanted = list(top) + [member_id for member_id in missing if member_id not in top]
    members = {
        member.id: member
        for member in session.exec(
            select(Member).where(Member.workspace_id == workspace_id, col(Member.id).in_(wanted))
        )
    }
    options = [
        FacetOption(
            value=str(member_id),
            label=_member_label(members[member_id]),
            count=top.get(member_id, 0),
        )
        for member_id in wanted
        if member_id in members
    ]
    return options


def _member_label(member: Member) -> str:
    return f"{member.name} <{member.email}>" if member.email else member.name


def _known_values(session: Session, workspace_id: int, key: str) -> list[str]:
    """Every value a filter can take in the workspace, with or without sessions now."""
    if key == "device_type":
        return [item.value for item in DeviceType]
    if key == "device_os":
        return [item.value for item in DeviceOS]
    if key == "connection_type":
        return [item.value for item in ConnectionType]
    if key == "app":
        return list(session.exec(select(Application.name).where(Application.workspace_id == workspace_id)))
    if key == "network":
        return list(session.exec(select(Network.name).where(Network.workspace_id == workspace_id)))
    if key == "region":
        return list(
            session.exec(select(Gateway.region).where(Gateway.workspace_id == workspace_id).distinct())
        )
    if key == "gateway":
        return list(session.exec(select(Gateway.name).where(Gateway.workspace_id == workspace_id)))
    raise ValueError(f"unknown filter {key!r}")


def facet_options(
    *,
    session: Session,
    workspace_id: int,
    view: SessionView,
    keys: Sequence[str],
    member_search: str = "",
) -> dict[str, list[FacetOption]]:
    """For each filter, its options and how many active sessions each would match
    under the other filters (and the search)."""
    result: dict[str, list[FacetOption]] = {}
    cube = _cube_counts(session, workspace_id, view, [key for key in keys if key in _CUBE_KEYS])
    for key in keys:
        if key == "member":
            conditions = _view_conditions(workspace_id, view, except_filters=("member",))
            result[key] = _member_options(session, workspace_id, conditions, view, member_search)
            continue
        counts = _gateway_counts(session, workspace_id, view) if key == "gateway" else cube[key]
        values = set(_known_values(session, workspace_id, key)) | set(counts) | set(view.filters.get(key, ()))
        options = [FacetOption(value=value, label=value, count=counts.get(value, 0)) for value in values]
        options.sort(key=lambda option: (-option.count, option.label.lower()))
        result[key] = options
    return result


# ---------------------------------------------------------------- dashboard


def active_split(*, session: Session, workspace_id: int) -> dict[str, int]:
    """Active sessions by connection type."""
    counts = _column_counts(session, VpnSession.connection_type, _active(workspace_id))
    return {kind.value: counts.get(kind.value, 0) for kind in ConnectionType}


def concurrency_series(
    *, session: Session, workspace_id: int, now: datetime, span: timedelta, points: int
) -> list[tuple[datetime, int]]:
    """How many sessions were active at each of `points` moments over the last `span`."""
    step = span / (points - 1)
    moments = [now - span + step * index for index in range(points)]
    started = VpnSession.started_at
    ended = col(VpnSession.ended_at)
    sums = [
        sa.func.sum(
            sa.case(
                (
                    sa.and_(started <= moment, sa.or_(ended.is_(None), ended > moment)),
                    1,
                ),
                else_=0,
            )
        )
        for moment in moments
    ]
    statement = select(*sums).where(
        VpnSession.workspace_id == workspace_id,
        sa.or_(ended.is_(None), ended > moments[0]),
    )
    counts = session.exec(statement).one()
    return [(moment, int(count or 0)) for moment, count in zip(moments, counts, strict=True)]


def active_sessions_for_cli(*, session: Session, workspace_id: int) -> list[dict[str, Any]]:
    statement = (
        select(*_row_columns()).where(*_active(workspace_id)).order_by(VpnSession.started_at, VpnSession.id)
    )
    return _as_dicts(_records(session, statement, tuple(_ROW_COLUMNS)), tuple(_ROW_COLUMNS))


# ---------------------------------------------------------------- ingest


def known_event_ids(*, session: Session, gateway_id: int, event_ids: Sequence[str]) -> set[str]:
    """Which of these event ids the gateway already reported (retries)."""
    found: set[str] = set()
    for chunk in _in_chunks(sorted(set(event_ids))):
        found.update(
            session.exec(
                select(IngestEvent.event_id).where(
                    IngestEvent.gateway_id == gateway_id, col(IngestEvent.event_id).in_(chunk)
                )
            )
        )
    return found


def events_of_clients(
    *, session: Session, gateway_id: int, client_keys: Iterable[str]
) -> dict[str, list[sa.Row]]:
    """The stored events of these client keys: rows with IngestEvent's column names, not ORM objects (fast)."""
    found: dict[str, list[sa.Row]] = {}
    columns = (
        IngestEvent.event_id,
        IngestEvent.client_key,
        IngestEvent.kind,
        IngestEvent.occurred_at,
        IngestEvent.received_at,
        IngestEvent.payload,
    )
    for chunk in _in_chunks(sorted(set(client_keys))):
        rows = session.exec(
            select(*columns).where(
                IngestEvent.gateway_id == gateway_id, col(IngestEvent.client_key).in_(chunk)
            )
        )
        for row in rows:
            found.setdefault(row.client_key, []).append(row)
    return found


# What the event fold reads of a session (rows, not ORM objects: a batch touches hundreds).
_EVENT_SESSION_COLUMNS = (
    VpnSession.id,
    VpnSession.client_key,
    VpnSession.started_at,
    VpnSession.flags,
    VpnSession.ended_at,
    VpnSession.end_reason,
    VpnSession.last_seen_at,
    VpnSession.bytes_in,
    VpnSession.bytes_out,
    VpnSession.entry_gateway_name,
)


def active_sessions_of_client(
    *, session: Session, workspace_id: int, key_prefix: str, key_suffix: str
) -> list[VpnSession]:
    """The workspace's active sessions whose client key starts and ends so, at any gateway."""
    return list(
        session.exec(
            select(VpnSession).where(
                *_active(workspace_id),
                col(VpnSession.client_key).startswith(key_prefix, autoescape=True),
                col(VpnSession.client_key).endswith(key_suffix, autoescape=True),
            )
        )
    )


def sessions_by_client_key(
    *, session: Session, gateway_id: int, client_keys: Iterable[str]
) -> dict[str, sa.Row]:
    """The newest session of each client key at a gateway, active or ended (the fold's columns)."""
    found: dict[str, sa.Row] = {}
    for chunk in _in_chunks(sorted(set(client_keys))):
        rows = session.exec(
            select(*_EVENT_SESSION_COLUMNS)
            .where(VpnSession.entry_gateway_id == gateway_id, col(VpnSession.client_key).in_(chunk))
            .order_by(VpnSession.id)
        )
        for row in rows:
            found[row.client_key] = row
    return found


def session_gateway_links(*, session: Session, session_ids: Iterable[int]) -> dict[int, list[sa.Row]]:
    """Each session's gateway links: rows of id, session_id, gateway_name, first_used_at."""
    found: dict[int, list[sa.Row]] = {}
    columns = (
        SessionGateway.id,
        SessionGateway.session_id,
        SessionGateway.gateway_name,
        SessionGateway.first_used_at,
    )
    for chunk in _in_chunks(sorted(set(session_ids))):
        for link in session.exec(select(*columns).where(col(SessionGateway.session_id).in_(chunk))):
            found.setdefault(link.session_id, []).append(link)
    return found


def gateway_for_token(*, session: Session, token_hash: str) -> Gateway | None:
    """The gateway a live (not revoked) token belongs to."""
    return session.exec(
        select(Gateway)
        .join(GatewayToken, GatewayToken.gateway_id == Gateway.id)
        .where(GatewayToken.token_hash == token_hash, col(GatewayToken.revoked_at).is_(None))
    ).first()


def live_tokens_of_gateway(*, session: Session, gateway_id: int) -> list[GatewayToken]:
    return list(
        session.exec(
            select(GatewayToken).where(
                GatewayToken.gateway_id == gateway_id, col(GatewayToken.revoked_at).is_(None)
            )
        )
    )


def wireguard_peers(*, session: Session, workspace_id: int) -> dict[str, tuple[str, str | None]]:
    """Public key -> (member, device) for the workspace's known WireGuard peers."""
    rows = session.exec(select(WireGuardPeer).where(WireGuardPeer.workspace_id == workspace_id))
    return {peer.public_key: (peer.member_name, peer.device_name) for peer in rows}


def wireguard_peer(*, session: Session, workspace_id: int, public_key: str) -> WireGuardPeer | None:
    return session.exec(
        select(WireGuardPeer).where(
            WireGuardPeer.workspace_id == workspace_id, WireGuardPeer.public_key == public_key
        )
    ).first()


# ---------------------------------------------------------------- accounts


def account_by_email(*, session: Session, email: str) -> Member | None:
    """The member who signs in with this email (emails of accounts are unique)."""
    return session.exec(
        select(Member).where(
            sa.func.lower(Member.email) == email.lower(), col(Member.password_hash).is_not(None)
        )
    ).first()


def member_by_email(*, session: Session, workspace_id: int, email: str) -> Member | None:
    return session.exec(
        select(Member).where(
            Member.workspace_id == workspace_id, sa.func.lower(Member.email) == email.lower()
        )
    ).first()


@dataclass(frozen=True)
class LoginIdentity:
    """A sign-in and its member, as the admin check reads them."""

    login_id: int
    last_seen_at: datetime
    ended_at: datetime | None
    member_id: int
    workspace_id: int
    email: str | None
    name: str
    role: str


# Built once: every event of every open console runs it (the admin check). Plain
# columns, not the two ORM objects, cost a fifth as much per check.
_LOGIN_IDENTITY = (
    sa.select(
        LoginSession.id,
        LoginSession.last_seen_at,
        LoginSession.ended_at,
        Member.id,
        Member.workspace_id,
        Member.email,
        Member.name,
        Member.role,
    )
    .join(Member, Member.id == LoginSession.member_id)
    .where(LoginSession.token_hash == sa.bindparam("token_hash"))
)


def login_identity(*, session: Session, token_hash: str) -> LoginIdentity | None:
    # Past the ORM, so what the session holds unwritten is written first, as its own reads would.
    session.flush()
    row = session.connection().execute(_LOGIN_IDENTITY, {"token_hash": token_hash}).first()
    return LoginIdentity(*row) if row else None


def set_login_times(
    *, session: Session, login_id: int, last_seen_at: datetime | None = None, ended_at: datetime | None = None
) -> None:
    """Restart a live sign-in's idle clock, or end it (an ended one stays as it ended)."""
    values = {"last_seen_at": last_seen_at, "ended_at": ended_at}
    if last_seen_at is None and ended_at is None:
        raise ValueError("set_login_times needs last_seen_at or ended_at")
    statement = (
        sa.update(LoginSession)
        .where(LoginSession.id == login_id, col(LoginSession.ended_at).is_(None))
        .values({name: value for name, value in values.items() if value is not None})
    )
    # Through the session, which brings a LoginSession it has loaded up to date too.
    session.exec(statement)


def admin_accounts(*, session: Session, workspace_id: int) -> list[Member]:
    return list(
        session.exec(
            select(Member).where(
                Member.workspace_id == workspace_id,
                Member.role == "admin",
                col(Member.password_hash).is_not(None),
            )
        )
    )


# ---------------------------------------------------------------- audit log


def _audit_conditions(workspace_id: int, actions: Sequence[str], search: str) -> list:
    conditions = [AuditEntry.workspace_id == workspace_id]
    if actions:
        conditions.append(col(AuditEntry.action).in_(list(actions)))
    if search:
        needle = search.lower()
        conditions.append(
            sa.or_(
                sa.func.lower(AuditEntry.actor).contains(needle, autoescape=True),
                col(AuditEntry.client_address).contains(needle, autoescape=True),
            )
        )
    return conditions


def audit_page(
    *, session: Session, workspace_id: int, actions: Sequence[str], search: str, page: int, page_size: int
) -> Page:
    """The workspace's audit entries, newest first."""
    conditions = _audit_conditions(workspace_id, actions, search)
    statement = (
        select(AuditEntry)
        .where(*conditions)
        .order_by(sa.desc(AuditEntry.at), sa.desc(AuditEntry.id))
        .limit(page_size)
        .offset(page * page_size)
    )
    rows = [
        {
            "id": entry.id,
            "at": entry.at,
            "actor": entry.actor,
            "action": entry.action,
            "address": entry.client_address,
            "details": entry.details,
        }
        for entry in session.exec(statement)
    ]
    total = session.exec(select(sa.func.count()).select_from(AuditEntry).where(*conditions)).one()
    return Page(rows=rows, total=total)


def audit_action_counts(*, session: Session, workspace_id: int, search: str) -> dict[str, int]:
    statement = (
        select(AuditEntry.action, sa.func.count())
        .where(*_audit_conditions(workspace_id, (), search))
        .group_by(AuditEntry.action)
    )
    return dict(session.exec(statement).all())
