"""Terms (art. 5) at the registry, on the real broker, SQLite and PostgreSQL: reminders 90
and 30 days before the end (once each), lapses marked and announced, renewals."""
from datetime import date, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select

from services.registry.oversight import overdue, terms
from shared import clock
from services.registry.models import Appointment, AuditEntry, TermReminder
from tests.integration.filing_support import wait_for
from tests.integration.oversight_support import Notices, establish, get, post
from tests.integration.registry_support import running_registry

pytestmark = pytest.mark.integration

APPOINTED = date(2026, 1, 5)
END = date(2029, 1, 5)  # APPOINTED + 3 years, as the county's form defaults it


@pytest.fixture
def notices(amqp_uri):
    n = Notices(amqp_uri)
    yield n
    n.close()


def _appointment(db, uscc) -> Appointment:
    with db.unit_of_work() as uow:
        rows = uow.session.scalars(select(Appointment).where(Appointment.uscc == uscc)
                                   .order_by(Appointment.id)).all()
        uow.commit()  # nothing to write: keeps the rows loaded after the session ends
        return rows


def _columns(appointment: Appointment) -> dict:
    return {c.key: getattr(appointment, c.key) for c in Appointment.__table__.columns}


def test_reminders_90_and_30_days_before_the_end_are_raised_once(registry, notices):
    county, base, db = registry
    filing = establish(county, n=1)
    uscc = filing["enterprise"]["uscc"]
    [appointment] = _appointment(db, uscc)
    assert appointment.term_end == END

    def check(day):
        return terms.check_terms(db, as_of=day)

    assert check(END - timedelta(days=91))["reminders"] == {"90": 0, "30": 0}
    assert check(END - timedelta(days=90))["reminders"] == {"90": 1, "30": 0}
    assert check(END - timedelta(days=90))["reminders"] == {"90": 0, "30": 0}  # the timer again
    assert check(END - timedelta(days=45))["reminders"] == {"90": 0, "30": 0}
    assert check(END - timedelta(days=30))["reminders"] == {"90": 0, "30": 1}
    assert check(END - timedelta(days=29))["reminders"] == {"90": 0, "30": 0}
    last_day = check(END)  # the last day of the term: still in force (as coverage counts it)
    assert (last_day["lapsed"], last_day["reminders"]) == (0, {"90": 0, "30": 0})

    seen = notices.wait(lambda ns: len([n for n in ns if n["body"]["type"] == "term.expiring"]) >= 2)
    notices.settle(0.5)
    expiring = notices.of_type("term.expiring")
    assert [n["body"]["days"] for n in expiring] == [90, 30]
    assert [n["message_id"] for n in expiring] == [f"term:{appointment.id}:expiring:90",
                                                    f"term:{appointment.id}:expiring:30"]
    first = expiring[0]
    assert first["routing_key"] == "notice.130921"
    body = first["body"]
    assert (body["uscc"], body["county"], body["cqo_name"], body["term_end"], body["days_left"]) == (
        uscc, "130921", "质量官1", END.isoformat(), 90)
    assert "任期将于2029年01月05日届满" in body["message"] and body["title"] == "首席质量官任期即将届满"
    assert not any(n["body"]["type"] == "term.lapsed" for n in seen)
    with db.unit_of_work() as uow:
        rows = uow.session.scalars(select(TermReminder).order_by(TermReminder.days.desc())).all()
        assert [(r.appointment_id, r.days, r.as_of) for r in rows] == [
            (appointment.id, 90, END - timedelta(days=90)), (appointment.id, 30, END - timedelta(days=30))]
    assert _appointment(db, uscc)[0].lapsed_on is None

    listed = get(base, "/api/v1/terms", "county_officer", county="130921",
                 params={"as_of": (END - timedelta(days=10)).isoformat()}).json()
    assert listed["total"] == 1
    item = listed["items"][0]
    assert (item["status"], item["status_name"], item["days_left"], item["reminders"]) == (
        "expiring", "即将届满", 10, [90, 30])


def test_first_check_inside_30_days_raises_only_the_30_day_reminder(registry, notices):
    county, _, db = registry
    establish(county, n=2)
    stats = terms.check_terms(db, as_of=END - timedelta(days=12))
    assert stats["reminders"] == {"90": 0, "30": 1}
    notices.wait(lambda ns: any(n["body"]["type"] == "term.expiring" for n in ns))
    assert [n["body"]["days"] for n in notices.settle(0.5)] == [30]


