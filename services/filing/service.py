"""County filing service (县级备案服务): one instance per county (arts. 12-14).

Thin nameko entrypoints: each parses its input (schemas.py), calls one use case and
renders the answer. The use cases: writes in use_cases.py, reads in views.py, the city's
decisions and notices in inbound.py, campaign progress in progress.py.

`build_service(config)` makes the class for the configured county, named
`filing_<county>`, so that several counties share one broker without taking each
other's decisions or notices.

    cqo serve filing --county 130921
"""
from __future__ import annotations

import logging
from pathlib import Path

from nameko.dependency_providers import Config
from nameko.timer import timer

from shared.auth import OFFICERS, ROLES, requires
from shared.health import health_body
from shared.http import HttpBase, http, json_response, load, load_json, load_query, read_json
from shared.messaging import topology
from shared.messaging.consumer import consume
from shared.messaging.dead import dead_letter_on_error
from shared.messaging.outbox import OutboxRelayProvider
from shared.dependencies import DatabaseProvider, FromConfig, TopologyDeclarer
from shared.openapi import api_doc
from shared.domain.qualification import rules_from_config
from shared.tracing import TraceOut, forwarded

from services.filing import progress
from services.filing.inbound import Inbound
from services.filing.schemas import (BatchIn, BatchOut, CampaignOut, FilingDetailOut, FilingIn,
                                     FilingPageOut, FilingQuery, NoticePageOut, NoticeQuery, ReviewIn)
from services.filing.settings import Settings, check_county_code, progress_interval
from services.filing.use_cases import FilingApp
from services.filing.views import FilingViews

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
REVIEW_MAX_BYTES = 16 * 1024
TAG_FILINGS, TAG_REVIEW, TAG_BATCH, TAG_CAMPAIGN = "企业备案", "县级预审", "集中报送", "集中报送活动"


