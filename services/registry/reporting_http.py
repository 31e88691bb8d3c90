"""HTTP entrypoints of campaign progress (art. 13) and the annual assessment report
(art. 16), mixed into RegistryService (which provides `db`).

The counties' progress snapshots arrive on the registry's intake queue
(`filing.<county>.progress`) and are routed by `RegistryService.receive_filings` to
`services.registry.progress.receive`.
"""
from __future__ import annotations

from urllib.parse import quote

from werkzeug.wrappers import Response

from shared.auth import requires
from shared.http import http, json_response, load_query
from shared.openapi import api_doc
from services.registry import assessment, progress
from services.registry.reporting_schemas import AssessmentOut, AssessmentQuery, CampaignProgressOut
from services.registry.schemas import CAMPAIGN_YEAR

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TAG_PROGRESS, TAG_REPORTS = "集中备案", "考核报表"
_progress_out, _assessment_out = CampaignProgressOut(), AssessmentOut()


def attachment(filename: str) -> str:
    """Content-Disposition with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    fallback = filename.encode("ascii", "ignore").decode() or "report"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


class ReportingEndpoints:
    """Mix-in of RegistryService: progress and assessment endpoints."""

    @http("GET", f"/api/v1/campaigns/<{CAMPAIGN_YEAR}:year>/progress")
    @requires("county_officer", "city_officer", "admin")
    @api_doc("年度集中备案进度（第十三条）", response=CampaignProgressOut, tags=[TAG_PROGRESS],
             errors=[404], description=(
                 "每个县（市、区）一行并附全市合计：规上企业名录数、有在任首席质量官的企业数、"
                 "本年度集中备案已备案企业数、集中备案完成率（集中备案截止时——尚未截止的为今天——名录内"
                 "有在任首席质量官的企业数÷名录数，分列本次集中备案的和此前已备案、无需变更的；名录外企业的"
                 "集中备案另列，不计入完成率；名录为空时为 null）、县局待预审/预审通过待报送/退回（县局进度快照）、"
                 "市局不予备案。列的中文名称见响应的 columns。市级监管人员看到全部县（市、区），"
                 "县级监管人员只看到本县。"))
    def campaign_progress(self, request, year):
        with self.db.unit_of_work() as uow:
            return json_response(_progress_out.dump(
                progress.campaign_progress(uow, request.principal, year)))

    @http("GET", "/api/v1/reports/assessment")
    @requires("county_officer", "city_officer", "admin")
    @api_doc("年度政府质量工作考核表（第十六条）", query=AssessmentQuery, response=AssessmentOut,
             tags=[TAG_REPORTS], description=(
                 "各县（市、区）：覆盖率、集中备案完成情况、逾期变更备案、撤换建议未办结与未响应、"
                 "任期届满未续任；培训完成情况待人才服务上线后纳入。县级监管人员只看到本县。"))
    def assessment_report(self, request):
        year = load_query(request, AssessmentQuery)["year"]
        with self.db.unit_of_work() as uow:
            report = assessment.build(uow, year, principal=request.principal)
        return json_response(_assessment_out.dump(report))

    @http("GET", "/api/v1/reports/assessment.xlsx")
    @requires("county_officer", "city_officer", "admin")
    @api_doc("年度考核表（Excel）：汇总表与各县（市、区）分表", query=AssessmentQuery,
             response={XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}},
             tags=[TAG_REPORTS])
    def assessment_workbook(self, request):
        year = load_query(request, AssessmentQuery)["year"]
        with self.db.unit_of_work() as uow:
            report = assessment.build(uow, year, principal=request.principal)
        return Response(assessment.to_xlsx(report), content_type=XLSX_TYPE, headers={
            "Content-Disposition": attachment(f"{year}年度首席质量官考核表.xlsx")})
