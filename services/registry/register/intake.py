"""Use case: receive forwarded filings, decide them, record them, answer the counties.

One call handles one message (a single filing or a chunk of a batch) in the caller's
unit of work: the register rows, the ledger, the audit trail, the inbox mark and the
decision messages (outbox) commit together or not at all.

A batch chunk decides hundreds of filings, so rows are read with SQLAlchemy Core into
plain attribute bags and written in a handful of statements at the end (`LockedRegister`),
not as ORM objects: the per-object bookkeeping was most of a chunk's cost.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from marshmallow import ValidationError
from sqlalchemy import select

from shared import clock
from shared.contracts import FilingMessageSchema, WithdrawalRequestSchema, decision_routing_key, events
from shared.contracts.fastload import FastLoader
from shared.db import UnitOfWork
from shared.domain.qualification import NOTE, RuleSet
from shared.errors import CqoError
from shared.messaging import dead, topology
from shared.messaging.outbox import Outbox
from shared.metrics import count_after_commit, counter
from shared.personal_data import IdCipher, id_hmac, unseal
from shared.tracing import forwarded
from shared.validators.person_id import validate_person_id
from services.registry.domain.register import ACCEPTED, CREATE, END, REJECTED, REPLACE, UPDATE, WAITING, WITHDRAWN, Current, Decision, Reason, decide, ends_on, late_reason
from services.registry.models import LedgerEntry, parsed
from services.registry.oversight import recommendations
from services.registry import trust
from services.registry import announcements
from services.registry.register.locked_register import Item, LEDGER, LockedRegister, Row


log = logging.getLogger(__name__)
ACTOR = "registry.intake"
_filing_schema = FilingMessageSchema()
# the same answers as _filing_schema.load, without marshmallow's machinery for the plain case
_filing_loader = FastLoader(_filing_schema, (_filing_schema._effective_date,))
_withdrawal_schema = WithdrawalRequestSchema()
END_REASONS = {"change": "变更", "renewal": "续任", "end": "岗位撤销"}
# counted when the decision commits; "waiting" = held for its predecessor (decided later,
# then counted again with its final outcome)
DECISIONS = counter("cqo_registry_decisions_total",
                    "Filing decisions recorded by the registry, by outcome", ["outcome"])


class MalformedMessage(CqoError):
    code = "MALFORMED_MESSAGE"  # the same code dead.classify gives a body that is not JSON


class WithdrawalRefused(CqoError):
    """A withdrawal request the city cannot answer (dead-lettered with this reason)."""

    code = "WITHDRAWAL_REFUSED"


@dataclass
class IntakeContext:
    """What deciding needs besides the database: keys and rules of the city."""

    city_private_key: str
    hmac_key: str
    cipher: IdCipher
    rules: RuleSet = field(default_factory=RuleSet)
    trust: trust.BrokerTrust = field(default_factory=trust.BrokerTrust)  # BROKER_TRUST


def unpack(body: dict, routing_key: str) -> tuple[str, list[dict], list[tuple[int, object]]]:
    """(county, filings, unusable) from a single-filing or a batch message. `unusable`:
    (position, item) of batch items that cannot even be answered (not an object, no
    filing id or version); they are set aside, the others decided. A message with
    nothing usable is malformed as a whole."""
    if not isinstance(body, dict):
        raise MalformedMessage("消息体应为 JSON 对象")
    if "filings" in body:
        items, county = body.get("filings"), body.get("county")
        if not isinstance(items, list) or not items:
            raise MalformedMessage("批量报送消息缺少备案列表")
    else:
        items, county = [body], body.get("county")
    if not isinstance(county, str):
        raise MalformedMessage("消息缺少报送县区")
    filings, unusable = [], []
    for position, raw in enumerate(items, start=1):
        if isinstance(raw, dict) and _identity(raw):
            filings.append(raw)
        else:
            unusable.append((position, raw))
    if not filings:
        raise MalformedMessage("备案缺少有效的备案编号或版本号，无法回复决定")
    return county, filings, unusable


def _identity(raw: dict) -> tuple[str, int] | None:
    filing_id, version = raw.get("filing_id"), raw.get("version")
    if isinstance(filing_id, str) and 1 <= len(filing_id) <= 36 and isinstance(version, int) \
            and not isinstance(version, bool) and version >= 1:
        return filing_id, version
    return None


def decision_message_id(answering: str, county: str) -> str:
    """The id of the decisions message to `county` that answers message `answering`."""
    return f"decisions:{answering}:{county}"


def receive(uow: UnitOfWork, ctx: IntakeContext, body: dict, *, routing_key: str,
            message_id: str, user_id: str | None = None,
            headers: dict | None = None) -> dict[str, list[dict]]:
    """Decide every filing of one message; returns the decisions per county (also queued).
    A message its sender may not send is dead-lettered and audited, and decides nothing.
    `headers`: the delivery's, whose shovel forward headers the ledger keeps (trace)."""
    if not trust.admit(uow, ctx.trust, body, routing_key=routing_key, message_id=message_id,
                       user_id=user_id):
        return {}
    county, raws, unusable = unpack(body, routing_key)
    for position, raw in unusable:
        dead.set_aside(uow, ACTOR, raw, code=MalformedMessage.code,
                       reason=f"批量报送第{position}条备案缺少有效的备案编号或版本号，无法回复决定，已单独转入死信",
                       message_id=f"{message_id}#{position}", exchange=topology.FILINGS.name,
                       routing_key=routing_key, queue=topology.REGISTRY_INTAKE,
                       headers={"x-batch-message-id": message_id, "x-batch-position": position})
    items = [_load(raw, county, ctx) for raw in raws]
    now = clock.now_utc()
    session = uow.session
    decisions: dict[str, list[dict]] = defaultdict(list)

    register = LockedRegister.lock(session, items, now, message_id, forwarded(headers))

    # an enterprise's filings are applied in the order they reached the county
    items.sort(key=lambda i: (i.data["enterprise"]["uscc"] if i.data else "",
                              i.data["submitted_to_county_on"] if i.data else now.date(),
                              i.version))
    for number, item in enumerate(items, start=1):
        for answer in _receive_one(register, ctx, item, now):
            decisions[answer["county"]].append(answer)
        if number % 50 == 0:
            # a chunk is CPU-bound for a while; under eventlet (patched time) this lets the
            # outbox relay and the other workers of the process run in between
            time.sleep(0)
    register.flush()

    for target, answers in decisions.items():
        Outbox.add(uow, topology.DECISIONS.name, decision_routing_key(target),
                   decisions_wire(target, answers), message_id=decision_message_id(message_id, target))
    register.publish_announced()
    return dict(decisions)


