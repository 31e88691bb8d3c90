"""The domain-event contract (shared/contracts/events.py)."""
from datetime import date, datetime, timezone

import pytest
from marshmallow import ValidationError

from shared.contracts import events
from shared.messaging import topology
from shared.validators.person_id import make_resident_id

HMAC = "ab" * 32
ENDED = {"appointment_id": 7, "uscc": "91130921MA0000001X", "county": "130921",
         "cqo_name": "质量官", "id_hmac": HMAC, "id_masked": "130921********123X",
         "ended_on": date(2026, 3, 1), "reason": "变更", "by_filing_id": None}


def test_an_event_is_an_envelope_with_its_checked_data():
    at = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    event = events.build("register.appointment.ended", 7, ENDED, source="registry",
                         occurred_at=at, event_id="e-1")
    assert event["event_id"] == "e-1" and event["occurred_at"] == "2026-12-02T08:00:00+00:00"
    assert event["subject"] == {"kind": "appointment", "id": "7"}
    assert event["data"]["ended_on"] == "2026-03-01"
    envelope, data = events.load(event)
    assert envelope["type"] == "register.appointment.ended" and data["ended_on"] == date(2026, 3, 1)


def test_every_type_has_a_schema_and_a_subject_kind():
    assert set(events.TYPES) >= {"register.appointment.accepted", "register.appointment.ended",
                                 "register.appointment.lapsed", "register.filing.decided",
                                 "register.recommendation.issued", "register.recommendation.closed",
                                 "talent.certificate.issued", "talent.certificate.revoked",
                                 "talent.draw.invited", "talent.draw.published", "filing.returned",
                                 "talent.expert.designated", "talent.expert.updated"}


@pytest.mark.parametrize("data, code", [
    ({**ENDED, "id_hmac": "not-a-hash"}, "EVENT_DATA_INVALID"),
    ({k: v for k, v in ENDED.items() if k != "reason"}, "EVENT_DATA_INVALID"),
    ({**ENDED, "reason": "证件号 " + make_resident_id("130921", date(1980, 1, 1), 12)},
     "EVENT_CARRIES_ID_NUMBER"),
])
def test_a_bad_event_never_leaves(data, code):
    with pytest.raises(events.EventRefused) as caught:
        events.build("register.appointment.ended", 7, data, source="registry")
    assert caught.value.code == code
    assert "1980" not in str(caught.value)  # the refusal does not repeat the number


def test_an_unknown_type_is_refused_both_ways():
    with pytest.raises(events.EventRefused):
        events.build("register.unknown", 1, {}, source="registry")
    with pytest.raises(ValidationError):
        events.load({"event_id": "x", "type": "register.unknown", "source": "s",
                     "occurred_at": "2026-12-02T08:00:00+00:00",
                     "subject": {"kind": "k", "id": "1"}, "data": {}})


def test_a_newer_source_may_add_fields():
    event = events.build("register.appointment.ended", 7, ENDED, source="registry")
    event["data"]["something_new"] = 1
    event["also_new"] = True
    _, data = events.load(event)
    assert "something_new" not in data


def test_routing_keys():
    assert events.routing_key("register.filing.decided") == "register.filing.decided"
    assert events.routing_key("filing.returned", "130921") == "filing.130921.returned"
    with pytest.raises(events.EventRefused):
        events.routing_key("filing.returned")


def test_numbers_that_only_look_like_an_id_pass():
    events.refuse_id_numbers({"a": "91130921MA0000001X", "b": ["123456789012345678"],
                              "c": "1" * 40})
    # an all-digit enterprise code that happens to pass the person check is not a person's
    number = make_resident_id("130921", date(1980, 1, 1), 12)
    events.refuse_id_numbers({"uscc": number, "employer_uscc": number})
    with pytest.raises(events.EventRefused):
        events.refuse_id_numbers({"note": f"见{number}"})


def test_the_subscribers_queues_are_bound_to_the_events_exchange():
    queues = {q.name: q for q in topology.event_queues()}
    assert set(queues) == set(topology.EVENT_SUBSCRIPTIONS)
    for name, queue in queues.items():
        assert queue.queue_arguments["x-dead-letter-exchange"] == "cqo.dead"
        assert {b.exchange.name for b in queue.bindings} == {"cqo.events"}


