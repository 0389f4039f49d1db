"""Migrations of our own tables (Alembic), run whenever a store opens its database.

Optuna migrates its own tables with its own Alembic history in ``alembic_version``; ours is kept
apart in ``hpsearch_alembic_version`` so the two never see each other's revisions. A database made
before there were migrations (our tables created directly, at revision 0001's schema) is stamped
0001 and upgraded from there.

Two processes opening a new database at once (two servers starting) must not both run the DDL:
on PostgreSQL an advisory lock makes the second one wait, then find the schema current; SQLite,
which cannot lock across processes like that, retries once after the other one's DDL failed ours.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

VERSION_TABLE = "hpsearch_alembic_version"
_HERE = Path(__file__).parent
LOCK_SPACE = 0x4850  # first key of our advisory locks ("HP"); the second: a study id for claims
_LOCK = (LOCK_SPACE, 0)  # migrations (no study has id 0)
_PRE_MIGRATION = "0001"  # the schema databases had before migrations existed


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision."""
    script = ScriptDirectory(str(_HERE))
    revision = script.get_current_head()
    assert revision is not None
    return revision


def current(connection: Connection) -> str | None:
    """The revision the database is at (None: our tables were never migrated)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring our tables to ``revision`` (creating them in an empty database)."""
    try:
        _upgrade(engine, revision)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
        if engine.dialect.name == "postgresql":
            raise
        time.sleep(0.5)  # SQLite: another process was migrating the same file a moment ago
        _upgrade(engine, revision)


def _upgrade(engine: Engine, revision: str) -> None:
    with schema_lock(engine), engine.connect() as connection:
        at = current(connection)
        wanted = head() if revision == "head" else revision
        if at == wanted:
            return
        if at is None and sa.inspect(connection).has_table("hpsearch_studies"):
            command.stamp(_config(connection), _PRE_MIGRATION)
        command.upgrade(_config(connection), revision)
        connection.commit()


def downgrade(engine: Engine, revision: str) -> None:
    """Take our tables back to ``revision`` (to run an older hpsearch on this database)."""
    with schema_lock(engine), engine.connect() as connection:
        command.downgrade(_config(connection), revision)
        connection.commit()


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Hold the database-wide lock for schema changes (PostgreSQL's advisory lock, MySQL's named
    lock; a no-op on SQLite)."""
    if engine.dialect.name in ("mysql", "mariadb"):
        with engine.connect() as connection:
            name = f"hpsearch-schema-{engine.url.database}"[:64]  # named locks are server-wide
            got = connection.execute(sa.select(sa.func.get_lock(name, 600))).scalar()
            if got != 1:
                raise TimeoutError("waited 600 s for another process's schema migration")
            try:
                yield
            finally:
                connection.execute(sa.select(sa.func.release_lock(name)))
        return
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(sa.select(sa.func.pg_advisory_lock(*_LOCK)))
        connection.commit()
        try:
            yield
        finally:
            connection.execute(sa.select(sa.func.pg_advisory_unlock(*_LOCK)))
            connection.commit()