def test_lapse_is_marked_once_announced_and_a_renewal_prevents_it(registry, notices):
    county, base, db = registry
    lapsing = establish(county, n=3)
    renewed = establish(county, n=4)
    renewal = county.filing("130921", n=4, kind="renewal", person=4, appointed_on=date(2028, 12, 20),
                            submitted=date(2028, 12, 20))
    county.publish(renewal)
    assert county.decision_of(renewal)["outcome"] == "accepted"
    moved = establish(county, "130922", n=5)  # another county: announced there

    before = _columns(_appointment(db, lapsing["enterprise"]["uscc"])[0])
    day = END + timedelta(days=1)
    assert terms.check_terms(db, as_of=END)["lapsed"] == 0
    first = terms.check_terms(db, as_of=day)
    assert first["lapsed"] == 2
    assert terms.check_terms(db, as_of=day)["lapsed"] == 0  # idempotent
    assert terms.check_terms(db, as_of=day + timedelta(days=30))["lapsed"] == 0

    [lapsed] = _appointment(db, lapsing["enterprise"]["uscc"])
    after = _columns(lapsed)
    assert after.pop("lapsed_on") == END + timedelta(days=1)
    before.pop("lapsed_on")
    assert after == before  # the row is history: nothing else changed, not ended
    old, new = _appointment(db, renewed["enterprise"]["uscc"])
    assert (old.ended_on, old.end_reason, old.lapsed_on) == (date(2028, 12, 20), "续任", None)
    assert (new.ended_on, new.lapsed_on, new.term_end) == (None, None, date(2031, 12, 20))
    with db.unit_of_work() as uow:
        audits = uow.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "appointment.lapsed").order_by(AuditEntry.id)).all()
        assert sorted(a.uscc for a in audits) == sorted(
            [lapsing["enterprise"]["uscc"], moved["enterprise"]["uscc"]])
        assert all(a.actor == "registry.terms" for a in audits)

    notices.wait(lambda ns: len([n for n in ns if n["body"]["type"] == "term.lapsed"]) >= 2)
    lapses = {n["body"]["uscc"]: n for n in notices.settle(0.5) if n["body"]["type"] == "term.lapsed"}
    assert set(lapses) == {lapsing["enterprise"]["uscc"], moved["enterprise"]["uscc"]}
    notice = lapses[lapsing["enterprise"]["uscc"]]
    assert notice["routing_key"] == "notice.130921"
    assert notice["message_id"] == f"term:{lapsed.id}:lapsed"
    assert (notice["body"]["term_end"], notice["body"]["lapsed_on"]) == ("2029-01-05", "2029-01-06")
    assert lapses[moved["enterprise"]["uscc"]]["routing_key"] == "notice.130922"

    # a lapsed CQO stays on record; the overdue list and the terms list show the lapse
    enterprise = get(base, f"/api/v1/enterprises/{lapsing['enterprise']['uscc']}").json()
    assert enterprise["current_cqo"]["cqo_name"] == "质量官3"
    with db.unit_of_work() as uow:
        counts = {r["county"]: r for r in overdue.per_county(uow, day)}
    assert (counts["130921"]["lapsed_terms"], counts["130922"]["lapsed_terms"]) == (1, 1)
    with db.unit_of_work() as uow:  # as of the last day of the term: nothing lapsed yet
        assert sum(r["lapsed_terms"] for r in overdue.per_county(uow, END)) == 0
    listed = get(base, "/api/v1/terms", "county_officer", county="130921",
                 params={"status": "lapsed", "as_of": day.isoformat()}).json()
    assert [(i["uscc"], i["status_name"], i["lapsed_on"], i["days_left"]) for i in listed["items"]] == [
        (lapsing["enterprise"]["uscc"], "已届满未续任", "2029-01-06", -1)]
    assert get(base, "/api/v1/terms", "county_officer", county="130922",
               params={"county": "130921"}).status_code == 403
    assert get(base, "/api/v1/terms", "enterprise", uscc=lapsing["enterprise"]["uscc"]).status_code == 403


def test_the_check_on_demand_is_for_city_officers(registry):
    _, base, _ = registry
    resp = post(base, "/api/v1/terms/check")
    assert resp.status_code == 200 and set(resp.json()) == {"as_of", "candidates", "lapsed", "reminders"}
    denied = post(base, "/api/v1/terms/check", role="county_officer", county="130921")
    assert denied.status_code == 403 and denied.json()["code"] == "AUTH_FORBIDDEN"
    assert get(base, "/api/v1/terms", params={"within_days": "x"}).status_code == 422


@pytest.fixture
def ticking_registry(amqp_uri, db_config, tmp_path, free_port):
    """The registry with its term check every half second (TERM_CHECK_INTERVAL_S)."""
    with running_registry(amqp_uri, db_config, tmp_path / "keys", free_port(),
                          TERM_CHECK_INTERVAL_S="0.5") as world:
        yield world


def test_the_timer_runs_the_check(ticking_registry, notices):
    """Real dates: a term that ended five days ago lapses, one ending in 20 days is reminded."""
    county, _, db = ticking_registry
    today = clock.today()
    # term_end = appointed_on + 3 years in the county's form
    old = establish(county, n=6, appointed_on=(today - relativedelta(years=3)) - timedelta(days=5))
    soon = establish(county, n=7, appointed_on=(today - relativedelta(years=3)) + timedelta(days=20))
    wait_for(lambda: _appointment(db, old["enterprise"]["uscc"])[0].lapsed_on is not None,
             timeout=15, message="the timer marked the lapse")
    notices.wait(lambda ns: {n["body"]["type"] for n in ns} >= {"term.lapsed", "term.expiring"})
    expiring = notices.of_type("term.expiring")
    assert [(n["body"]["uscc"], n["body"]["days"]) for n in expiring] == [
        (soon["enterprise"]["uscc"], 30)]
    with db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(TermReminder)) == 1
