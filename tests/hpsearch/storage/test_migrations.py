from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hpsearch.storage import Store, create_engine, migrations
from hpsearch.storage._tables import metadata
from tests.conftest import make_spec

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_new_database_is_migrated_to_the_newest_schema(storage_url: str) -> None:
    store = Store(storage_url)
    with store.engine.connect() as conn:
        assert migrations.current(conn) == migrations.head()
        context = MigrationContext.configure(conn, opts={"include_name": _ours})
        assert compare_metadata(context, metadata) == []  # the migrations make what we query
        tables = set(sa.inspect(conn).get_table_names())
    assert {"hpsearch_studies", "hpsearch_stages", "hpsearch_leases", "hpsearch_workers"} <= tables
    store.optuna  # noqa: B018  (Optuna's tables, migrated by Optuna under its own version table)
    with store.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        optuna_version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert {"trials", "alembic_version", migrations.VERSION_TABLE} <= tables
    assert optuna_version != migrations.head()  # two histories that never mix
    store.close()


def test_a_database_from_before_migrations_is_upgraded_with_its_data(storage_url: str) -> None:
    engine = create_engine(storage_url)
    migrations.upgrade(engine, "0001")
    with engine.begin() as conn:  # the old schema had no version table at all
        conn.execute(sa.text(f"DROP TABLE {migrations.VERSION_TABLE}"))
        spec = json.dumps(make_spec(name="old").model_dump(mode="json"))
        for name in ("old", "older"):
            conn.execute(
                sa.text(
                    "INSERT INTO hpsearch_studies (name, spec, state, created_at, updated_at) "
                    "VALUES (:name, :spec, 'running', :now, :now)"
                ),
                {"name": name, "spec": spec.replace('"old"', f'"{name}"'), "now": NOW},
            )
        conn.execute(
            sa.text(
                "INSERT INTO hpsearch_leases (study_id, stage, item, worker, state, claimed_at, "
                "expires_at) VALUES (1, 'sanity', '{}', 'w1', 'finished', :now, :now)"
            ),
            {"now": NOW},
        )
    engine.dispose()

    store = Store(storage_url)  # opening migrates
    with store.engine.connect() as conn:
        assert migrations.current(conn) == migrations.head()
        applied = conn.execute(sa.text("SELECT applied_at FROM hpsearch_leases")).scalar()
    assert applied is not None  # its outcome was recorded back then
    old, older = store.get_study("old"), store.get_study("older")
    assert old.spec == make_spec(name="old")
    assert (old.driver, older.driver) == ("server", "local")  # only "old" ever had a lease
    store.close()


def test_migrations_go_down_and_up_again(storage_url: str) -> None:
    store = Store(storage_url)
    store.create_study(make_spec(name="kept"))
    migrations.downgrade(store.engine, "0001")
    with store.engine.connect() as conn:
        assert not sa.inspect(conn).has_table("hpsearch_workers")
    store.close()
    reopened = Store(storage_url)
    assert reopened.get_study("kept").state == "running"
    reopened.close()


def test_workers_seen_before_0003_keep_their_rows(storage_url: str) -> None:
    engine = create_engine(storage_url)
    migrations.upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO hpsearch_workers (id, host, devices, first_seen, last_seen, "
                "lease_id, items_done) VALUES ('gpu-0', 'box', '[\"cuda:0\"]', :now, :now, "
                "3, 7)"
            ),
            {"now": NOW},
        )
    engine.dispose()
    store = Store(storage_url)  # opening migrates
    with store.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("hpsearch_workers")}
        host, done = conn.execute(sa.text("SELECT host, items_done FROM hpsearch_workers")).one()
    assert "lease_id" not in columns  # read from the leases now
    assert (host, done) == ("box", 7)
    store.close()


def test_leases_from_before_0004_are_kept_and_their_ids_never_reused(storage_url: str) -> None:
    engine = create_engine(storage_url)
    migrations.upgrade(engine, "0003")
    lease = (
        "INSERT INTO hpsearch_leases (study_id, stage, item, worker, state, claimed_at, "
        "expires_at) VALUES (1, 'sanity', '{}', :worker, 'active', :now, :now)"
    )
    with engine.begin() as conn:
        spec = json.dumps(make_spec(name="old").model_dump(mode="json"))
        conn.execute(
            sa.text(
                "INSERT INTO hpsearch_studies (name, spec, state, driver, created_at, updated_at) "
                "VALUES ('old', :spec, 'running', 'server', :now, :now)"
            ),
            {"spec": spec, "now": NOW},
        )
        for worker in ("w1", "w2"):
            conn.execute(sa.text(lease), {"worker": worker, "now": NOW})
    engine.dispose()
    store = Store(storage_url)  # opening migrates
    with store.engine.begin() as conn:
        kept = conn.execute(sa.text("SELECT id, worker FROM hpsearch_leases ORDER BY id")).all()
        conn.execute(sa.text("DELETE FROM hpsearch_leases WHERE id = 2"))
        conn.execute(sa.text(lease), {"worker": "w3", "now": NOW})
        newest = conn.execute(sa.text("SELECT max(id) FROM hpsearch_leases")).scalar()
    assert [tuple(row) for row in kept] == [(1, "w1"), (2, "w2")]
    assert newest == 3  # not 2 again
    store.close()


def _ours(name: str | None, kind: str, parent: object) -> bool:
    return kind != "table" or (str(name).startswith("hpsearch_") and "alembic" not in str(name))
