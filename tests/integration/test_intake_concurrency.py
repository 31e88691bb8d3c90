"""Registry intake against the waiting-filing timeout, on PostgreSQL's row locks."""
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from services.registry.register import intake, locked_register
from services.registry.models import LedgerEntry
from services.registry.service import MIGRATIONS
from shared.keys import Keys
from shared.migrate import upgrade
from tests.support.factories import filing_message, uscc_for

pytestmark = pytest.mark.integration
COUNTY = "130921"


def test_a_held_filing_being_released_is_not_expired_meanwhile(database, tmp_path, monkeypatch):
    """A change waits for its establishment. While the establishment's message is
    being decided (and releases the change from memory), the timeout sweep runs: it
    must skip the change, not reject it underneath (the county would get two answers)."""
    if not database.is_postgres:
        pytest.skip("SQLite runs one writer at a time: there is no in-between")
    upgrade(database, MIGRATIONS)
    keys = Keys({"DEV_KEYS_DIR": str(tmp_path / "keys")})
    ctx = intake.IntakeContext(city_private_key=keys.get("CITY_PRIVATE_KEY"),
                               hmac_key=keys.get("ID_HMAC_KEY"), cipher=keys.id_cipher())
    common = {"county": COUNTY, "uscc": uscc_for(COUNTY, 7), "hmac_key": keys.get("ID_HMAC_KEY"),
              "city_public_key": keys.get("CITY_PUBLIC_KEY")}
    establishment = filing_message(person=7, submitted=date(2026, 1, 10), **common)
    change = filing_message(person=70, kind="change", effective_on=date(2026, 2, 1),
                            submitted=date(2026, 2, 10), **common)

    with database.unit_of_work() as uow:
        held = intake.receive(uow, ctx, change, routing_key=f"filing.{COUNTY}.change",
                              message_id="m-change")
        uow.commit()
    assert [d["outcome"] for d in held[COUNTY]] == ["waiting"]

    expired = {}
    flush = locked_register.LockedRegister.flush

    swept = []

    def sweep_then_flush(register):
        # the sweep runs after the establishment's message read the held change and
        # decided it in memory, before it writes (the widest window there is)
        if not swept:  # (the sweep's own flush comes through here too)
            swept.append(True)
            with database.unit_of_work() as expiring:  # every waiting filing is overdue
                expired.update(intake.expire_waiting(
                    expiring, datetime.now(timezone.utc) + timedelta(days=1)))
                expiring.commit()
        flush(register)

    monkeypatch.setattr(locked_register.LockedRegister, "flush", sweep_then_flush)
    with database.unit_of_work() as releasing:
        answers = intake.receive(releasing, ctx, establishment, message_id="m-establishment",
                                 routing_key=f"filing.{COUNTY}.establishment")
        releasing.commit()

    assert expired == {}
    assert {d["filing_id"]: d["outcome"] for d in answers[COUNTY]} == {
        establishment["filing_id"]: "accepted", change["filing_id"]: "accepted"}
    with database.unit_of_work() as uow:
        ledger = dict(uow.session.execute(select(LedgerEntry.filing_id, LedgerEntry.outcome)).all())
    assert ledger == {establishment["filing_id"]: "accepted", change["filing_id"]: "accepted"}
