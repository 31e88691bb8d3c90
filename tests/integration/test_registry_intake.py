"""The city registry on the real broker, SQLite and PostgreSQL (issue 3)."""
from datetime import date

import pytest
from sqlalchemy import func, select

from services.registry.models import Appointment, LedgerEntry
from tests.integration.registry_support import get

pytestmark = pytest.mark.integration


def test_establishment_is_accepted_and_shown_masked(registry):
    county, base, _ = registry
    filing = county.filing(n=1)
    county.publish(filing)
    decision = county.decision_of(filing)
    assert decision["outcome"] == "accepted" and not decision["late"]
    uscc = filing["enterprise"]["uscc"]
    body = get(base, f"/api/v1/enterprises/{uscc}").json()
    assert body["current_cqo"]["cqo_name"] == "质量官1"
    assert "*" in body["current_cqo"]["id_masked"]
    assert [f["outcome"] for f in body["filings"]] == ["accepted"]
    award = get(base, f"/api/v1/enterprises/{uscc}/award-check").json()
    assert award["has_active_cqo"] and award["since"] == "2026-01-05"


def test_change_before_establishment_waits_then_both_are_decided_in_order(registry):
    county, base, db = registry
    establishment = county.filing(n=2, submitted=date(2026, 1, 10))
    change = county.filing(n=2, kind="change", effective_on=date(2026, 2, 1),
                           submitted=date(2026, 2, 10), cqo_overrides={"name": "新质量官"},
                           person=99)
    county.publish(change)
    assert county.decision_of(change)["outcome"] == "waiting"
    county.publish(establishment)
    decisions = county.drain(until=lambda d: d.get((change["filing_id"], 1), {}).get("outcome") != "waiting")
    assert decisions[(establishment["filing_id"], 1)]["outcome"] == "accepted"
    assert decisions[(change["filing_id"], 1)]["outcome"] == "accepted"
    history = get(base, f"/api/v1/enterprises/{establishment['enterprise']['uscc']}").json()["history"]
    assert [(a["cqo_name"], a["ended_on"]) for a in history] == [("新质量官", None), ("质量官2", "2026-02-01")]


def test_late_change_is_accepted_and_flagged_by_county_submission_date(registry):
    county, _, _ = registry
    county.publish(county.filing(n=3))
    change = county.filing(n=3, kind="change", person=300, effective_on=date(2026, 1, 31),
                           submitted=date(2026, 3, 3))
    county.publish(change)
    decision = county.decision_of(change)
    assert decision["outcome"] == "accepted" and decision["late"] and decision["days_late"] == 3
    assert any(r["code"] == "LATE_CHANGE" for r in decision["reasons"])


def test_duplicate_delivery_is_applied_once_and_answered_again(registry):
    county, _, db = registry
    filing = county.filing(n=4)
    county.publish(filing, message_id="dup-1")
    county.publish(filing, message_id="dup-1")  # the same message twice
    county.publish(filing, message_id="dup-2")  # the same filing in another message
    county.drain(until=lambda d: (filing["filing_id"], 1) in d)
    county.drain(timeout=2.0)
    answers = [d for m in county.messages for d in m["decisions"] if d["filing_id"] == filing["filing_id"]]
    assert len(answers) == 2  # the first decision, then the duplicate answered with it
    assert any(r["code"] == "DUPLICATE_DELIVERY" for r in answers[1]["reasons"])
    with db.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Appointment)) == 1
        assert uow.session.scalar(select(func.count()).select_from(LedgerEntry)) == 1


def test_older_version_after_newer_is_superseded(registry):
    county, _, _ = registry
    v2 = county.filing(n=5, version=2)
    v1 = county.filing(n=5, version=1, filing_id=v2["filing_id"])
    county.publish(v2)
    assert county.decision_of(v2)["outcome"] == "accepted"
    county.publish(v1)
    decision = county.decision_of(v1)
    assert decision["outcome"] == "rejected" and decision["reasons"][0]["code"] == "FILING_SUPERSEDED"


def test_second_establishment_is_rejected_asking_for_a_change(registry):
    county, _, _ = registry
    county.publish(county.filing(n=6))
    again = county.filing(n=6, person=600)
    county.publish(again)
    decision = county.decision_of(again)
    assert decision["outcome"] == "rejected" and decision["reasons"][0]["code"] == "CQO_ALREADY_FILED"


