"""Search text column and covering indexes for the active sessions

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 21:37:35.307260

`search_text` holds the searched fields lowercased by Python (SQLite's lower()
folds ASCII only), so existing rows are filled in here, in batches. The sort indexes gain the filter columns so that a page
is read from its index alone; the history index leaves the active rows out.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As of this revision; later revisions change their own copies, never these.
_SORT_COLUMNS = (
    "member_name",
    "device_name",
    "device_type",
    "device_os",
    "connection_type",
    "app_name",
    "started_at",
    "origin_ip",
    "network_name",
    "region",
    "entry_gateway_name",
)
_FILTER_COLUMNS = ("device_type", "device_os", "connection_type", "app_name", "network_name", "region", "member_id")
_COVERED = (*_FILTER_COLUMNS, "ended_at")
_SEARCH_SEPARATOR = "\x1f"
_BACKFILL_BATCH = 5000


def _active(**kwargs) -> dict:
    where = sa.text("ended_at IS NULL")
    return {"sqlite_where": where, "postgresql_where": where, **kwargs}


def _backfill_search_text() -> None:
    connection = op.get_bind()
    session = sa.table(
        "session",
        sa.column("id", sa.Integer),
        sa.column("member_name", sa.String),
        sa.column("member_email", sa.String),
        sa.column("device_name", sa.String),
        sa.column("origin_ip", sa.String),
        sa.column("search_text", sa.Text),
    )
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(session.c.id, session.c.member_name, session.c.member_email, session.c.device_name, session.c.origin_ip)
            .where(session.c.id > last_id)
            .order_by(session.c.id)
            .limit(_BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        connection.execute(
            sa.update(session).where(session.c.id == sa.bindparam("row_id")).values(search_text=sa.bindparam("text")),
            [
                {"row_id": row.id, "text": _SEARCH_SEPARATOR.join(part or "" for part in row[1:]).lower()}
                for row in rows
            ],
        )
        last_id = rows[-1].id


def upgrade() -> None:
    for column in _SORT_COLUMNS:
        op.drop_index(f"ix_session_active_{column}", table_name="session", **_active())
    op.drop_index("ix_session_active_member_id", table_name="session", **_active())
    op.drop_index("ix_session_workspace_ended_at", table_name="session")
    op.drop_index("ix_session_gateway_active", table_name="sessiongateway", sqlite_where=sa.text("active"))
    op.drop_index("ix_sessiongateway_session_id", table_name="sessiongateway")

    # NOT NULL with a default at once: on SQLite, changing nullability later would
    # copy the whole table (and trip over the foreign keys pointing at it).
    op.add_column("session", sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    _backfill_search_text()
    if op.get_bind().dialect.name != "sqlite":
        # The app always writes it; SQLite keeps the harmless default rather than a table copy.
        op.alter_column("session", "search_text", existing_type=sa.Text(), server_default=None)

    for column in _SORT_COLUMNS:
        covered = [c for c in _COVERED if c != column]
        op.create_index(f"ix_session_active_{column}", "session", ["workspace_id", column, "id", *covered], **_active())
    op.create_index(
        "ix_session_active_facets", "session", ["workspace_id", *_FILTER_COLUMNS, "search_text", "ended_at"], **_active()
    )
    op.create_index("ix_session_active_member_id", "session", ["workspace_id", "member_id", "ended_at"], **_active())
    op.create_index("ix_session_active_search", "session", ["workspace_id", "search_text", "id", "ended_at"], **_active())
    op.create_index("ix_session_gateway_client", "session", ["entry_gateway_id", "client_key"])
    history = sa.text("ended_at IS NOT NULL")
    op.create_index(
        "ix_session_workspace_ended_at",
        "session",
        ["workspace_id", "ended_at"],
        sqlite_where=history,
        postgresql_where=history,
    )
    live_link = {"sqlite_where": sa.text("active = 1"), "postgresql_where": sa.text("active")}
    op.create_index(
        "ix_session_gateway_active", "sessiongateway", ["workspace_id", "gateway_name", "session_id", "active"], **live_link
    )
    op.create_index(
        "ix_session_gateway_active_session", "sessiongateway", ["session_id", "gateway_name", "active"], **live_link
    )


def downgrade() -> None:
    op.drop_index("ix_session_gateway_active_session", table_name="sessiongateway")
    op.drop_index("ix_session_gateway_active", table_name="sessiongateway")
    op.drop_index("ix_session_workspace_ended_at", table_name="session")
    op.drop_index("ix_session_gateway_client", table_name="session")
    for name in ("search", "member_id", "facets", *_SORT_COLUMNS):
        op.drop_index(f"ix_session_active_{name}", table_name="session")
    op.drop_column("session", "search_text")

    active_link = sa.text("active")
    op.create_index(
        "ix_session_gateway_active",
        "sessiongateway",
        ["workspace_id", "gateway_name", "session_id"],
        sqlite_where=active_link,
        postgresql_where=active_link,
    )
    op.create_index("ix_sessiongateway_session_id", "sessiongateway", ["session_id"])
    op.create_index("ix_session_workspace_ended_at", "session", ["workspace_id", "ended_at"])
    op.create_index("ix_session_active_member_id", "session", ["workspace_id", "member_id"], **_active())
    for column in _SORT_COLUMNS:
        op.create_index(f"ix_session_active_{column}", "session", ["workspace_id", column, "id"], **_active())