class FilingService(HttpBase):
    """Entrypoints shared by every county; `build_service` adds the county's name,
    database and queues. (No `name` here: an abstract base, see shared.http.HttpBase.)"""

    api_title = "县级首席质量官备案服务接口"
    api_description = ("沧州市企业首席质量官备案管理系统 · 县（市、区）市场监管部门："
                       "企业备案受理、任职条件预检、县级预审、主动备案报送与集中报送、接收市局备案决定")
    config = Config()
    settings = FromConfig(Settings.from_config)  # the county's settings and key material

    @property
    def app(self) -> FilingApp:
        return FilingApp(self.db, self.settings)

    @property
    def views(self) -> FilingViews:
        return FilingViews(self.db, self.settings)

    @property
    def inbound(self) -> Inbound:
        return Inbound(self.db, self.settings)

    # -- enterprise intake ------------------------------------------------------------
    @http("POST", "/api/v1/filings")
    @requires("enterprise")
    @api_doc("提交备案", request=FilingIn, response=FilingDetailOut, status=201, tags=[TAG_FILINGS],
             errors=(409,), description=(
                 "企业提交首席质量官备案（岗位设立、变更、续任、信息更新、岗位撤销）。"
                 "按第六条检查任职条件：不符合的（blocking）返回 422 且不保存，提示项（warning）随备案报送。"
                 "同一企业同时只能有一件未办结的备案（409）；已有备案通过的首席质量官时不能再提交岗位设立（409）。"
                 "证件号码只在本县加密保存，对外仅传递密文摘要和脱敏号码。"))
    def create_filing(self, request):
        data = load_json(request, FilingIn, max_bytes=self.settings.max_body_bytes)
        body = self.app.submit(request.principal, data)
        return json_response(body, status=201, headers={"Location": f"/api/v1/filings/{body['id']}"})

    @http("PUT", "/api/v1/filings/<uuid:filing_id>")
    @requires("enterprise")
    @api_doc("修改后重新提交", request=FilingIn, response=FilingDetailOut, tags=[TAG_FILINGS],
             errors=(409,), description="被退回（或市局不予备案）的备案改正后重新提交，生成新版本，原版本保留。")
    def resubmit_filing(self, request, filing_id):
        data = load_json(request, FilingIn, max_bytes=self.settings.max_body_bytes)
        return self.app.resubmit(request.principal, str(filing_id), data)

    @http("POST", "/api/v1/filings/<uuid:filing_id>/withdraw")
    @requires("enterprise")
    @api_doc("撤回备案", response=FilingDetailOut, tags=[TAG_FILINGS], errors=(409,),
             description=("企业撤回尚未预审通过的备案（待预审或退回）。市局等待前序备案的备案可以申请撤回："
                          "县局向市局发送撤回申请，备案显示为“撤回申请中”，以市局答复为准"
                          "（已撤回，或市局已作出的决定）。"))
    def withdraw_filing(self, request, filing_id):
        return self.app.withdraw(request.principal, str(filing_id))

    @http("GET", "/api/v1/filings")
    @requires(*ROLES)
    @api_doc("备案列表", query=FilingQuery, response=FilingPageOut, tags=[TAG_FILINGS],
             description="按状态、类型、报送方式、活动年度、企业类别、首次提交日期、企业等筛选，分页。企业只能看到本企业的备案。")
    def list_filings(self, request):
        return self.views.list_filings(request.principal, load_query(request, FilingQuery))

    @http("GET", "/api/v1/filings/<uuid:filing_id>")
    @requires(*ROLES)
    @api_doc("备案详情", response=FilingDetailOut, tags=[TAG_FILINGS],
             description="含全部版本、预审记录、任职条件预检结论和市局的备案决定。")
    def get_filing(self, request, filing_id):
        return self.views.get(request.principal, str(filing_id))

    @http("GET", "/api/v1/filings/<uuid:filing_id>/trace")
    @requires(*OFFICERS)
    @api_doc("备案流转记录（县局部分）", response=TraceOut, tags=[TAG_FILINGS], errors=(404,), description=(
        "本县记录的该备案各版本的流转环节和时间：县局受理、县局预审、报送消息写入发件箱、报送消息已发布、"
        "决定经转运到达县局（消息转运的 x-shovelled 头，精确到秒）、县局收到决定，及各环节的消息编号。"
        "市局的环节由市局服务回答，cqo trace 合并两者。县级监管人员只能查看本县的备案。"))
    def trace_filing(self, request, filing_id):
        return self.views.trace(request.principal, str(filing_id))

    # -- county officer -----------------------------------------------------------------
    @http("POST", "/api/v1/filings/<uuid:filing_id>/review")
    @requires("county_officer")
    @api_doc("县级预审", request=ReviewIn, response=FilingDetailOut, tags=[TAG_REVIEW],
             errors=(409,), description=(
                 "预审通过（approve）或退回（return，须填写理由）。"
                 "主动备案预审通过即报送市局；集中报送活动期间的备案待集中报送。"))
    def review_filing(self, request, filing_id):
        data = load_json(request, ReviewIn, max_bytes=REVIEW_MAX_BYTES)
        return self.app.review(request.principal, str(filing_id), data["decision"], data["comment"])

    @http("POST", "/api/v1/batches")
    @requires("county_officer")
    @api_doc("集中报送", request=BatchIn, response=BatchOut, status=201, tags=[TAG_BATCH],
             errors=(409,), description=(
                 "把全部（或所列的）“预审通过”的集中报送备案一次报送市局，按批分块传输。"
                 "请求体可以为空（报送全部）。市局或消息服务器暂时不可用时也会受理，恢复后自动送达。"))
    def submit_batch(self, request):
        raw = None
        if request.content_length or "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            # eventlet gives a body-less POST a text/plain type: only a body must be JSON
            raw = read_json(request, self.settings.batch_max_body_bytes, allow_empty=True)
        data = load(BatchIn, {} if raw is None else raw)
        body = self.app.submit_batch(request.principal, data["filing_ids"], data["campaign_year"])
        return json_response(body, status=201, headers={"Location": f"/api/v1/batches/{body['batch_id']}"})

    @http("GET", "/api/v1/batches/<uuid:batch_id>")
    @requires(*OFFICERS)
    @api_doc("报送批次", response=BatchOut, tags=[TAG_BATCH])
    def get_batch(self, request, batch_id):
        return self.views.get_batch(request.principal, str(batch_id))

    @http("GET", "/api/v1/campaign")
    @requires(*ROLES)
    @api_doc("当前集中报送活动", response=CampaignOut, tags=[TAG_CAMPAIGN], errors=(404,),
             description="市局发布的年度集中报送活动（第十三条）中正在进行的一个；没有时返回 404。")
    def current_campaign(self, request):
        return self.views.current_campaign()

    @http("GET", "/api/v1/notices")
    @requires(*ROLES)
    @api_doc("市局通知", query=NoticeQuery, response=NoticePageOut, tags=["市局通知"],
             description=("市局发给本县的通知：集中备案通告、撤换首席质量官建议及其答复、撤回和办结，"
                          "任期届满提醒和届满未续任，以及其他通知。县级监管人员看到本县全部通知；"
                          "企业看到发给本企业的和发给全体的通知。按接收时间倒序，分页。"))
    def list_notices(self, request):
        return self.views.list_notices(request.principal, load_query(request, NoticeQuery))

    # -- operations ---------------------------------------------------------------------
    @http("GET", "/api/v1/health")
    def health_check(self, request):
        """服务健康检查（无需令牌）：数据库、消息队列与待发送消息积压"""
        fields = {"service": self.name, "county": self.settings.county}
        checks = self.health.checks()
        if checks.get("database") == "ok":
            try:
                fields["outbox_backlog"] = self.outbox_relay.backlog()
                fields["outbox_oldest_pending_s"] = self.outbox_relay.oldest_pending_age()
            except Exception as exc:  # noqa: BLE001 - health reports, never raises
                log.warning("health check: database unavailable: %s", exc)
                checks["database"] = "unavailable"
        body, status = health_body(checks, **fields)
        return json_response(body, status=status)

    # -- messages -----------------------------------------------------------------------
    def _on_decisions(self, body, message):
        self.inbound.apply_decisions(message.message_id, body, forwarded(message.headers))

    def _on_notice(self, body, message):
        self.inbound.apply_notice(message.message_id, body)


