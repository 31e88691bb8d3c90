"""Unit of work and migrations on SQLite and PostgreSQL both."""
import pytest
from sqlalchemy import inspect, text

from shared.migrate import upgrade

pytestmark = pytest.mark.integration


def test_migrations_apply_and_are_idempotent(database):
    upgrade(database)
    upgrade(database)  # a restart applies nothing twice
    tables = set(inspect(database.engine).get_table_names())
    assert {"outbox_messages", "inbox_messages", "dead_letters", "alembic_version"} <= tables


def test_unit_of_work_rolls_back_unless_committed(database):
    upgrade(database)
    insert = text("INSERT INTO inbox_messages (consumer, message_id, received_at) "
                  "VALUES (:c, :m, CURRENT_TIMESTAMP)")
    with database.unit_of_work() as uow:
        uow.session.execute(insert, {"c": "t", "m": "not-committed"})
    with pytest.raises(RuntimeError):
        with database.unit_of_work() as uow:
            uow.session.execute(insert, {"c": "t", "m": "failed"})
            raise RuntimeError("boom")
    with database.unit_of_work() as uow:
        uow.session.execute(insert, {"c": "t", "m": "committed"})
        uow.commit()
    with database.unit_of_work() as uow:
        ids = uow.session.execute(text("SELECT message_id FROM inbox_messages")).scalars().all()
    assert ids == ["committed"]


def test_half_write_is_impossible(database):
    """Two inserts, the second violating the primary key: neither remains."""
    upgrade(database)
    insert = text("INSERT INTO inbox_messages (consumer, message_id, received_at) "
                  "VALUES (:c, :m, CURRENT_TIMESTAMP)")
    with pytest.raises(Exception):
        with database.unit_of_work() as uow:
            uow.session.execute(insert, {"c": "t", "m": "a"})
            uow.session.execute(insert, {"c": "t", "m": "a"})
            uow.commit()
    with database.unit_of_work() as uow:
        assert uow.session.execute(text("SELECT count(*) FROM inbox_messages")).scalar() == 0


def test_reads_survive_a_database_restart(database):
    """A pooled read connection killed by the server (a restart, a failover) costs one
    retry, not an error: Database.read and read_raw reconnect once."""
    if not database.is_postgres:
        pytest.skip("SQLite has no server connection to lose")
    pids = {database.read(lambda c: c.execute(text("SELECT pg_backend_pid()")).scalar()),
            database.read_raw(lambda cur, info: (cur.execute("SELECT pg_backend_pid()"),
                                                 cur.fetchone()[0])[1])}
    with database.engine.begin() as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    assert database.read(lambda c: c.execute(text("SELECT 1")).scalar()) == 1
    assert database.read_raw(lambda cur, info: (cur.execute("SELECT 2"), cur.fetchone()[0])[1]) == 2
