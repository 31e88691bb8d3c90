"""Entrypoints of the talent pool and the city-level experts (art. 15 人才建设, art. 10
回避): a mixin of TalentService (services/talent/service.py), which brings `db` and
`config`. Thin: each loads its input, calls one use case and renders.

`receive_events` is the one consumer of the `talent.events` queue: a second consumer on
the same queue would take every other message, so another area that needs the
register's events adds its branch here.
"""
from __future__ import annotations

from shared.auth import CITY_WIDE, OFFICERS, ROLES, requires
from shared.contracts import events
from shared.dependencies import FromConfig
from shared.http import http, json_response, load_json, load_query
from shared.keys import Keys
from shared.messaging import topology
from shared.messaging.consumer import consume
from shared.messaging.dead import dead_letter_on_error
from shared.messaging.inbox import Inbox
from shared.openapi import api_doc
from services.talent.pool import experts, members
from services.talent.pool.backfill import AppointmentsBackfill
from services.talent.pool.contacts_backfill import ExpertContactsBackfill
from services.talent.pool.expertise import catalogue
from services.talent.pool.schemas import (ConflictIn, ConflictOut, ConsentIn, ContactOut,
                                          ExpertDetailOut, ExpertIn, ExpertiseOut, ExpertPageOut,
                                          ExpertQuery, MemberOut, MemberPageOut, NominationIn,
                                          PoolQuery, ReasonIn, WithdrawIn)

EVENTS_CONSUMER = "talent.events"
TAG_POOL, TAG_EXPERTS = "人才库", "市级质量专家"
BODY_MAX_BYTES = 64 * 1024


class PoolContext:
    def __init__(self, config):
        keys = Keys(config)
        self.hmac_key = keys.get("ID_HMAC_KEY")
        self.cipher = keys.id_cipher()
        self.expertise = catalogue(config)


