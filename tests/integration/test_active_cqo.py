"""One "active CQO on a date" (services/registry/active_cqo.py) at the registry, on the real
broker, SQLite and PostgreSQL: the award check (art. 16) and coverage (art. 4) agree on a
lapsed term, under either LAPSED_COUNTS_AS_COVERAGE; `?on=` a past date; `since` across a
renewal without a gap and after one; the SQL predicate and the plain rule agree."""
from __future__ import annotations

import contextlib
from datetime import date, timedelta

import pytest
import requests
from nameko.containers import ServiceContainer
from sqlalchemy import select, text

from services.registry import active_cqo
from services.registry.oversight import terms
from services.registry.domain import active_cqo as rules
from services.registry.models import Appointment, RosterEntry
from services.registry.service import RegistryService
from shared import clock
from tests.support.factories import uscc_for
from tests.integration.registry_support import registry_config, token

pytestmark = pytest.mark.integration

A = "130921"
YEAR = 2026
# n of each enterprise (uscc_for(A, n)):
LAPSED, RENEWED, GAP, ENDED, CHANGED = 31, 32, 33, 34, 35


def _get(base, path, **params):
    return requests.get(base + path, params=params, timeout=30,
                        headers={"Authorization": token("city_officer")})


def award(base, n, on=None) -> dict:
    resp = _get(base, f"/api/v1/enterprises/{uscc_for(A, n)}/award-check",
                **({"on": on.isoformat()} if on else {}))
    assert resp.status_code == 200, resp.text
    return resp.json()


def uncovered(base, on: date) -> set[str]:
    body = _get(base, "/api/v1/coverage", year=YEAR, as_of=on.isoformat(), page_size=500).json()
    return {item["uscc"]: item["reason"] for item in body["uncovered"]["items"]}


@pytest.fixture
def world(registry):
    county, base, db = registry

    def file(n, person, kind="establishment", appointed_on=None, **kw):
        filing = county.filing(A, n=n, person=person, kind=kind, appointed_on=appointed_on,
                               submitted=appointed_on + timedelta(days=10), **kw)
        county.publish(filing)
        decision = county.decision_of(filing, county=A)
        assert decision["outcome"] == "accepted", decision

    file(LAPSED, 31, appointed_on=date(2022, 1, 5))                # term ended 2025-01-05
    file(RENEWED, 32, appointed_on=date(2021, 6, 1))               # term to 2024-06-01 ...
    file(RENEWED, 32, "renewal", appointed_on=date(2024, 6, 1))    # ... renewed that day
    file(GAP, 33, appointed_on=date(2020, 1, 10))                  # term ended 2023-01-10 ...
    file(GAP, 33, "renewal", appointed_on=date(2024, 5, 1))        # ... renewed 16 months later
    file(ENDED, 34, appointed_on=date(2021, 1, 1))
    file(ENDED, 34, "end", appointed_on=date(2021, 1, 1), effective_on=date(2023, 3, 1))
    file(CHANGED, 35, appointed_on=date(2025, 1, 5))
    file(CHANGED, 36, "change", appointed_on=date(2026, 3, 1), effective_on=date(2026, 3, 1))
    with db.unit_of_work() as uow:
        uow.session.add_all(RosterEntry(year=YEAR, uscc=uscc_for(A, n), name=f"沧州在任测试企业{n}有限公司",
                                        county=A, category="industrial_above_scale")
                            for n in (LAPSED, RENEWED, GAP, ENDED, CHANGED))
        uow.commit()
    # the term check marks the lapse, as the registry's timer does
    assert terms.check_terms(db)["lapsed"] == 1
    with db.unit_of_work() as uow:
        marked = uow.session.scalars(select(Appointment).where(Appointment.uscc == uscc_for(A, LAPSED))).one()
        assert marked.lapsed_on == date(2025, 1, 6) and marked.ended_on is None
    return county, base, db


@contextlib.contextmanager
def registry_with(amqp_uri, db_config, keys_dir, port, **settings):
    """A second registry on the same database, with settings of its own."""
    container = ServiceContainer(RegistryService, {
        **registry_config(amqp_uri, db_config, keys_dir, port), **settings})
    container.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        container.stop()
        active_cqo.set_policy(False)  # the policy is process-wide: leave the default behind