def build_service(config: dict) -> type:
    """The service class of the county in `config["COUNTY_CODE"]`."""
    county = check_county_code(config)
    rules_from_config(config)  # a bad rule set stops the start here, not in a worker
    name = f"filing_{county}"

    @consume(topology.decisions_queue(county))
    @dead_letter_on_error(f"{name}.decisions")
    def on_decisions(self, body, message):
        """市局备案决定（filing.<county>.decisions）"""
        self._on_decisions(body, message)

    @consume(topology.notices_queue(county))
    @dead_letter_on_error(f"{name}.notices")
    def on_notice(self, body, message):
        """市局通知：集中报送活动、撤换建议、任期提醒等（filing.<county>.notices）"""
        self._on_notice(body, message)

    @timer(interval=progress_interval(config))
    def publish_progress(self):
        """集中报送进度：本县各状态备案数量有变化时经发件箱报送市局（filing.<county>.progress）"""
        try:
            progress.publish_changes(self.db, county)
        except Exception:  # noqa: BLE001 - the next tick tries again; never kill the timer
            log.exception("campaign progress of %s not published", county)

    namespace = {
        "name": name,
        "__module__": __name__,
        "db": DatabaseProvider(MIGRATIONS, default_sqlite=f"var/{name}.db"),
        # the county's queues exist from the start: decisions and notices the city sends
        # while this county is down wait for it
        "declare_topology": TopologyDeclarer(lambda cfg: topology.county_queues(county)),
        "outbox_relay": OutboxRelayProvider("db"),
        "on_decisions": on_decisions,
        "on_notice": on_notice,
        "publish_progress": publish_progress,
    }
    return type(name, (FilingService,), namespace)