def test_batch_decides_each_filing_and_rejects_the_invalid_one(registry):
    county, _, _ = registry
    good = [county.filing(n=100 + i, channel="campaign") for i in range(20)]
    unqualified = county.filing(n=200, channel="campaign", cqo_overrides={"years_quality_work": 1})
    broken = county.filing(n=201, channel="campaign")
    broken["cqo"]["id_hmac"] = "0" * 64  # does not match the sealed number
    county.publish(county.batch(good + [unqualified, broken]))
    decisions = county.drain(until=lambda d: len(d) >= 22)
    assert all(decisions[(f["filing_id"], 1)]["outcome"] == "accepted" for f in good)
    assert decisions[(unqualified["filing_id"], 1)]["reasons"][0]["code"] == "QUALIFICATION_NOT_MET"
    assert decisions[(broken["filing_id"], 1)]["reasons"][0]["code"] == "ID_HMAC_MISMATCH"


def test_counties_only_receive_their_own_decisions(registry):
    county, _, _ = registry
    a = county.filing("130921", n=7)
    b = county.filing("130922", n=7)
    county.publish(a)
    county.publish(b)
    assert county.decision_of(b, county="130922")["county"] == "130922"
    assert county.decision_of(a)["county"] == "130921"
    assert all(d["county"] == "130922" for m in county.messages for d in m["decisions"]
               if (d["filing_id"], d["version"]) == (b["filing_id"], 1))


def test_lookup_is_scoped_to_the_caller(registry):
    county, base, _ = registry
    filing = county.filing(n=8)
    county.publish(filing)
    county.decision_of(filing)
    uscc = filing["enterprise"]["uscc"]
    path = f"/api/v1/enterprises/{uscc}"
    assert get(base, path, "county_officer", county="130921").status_code == 200
    assert get(base, path, "enterprise", uscc=uscc).status_code == 200
    other = get(base, path, "county_officer", county="130922")
    assert other.status_code == 404 and other.json()["code"] == "ENTERPRISE_NOT_FOUND"
    assert get(base, path, "enterprise", uscc=county.filing(n=9)["enterprise"]["uscc"]).status_code == 404
    bad = get(base, "/api/v1/enterprises/91130921M00000019Y")
    assert bad.status_code == 422 and bad.json()["code"] == "USCC_CHECK"
    ledger = get(base, "/api/v1/filings?county=130921&outcome=accepted", "county_officer",
                 county="130921").json()
    assert ledger["total"] == 1 and ledger["items"][0]["kind_name"] == "岗位设立"
    other = get(base, "/api/v1/filings?county=130921", "county_officer", county="130922")
    assert other.status_code == 403 and other.json()["code"] == "AUTH_FORBIDDEN"
    assert get(base, "/api/v1/filings?page_size=0").status_code == 422


def test_a_late_older_update_does_not_overwrite_newer_details(registry):
    county, base, db = registry
    county.publish(county.filing(n=30, submitted=date(2026, 1, 10)))
    newer = county.filing(n=30, kind="update", submitted=date(2026, 3, 1),
                          cqo_overrides={"phone": "13900000002"})
    older = county.filing(n=30, kind="update", submitted=date(2026, 2, 1),
                          cqo_overrides={"phone": "13900000001"})
    county.publish(newer)
    assert county.decision_of(newer)["outcome"] == "accepted"
    county.publish(older)  # reached the county first, the city last
    decision = county.decision_of(older)
    assert decision["outcome"] == "accepted"
    assert [r["code"] for r in decision["reasons"]] == ["DETAILS_SUPERSEDED"]
    uscc = newer["enterprise"]["uscc"]
    phone = db.read(lambda c: c.execute(select(Appointment.phone).where(
        Appointment.uscc == uscc, Appointment.ended_on.is_(None))).scalar_one())
    assert phone == "13900000002"


def test_one_message_holding_an_enterprises_whole_history_is_applied_in_county_order(registry):
    """Establishment, change and updates of one enterprise in one batch chunk, in the
    wrong order: decided as they reached the county, the register written once."""
    county, base, db = registry
    establishment = county.filing(n=31, channel="campaign", submitted=date(2026, 1, 10))
    early_update = county.filing(n=31, kind="update", channel="campaign", submitted=date(2026, 1, 5),
                                 cqo_overrides={"phone": "13900000005"})
    change = county.filing(n=31, kind="change", channel="campaign", person=3100,
                           effective_on=date(2026, 2, 1), submitted=date(2026, 2, 10),
                           cqo_overrides={"name": "新任质量官"})
    county.publish(county.batch([change, early_update, establishment]))
    decisions = county.drain(until=lambda d: all(
        d.get((f["filing_id"], 1), {}).get("outcome") not in (None, "waiting")
        for f in (establishment, early_update, change)))
    assert decisions[(establishment["filing_id"], 1)]["outcome"] == "accepted"
    assert decisions[(change["filing_id"], 1)]["outcome"] == "accepted"
    # submitted before the establishment: held, then recorded without overwriting it
    update = decisions[(early_update["filing_id"], 1)]
    assert update["outcome"] == "accepted"
    assert [r["code"] for r in update["reasons"]] == ["DETAILS_SUPERSEDED"]
    uscc = establishment["enterprise"]["uscc"]
    history = get(base, f"/api/v1/enterprises/{uscc}").json()["history"]
    assert [(a["cqo_name"], a["ended_on"]) for a in history] == [
        ("新任质量官", None), ("质量官31", "2026-02-01")]
    ledger = db.read(lambda c: c.execute(select(LedgerEntry.filing_id, LedgerEntry.appointment_id)
                                         .where(LedgerEntry.uscc == uscc)).all())
    appointment_ids = db.read(lambda c: set(c.execute(select(Appointment.id).where(
        Appointment.uscc == uscc)).scalars()))
    assert len(ledger) == 3 and {a for _, a in ledger} <= appointment_ids