def _load(raw: dict, county: str, ctx: IntakeContext) -> Item:
    filing_id, version = _identity(raw)
    item = Item(raw, filing_id, version)
    try:
        data = _filing_loader.load(raw)
    except ValidationError as exc:
        item.error = Decision.reject("FILING_INVALID", "备案数据未通过市局校验：" + _flatten(exc.messages))
        return item
    if data["county"] != county:
        item.error = Decision.reject("COUNTY_MISMATCH", "备案所属县区与报送县区不一致")
        return item
    try:
        data["id_number"] = _open_id(ctx, data["cqo"])
    except CqoError as exc:
        item.error = Decision.reject(exc.code, exc.message)
        return item
    data["filing_id"] = str(data["filing_id"])
    item.data = data
    return item


def _open_id(ctx: IntakeContext, cqo: dict) -> str:
    """Unseal the ID number, re-validate it and check it matches its keyed hash."""
    number = unseal(ctx.city_private_key, cqo["id_sealed"])
    validate_person_id(cqo["id_type"], number)
    if id_hmac(ctx.hmac_key, cqo["id_type"], number) != cqo["id_hmac"]:
        raise CqoError("证件号码与其校验摘要不一致", code="ID_HMAC_MISMATCH")
    return number


def _flatten(messages, prefix="") -> str:
    parts = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            parts.append(_flatten(value, f"{prefix}{key}."))
    elif isinstance(messages, list):
        parts.extend(_flatten(m, prefix) for m in messages)
    else:
        parts.append(f"{prefix.rstrip('.')}: {messages}")
    return "；".join(p for p in parts if p)


