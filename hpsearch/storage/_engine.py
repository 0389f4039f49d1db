"""Database engines: one URL for our tables and Optuna's.

SQLite runs in WAL mode with a busy timeout so that several local processes (the search driver and
its trial workers) can share one file; PostgreSQL URLs use the psycopg (v3) driver, MySQL and
MariaDB URLs PyMySQL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.sql.dml import Insert

SQLITE_BUSY_SECONDS = 60


DRIVERS = {  # a URL without a driver gets the one we ship
    "postgresql://": "postgresql+psycopg://",
    "postgres://": "postgresql+psycopg://",
    "mysql://": "mysql+pymysql://",
    "mariadb://": "mariadb+pymysql://",
}
MYSQL = ("mysql", "mariadb")  # SQLAlchemy's dialect names for MySQL and MariaDB


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, ``mysql://`` and ``mariadb://``
    PyMySQL: the drivers we ship."""
    for prefix, driver in DRIVERS.items():
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    return url


def engine_kwargs(url: str) -> dict[str, Any]:
    """Keyword arguments for ``create_engine`` (ours and Optuna's) suited to the backend."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
    if url.startswith(MYSQL):
        # MySQL closes a connection idle for wait_timeout (8 hours by default): recycle sooner
        return {"pool_size": 16, "max_overflow": 4, "pool_recycle": 3600}
    # No pre-ping: it costs a round trip on every checkout, several per request. A connection
    # the database dropped (a restart, a failover, pg_terminate_backend) fails the one statement
    # that meets it; SQLAlchemy then discards every pooled connection of that age, and the
    # caller retries (the API answers 503, workers resend, the lease design loses nothing).
    # Up to 20 connections per engine (a store has two: ours and Optuna's), so that a server
    # process with 16 request threads (api.Settings.threads) fits: 40 per server process at
    # most, so PostgreSQL's default of 100 connections serves two (docs/SERVER.md, "Connections").
    # 16 are kept open when idle: one past the pool's size is closed as soon as it is returned,
    # so with a smaller pool each burst of requests (workers asking together) opened, and
    # PostgreSQL forked, a backend per request beyond it; a burst of 32 claims took twice as
    # long.
    return {"pool_size": 16, "max_overflow": 4}


def create_engine(url: str) -> Engine:
    url = normalize_url(url)
    engine = sa.create_engine(url, **engine_kwargs(url))
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def upsert(
    engine: Engine,
    table: sa.Table,
    rows: dict[str, Any] | list[dict[str, Any]],
    key: list[str],
    update: list[str],
) -> Insert:
    """``INSERT rows ... ON CONFLICT (key) DO UPDATE`` (MySQL: ``ON DUPLICATE KEY UPDATE``),
    setting the ``update`` columns of a row that exists to the new row's: one statement whether
    or not it exists, on SQLite, PostgreSQL and MySQL alike."""
    if engine.dialect.name in MYSQL:
        mine = mysql.insert(table).values(rows)
        return mine.on_duplicate_key_update({column: mine.inserted[column] for column in update})
    if engine.dialect.name not in ("postgresql", "sqlite"):
        raise NotImplementedError(
            f"hpsearch stores studies in SQLite, PostgreSQL or MySQL, not {engine.dialect.name}"
        )
    insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)
    insert = insert.values(rows)
    return insert.on_conflict_do_update(
        index_elements=key, set_={column: insert.excluded[column] for column in update}
    )