def test_an_unanswerable_batch_item_is_set_aside_and_the_rest_decided(registry):
    """An item without a filing id (or not an object) cannot be answered: it alone goes
    to cqo.dead, recorded as "<message id>#<position>"; the other filings are decided."""
    import json as _json
    import uuid as _uuid

    from kombu import Queue as _Queue

    from shared.messaging import topology
    from shared.messaging.models import DeadLetter
    from tests.support import polling

    county, _, db = registry
    good = [county.filing(n=40 + i, channel="campaign") for i in range(3)]
    message_id = str(_uuid.uuid4())
    county.publish(county.batch([good[0], {"kind": "establishment"}, good[1], "奇怪", good[2]]),
                   message_id=message_id)
    decisions = county.drain(until=lambda d: all((f["filing_id"], 1) in d for f in good))
    assert all(decisions[(f["filing_id"], 1)]["outcome"] == "accepted" for f in good)
    rows = db.read(lambda c: c.execute(select(DeadLetter.message_id, DeadLetter.error_code,
                                              DeadLetter.payload)
                                       .order_by(DeadLetter.id)).all())
    assert [(m, code) for m, code, _ in rows] == [(f"{message_id}#2", "MALFORMED_MESSAGE"),
                                                  (f"{message_id}#4", "MALFORMED_MESSAGE")]
    assert [_json.loads(p) for _, _, p in rows] == [{"kind": "establishment"}, "奇怪"]
    dead = _Queue(topology.DEAD_QUEUE_NAME)(county.connection.channel())
    copies = {}

    def collect():
        while (m := dead.get(no_ack=True)) is not None:
            copies[m.properties.get("message_id")] = m
        return len(copies) >= 2
    polling.wait_for(collect, 20, "two dead letters on cqo.dead")
    part = copies[f"{message_id}#2"]
    assert part.headers["x-error-code"] == "MALFORMED_MESSAGE"
    assert part.headers["x-batch-position"] == 2 and "第2条" in part.headers["x-error-reason"]
    assert _json.loads(part.body) == {"kind": "establishment"}
    assert db.read(lambda c: c.execute(select(func.count()).select_from(LedgerEntry)).scalar()) >= 3


# -- issue 8, defect 2 (a): nothing waits for an establishment the city refused ---------------

def _codes(decision) -> list[str]:
    return [r["code"] for r in decision["reasons"]]


def test_change_after_a_rejected_establishment_is_rejected_at_once(registry):
    county, base, db = registry
    refused = county.filing(n=50, cqo_overrides={"years_quality_work": 1})
    county.publish(refused)
    assert county.decision_of(refused)["outcome"] == "rejected"
    change = county.filing(n=50, kind="change", person=5000, effective_on=date(2026, 2, 1),
                           submitted=date(2026, 2, 10))
    county.publish(change)
    decision = county.decision_of(change)
    assert (decision["outcome"], _codes(decision)) == ("rejected", ["ESTABLISHMENT_REJECTED"])
    assert "岗位设立备案未获市局备案通过" in decision["reasons"][0]["message"]
    assert "岗位设立备案提交" in decision["reasons"][0]["message"]  # what to file instead
    outcomes = db.read(lambda c: c.execute(select(LedgerEntry.outcome).where(
        LedgerEntry.filing_id == change["filing_id"])).scalars().all())
    assert outcomes == ["rejected"]