def _receive_one(register: LockedRegister, ctx, item: Item, now) -> list[dict]:
    versions = register.ledger[item.filing_id]
    seen = versions.get(item.version)
    if seen is not None:
        if seen.outcome == WAITING:
            return []  # already held; it is decided when its predecessor arrives
        return [_answer(seen, DUPLICATE_DELIVERY)]
    newest = max(versions, default=0)
    if newest > item.version:
        decision = Decision.reject(
            "FILING_SUPERSEDED", f"已收到该备案的更新版本（第{newest}版），本版本（第{item.version}版）不再处理")
        return [_record(register, item, decision, now)]
    answers = []
    for older in versions.values():  # a newer version replaces one still waiting
        if older.outcome == WAITING:
            _settle(register, older, Decision.reject(
                "FILING_SUPERSEDED", f"已收到该备案的更新版本（第{item.version}版），本版本不再处理"), now)
            answers.append(_answer(older))
    if item.error is not None:
        answers.append(_record(register, item, item.error, now))
        return answers
    decision, appointment = _apply(register, ctx, item.data, now)
    answers.append(_record(register, item, decision, now, appointment))
    # what was held for this enterprise can be decided now: its predecessor was accepted,
    # or it was an establishment the city refused (nothing more to wait for)
    if (decision.outcome == ACCEPTED or item.data["kind"] == "establishment") \
            and register.held(item.data["enterprise"]["uscc"]):
        answers.extend(_release_waiting(register, ctx, item.data["enterprise"]["uscc"], now))
    return answers


def _apply(register: LockedRegister, ctx, data: dict, now) -> tuple[Decision, Row | None]:
    session, uscc = register.session, data["enterprise"]["uscc"]
    current = register.current.get(uscc)
    view = None if current is None else Current(current.id, current.id_hmac, current.cqo_name,
                                                current.appointed_on, current.training_certificate)
    # asked only of a filing that would otherwise wait (never of a batch's establishments)
    refused = view is None and data["kind"] != "establishment" and register.establishment_rejected(uscc)
    decision = decide(data, view, has_history=uscc in register.with_history, rules=ctx.rules,
                      establishment_rejected=refused, certificates=register.certificates)
    if decision.outcome != ACCEPTED:
        return decision, None
    if decision.certificate_pending:  # 未核验: checked again when talent announces it
        register.recheck(filing_id=data["filing_id"], version=data["version"],
                         certificate_no=decision.certificate_pending,
                         id_hmac=data["cqo"]["id_hmac"], uscc=uscc, decided_at=now,
                         due_at=now + timedelta(days=ctx.rules.certificate_grace_days),
                         unknown_added=False)
    _follow_enterprise(register, data, now)
    kind = data["kind"]
    if decision.action in (REPLACE, END):
        ended_on = ends_on(data)
        current.ended_on = ended_on
        current.end_reason = data.get("end_reason") or END_REASONS[kind]
        current.ended_by_filing_id = data["filing_id"]
        register.appointment_changed(current)
        register.current.pop(uscc)
        _audit(register, now, "appointment.ended", uscc, current, data,
               {"ended_on": ended_on.isoformat(), "reason": current.end_reason})
        register.announce(announcements.ENDED, current, county=data["county"])
        if kind in ("change", "end"):
            recommendations.close_for_filing(UnitOfWork(session), current, data, now)
    if decision.action in (CREATE, REPLACE):
        appointment = _new_appointment(ctx, data, now)
        register.add_appointment(appointment)
        register.current[uscc] = appointment
        register.with_history.add(uscc)
        _audit(register, now, "appointment.created", uscc, appointment, data, {"kind": kind})
        register.announce(announcements.ACCEPTED, appointment, county=data["county"],
                          enterprise_name=data["enterprise"]["name"], kind=kind)
        return decision, appointment
    if decision.action == UPDATE:
        if register.later_filing_applied(uscc, data["submitted_to_county_on"]):
            # a late, older update must not overwrite what a newer filing recorded
            decision.reasons.append(Reason(
                "DETAILS_SUPERSEDED", "该企业已有更晚报送县局的备案被登记，本次信息更新记入台账，不覆盖现有信息"))
            return decision, current
        changes = _update_details(current, data)
        register.appointment_changed(current)
        _audit(register, now, "appointment.updated", uscc, current, data, changes)
    return decision, current


