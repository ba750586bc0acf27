"""The Alembic migrations build exactly the models' schema, so `create_all` in tests is the same thing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import active_sessions.models  # noqa: F401  (registers the tables)
from active_sessions.db import ALEMBIC_INI, MIGRATIONS_DIR, create_db_engine, migrate
from tests.conftest import POSTGRES_URL, _postgres_engine

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:alembic.*")


def _in_schema(url: str, schema: str) -> str:
    """The URL with a libpq option that puts every connection's search_path in `schema`."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated(request, tmp_path) -> Iterator[str]:
    """The URL of an empty database brought to the newest revision by `migrate(url)`."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrated.db'}"
        migrate(url)
        yield url
        return
    schema = f"m_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = _in_schema(POSTGRES_URL, schema)
        migrate(url)
        # Everything went into the throwaway schema.
        assert {"session", "alembic_version"} <= set(sa.inspect(admin).get_table_names(schema=schema))
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def created(migrated, tmp_path) -> Iterator[sa.Engine]:
    """A database of the same kind made by `create_all`, as the other tests make theirs."""
    if migrated.startswith("sqlite"):
        engine = create_db_engine(f"sqlite:///{tmp_path / 'created.db'}")
        SQLModel.metadata.create_all(engine)
        yield engine
        engine.dispose()
    else:
        for engine in _postgres_engine():
            SQLModel.metadata.create_all(engine)
            yield engine


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
    assert session_indexes["ix_session_active_member_name"] == (
        "ix_session_active_member_name",
        ("workspace_id", "member_name", "id"),
        False,
        "ended_at is null",
    )
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
