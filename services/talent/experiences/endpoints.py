"""HTTP entrypoints of typical experiences and benchmark CQOs (art. 17), mixed into
TalentService (which provides `config` and `db`). Thin: load, call one use case, render.

    POST   /api/v1/experiences                              a county submits
    GET    /api/v1/experiences[/{id}]                       officers, in their scope
    PATCH  /api/v1/experiences/{id}                         the county corrects (before approval)
    PUT    /api/v1/experiences/{id}/consent                 the enterprise's consent to publication
    POST   /api/v1/experiences/{id}/review                  the city approves, returns, publishes
    POST   /api/v1/experiences/{id}/attachments             upload (multipart, field `file`)
    GET    /api/v1/experiences/{id}/attachments/{aid}       download (SHA-256 checked)
    DELETE /api/v1/experiences/{id}/attachments/{aid}
    GET    /api/v1/public/experiences[/{id}[/attachments/{aid}]]   published ones, no token
    POST   /api/v1/benchmarks, GET /api/v1/benchmarks, POST /api/v1/benchmarks/{id}/withdrawal
    GET    /api/v1/public/benchmarks                        no token, withdrawn ones left out
"""
from __future__ import annotations


from werkzeug.wrappers import Response

from shared.auth import CITY_WIDE, OFFICERS, requires
from shared.dependencies import FromConfig
from shared.errors import CqoError
from shared.http import attachment, http, json_response, load_json, load_query, read_body
from shared.openapi import api_doc
from services.talent.domain import experiences as rules
from services.talent.experiences import attachments, benchmarks, review, submissions, views
from services.talent.experiences.schemas import (
    BenchmarkIn, BenchmarkOut, BenchmarkPageOut, BenchmarkQuery, ConsentIn, ExperienceIn, ExperienceOut,
    ExperiencePageOut, ExperiencePatch, ExperienceQuery, OfficerAttachmentOut, PublicBenchmarkPageOut,
    PublicBenchmarkQuery, PublicExperienceOut, PublicExperiencePageOut, PublicExperienceQuery, ReviewIn,
    WithdrawIn)

TAG_EXPERIENCES, TAG_PUBLIC, TAG_BENCHMARKS = "典型经验", "公开信息", "标杆首席质量官"
BODY_MAX_BYTES = 256 * 1024        # an experience's text is at most 20,000 characters
MULTIPART_OVERHEAD = 64 * 1024     # the form's boundaries and headers around the file
FILE_CONTENT = {kind.content_type: {"schema": {"type": "string", "format": "binary"}}
                for kind in rules.KINDS.values()}
UPLOAD = {"multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
    "file": {"type": "string", "format": "binary",
             "description": f"附件（{rules.ALLOWED_TEXT}），文件名须带扩展名"}}}}}


def _file(download: attachments.Download) -> Response:
    return Response(download.content, content_type=download.content_type, headers={
        "Content-Disposition": attachment(download.filename),
        "X-Content-Type-Options": "nosniff"})


def _upload(request, limits: attachments.Limits) -> tuple[bytes, str | None, str | None]:
    """(content, file name, declared type) of the form field `file`."""
    if (request.mimetype or "").lower() != "multipart/form-data":
        raise CqoError("请以 multipart/form-data 表单上传附件（字段名 file）", code="UNSUPPORTED_MEDIA_TYPE",
                       status=415)
    try:
        read_body(request, limits.max_bytes + MULTIPART_OVERHEAD)
    except CqoError as exc:  # refused before reading, with the attachment's own code
        if exc.code == "PAYLOAD_TOO_LARGE":
            raise rules.too_large(limits.max_bytes) from None
        raise
    upload = request.files.get("file")
    if upload is None:
        raise CqoError("请以表单字段 file 上传附件（须带文件名）", code="ATTACHMENT_FILE_MISSING", status=400)
    return upload.read(), upload.filename, upload.mimetype