def _follow_enterprise(register: LockedRegister, data: dict, now) -> None:
    """The latest accepted filing (by the day it reached its county) carries the
    enterprise's current name, county, category. A move to another county is audited as
    `enterprise.moved`; appointments and ledger stay as they are (history is kept),
    and a slow filing from before an applied one does not move the enterprise back."""
    enterprise = register.enterprises[data["enterprise"]["uscc"]]
    changes = {k: [getattr(enterprise, k), v] for k, v in data["enterprise"].items()
               if k != "uscc" and getattr(enterprise, k) != v}
    if changes and not register.later_filing_applied(enterprise.uscc,
                                                     data["submitted_to_county_on"]):
        register.update_enterprise(enterprise, changes, now)
        action = "enterprise.moved" if "county" in changes else "enterprise.updated"
        _audit(register, now, action, enterprise.uscc, None, data, changes)


def _new_appointment(ctx, data: dict, now) -> Row:
    cqo, appt = data["cqo"], data["appointment"]
    return Row(
        id=None, uscc=data["enterprise"]["uscc"], filing_id=data["filing_id"],
        filing_version=data["version"], cqo_name=cqo["name"], id_type=cqo["id_type"],
        id_hmac=cqo["id_hmac"], id_encrypted=ctx.cipher.encrypt(data["id_number"]),
        id_masked=cqo["id_masked"], phone=cqo.get("phone"), email=cqo.get("email"),
        position=cqo["position"], is_decision_level=cqo["is_decision_level"],
        education_level=cqo.get("education_level"), title_level=cqo.get("title_level"),
        years_quality_work=cqo["years_quality_work"],
        training_certificate=cqo.get("training_certificate"), appointed_by=appt["appointed_by"],
        appointed_by_top_manager=appt["appointed_by_top_manager"], appointed_on=appt["appointed_on"],
        letter_number=appt["letter_number"], letter_date=appt["letter_date"],
        letter_sha256=appt.get("letter_sha256"), term_end=appt["term_end"], ended_on=None,
        end_reason=None, ended_by_filing_id=None, lapsed_on=None, created_at=now)


_DETAIL_FIELDS = ("phone", "email", "position", "is_decision_level", "education_level",
                  "title_level", "years_quality_work", "training_certificate", "name")


def _update_details(current: Row, data: dict) -> dict:
    changes = {}
    for key in _DETAIL_FIELDS:
        column = "cqo_name" if key == "name" else key
        new = data["cqo"].get(key)
        if getattr(current, column) != new:
            changes[key] = [getattr(current, column), new]
            setattr(current, column, new)
    return changes


def _audit(register: LockedRegister, now, action, uscc, appointment, data, detail) -> None:
    register.audit(at=now, actor=f"{ACTOR}:{data['county']}", action=action, uscc=uscc,
                   appointment=appointment, filing_id=data["filing_id"],
                   detail=json.dumps(detail, ensure_ascii=False, default=str))


