"""The Alembic migrations build exactly the models' schema, so `create_all` in tests is the same thing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import Session, SQLModel

import active_sessions.models  # noqa: F401  (registers the tables)
from active_sessions import queries, reconcile
from active_sessions.db import ALEMBIC_INI, MIGRATIONS_DIR, create_db_engine, migrate
from active_sessions.sources.simulator import Simulator
from active_sessions.view import FILTER_KEYS, SessionView
from tests.conftest import POSTGRES_URL
from tests.factories import T0, client, make_workspace, shared_engine, table_rows
from tests.factories import snapshot as snapshot_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:alembic.*")


def _in_schema(url: str, schema: str) -> str:
    """The URL with a libpq option that puts every connection's search_path in `schema`."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file, or a throwaway PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    schema = f"m_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _in_schema(POSTGRES_URL, schema)
        # Everything went into the throwaway schema.
        assert {"session", "alembic_version"} <= set(sa.inspect(admin).get_table_names(schema=schema))
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def migrated(empty_url) -> str:
    """The URL of an empty database brought to the newest revision by `migrate(url)`."""
    migrate(empty_url)
    return empty_url


@pytest.fixture
def created(migrated, tmp_path) -> Iterator[sa.Engine]:
    """A database of the same kind made by `create_all`, as the other tests make theirs."""
    yield from shared_engine(_dialect(migrated), tmp_path)


def _where(options: dict) -> str | None:
    for key in ("sqlite_where", "postgresql_where"):
        clause = options.get(key)
        if clause is not None:
            text = getattr(clause, "text", clause)
            return " ".join(str(text).replace("(", " ").replace(")", " ").split()).lower()
    return None


def schema_of(engine: sa.Engine) -> dict[str, dict]:
    """Tables, columns, keys, constraints and indexes (with their WHERE), as the database has them."""
    inspector = sa.inspect(engine)
    schema = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        schema[table] = {
            "columns": [
                (column["name"], str(column["type"]), column["nullable"])
                for column in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                for fk in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                (uc["name"], tuple(uc["column_names"])) for uc in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (
                    index["name"],
                    tuple(index["column_names"]),
                    bool(index["unique"]),
                    _where(index.get("dialect_options", {})),
                )
                for index in inspector.get_indexes(table)
            ),
        }
    return schema


def test_the_migrated_schema_is_the_models_schema(migrated):
    engine = create_db_engine(migrated)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, SQLModel.metadata)
            assert differences == [], "the migrations and the models differ: add a migration"
            assert context.get_current_revision() == _head()
    finally:
        engine.dispose()


def test_migrating_and_create_all_give_the_same_tables_and_indexes(migrated, created):
    engine = create_db_engine(migrated)
    try:
        from_migrations = schema_of(engine)
    finally:
        engine.dispose()
    from_models = schema_of(created)
    assert set(from_migrations) == {table.name for table in SQLModel.metadata.sorted_tables}
    assert from_migrations == from_models
    # The partial indexes the grid depends on are partial in both.
    session_indexes = {index[0]: index for index in from_migrations["session"]["indexes"]}
    member_sort = session_indexes["ix_session_active_member_sort"]
    assert member_sort[1][:3] == ("workspace_id", "member_sort", "id")
    assert member_sort[2:] == (False, "ended_at is null")
    assert session_indexes["uq_session_active_client"][2:] == (True, "ended_at is null")


def test_migrating_again_changes_nothing(migrated):
    engine = create_db_engine(migrated)
    try:
        before = schema_of(engine)
        migrate(migrated)
        assert schema_of(engine) == before
    finally:
        engine.dispose()


def _head() -> str:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"the migrations have several heads: {heads}"
    return heads[0]


def test_downgrade_to_nothing_and_up_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'updown.db'}"
    migrate(url)
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url)
    command.downgrade(config, "base")
    engine = create_db_engine(url)
    try:
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate(url)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        engine.dispose()


def _alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _first_revision() -> str:
    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    return list(script.walk_revisions())[-1].revision


def _fill_with_sessions(db: Session) -> int:
    """A workspace that has lived a while: the simulator's sessions, some ended, and accents."""
    workspace_id = make_workspace(db)
    simulator = Simulator(seed=5, target_active=300)
    for minute in range(0, 40, 4):
        for snapshot in simulator.step(T0 + timedelta(minutes=minute)):
            reconcile.apply_snapshot(db, workspace_id=workspace_id, snapshot=snapshot)
    accented = client("zoe-1", "Ğülşen Ørjansdóttir", member_email="GÜLŞEN@Exämple.com", device="ÉCRAN-ØST")
    reconcile.apply_snapshot(
        db,
        workspace_id=workspace_id,
        snapshot=snapshot_of("gw-accents", accented, taken_at=T0 + timedelta(hours=1)),
    )
    db.commit()
    return workspace_id


def _copy_rows(source: sa.Engine, target: sa.Engine) -> None:
    """Every row of `source` into the tables `target` has, in the columns it has."""
    target_tables = sa.MetaData()
    target_tables.reflect(target)
    with source.connect() as reading, target.begin() as writing:
        for model_table in SQLModel.metadata.sorted_tables:
            table = target_tables.tables[model_table.name]
            names = [column.name for column in table.columns]
            rows = [
                dict(row._mapping)
                for row in reading.execute(sa.select(*(model_table.c[name] for name in names)))
            ]
            if rows:
                writing.execute(table.insert(), rows)


def _console_answers(db: Session, workspace_id: int) -> list:
    """What the console shows for a handful of views: pages, totals, facet counts, the tile."""
    views = [
        SessionView(),
        SessionView(sort="member", descending=False, page=1, page_size=25),
        SessionView(filters={"connection_type": ("app",)}, sort="app"),
        SessionView(search="ğülşen ø"),
        SessionView(search="écran-øst"),
        SessionView(search="@", sort="origin", page_size=100),
    ]
    answers = []
    for view in views:
        page = queries.active_sessions_page(session=db, workspace_id=workspace_id, view=view)
        facets = queries.facet_options(session=db, workspace_id=workspace_id, view=view, keys=FILTER_KEYS)
        answers.append((page.total, page.rows, facets))
    answers.append(queries.active_split(session=db, workspace_id=workspace_id))
    return answers


def _dialect(url: str) -> str:
    return sa.engine.make_url(url).get_backend_name()


def test_upgrading_a_filled_first_revision_keeps_every_row_and_every_answer(empty_url, tmp_path):
    """A database made by the first release, with sessions in it, upgraded to head."""
    for filled in shared_engine(_dialect(empty_url), tmp_path):
        with Session(filled, expire_on_commit=False) as db:
            workspace_id = _fill_with_sessions(db)
            expected_rows = table_rows(db)
            expected_answers = _console_answers(db, workspace_id)
        assert expected_answers[3][0] == 1, "the accented session is found by its folded name"

        command.upgrade(_alembic_config(empty_url), _first_revision())
        upgraded = create_db_engine(empty_url)
        try:
            assert "search_text" not in {c["name"] for c in sa.inspect(upgraded).get_columns("session")}
            _copy_rows(filled, upgraded)
            migrate(empty_url)
            with Session(upgraded, expire_on_commit=False) as db:
                assert table_rows(db) == expected_rows
                assert _console_answers(db, workspace_id) == expected_answers
        finally:
            upgraded.dispose()