class PoolEndpoints:
    """The pool and its experts (no `name`: a mixin, not a service)."""

    pool = FromConfig(PoolContext)  # keys and the list of expertise
    pool_backfill = AppointmentsBackfill("db")
    expert_contacts_backfill = ExpertContactsBackfill("db")

    # -- the register's events ----------------------------------------------------------
    @consume(topology.events_queue(EVENTS_CONSUMER))
    @dead_letter_on_error(EVENTS_CONSUMER)
    def receive_events(self, body, message):
        received = events.load_all(body)  # a body off the contract is dead-lettered
        with self.db.unit_of_work() as uow:
            if not Inbox.first_time(uow, EVENTS_CONSUMER,
                                    message.message_id or received[0][0]["event_id"]):
                return  # a redelivery of events already applied
            for envelope, data in received:  # one event, or a batch of one source's
                members.apply_event(uow.session, envelope, data)
            uow.commit()

    # -- the pool -----------------------------------------------------------------------
    @http("GET", "/api/v1/pool")
    @requires(*OFFICERS)
    @api_doc("人才库成员（分页）", query=PoolQuery, response=MemberPageOut, tags=[TAG_POOL],
             description="由备案任命自动入库，也可由县局推荐；县级监管人员只能查看本县（市、区）。证件号码遮蔽显示。")
    def pool_list_members(self, request):
        filters = load_query(request, PoolQuery)
        with self.db.unit_of_work() as uow:
            return json_response(MemberPageOut().dump(members.list_members(uow, request.principal, filters)))

    @http("POST", "/api/v1/pool/nominations")
    @requires(*OFFICERS)
    @api_doc("推荐首席质量官进入人才库", request=NominationIn, response=MemberOut, status=201,
             tags=[TAG_POOL], errors=[409], description=(
                 "县级监管人员推荐本县（市、区）的首席质量官（推荐其他县的返回 403）；市级推荐须指定县。"
                 "证件号码只用于计算匹配用的散列值，不保存、不返回明文。"))
    def pool_nominate(self, request):
        data = load_json(request, NominationIn, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            body = members.nominate(uow, request.principal, data, hmac_key=self.pool.hmac_key)
        return json_response(MemberOut().dump(body), status=201)

    @http("GET", "/api/v1/expertise")
    @requires(*ROLES)
    @api_doc("专业领域目录（GB/T 4754-2017 门类和大类）", response=ExpertiseOut, tags=[TAG_EXPERTS])
    def pool_expertise(self, request):
        return json_response(ExpertiseOut().dump({"items": list(self.pool.expertise)}))

    # -- experts ------------------------------------------------------------------------
    @http("POST", "/api/v1/experts")
    @requires(*CITY_WIDE)
    @api_doc("聘任市级质量专家", request=ExpertIn, response=ExpertDetailOut, status=201,
             tags=[TAG_EXPERTS], errors=[404, 409], description=(
                 "从人才库在任成员中聘任；专业领域取自 GET /expertise（未知代码返回 422 EXPERTISE_UNKNOWN）。"
                 "电话、邮箱加密保存，列表和日志中遮蔽显示；记录专家是否同意被联系及登记人、时间。"))
    def pool_designate_expert(self, request):
        data = load_json(request, ExpertIn, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            body = experts.designate(uow, request.principal, data, cipher=self.pool.cipher,
                                     expertise=self.pool.expertise)
        return json_response(ExpertDetailOut().dump(body), status=201,
                             headers={"Location": f"/api/v1/experts/{body['id']}"})

    @http("GET", "/api/v1/experts")
    @requires(*OFFICERS)
    @api_doc("市级质量专家（分页，联系方式遮蔽）", query=ExpertQuery, response=ExpertPageOut,
             tags=[TAG_EXPERTS], description="县级监管人员只能查看本县（市、区）的专家；企业无权查看。")
    def pool_list_experts(self, request):
        filters = load_query(request, ExpertQuery)
        with self.db.unit_of_work() as uow:
            return json_response(ExpertPageOut().dump(
                experts.list_experts(uow, request.principal, filters, self.pool.expertise)))

    @http("GET", "/api/v1/experts/<uuid:expert_id>")
    @requires(*OFFICERS)
    @api_doc("市级质量专家详情（联系方式遮蔽，含利益冲突登记）", response=ExpertDetailOut,
             tags=[TAG_EXPERTS])
    def pool_get_expert(self, request, expert_id):
        with self.db.unit_of_work() as uow:
            return json_response(ExpertDetailOut().dump(
                experts.get_expert(uow, request.principal, str(expert_id), self.pool.expertise)))

    @http("GET", "/api/v1/experts/<uuid:expert_id>/contact")
    @requires(*CITY_WIDE)
    @api_doc("市级质量专家的联系方式（仅限同意被联系的专家）", response=ContactOut, tags=[TAG_EXPERTS],
             errors=[409], description="未同意被联系的专家返回 409 EXPERT_NO_CONSENT。")
    def pool_expert_contact(self, request, expert_id):
        with self.db.unit_of_work() as uow:
            return json_response(ContactOut().dump(
                experts.contact(uow, request.principal, str(expert_id), self.pool.cipher)))

    @http("POST", "/api/v1/experts/<uuid:expert_id>/consent")
    @requires(*CITY_WIDE)
    @api_doc("登记专家是否同意被联系", request=ConsentIn, response=ExpertDetailOut,
             tags=[TAG_EXPERTS], description="记录登记人和时间，并通知市级通知服务（同意时附联系方式，撤回时令其停止使用）。")
    def pool_expert_consent(self, request, expert_id):
        data = load_json(request, ConsentIn, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            return json_response(ExpertDetailOut().dump(experts.record_consent(
                uow, request.principal, str(expert_id), data["consent_to_contact"],
                self.pool.expertise, self.pool.cipher)))

    @http("POST", "/api/v1/experts/<uuid:expert_id>/suspend")
    @requires(*CITY_WIDE)
    @api_doc("暂停市级质量专家", request=ReasonIn, response=ExpertDetailOut, tags=[TAG_EXPERTS],
             errors=[409], description=(
                 "市局手动暂停，须说明理由。任职终止、任期届满未续任、所在企业收到撤换建议时系统自动暂停。"))
    def pool_suspend_expert(self, request, expert_id):
        data = load_json(request, ReasonIn, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            return json_response(ExpertDetailOut().dump(experts.suspend(
                uow, request.principal, str(expert_id), data["reason"], self.pool.expertise)))

    @http("POST", "/api/v1/experts/<uuid:expert_id>/reinstate")
    @requires(*CITY_WIDE)
    @api_doc("恢复市级质量专家", request=ReasonIn, response=ExpertDetailOut, tags=[TAG_EXPERTS],
             errors=[409], description=(
                 "解除市局的手动暂停，须说明理由。自动暂停的原因消除（如撤换建议办结）后自动恢复；"
                 "仍有其他暂停原因时专家保持暂停。"))
    def pool_reinstate_expert(self, request, expert_id):
        data = load_json(request, ReasonIn, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            return json_response(ExpertDetailOut().dump(experts.reinstate(
                uow, request.principal, str(expert_id), data["reason"], self.pool.expertise)))

    @http("POST", "/api/v1/experts/<uuid:expert_id>/conflicts")
    @requires(*OFFICERS)
    @api_doc("登记专家申报的利益冲突（第十条 回避）", request=ConflictIn, response=ConflictOut,
             status=201, tags=[TAG_EXPERTS], errors=[409],
             description="与哪家企业、自何时起；抽取专家时回避该企业。县级监管人员只能为本县专家登记。")
    def pool_declare_conflict(self, request, expert_id):
        data = load_json(request, ConflictIn, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            body = experts.declare_conflict(uow, request.principal, str(expert_id), data)
        return json_response(ConflictOut().dump(body), status=201)

    @http("POST", "/api/v1/experts/<uuid:expert_id>/conflicts/<int:conflict_id>/withdraw")
    @requires(*OFFICERS)
    @api_doc("撤销利益冲突登记", request=WithdrawIn, response=ConflictOut, tags=[TAG_EXPERTS],
             errors=[409])
    def pool_withdraw_conflict(self, request, expert_id, conflict_id):
        data = load_json(request, WithdrawIn, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            return json_response(ConflictOut().dump(experts.withdraw_conflict(
                uow, request.principal, str(expert_id), conflict_id, data.get("note"))))