def _record(register: LockedRegister, item: Item, decision: Decision, now,
            appointment: Row | None = None) -> dict:
    source = item.data or item.raw
    enterprise = source.get("enterprise")
    enterprise = enterprise if isinstance(enterprise, dict) else {}
    shovelled = register.forwarded
    row = Row(
        id=None, filing_id=item.filing_id, version=item.version,
        kind=str(source.get("kind") or "")[:16], channel=str(source.get("channel") or "")[:16],
        campaign_year=item.data.get("campaign_year") if item.data else None,
        county=str(source.get("county") or "")[:6], uscc=str(enterprise.get("uscc") or "")[:18],
        submitted_to_county_on=item.data["submitted_to_county_on"] if item.data else now.date(),
        received_at=now, decided_at=None, outcome=WAITING, reasons="[]", findings="[]",
        late=False, days_late=0, deadline=None, appointment_id=None, payload=None,
        appointment=None, message_id=register.message_id, decision_message_id=None,
        shovelled_at=shovelled.at if shovelled else None, shovel=shovelled.by if shovelled else None)
    _settle(register, row, decision, now, appointment, contact=_contact_of(source))
    if decision.outcome == WAITING:
        row.payload = json.dumps(item.raw, ensure_ascii=False)
    register.add_ledger(row)
    return _answer(row)


def _contact_of(source) -> dict | None:
    """The enterprise's contact on a filing (its CQO's name, phone, e-mail; nothing
    else of the person), told with the decision to the notification service."""
    if not (isinstance(source, dict) and isinstance(source.get("cqo"), dict)):
        return None
    return {k.removeprefix("contact_"): v for k, v in events.filing_contact(source).items()}


def _settle(register: LockedRegister, row: Row, decision: Decision, now,
            appointment: Row | None = None, contact: dict | None = None) -> None:
    if contact is None and row.payload:  # a held filing keeps its message until decided
        contact = _contact_of(json.loads(row.payload))
    reasons = list(decision.reasons)
    late = late_reason(decision)
    if late:
        reasons.append(late)
    row.outcome = decision.outcome
    row.decided_at = None if decision.outcome == WAITING else now
    if decision.outcome != WAITING:  # the message this decision goes out in (trace)
        row.decision_message_id = decision_message_id(register.message_id, row.county)
    count_after_commit(register.session, DECISIONS, decision.outcome)
    # kept parsed beside their text: the answer and the event read them (`_parsed`)
    row.reasons_parsed = [r.to_dict() for r in reasons]
    row.findings_parsed = [f.to_dict() for f in decision.findings]
    row.reasons = json.dumps(row.reasons_parsed, ensure_ascii=False)
    row.findings = json.dumps(row.findings_parsed, ensure_ascii=False)
    row.late, row.days_late = decision.lateness.late, decision.lateness.days_late
    row.deadline = decision.lateness.deadline
    row.appointment = appointment
    row.appointment_id = None if appointment is None else appointment.id  # new: set by flush
    if decision.outcome != WAITING:
        row.payload = None
    register.ledger_changed(row)
    if decision.outcome != WAITING:
        enterprise = register.enterprises.get(row.uscc)
        name = enterprise.name if enterprise is not None else None
        register.announce(announcements.DECIDED, row, enterprise_name=name, contact=contact)
        if decision.outcome == ACCEPTED and row.late:  # art. 14: the late report is recorded
            register.announce(announcements.LATE, row, enterprise_name=name, contact=contact)
    if decision.outcome == ACCEPTED:
        register.accepted(row.uscc, row.submitted_to_county_on)
    elif decision.outcome == REJECTED and row.kind == "establishment":
        register.rejected_establishment[row.uscc] = True


