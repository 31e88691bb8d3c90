"""HTTP entrypoints of the register (arts. 12, 14, 16): the enterprise lookup, the award check, the filing ledger; mixed into RegistryService (which provides `db`)."""
from __future__ import annotations

from werkzeug.wrappers import Response
from shared.auth import OFFICERS, ROLES, requires
from shared.http import JSON_TYPE, http, json_response, load_query
from shared.openapi import api_doc
from shared.tracing import TraceOut
from services.registry.register import awards, ledger, lookup, trace
from services.registry.register.schemas import AwardCheckOut, AwardCheckQuery, EnterpriseOut, LedgerPageOut, LedgerQuery, UsccPath



class RegisterEndpoints:
    """Mix-in of RegistryService: what officers and enterprises read of the register."""

    @http("GET", "/api/v1/enterprises/<string:uscc>")
    @requires(*ROLES)
    @api_doc("查询企业首席质量官备案信息（在任人员、任职历史、备案记录）", response=EnterpriseOut,
             path=UsccPath, tags=["备案登记"], errors=[404])
    def get_enterprise(self, request, uscc):
        return Response(lookup.enterprise(self.db, request.principal, uscc), content_type=JSON_TYPE)

    @http("GET", "/api/v1/enterprises/<string:uscc>/award-check")
    @requires(*ROLES)
    @api_doc("评优核查：企业是否有在任的已备案首席质量官（第十六条）", query=AwardCheckQuery,
             response=AwardCheckOut, path=UsccPath, tags=["备案登记"], errors=[404])
    def award_check(self, request, uscc):
        on = load_query(request, AwardCheckQuery).get("on")
        with self.db.unit_of_work() as uow:
            return json_response(awards.award_check(uow, request.principal, uscc, on))

    @http("GET", "/api/v1/filings")
    @requires(*OFFICERS)
    @api_doc("备案台账（可筛选、分页）", query=LedgerQuery, response=LedgerPageOut, tags=["备案登记"])
    def list_filings(self, request):
        filters = load_query(request, LedgerQuery)
        with self.db.unit_of_work() as uow:
            return json_response(ledger.ledger(uow, request.principal, filters))

    @http("GET", "/api/v1/filings/<uuid:filing_id>/trace")
    @requires(*OFFICERS)
    @api_doc("备案流转记录（市局部分）", response=TraceOut, tags=["备案登记"], errors=[404], description=(
        "市局记录的该备案各版本的流转环节和时间：经转运到达市局（消息转运的 x-shovelled 头，精确到秒）、"
        "市局接收、市局作出决定、决定消息已发布，及各环节的消息编号。县局的环节由县局服务回答，"
        "cqo trace 合并两者。县级监管人员只能查看本县的备案。"))
    def trace_filing(self, request, filing_id):
        with self.db.unit_of_work() as uow:
            return json_response(trace.trace(uow, request.principal, str(filing_id)))
