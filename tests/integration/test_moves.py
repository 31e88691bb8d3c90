"""An enterprise that moves to another county keeps its history; its later filings come
from the new county, which receives the decisions; coverage counts it where each year's
roster puts it. On the real broker, SQLite and PostgreSQL."""
from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from services.registry.roster import coverage
from services.registry.models import Appointment, AuditEntry, Enterprise, RosterEntry
from tests.integration import filing_support as fs
from tests.integration.reporting_support import site

pytestmark = pytest.mark.integration

OLD, NEW = "130921", "130922"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return request.param, pg


def test_filings_from_the_new_county_are_accepted_and_history_is_kept(backend, broker, run_id,
                                                                       tmp_path):
    name, pg = backend
    with site(broker, run_id, name, tmp_path, pg, counties=(OLD, NEW), tag="move",
              filing_services=False) as (city, _, side, _):
        uscc = fs.new_uscc(OLD)
        establishment = side.filing(county=OLD, uscc=uscc, person=11, appointed_on=date(2025, 3, 1),
                                    submitted=date(2025, 3, 10))
        side.publish(establishment)
        assert side.decision_of(establishment, OLD)["outcome"] == "accepted"

        # the enterprise moved: its update (same CQO) is filed by the new county
        moved = side.filing(county=NEW, uscc=uscc, person=11, kind="update",
                            appointed_on=date(2025, 3, 1), submitted=date(2026, 2, 1),
                            cqo_overrides={"phone": "13911112222"})
        side.publish(moved)
        decision = side.decision_of(moved, NEW)  # the answer goes to the new county
        assert decision["outcome"] == "accepted" and decision["county"] == NEW

        # a slow message of the old county, reported before the move, is decided on its
        # merits but does not move the enterprise back
        stale = side.filing(county=OLD, uscc=uscc, person=11, kind="update",
                            appointed_on=date(2025, 3, 1), submitted=date(2026, 1, 15),
                            cqo_overrides={"phone": "13911112222", "email": "old@example.cn"})
        side.publish(stale)
        assert side.decision_of(stale, OLD)["outcome"] == "accepted"

        change = side.filing(county=NEW, uscc=uscc, person=12, kind="change",
                             appointed_on=date(2026, 3, 1), effective_on=date(2026, 3, 1),
                             submitted=date(2026, 3, 5), cqo_overrides={"name": "新县质量官"})
        side.publish(change)
        assert side.decision_of(change, NEW)["outcome"] == "accepted"

        with city.db.unit_of_work() as uow:
            s = uow.session
            assert s.get(Enterprise, uscc).county == NEW
            history = s.scalars(select(Appointment).where(Appointment.uscc == uscc)
                                .order_by(Appointment.id)).all()
            assert [(a.cqo_name, a.ended_on) for a in history] == [
                ("质量官11", date(2026, 3, 1)), ("新县质量官", None)]
            assert history[0].phone == "13911112222"  # the updates applied to the appointment
            moves = s.scalars(select(AuditEntry).where(AuditEntry.uscc == uscc,
                                                       AuditEntry.action == "enterprise.moved")).all()
            assert len(moves) == 1 and json.loads(moves[0].detail)["county"] == [OLD, NEW]
            assert moves[0].actor.endswith(NEW) and moves[0].filing_id == moved["filing_id"]
        ledger = city.rows("SELECT county, kind, outcome FROM filing_ledger WHERE uscc = :u "
                           "ORDER BY received_at, id", u=uscc)
        assert [tuple(r) for r in ledger] == [(OLD, "establishment", "accepted"),
                                              (NEW, "update", "accepted"),
                                              (OLD, "update", "accepted"),
                                              (NEW, "change", "accepted")]

        # the new county's officers see the whole history; the old county's no longer
        seen = city.get(f"/api/v1/enterprises/{uscc}", "county_officer", county=NEW).json()
        assert seen["county"] == NEW and len(seen["history"]) == 2 and len(seen["filings"]) == 4
        assert city.get(f"/api/v1/enterprises/{uscc}", "county_officer", county=OLD).status_code == 404

        # coverage counts it where each year's roster puts it
        with city.db.unit_of_work() as uow:
            uow.session.add_all([
                RosterEntry(year=2025, uscc=uscc, name="迁移企业", county=OLD,
                            category="industrial_above_scale"),
                RosterEntry(year=2026, uscc=uscc, name="迁移企业", county=NEW,
                            category="industrial_above_scale")])
            uow.commit()
        with city.db.unit_of_work() as uow:
            y2025 = {r["county"]: r for r in coverage.per_county(uow, 2025, date(2025, 12, 31))}
            y2026 = {r["county"]: r for r in coverage.per_county(uow, 2026, date(2026, 6, 30))}
        assert (y2025[OLD]["covered"], y2025[NEW]["roster_size"]) == (1, 0)
        assert (y2026[NEW]["covered"], y2026[OLD]["roster_size"]) == (1, 0)