def _release_waiting(register: LockedRegister, ctx, uscc: str, now) -> list[dict]:
    """Decide the filings of this enterprise that were held for a predecessor."""
    answers = []
    while True:
        progressed = False
        for row in register.held(uscc):
            item = _load(json.loads(row.payload), row.county, ctx)
            if item.error is not None:
                _settle(register, row, item.error, now)
                answers.append(_answer(row))
                progressed = True
                continue
            decision, appointment = _apply(register, ctx, item.data, now)
            if decision.outcome == WAITING:
                continue
            _settle(register, row, decision, now, appointment, contact=_contact_of(item.data))
            answers.append(_answer(row))
            progressed = True
        if not progressed:
            return answers


WITHDRAWAL_TOO_LATE = Reason(
    "WITHDRAWAL_TOO_LATE", "撤回申请到达市局时该备案已作出决定，不能撤回，以下为原决定")
WITHDRAWAL_REPEATED = Reason("WITHDRAWAL_REPEATED", "该备案已应县局申请撤回，重复的撤回申请不重复处理")


def withdraw(uow: UnitOfWork, ctx: IntakeContext, body, *, routing_key: str,
             message_id: str, user_id: str | None = None) -> dict | None:
    """filing.<county>.withdraw: a county asks to withdraw a filing version that waits here
    for its predecessor. Answered on the decisions path, in the unit of work of the inbox
    mark: "withdrawn" while it still waits, otherwise the decision already made. The
    enterprise is locked first, as intake does, so the request and the decision of the
    same filing (its predecessor arriving, the timeout) are applied one after the other.
    A request the city cannot answer raises (the failure wrapper dead-letters it); one its
    sender may not send is dead-lettered and audited by the trust check, and answers nothing."""
    if not trust.admit(uow, ctx.trust, body, routing_key=routing_key, message_id=message_id,
                       user_id=user_id):
        return None
    data = _withdrawal_schema.load(body)
    county, filing_id, version = data["county"], str(data["filing_id"]), data["version"]
    parts = (routing_key or "").split(".")
    if len(parts) != 3 or parts[1] != county:
        raise WithdrawalRefused(f"撤回申请的县区“{county}”与路由键“{routing_key}”不一致",
                                code="WITHDRAWAL_COUNTY_MISMATCH")
    session, now = uow.session, clock.now_utc()
    register = LockedRegister(session, message_id)
    session.execute(register.enterprises_locked([data["uscc"]])).all()
    query = select(LEDGER).where(LEDGER.c.filing_id == filing_id, LEDGER.c.version == version)
    if register.postgres:
        query = query.with_for_update()  # expire_waiting may hold it: wait, then read its outcome
    found = session.execute(query).first()
    if found is None:
        raise WithdrawalRefused(f"市局未收到备案 {filing_id} 的第{version}版，无法撤回",
                                code="WITHDRAWAL_UNKNOWN_FILING")
    row = Row(**found._mapping, appointment=None, arrival=(0, found.id))
    if (row.county, row.uscc) != (county, data["uscc"]):
        raise WithdrawalRefused(f"备案 {filing_id} 不属于县区“{county}”的该企业，无法撤回",
                                code="WITHDRAWAL_COUNTY_MISMATCH")
    if row.outcome == WAITING:
        _settle(register, row, Decision(WITHDRAWN, reasons=[Reason(
            "FILING_WITHDRAWN", "该备案在等待前序备案期间应企业申请经县局撤回，市局不再处理")]), now)
        register.audit(at=now, actor=f"{ACTOR}:{county}", action="filing.withdrawn", uscc=row.uscc,
                       appointment=None, filing_id=filing_id, detail=json.dumps(
                           {"version": version, "requested_by": data["requested_by"],
                            "requested_at": data["requested_at"].isoformat()}, ensure_ascii=False))
        register.flush()
        answer = _answer(row)
    else:
        answer = _answer(row, WITHDRAWAL_REPEATED if row.outcome == WITHDRAWN else WITHDRAWAL_TOO_LATE)
    Outbox.add(uow, topology.DECISIONS.name, decision_routing_key(county),
               decisions_wire(county, [answer]), message_id=decision_message_id(message_id, county))
    register.publish_announced()
    log.info("withdrawal of filing %s v%d: %s", filing_id, version, answer["outcome"])
    return answer


