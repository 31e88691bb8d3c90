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
