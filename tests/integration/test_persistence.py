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


def test_insert_rows_keeps_every_type_and_returns_the_new_keys(database):
    """One-round-trip bulk insert (a JSON document on PostgreSQL, executemany on SQLite)."""
    from datetime import date, datetime, timezone

    from sqlalchemy import (BigInteger, Boolean, Column, Date, DateTime, Float, Integer,
                            MetaData, String, Table, Text, UniqueConstraint, select)

    from shared.db import insert_rows

    metadata = MetaData()
    table = Table("bulk_probe", metadata,
                  Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
                         autoincrement=True),
                  Column("key", String(20), nullable=False), Column("day", Date),
                  Column("at", DateTime(timezone=True)), Column("flag", Boolean),
                  Column("score", Float), Column("note", Text),
                  UniqueConstraint("key", name="uq_bulk_probe_key"))
    metadata.create_all(database.engine)
    at = datetime(2026, 3, 2, 8, 30, 15, 123456, tzinfo=timezone.utc)
    rows = [{"key": f"k{n}", "day": date(2026, 1, 1 + n), "at": at, "flag": n % 2 == 0,
             "score": n / 4, "note": None if n == 3 else f"沧州“引号”\\{n}'"} for n in range(5)]
    with database.unit_of_work() as uow:
        conn = uow.session.connection()
        inserted = insert_rows(conn, table, rows, returning=("id", "key"))
        # a second insert of k0..k1 and a new k9: only k9 is added
        again = insert_rows(conn, table, [{**rows[0], "note": "changed"}, {**rows[1]},
                                          {**rows[2], "key": "k9"}],
                            returning=("key",), skip_conflicts=True)
        uow.commit()
    assert sorted(k for _, k in inserted) == [f"k{n}" for n in range(5)]
    assert [k for (k,) in again] == ["k9"]
    with database.unit_of_work() as uow:
        stored = {r.key: r for r in uow.session.execute(select(table))}
    ids = {k: i for i, k in inserted}
    for row in rows:
        got = stored[row["key"]]
        assert got.id == ids[row["key"]]
        assert (got.day, got.flag, got.score, got.note) == (row["day"], row["flag"], row["score"],
                                                          row["note"])
        assert got.at.replace(tzinfo=got.at.tzinfo or timezone.utc) == at
    assert stored["k0"].note == rows[0]["note"]  # the conflicting row changed nothing


def test_a_second_writer_waits_for_the_first_without_stalling_the_service(database):
    """Two greenthreads write; the first yields to the hub (as it does on network I/O)
    while it holds its transaction. The second must wait in the hub, not in SQLite's busy
    handler: that one sleeps in C, so the first could never run to commit and the whole
    service would stall until busy_timeout (30 s) gave up with "database is locked"."""
    import time

    import eventlet

    upgrade(database)
    insert = text("INSERT INTO inbox_messages (consumer, message_id, received_at) "
                  "VALUES (:c, :m, CURRENT_TIMESTAMP)")
    order = []

    def first():
        with database.unit_of_work() as uow:
            uow.session.execute(insert, {"c": "t", "m": "first"})
            order.append("first holds")
            eventlet.sleep(0.3)
            uow.commit()
        order.append("first committed")

    def second():
        with database.unit_of_work() as uow:
            uow.session.execute(insert, {"c": "t", "m": "second"})
            uow.commit()
        order.append("second committed")

    started = time.monotonic()
    writers = [eventlet.spawn(first)]
    eventlet.sleep(0.05)
    writers.append(eventlet.spawn(second))
    for writer in writers:
        writer.wait()
    assert time.monotonic() - started < 5
    if not database.is_postgres:  # PostgreSQL's row locks let the two run side by side
        assert order == ["first holds", "first committed", "second committed"]
    with database.unit_of_work() as uow:
        ids = uow.session.execute(text("SELECT message_id FROM inbox_messages ORDER BY message_id")).scalars().all()
    assert ids == ["first", "second"]