class ExperienceEndpoints:
    """Typical experiences and benchmark CQOs (no `name`: a mixin, not a service)."""

    # EXPERIENCE_ATTACHMENT_MAX_BYTES (default 5 MiB) and _MAX_COUNT (default 10)
    attachment_limits = FromConfig(attachments.Limits.from_config)

    # -- typical experiences, for officers -------------------------------------------------
    @http("POST", "/api/v1/experiences")
    @requires("county_officer")
    @api_doc("提交典型经验（第十七条）", request=ExperienceIn, response=ExperienceOut, status=201,
             tags=[TAG_EXPERIENCES], description=(
                 "县级监管人员为本县（市、区）的企业提交典型经验；附件另行上传。企业对公开的同意"
                 "（第十条：保守企业秘密）可随提交登记，也可以后登记；未登记同意的不能发布。"))
    def submit_experience(self, request):
        data = load_json(request, ExperienceIn, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            experience_id = submissions.submit(uow, request.principal, data)
        return json_response(views.detail(self.db, request.principal, experience_id), status=201,
                             headers={"Location": f"/api/v1/experiences/{experience_id}"})

    @http("GET", "/api/v1/experiences")
    @requires(*OFFICERS)
    @api_doc("典型经验列表（各状态）", query=ExperienceQuery, response=ExperiencePageOut,
             tags=[TAG_EXPERIENCES], description="县级监管人员只能查看本县（市、区）的。")
    def list_experiences(self, request):
        filters = load_query(request, ExperienceQuery)
        return json_response(views.listing(self.db, request.principal, filters))

    @http("GET", "/api/v1/experiences/<int:experience_id>")
    @requires(*OFFICERS)
    @api_doc("典型经验详情（含同意登记、附件和处理记录）", response=ExperienceOut, tags=[TAG_EXPERIENCES])
    def get_experience(self, request, experience_id):
        return json_response(views.detail(self.db, request.principal, experience_id))

    @http("PATCH", "/api/v1/experiences/<int:experience_id>")
    @requires("county_officer")
    @api_doc("修改典型经验（审核通过前）", request=ExperiencePatch, response=ExperienceOut,
             tags=[TAG_EXPERIENCES], errors=[409],
             description="只能修改本县的、待审核或已退回的典型经验；已退回的修改后重新提交审核。")
    def edit_experience(self, request, experience_id):
        changes = load_json(request, ExperiencePatch, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            submissions.edit(uow, request.principal, experience_id, changes)
        return json_response(views.detail(self.db, request.principal, experience_id))

    @http("PUT", "/api/v1/experiences/<int:experience_id>/consent")
    @requires(*OFFICERS)
    @api_doc("登记企业对公开典型经验的同意（第十条）", request=ConsentIn, response=ExperienceOut,
             tags=[TAG_EXPERIENCES], description=(
                 "同意须有依据：同意书编号或同意日期至少一项。登记为不同意（企业撤回同意）时，"
                 "已发布的典型经验随即撤销发布。"))
    def record_consent(self, request, experience_id):
        consent = load_json(request, ConsentIn)
        with self.db.unit_of_work() as uow:
            submissions.record_consent(uow, request.principal, experience_id, consent)
        return json_response(views.detail(self.db, request.principal, experience_id))

    @http("POST", "/api/v1/experiences/<int:experience_id>/review")
    @requires(*CITY_WIDE)
    @api_doc("审核典型经验：通过、退回、发布、撤销发布", request=ReviewIn, response=ExperienceOut,
             tags=[TAG_EXPERIENCES], errors=[409], description=(
                 "待审核的可通过或退回（退回须填意见）；已审核的可发布或退回；已发布的可撤销发布。"
                 "未登记企业同意的不能发布（409 EXPERIENCE_CONSENT_MISSING）。"))
    def review_experience(self, request, experience_id):
        data = load_json(request, ReviewIn)
        with self.db.unit_of_work() as uow:
            review.review(uow, request.principal, experience_id, data["action"], data.get("comment"))
        return json_response(views.detail(self.db, request.principal, experience_id))

    @http("POST", "/api/v1/experiences/<int:experience_id>/attachments")
    @requires(*OFFICERS)
    @api_doc("上传典型经验附件", request=UPLOAD, response=OfficerAttachmentOut, status=201,
             tags=[TAG_EXPERIENCES], errors=[409], description=(
                 f"只接受 {rules.ALLOWED_TEXT}，按文件内容核对类型（415 ATTACHMENT_TYPE_NOT_ALLOWED、"
                 "ATTACHMENT_CONTENT_MISMATCH）；超过大小上限（默认 5 MiB）为 413 ATTACHMENT_TOO_LARGE；"
                 "每条附件数有上限（默认 10 个，409 ATTACHMENT_COUNT_EXCEEDED）。保存时记录 SHA-256，下载时核对。"
                 "审核通过后不能再上传。"))
    def upload_attachment(self, request, experience_id):
        content, filename, declared = _upload(request, self.attachment_limits)
        with self.db.unit_of_work() as uow:
            attachment_id = attachments.add(uow, request.principal, experience_id, filename, declared,
                                            content, self.attachment_limits)
        body = views.attachment(self.db, experience_id, attachment_id)
        return json_response(body, status=201, headers={"Location": body["download"]})

    @http("GET", "/api/v1/experiences/<int:experience_id>/attachments/<int:attachment_id>")
    @requires(*OFFICERS)
    @api_doc("下载典型经验附件", response=FILE_CONTENT, tags=[TAG_EXPERIENCES], errors=[409],
             description="内容与上传时登记的 SHA-256 不一致时不提供下载（409 ATTACHMENT_INTEGRITY_FAILED）。")
    def download_attachment(self, request, experience_id, attachment_id):
        return _file(attachments.download(self.db, request.principal, experience_id, attachment_id))

    @http("DELETE", "/api/v1/experiences/<int:experience_id>/attachments/<int:attachment_id>")
    @requires(*OFFICERS)
    @api_doc("删除典型经验附件（审核通过前）", status=204, tags=[TAG_EXPERIENCES], errors=[409])
    def delete_attachment(self, request, experience_id, attachment_id):
        with self.db.unit_of_work() as uow:
            attachments.remove(uow, request.principal, experience_id, attachment_id)
        return Response(status=204)

    # -- published experiences, without a token ------------------------------------------------
    @http("GET", "/api/v1/public/experiences")
    @api_doc("已发布的典型经验（无需令牌）", query=PublicExperienceQuery, response=PublicExperiencePageOut,
             tags=[TAG_PUBLIC])
    def public_experiences(self, request):
        return json_response(views.public_listing(self.db, load_query(request, PublicExperienceQuery)))

    @http("GET", "/api/v1/public/experiences/<int:experience_id>")
    @api_doc("已发布的典型经验详情（无需令牌）", response=PublicExperienceOut, tags=[TAG_PUBLIC])
    def public_experience(self, request, experience_id):
        return json_response(views.public_detail(self.db, experience_id))

    @http("GET", "/api/v1/public/experiences/<int:experience_id>/attachments/<int:attachment_id>")
    @api_doc("下载已发布典型经验的附件（无需令牌）", response=FILE_CONTENT, tags=[TAG_PUBLIC], errors=[409])
    def public_attachment(self, request, experience_id, attachment_id):
        return _file(attachments.download(self.db, None, experience_id, attachment_id))

    # -- benchmark CQOs ------------------------------------------------------------------------
    @http("POST", "/api/v1/benchmarks")
    @requires(*CITY_WIDE)
    @api_doc("评定年度标杆首席质量官（第十七条）", request=BenchmarkIn, response=BenchmarkOut, status=201,
             tags=[TAG_BENCHMARKS], errors=[409],
             description="由市级评定；同一年度同一企业的同一人只能评定一次（409 BENCHMARK_DUPLICATE）。")
    def designate_benchmark(self, request):
        data = load_json(request, BenchmarkIn, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            body = benchmarks.designate(uow, request.principal, data)
        return json_response(body, status=201)

    @http("GET", "/api/v1/benchmarks")
    @requires(*OFFICERS)
    @api_doc("标杆首席质量官（含评定人；可含已撤销的）", query=BenchmarkQuery, response=BenchmarkPageOut,
             tags=[TAG_BENCHMARKS])
    def list_benchmarks(self, request):
        return json_response(benchmarks.listing(self.db, load_query(request, BenchmarkQuery), public=False))

    @http("POST", "/api/v1/benchmarks/<int:benchmark_id>/withdrawal")
    @requires(*CITY_WIDE)
    @api_doc("撤销标杆首席质量官的评定（保留记录）", request=WithdrawIn, response=BenchmarkOut,
             tags=[TAG_BENCHMARKS], errors=[409])
    def withdraw_benchmark(self, request, benchmark_id):
        reason = load_json(request, WithdrawIn)["reason"]
        with self.db.unit_of_work() as uow:
            return json_response(benchmarks.withdraw(uow, request.principal, benchmark_id, reason))

    @http("GET", "/api/v1/public/benchmarks")
    @api_doc("标杆首席质量官名单（无需令牌；不含已撤销的）", query=PublicBenchmarkQuery,
             response=PublicBenchmarkPageOut, tags=[TAG_PUBLIC])
    def public_benchmarks(self, request):
        return json_response(benchmarks.listing(self.db, load_query(request, PublicBenchmarkQuery),
                                                public=True))
