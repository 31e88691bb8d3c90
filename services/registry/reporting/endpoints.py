"""HTTP entrypoints of campaign progress (art. 13) and the annual assessment report
(art. 16), mixed into RegistryService (which provides `db`).

The counties' progress snapshots arrive on the registry's intake queue
(`filing.<county>.progress`) and are routed by `RegistryService.receive_filings` to
`services.registry.progress.receive`.
"""
from __future__ import annotations

from werkzeug.wrappers import Response

from shared.auth import OFFICERS, requires
from shared.http import XLSX_TYPE, attachment, http, json_response, load_query
from shared.openapi import api_doc
from services.registry.reporting import assessment, training, workbook
from services.registry.campaigns import progress
from services.registry.reporting.schemas import AssessmentOut, AssessmentQuery

TAG_REPORTS = "考核报表"
_assessment_out = AssessmentOut()


class ReportingEndpoints:
    """Mix-in of RegistryService: progress and assessment endpoints (RegistryService
    provides `db` and `talent`, an RPC proxy to the talent service)."""

    def _training(self, year: int) -> dict | None:
        """Asked before the report's transaction, never inside it."""
        timeout = float(self.config.get("TALENT_TIMEOUT") or training.DEFAULT_TIMEOUT_S)
        return training.ask(lambda y: self.talent.training_summary(y), year, timeout)

    @http("GET", "/api/v1/reports/assessment")
    @requires(*OFFICERS)
    @api_doc("年度政府质量工作考核表（第十六条）", query=AssessmentQuery, response=AssessmentOut,
             tags=[TAG_REPORTS], description=(
                 "各县（市、区）：覆盖率、集中备案完成情况、逾期变更备案、撤换建议未办结与未响应、"
                 "任期届满未续任、培训班次与参训合格人次（人才服务未应答时为 null）。县级监管人员只看到本县。"))
    def assessment_report(self, request):
        year = load_query(request, AssessmentQuery)["year"]
        figures = self._training(year)
        with self.db.unit_of_work() as uow:
            report = assessment.build(uow, year, principal=request.principal, training=figures)
        return json_response(_assessment_out.dump(report))

    @http("GET", "/api/v1/reports/assessment.xlsx")
    @requires(*OFFICERS)
    @api_doc("年度考核表（Excel）：汇总表与各县（市、区）分表", query=AssessmentQuery,
             response={XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}},
             tags=[TAG_REPORTS])
    def assessment_workbook(self, request):
        year = load_query(request, AssessmentQuery)["year"]
        figures = self._training(year)
        with self.db.unit_of_work() as uow:
            report = assessment.build(uow, year, principal=request.principal, training=figures)
        return Response(workbook.to_xlsx(report), content_type=XLSX_TYPE, headers={
            "Content-Disposition": attachment(f"{year}年度首席质量官考核表.xlsx")})