# -- many events at once (an import announces one per row) ------------------------------------

CERTIFICATE = {"certificate_no": "CZ-1", "course_id": 3, "course_kind": "appointment", "county": None,
               "person_name": "学员", "id_type": "resident_id", "id_hmac": HMAC,
               "id_masked": "130921********123X", "passed": True, "issued_on": date(2026, 3, 5)}


def test_build_many_gives_what_build_gives():
    at = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    variants = [CERTIFICATE, {**CERTIFICATE, "certificate_no": "CZ-2", "passed": False, "issued_on": None},
                {k: v for k, v in CERTIFICATE.items() if k != "county"},
                {**CERTIFICATE, "course_id": "3"},  # a type the fast check leaves to `build`
                {**CERTIFICATE, "extra": 1}]
    items = [(d["certificate_no"], d, f"e-{n}") for n, d in enumerate(variants)]
    many = events.build_many("talent.certificate.issued", items, source="talent", occurred_at=at)
    one_by_one = [events.build("talent.certificate.issued", s, d, source="talent", occurred_at=at, event_id=e)
                  for s, d, e in items]
    assert many == one_by_one
    for event in many:
        events.load(event)


@pytest.mark.parametrize("bad, code", [
    ({"id_hmac": "short"}, "EVENT_DATA_INVALID"),
    ({"passed": None}, "EVENT_DATA_INVALID"),
    ({"person_name": make_resident_id("130921", date(1980, 1, 1), 12)}, "EVENT_CARRIES_ID_NUMBER"),
])
def test_build_many_refuses_what_build_refuses(bad, code):
    items = [("CZ-1", CERTIFICATE, None), ("CZ-2", {**CERTIFICATE, **bad}, None)]
    with pytest.raises(events.EventRefused) as caught:
        events.build_many("talent.certificate.issued", items, source="talent")
    assert caught.value.code == code


def test_build_many_searches_each_text_apart():
    number = make_resident_id("130921", date(1980, 1, 1), 12)
    name_a, name_b = "学员" + "一" * 16 + number[:9], number[9:] + "学员" + "二" * 16  # 18+ chars each
    items = [("CZ-1", {**CERTIFICATE, "person_name": name_a}, None),
             ("CZ-2", {**CERTIFICATE, "person_name": name_b}, None)]
    assert [e["data"]["person_name"] for e in events.build_many(
        "talent.certificate.issued", items, source="talent")] == [name_a, name_b]
    with pytest.raises(events.EventRefused):
        events.build_many("talent.certificate.issued",
                          [*items, ("CZ-3", {**CERTIFICATE, "person_name": f"学员{number}"}, None)], source="talent")


def test_texts_are_searched_apart():
    number = make_resident_id("130921", date(1980, 1, 1), 12)
    assert events.holds_id_number(f"号码{number}。") and not events.holds_id_number(number[:9])
    events.refuse_id_numbers({"a": number[:9], "b": number[9:]})  # two texts never make one number


def test_a_batch_is_many_events_of_one_type_and_loads_as_them():
    built = [events.build("register.appointment.ended", i, {**ENDED, "appointment_id": i},
                          source="registry", event_id=f"e-{i}") for i in range(3)]
    loaded = events.load_all(events.batch(built))
    assert [d["appointment_id"] for _, d in loaded] == [0, 1, 2]
    assert events.load_all(built[0])[0][0]["event_id"] == "e-0"  # a single event too
    with pytest.raises(ValidationError):
        events.load_all({"events": []})



def test_a_revocation_without_the_later_fields_still_loads():
    data = {"certificate_no": "CZ-1", "id_hmac": HMAC, "revoked_on": date(2026, 12, 2), "reason": "撤销"}
    _, old = events.load(events.build("talent.certificate.revoked", "CZ-1", data, source="talent"))
    assert (old["cause"], old["county"], old["id_masked"]) == (None, None, None)
    _, new = events.load(events.build("talent.certificate.revoked", "CZ-1", {
        **data, "cause": "result_changed", "county": "130921", "course_id": 3, "id_masked": "130921********123X"},
        source="talent"))
    assert (new["cause"], new["course_id"]) == ("result_changed", 3)
    with pytest.raises(ValidationError):
        events.load(events.build("talent.certificate.revoked", "CZ-1", {**data, "cause": "whim"}, source="talent"))