def test_a_lapsed_term_is_not_active_in_the_award_check_nor_in_coverage(world, amqp_uri, db_config,
                                                                       tmp_path, free_port):
    _, base, _ = world
    today = clock.today()
    lapsed = award(base, LAPSED)
    assert lapsed["has_active_cqo"] is False and lapsed["since"] is None
    assert lapsed["on"] == today.isoformat() and lapsed["lapsed_counts_as_coverage"] is False
    assert "2025年01月05日届满" in lapsed["message"]
    assert uncovered(base, today)[uscc_for(A, LAPSED)] == "lapsed"
    # every enterprise, on every day that matters: the award check and coverage agree
    days = [date(2020, 1, 9), date(2022, 1, 4), date(2022, 1, 5), date(2023, 1, 11),
            date(2023, 3, 1), date(2024, 6, 1), date(2025, 1, 5), date(2025, 1, 6), today]
    for day in days:
        missing = uncovered(base, day)
        for n in (LAPSED, RENEWED, GAP, ENDED, CHANGED):
            assert award(base, n, day)["has_active_cqo"] is (uscc_for(A, n) not in missing), (n, day)

    with registry_with(amqp_uri, db_config, tmp_path / "keys", free_port(),
                       LAPSED_COUNTS_AS_COVERAGE="true") as lenient:
        counted = award(lenient, LAPSED)
        assert counted["has_active_cqo"] is True and counted["since"] == "2022-01-05"
        assert counted["lapsed_counts_as_coverage"] is True and counted["term_end"] == "2025-01-05"
        assert uscc_for(A, LAPSED) not in uncovered(lenient, today)
        # no day without a CQO once a lapsed term counts
        assert award(lenient, GAP)["since"] == "2020-01-10"
        for day in days:
            missing = uncovered(lenient, day)
            for n in (LAPSED, RENEWED, GAP, ENDED, CHANGED):
                assert award(lenient, n, day)["has_active_cqo"] is (uscc_for(A, n) not in missing), (n, day)


def test_award_check_on_a_past_date(world):
    _, base, _ = world
    assert award(base, LAPSED, date(2022, 1, 4))["has_active_cqo"] is False     # before appointment
    on_first_day = award(base, LAPSED, date(2022, 1, 5))
    assert on_first_day["has_active_cqo"] and on_first_day["since"] == "2022-01-05"
    last_day = award(base, LAPSED, date(2025, 1, 5))
    assert last_day["has_active_cqo"] and last_day["on"] == "2025-01-05" and last_day["cqo_name"] == "质量官31"
    assert award(base, LAPSED, date(2025, 1, 6))["has_active_cqo"] is False
    ended = award(base, ENDED, date(2023, 3, 1))
    assert ended["has_active_cqo"] is False and "2023年03月01日离任" in ended["message"]
    assert award(base, ENDED, date(2023, 2, 28))["since"] == "2021-01-01"
    # the CQO in post that day, not today's
    assert award(base, CHANGED, date(2026, 2, 28))["cqo_name"] == "质量官35"
    assert award(base, CHANGED)["cqo_name"] == "质量官36"

    for bad in ("2026-13-01", "2026-02-30", "yesterday"):
        resp = _get(base, f"/api/v1/enterprises/{uscc_for(A, LAPSED)}/award-check", on=bad)
        assert resp.status_code == 422 and resp.headers["Content-Type"].startswith("application/problem+json")
        problem = resp.json()
        assert problem["errors"]["on"] == ["不是有效的日期（应为 YYYY-MM-DD）"], problem
        assert problem["code"]


def test_since_is_the_start_of_the_unbroken_period(world):
    _, base, _ = world
    renewed = award(base, RENEWED)
    assert renewed["has_active_cqo"] and renewed["since"] == "2021-06-01"   # across the renewal
    assert "2021年06月01日起" in renewed["message"]
    assert award(base, RENEWED, date(2022, 1, 1))["since"] == "2021-06-01"
    after_gap = award(base, GAP)
    assert after_gap["has_active_cqo"] and after_gap["since"] == "2024-05-01"
    assert award(base, GAP, date(2023, 3, 1))["has_active_cqo"] is False      # the gap itself
    changed = award(base, CHANGED)                                           # a change, no gap
    assert changed["since"] == "2025-01-05" and changed["cqo_name"] == "质量官36"


def test_the_sql_predicate_and_the_rule_agree(world):
    _, _, db = world
    appointments = db.read(lambda conn: conn.execute(select(
        Appointment.id, Appointment.appointed_on, Appointment.ended_on, Appointment.term_end)).all())
    days = sorted({d + timedelta(days=k) for a in appointments
                   for d in (a.appointed_on, a.term_end, a.ended_on) if d is not None for k in (-1, 0, 1)})
    for lapsed_counts in (False, True):
        sql = text(f"SELECT id FROM appointments WHERE "
                   f"{active_cqo.active_sql(lapsed_counts=lapsed_counts)} ORDER BY id")
        for day in days:
            found = db.read(lambda conn: [r[0] for r in conn.execute(sql, {"as_of": day})])
            expected = sorted(a.id for a in appointments
                              if rules.is_active(a, day, lapsed_counts=lapsed_counts))
            assert found == expected, (day, lapsed_counts)
