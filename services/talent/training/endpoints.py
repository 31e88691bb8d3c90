"""Entrypoints of training (art. 6, art. 15 教育培训), mixed into TalentService (which
provides `config` and `db`). Thin: parse, call one use case, render.

    POST /api/v1/courses                               create a course
    GET  /api/v1/courses                               a page of courses
    GET  /api/v1/courses/{id}                          one course with its counts
    POST /api/v1/courses/{id}/attendance               record one person's attendance
    GET  /api/v1/courses/{id}/attendance               a page of the attendance (masked)
    POST /api/v1/courses/{id}/attendance/import        import a CSV or XLSX file
    POST /api/v1/certificates/revocations              revoke a certificate (final)
    rpc  talent.training_summary(year)                 per county, for the assessment report
"""
from __future__ import annotations

from marshmallow import ValidationError
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from shared.auth import requires
from shared.http import http, json_response, load_json, load_query, read_upload
from shared.openapi import api_doc, upload_body
from services.talent.training import attendance, courses, importing, revocations, summary
from services.talent.training.recording import PersonKeys
from services.talent.training.schemas import (AttendanceIn, AttendancePageOut, AttendanceQuery, AttendanceWrittenOut,
                                              CourseIn, CourseOut, CoursePageOut, CourseQuery, ImportOut,
                                              ImportQuery, RevocationIn, RevocationOut)

TAG = "培训管理"
OFFICERS = ("county_officer", "city_officer", "admin")
DEFAULT_MAX_UPLOAD = 32 * 1024 * 1024  # bytes; config TRAINING_MAX_UPLOAD_BYTES
_course_out, _course_page_out = CourseOut(), CoursePageOut()
_written_out, _attendance_page_out, _import_out = AttendanceWrittenOut(), AttendancePageOut(), ImportOut()
_revocation_out = RevocationOut()


class PersonKeysProvider(DependencyProvider):
    """The ID keys (ID_HMAC_KEY, ID_ENCRYPTION_KEYS), read once at start."""

    def setup(self):
        self.keys = PersonKeys.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.keys