def expire_waiting(uow: UnitOfWork, older_than: datetime) -> dict[str, list[dict]]:
    """Reject filings that waited for their predecessor longer than the timeout."""
    session, now = uow.session, clock.now_utc()
    register = LockedRegister(session, str(uuid.uuid4()))  # no message answered: a run of its own
    decisions: dict[str, list[dict]] = defaultdict(list)
    query = select(LEDGER).where(LEDGER.c.outcome == WAITING, LEDGER.c.received_at < older_than)
    if register.postgres:
        query = query.with_for_update(skip_locked=True)
    for r in session.execute(query).all():
        row = Row(**r._mapping, appointment=None)
        _settle(register, row, Decision.reject(
            "PREDECESSOR_TIMEOUT", "等待前序的岗位设立备案超时，未收到该企业的岗位设立备案，请先提交岗位设立备案"), now)
        decisions[row.county].append(_answer(row))
    register.flush()
    for target, answers in decisions.items():
        Outbox.add(uow, topology.DECISIONS.name, decision_routing_key(target),
                   decisions_wire(target, answers),
                   message_id=decision_message_id(register.message_id, target))
    register.publish_announced()
    return dict(decisions)


DUPLICATE_DELIVERY = Reason("DUPLICATE_DELIVERY", "该备案版本已作出决定，重复报送不重复处理，以下为原决定")


def log_decided(decisions: dict[str, list[dict]]) -> None:
    """One line per decision once it is on record (after the commit), with its filing id
    as correlation id: the county logs the same id when it applies it."""
    for county, answers in decisions.items():
        for answer in answers:
            log.info("filing %s v%s decided: %s", answer["filing_id"], answer["version"],
                     answer["outcome"], extra={"filing_id": str(answer["filing_id"]), "county": county})


def _answer(row: LedgerEntry, note: Reason | None = None) -> dict:
    """The decision on a ledger row as its county receives it; `note` says why it is sent
    again (a repeated filing, a withdrawal request that came too late)."""
    reasons = list(parsed(row, "reasons"))
    if note is not None:
        reasons.append(note.to_dict())
    # notes the city added to its record later (a certificate verified) are not findings
    # of the decision
    findings = [f for f in parsed(row, "findings") if f.get("severity") != NOTE]
    return {"filing_id": row.filing_id, "version": row.version, "county": row.county,
            "uscc": row.uscc, "outcome": row.outcome, "reasons": reasons,
            "findings": findings, "late": row.late,
            "days_late": row.days_late, "deadline": row.deadline,
            "decided_at": row.decided_at or row.received_at}


_REASON_KEYS = ("code", "message")
_FINDING_KEYS = ("code", "article", "message", "severity")


def decisions_wire(county: str, answers: list[dict]) -> dict:
    """`DecisionBatchSchema().dump(...)` of answers made by `_answer`, built directly: the
    answers are the register's own rows, and the schema's dump cost a chunk as much as
    writing its ledger (tests/unit check both give the same document)."""
    return {"county": str(county), "decisions": [{
        "filing_id": str(a["filing_id"]), "version": int(a["version"]), "county": str(a["county"]),
        "uscc": str(a["uscc"]), "outcome": str(a["outcome"]),
        "reasons": [{k: r[k] for k in _REASON_KEYS if k in r} for r in a["reasons"]],
        "findings": [{k: f[k] for k in _FINDING_KEYS if k in f} for f in a["findings"]],
        "late": a["late"], "days_late": int(a["days_late"]),
        "deadline": None if a["deadline"] is None else a["deadline"].isoformat(),
        "decided_at": a["decided_at"].isoformat()} for a in answers]}