def test_the_new_county_filing_service_receives_the_decisions(backend, broker, run_id, tmp_path):
    """Both counties' filing services as they run: the enterprise files at the old county,
    moves, files an update and a change at the new one; the new county sees them accepted."""
    name, pg = backend
    with site(broker, run_id, name, tmp_path, pg, counties=(OLD, NEW), tag="move2",
              progress_interval=3600) as (city, counties, _, _):
        old, new = counties[OLD], counties[NEW]
        uscc = fs.new_uscc(OLD)
        form = fs.filing_payload(uscc, county=OLD)
        number = form["cqo"]["id_number"]
        resp = old.post("/filings", form, fs.enterprise(uscc))
        assert resp.status_code == 201, resp.text
        first = old.review(resp.json()["id"])
        assert first["status"] == "forwarded"

        def status(stack, filing_id):
            return stack.get(f"/filings/{filing_id}", fs.officer(stack.county)).json()["status"]

        fs.wait_for(lambda: status(old, first["id"]) == "accepted", timeout=20,
                    message="establishment accepted at the old county")

        # at the new county nobody knows the CQO yet: the update carries a warning, the city
        # (which knows the history) decides it
        update = fs.filing_payload(uscc, county=NEW, kind="update", cqo__id_number=number,
                                   cqo__phone="13700001111")
        resp = new.post("/filings", update, fs.enterprise(uscc))
        assert resp.status_code == 201, resp.text
        assert "FILING_NO_PRIOR" in {f["code"] for f in resp.json()["findings"]}
        moved = new.review(resp.json()["id"])
        fs.wait_for(lambda: status(new, moved["id"]) == "accepted", timeout=20,
                    message="update accepted at the new county")

        change = fs.filing_payload(uscc, county=NEW, kind="change", cqo__name="新县首席质量官")
        resp = new.post("/filings", change, fs.enterprise(uscc))
        assert resp.status_code == 201, resp.text
        changed = new.review(resp.json()["id"])
        fs.wait_for(lambda: status(new, changed["id"]) == "accepted", timeout=20,
                    message="change accepted at the new county")
        detail = new.get(f"/filings/{changed['id']}", fs.enterprise(uscc)).json()
        assert detail["decision"]["outcome_name"] == "备案通过"

        # the old county received nothing about the new county's filings
        assert old.count("filing_decisions") == 1
        assert new.count("filing_decisions", "outcome = 'accepted'") == 2
        body = city.get(f"/api/v1/enterprises/{uscc}", "county_officer", county=NEW).json()
        assert body["county"] == NEW and body["county_name"] == "青县"
        assert [(a["cqo_name"], a["ended_on"] is None) for a in body["history"]] == [
            ("新县首席质量官", True), ("张质量", False)]
        assert sorted(f["county"] for f in body["filings"]) == [OLD, NEW, NEW]