def test_filing_held_for_an_establishment_is_decided_when_that_is_rejected(registry):
    """The predecessor arrives after the change and is refused: the held change is decided
    then (rejected), not left waiting until the timeout."""
    county, _, db = registry
    change = county.filing(n=51, kind="change", person=5100, effective_on=date(2026, 2, 1),
                           submitted=date(2026, 2, 10))
    county.publish(change)
    assert county.decision_of(change)["outcome"] == "waiting"
    refused = county.filing(n=51, cqo_overrides={"years_quality_work": 1})
    county.publish(refused)
    decisions = county.drain(until=lambda d: d.get((change["filing_id"], 1), {}).get("outcome") != "waiting")
    assert decisions[(refused["filing_id"], 1)]["outcome"] == "rejected"
    decision = decisions[(change["filing_id"], 1)]
    assert (decision["outcome"], _codes(decision)) == ("rejected", ["ESTABLISHMENT_REJECTED"])
    assert db.read(lambda c: c.execute(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.outcome == "waiting")).scalar()) == 0


def test_refused_establishment_and_its_change_in_one_chunk(registry):
    county, _, _ = registry
    refused = county.filing(n=52, channel="campaign", submitted=date(2026, 1, 10),
                            cqo_overrides={"years_quality_work": 1})
    end = county.filing(n=52, kind="end", channel="campaign", effective_on=date(2026, 2, 1),
                        submitted=date(2026, 2, 10))
    county.publish(county.batch([end, refused]))
    decisions = county.drain(until=lambda d: all((f["filing_id"], 1) in d for f in (refused, end)))
    assert decisions[(refused["filing_id"], 1)]["outcome"] == "rejected"
    decision = decisions[(end["filing_id"], 1)]
    assert (decision["outcome"], _codes(decision)) == ("rejected", ["ESTABLISHMENT_REJECTED"])
    assert "无需提交岗位撤销备案" in decision["reasons"][0]["message"]


def test_change_without_any_establishment_still_waits(registry):
    county, _, _ = registry
    change = county.filing(n=53, kind="change", person=5300, effective_on=date(2026, 2, 1))
    county.publish(change)
    decision = county.decision_of(change)
    assert (decision["outcome"], _codes(decision)) == ("waiting", ["WAITING_FOR_PREDECESSOR"])


# -- issue 8, defect 4: a renewal or change never ends an appointment before it began ---------

def test_renewal_dated_before_the_current_appointment_is_rejected_and_history_kept(registry):
    county, base, db = registry
    establishment = county.filing(n=60, appointed_on=date(2023, 12, 20), submitted=date(2023, 12, 25))
    county.publish(establishment)
    assert county.decision_of(establishment)["outcome"] == "accepted"
    renewal = county.filing(n=60, kind="renewal", appointed_on=date(2023, 1, 1),
                            submitted=date(2026, 1, 10))
    county.publish(renewal)
    decision = county.decision_of(renewal)
    assert (decision["outcome"], _codes(decision)) == ("rejected", ["APPOINTMENT_BEFORE_CURRENT"])
    message = decision["reasons"][0]["message"]
    assert "2023年01月01日" in message and "2023年12月20日" in message
    change = county.filing(n=60, kind="change", person=6000, appointed_on=date(2023, 6, 1),
                           effective_on=date(2024, 1, 5), submitted=date(2026, 1, 11))
    county.publish(change)
    decision = county.decision_of(change)
    assert (decision["outcome"], _codes(decision)) == ("rejected", ["APPOINTMENT_BEFORE_CURRENT"])
    uscc = establishment["enterprise"]["uscc"]
    history = get(base, f"/api/v1/enterprises/{uscc}").json()["history"]
    assert [(a["cqo_name"], a["appointed_on"], a["ended_on"], a["term_end"]) for a in history] == [
        ("质量官60", "2023-12-20", None, "2026-12-20")]
    ended = db.read(lambda c: c.execute(select(func.count()).select_from(Appointment).where(
        Appointment.ended_on < Appointment.appointed_on)).scalar())
    assert ended == 0


def test_held_renewal_predating_its_predecessor_is_rejected_when_released(registry):
    county, base, _ = registry
    renewal = county.filing(n=61, kind="renewal", appointed_on=date(2023, 1, 1),
                            submitted=date(2026, 1, 10))
    county.publish(renewal)
    assert county.decision_of(renewal)["outcome"] == "waiting"
    establishment = county.filing(n=61, appointed_on=date(2023, 12, 20), submitted=date(2023, 12, 25))
    county.publish(establishment)
    decisions = county.drain(until=lambda d: d.get((renewal["filing_id"], 1), {}).get("outcome") != "waiting")
    assert decisions[(establishment["filing_id"], 1)]["outcome"] == "accepted"
    assert _codes(decisions[(renewal["filing_id"], 1)]) == ["APPOINTMENT_BEFORE_CURRENT"]
    history = get(base, f"/api/v1/enterprises/{establishment['enterprise']['uscc']}").json()["history"]
    assert [(a["appointed_on"], a["ended_on"]) for a in history] == [("2023-12-20", None)]
