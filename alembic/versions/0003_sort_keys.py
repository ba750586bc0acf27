"""Sort keys for the member, device and origin columns

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 08:20:00.000000

The grid sorted names by code point (`Zoë` before `ana`, `Åsa` after every Z) and
addresses as text (`192.0.2.102` before `192.0.2.19`). Each of these columns gets a
sort key, filled here for existing rows in batches, and its sort index moves to it.
"""

import ipaddress
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As of this revision; later revisions change their own copies, never these.
_FILTER_COLUMNS = (
    "device_type",
    "device_os",
    "connection_type",
    "app_name",
    "network_name",
    "region",
    "member_id",
)
_COVERED = (*_FILTER_COLUMNS, "ended_at")
# Sorted column -> its key column.
_KEYS = {"member_name": "member_sort", "device_name": "device_sort", "origin_ip": "origin_sort"}
_BACKFILL_BATCH = 5000
_OWN_LETTERS = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H", "ı": "i"}
    | {"æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "TH"}
)


def _text_key(text: str | None) -> str:
    decomposed = unicodedata.normalize("NFKD", (text or "").translate(_OWN_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _address_key(address: str | None) -> str | None:
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"9:{address}"
    return f"{ip.version}:{ip.packed.hex()}"


def _active(**kwargs) -> dict:
    where = sa.text("ended_at IS NULL")
    return {"sqlite_where": where, "postgresql_where": where, **kwargs}


def _sort_index(column: str) -> tuple[str, list[str]]:
    return f"ix_session_active_{column}", [
        "workspace_id",
        column,
        "id",
        *(c for c in _COVERED if c != column),
    ]


def _backfill() -> None:
    connection = op.get_bind()
    session = sa.table(
        "session",
        sa.column("id", sa.Integer),
        *(sa.column(name, sa.String) for name in (*_KEYS, *_KEYS.values())),
    )
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(session.c.id, session.c.member_name, session.c.device_name, session.c.origin_ip)
            .where(session.c.id > last_id)
            .order_by(session.c.id)
            .limit(_BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        connection.execute(
            sa.update(session)
            .where(session.c.id == sa.bindparam("row_id"))
            .values(
                member_sort=sa.bindparam("member_key"),
                device_sort=sa.bindparam("device_key"),
                origin_sort=sa.bindparam("origin_key"),
            ),
            [
                {
                    "row_id": row.id,
                    "member_key": _text_key(row.member_name),
                    "device_key": _text_key(row.device_name),
                    "origin_key": _address_key(row.origin_ip),
                }
                for row in rows
            ],
        )
        last_id = rows[-1].id


def upgrade() -> None:
    for column in _KEYS:
        op.drop_index(_sort_index(column)[0], table_name="session", **_active())
    # NOT NULL with a default at once: on SQLite, changing nullability later would copy
    # the whole table (as in 0002).
    op.add_column("session", sa.Column("member_sort", sa.Text(), nullable=False, server_default=""))
    op.add_column("session", sa.Column("device_sort", sa.Text(), nullable=False, server_default=""))
    op.add_column("session", sa.Column("origin_sort", sa.Text(), nullable=True))
    _backfill()
    if op.get_bind().dialect.name != "sqlite":
        for column in ("member_sort", "device_sort"):
            op.alter_column("session", column, existing_type=sa.Text(), server_default=None)
    for key in _KEYS.values():
        name, columns = _sort_index(key)
        op.create_index(name, "session", columns, **_active())


def downgrade() -> None:
    for key in _KEYS.values():
        op.drop_index(_sort_index(key)[0], table_name="session", **_active())
    for key in _KEYS.values():
        op.drop_column("session", key)
    for column in _KEYS:
        name, columns = _sort_index(column)
        op.create_index(name, "session", columns, **_active())