class TrainingEndpoints:
    """Mix-in of TalentService: courses, attendance, its import and the yearly summary."""

    training_keys = PersonKeysProvider()

    @http("POST", "/api/v1/courses")
    @requires(*OFFICERS)
    @api_doc("创建培训课程（第六条、第十五条）", request=CourseIn, response=CourseOut, status=201, tags=[TAG],
             errors=[403], description=(
                 "培训类别：任职培训、基础培训、提升培训；组织层级：市级或县级（县级须填写所属县）。"
                 "县级监管人员只能为本县（市、区）创建县级培训。"))
    def training_create_course(self, request):
        data = load_json(request, CourseIn)
        with self.db.unit_of_work() as uow:
            body = courses.create(uow, request.principal, data)
        return json_response(_course_out.dump(body), status=201,
                             headers={"Location": f"/api/v1/courses/{body['id']}"})

    @http("GET", "/api/v1/courses")
    @requires(*OFFICERS)
    @api_doc("培训课程列表", query=CourseQuery, response=CoursePageOut, tags=[TAG],
             description="县级监管人员看到市级培训和本县（市、区）的县级培训。")
    def training_list_courses(self, request):
        filters = load_query(request, CourseQuery)
        with self.db.unit_of_work() as uow:
            return json_response(_course_page_out.dump(courses.list_page(uow, request.principal, filters)))

    @http("GET", "/api/v1/courses/<int:course_id>")
    @requires(*OFFICERS)
    @api_doc("培训课程详情（含学员数、合格数）", response=CourseOut, tags=[TAG], errors=[403, 404])
    def training_get_course(self, request, course_id):
        with self.db.unit_of_work() as uow:
            return json_response(_course_out.dump(courses.get(uow, request.principal, course_id)))

    @http("POST", "/api/v1/courses/<int:course_id>/attendance")
    @requires(*OFFICERS)
    @api_doc("登记一名学员的培训情况", request=AttendanceIn, response=AttendanceWrittenOut, status=201, also=(200,),
             tags=[TAG], errors=[403, 404, 409], description=(
                 "按（课程，证件）识别学员：首次登记返回 201，再次提交同一人返回 200（result 为 updated 或 "
                 "unchanged）。证件号码经校验后加密保存，应答中只有脱敏号码。有证书编号的记录会发布证书事件。"
                 "县级监管人员只能登记本县（市、区）县级培训的学员。"))
    def training_record_attendance(self, request, course_id):
        data = load_json(request, AttendanceIn)
        with self.db.unit_of_work() as uow:
            body, result = attendance.record(uow, request.principal, course_id, data, self.training_keys)
        return json_response(_written_out.dump({**body, "result": result}),
                             status=201 if result == "inserted" else 200)

    @http("GET", "/api/v1/courses/<int:course_id>/attendance")
    @requires(*OFFICERS)
    @api_doc("课程学员名单（证件号码脱敏）", query=AttendanceQuery, response=AttendancePageOut, tags=[TAG],
             errors=[403, 404], description="县级监管人员只能查看本县（市、区）县级培训的学员。")
    def training_list_attendance(self, request, course_id):
        filters = load_query(request, AttendanceQuery)
        with self.db.unit_of_work() as uow:
            return json_response(_attendance_page_out.dump(
                attendance.list_page(uow, request.principal, course_id, filters)))

    @http("POST", "/api/v1/courses/<int:course_id>/attendance/import")
    @requires(*OFFICERS)
    @api_doc("导入课程学员名单（CSV 或 XLSX）", query=ImportQuery, response=ImportOut, tags=[TAG],
             errors=[400, 403, 404, 409, 413, 415], request=upload_body("学员名单（CSV 或 XLSX）"),
             description=(
                 "列名可用中文：姓名、证件类型（默认居民身份证）、证件号码、统一社会信用代码、企业名称、培训类别、"
                 "考核结果（合格/不合格）、证书编号、发证日期。每行单独校验：无效行连同行号和原因一并返回，不影响"
                 "其他行；按（课程，证件）识别学员，重复导入同一文件不产生任何变化，考核结果或证书有改动的行被更新。"
                 "县级监管人员只能导入本县（市、区）县级培训的名单。"))
    def training_import_attendance(self, request, course_id):
        params = load_query(request, ImportQuery)
        max_bytes = int(self.config.get("TRAINING_MAX_UPLOAD_BYTES") or DEFAULT_MAX_UPLOAD)
        content, filename, _ = read_upload(request, max_bytes, what="培训学员名单",
                                           missing_code="TRAINING_FILE_MISSING")
        report = importing.import_attendance(
            self.db, content, course_id=course_id, principal=request.principal, keys=self.training_keys,
            source=params.get("filename") or filename)
        return json_response(_import_out.dump(report.to_dict()))

    @rpc
    def training_summary(self, year):
        """{county or "city": {"courses", "attendees", "passed"}} of the courses starting in `year`."""
        return summary.training_summary(self.db, year)

    @http("POST", "/api/v1/certificates/revocations")
    @requires(*OFFICERS)
    @api_doc("撤销培训证书（第六条）", request=RevocationIn, response=RevocationOut, status=201, also=(200,),
             tags=[TAG], errors=[403, 404], description=(
                 "撤销是终局的：同一证书编号只撤销一次，首次撤销返回 201，再次提交返回 200 和原撤销记录（不改变）。"
                 "撤销后发布证书撤销事件，市局登记台账中以该证书任职的在任首席质量官记录补记“培训证书已撤销”。"
                 "已撤销的证书编号不能再次使用。县级监管人员只能撤销本县（市、区）县级培训的证书。"))
    def training_revoke_certificate(self, request):
        try:
            data = load_json(request, RevocationIn)
        except ValidationError as exc:
            raise (revocations.refused(exc.messages) or exc) from None
        body, created = revocations.revoke(self.db, request.principal, data)
        return json_response(_revocation_out.dump(body), status=201 if created else 200)
