"""HTTP entrypoints of the above-scale roster and of coverage (art. 4), mixed into
RegistryService (which provides `config` and `db`).

    POST /api/v1/roster              import a roster file (CSV or XLSX; multipart or raw body)
    GET  /api/v1/roster              a page of a year's roster
    GET  /api/v1/roster/imports      the import history
    GET  /api/v1/coverage            coverage per county, per category, city-wide, and a page
                                     of the enterprises without an active CQO (with why)
    GET  /api/v1/coverage/export     the same as CSV or XLSX
"""
from __future__ import annotations

import io

from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from shared import clock
from shared.auth import CITY_WIDE, OFFICERS, requires
from shared.http import CSV_TYPE, XLSX_TYPE, attachment, http, json_response, load_query, read_upload
from shared.openapi import api_doc, upload_body
from services.registry import active_cqo
from services.registry.counties import county_scope
from services.registry.roster import coverage, importing, listing, coverage_export
from services.registry.roster.schemas import CoverageExportQuery, CoverageOut, CoverageQuery, RosterImportOut, RosterImportQuery, RosterImportRecordOut, RosterPageOut, RosterQuery


TAG_ROSTER, TAG_COVERAGE = "规上企业名录", "覆盖率"
DEFAULT_MAX_UPLOAD = 64 * 1024 * 1024  # bytes; config ROSTER_MAX_UPLOAD_BYTES


_import_out, _page_out, _records_out = RosterImportOut(), RosterPageOut(), RosterImportRecordOut(many=True)
_coverage_out = CoverageOut()


# --- helpers ----------------------------------------------------------------------------------
class CoveragePolicyProvider(DependencyProvider):
    """Applies the deployment's LAPSED_COUNTS_AS_COVERAGE (default false) at start."""

    def setup(self):
        active_cqo.set_policy(active_cqo.policy_from_config(self.container.config))


# --- the endpoints ------------------------------------------------------------------------------
class RosterEndpoints:
    """Mix-in of RegistryService: roster import and listing, coverage and its export."""

    coverage_policy = CoveragePolicyProvider()

    @http("POST", "/api/v1/roster")
    @requires(*CITY_WIDE)
    @api_doc("导入规模以上企业名录（第四条）", query=RosterImportQuery, response=RosterImportOut,
             tags=[TAG_ROSTER], errors=[400, 413, 415, 422], request=upload_body("名录文件（CSV 或 XLSX）"),
             description=(
                 "上传 CSV（UTF-8，可带 BOM；也接受 Excel 在中文 Windows 上保存的 GBK 编码）或 XLSX 文件，"
                 "表单字段 file，或请求体直接为文件内容。列名可用中文（统一社会信用代码、企业名称、县级区划代码、"
                 "企业类别、年度、联系人、联系电话、电子邮箱）或英文代码。每行单独校验：无效行连同行号和原因"
                 "一并返回，不影响其他行；按（年度，统一社会信用代码）更新，重复导入同一文件不产生任何变化。"))
    def import_roster(self, request):
        params = load_query(request, RosterImportQuery)
        max_bytes = int(self.config.get("ROSTER_MAX_UPLOAD_BYTES") or DEFAULT_MAX_UPLOAD)
        content, filename, content_type = read_upload(request, max_bytes, what="名录文件",
                                                      missing_code="ROSTER_FILE_MISSING")
        report = importing.import_roster(
            self.db, io.BytesIO(content), source=params.get("filename") or filename,
            actor=request.principal.subject or request.principal.role, year=params.get("year"),
            content_type=content_type)
        return json_response(_import_out.dump(report.to_dict()))

    @http("GET", "/api/v1/roster")
    @requires(*OFFICERS)
    @api_doc("查询规模以上企业名录", query=RosterQuery, response=RosterPageOut, tags=[TAG_ROSTER],
             description="县级监管人员只能查看本县（市、区）的名录。")
    def list_roster(self, request):
        filters = load_query(request, RosterQuery)
        return json_response(_page_out.dump(listing.list_entries(self.db, request.principal, filters)))

    @http("GET", "/api/v1/roster/imports")
    @requires(*CITY_WIDE)
    @api_doc("名录导入记录（谁、何时、哪个文件、结果）", response=RosterImportRecordOut(many=True),
             tags=[TAG_ROSTER])
    def list_roster_imports(self, request):
        return json_response(_records_out.dump(listing.list_imports(self.db)))

    @http("GET", "/api/v1/coverage")
    @requires(*OFFICERS)
    @api_doc("首席质量官覆盖率（第四条）", query=CoverageQuery, response=CoverageOut, tags=[TAG_COVERAGE],
             description=(
                 "按年度名录统计：各县（市、区）、各企业类别及全市的名录企业数、已覆盖（有在任且任期未届满的"
                 "已备案首席质量官）企业数和覆盖率，以及未覆盖企业清单（分页）及原因：从未备案、任期届满未续任、"
                 "已撤销/离任。企业按当年名录所列县（市、区）统计。县级监管人员只能查看本县。"))
    def get_coverage(self, request):
        q = load_query(request, CoverageQuery)
        county = county_scope(request.principal, q.get("county"))
        as_of = q.get("as_of") or clock.today()
        data = coverage.summary(self.db, q["year"], as_of, county=county, category=q.get("category"))
        data["uncovered"] = coverage.uncovered(
            self.db, q["year"], as_of, county=county, category=q.get("category"),
            reason=q.get("reason"), page=q["page"], page_size=q["page_size"],
            lapsed_counts=data["lapsed_counts_as_coverage"], counts=data["total"])
        return json_response(_coverage_out.dump(data))

    @http("GET", "/api/v1/coverage/export")
    @requires(*OFFICERS)
    @api_doc("导出首席质量官覆盖率（CSV 或 XLSX）", query=CoverageExportQuery, tags=[TAG_COVERAGE],
             response={XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
                       "text/csv": {"schema": {"type": "string", "format": "binary"}}},
             description=(
                 "XLSX：“覆盖率汇总”表（各县及全市合计，含分类别）和“未覆盖企业”表；CSV（UTF-8 带 BOM，"
                 "Excel 可直接打开）：table=summary 为汇总，table=uncovered 为未覆盖企业清单。"))
    def export_coverage(self, request):
        q = load_query(request, CoverageExportQuery)
        county = county_scope(request.principal, q.get("county"))
        as_of = q.get("as_of") or clock.today()
        content = coverage_export.export_bytes(self.db, q["year"], as_of, q["format"], table=q["table"],
                                        county=county)
        kind = "覆盖率" if q["format"] == "xlsx" or q["table"] == "summary" else "未覆盖企业"
        filename = f"{q['year']}年度首席质量官{kind}{'_' + county if county else ''}_{as_of:%Y%m%d}.{q['format']}"
        return Response(content, content_type=XLSX_TYPE if q["format"] == "xlsx" else CSV_TYPE,
                        headers={"Content-Disposition": attachment(filename)})
