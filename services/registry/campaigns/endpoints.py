"""HTTP entrypoints of the yearly campaign (art. 13): publish, close, list, progress per county; mixed into RegistryService (which provides `db`)."""
from __future__ import annotations

from shared.auth import CITY_WIDE, OFFICERS, ROLES, requires
from shared.http import http, json_response, load_json
from shared.openapi import api_doc
from services.registry.campaigns import lifecycle, progress
from services.registry.campaigns.schemas import CAMPAIGN_YEAR, CampaignIn, CampaignOut, CampaignProgressOut

TAG_PROGRESS = "集中备案"
_progress_out = CampaignProgressOut()


class CampaignEndpoints:
    """Mix-in of RegistryService: the campaign and its progress."""


    @http("POST", "/api/v1/campaigns")
    @requires(*CITY_WIDE)
    @api_doc("发布年度集中备案通告（第十三条）", request=CampaignIn, response=CampaignOut, status=201,
             tags=["集中备案"], errors=[409])
    def open_campaign(self, request):
        data = load_json(request, CampaignIn)
        with self.db.unit_of_work() as uow:
            return json_response(lifecycle.open_campaign(uow, request.principal, data), status=201)

    @http("POST", f"/api/v1/campaigns/<{CAMPAIGN_YEAR}:year>/close")
    @requires(*CITY_WIDE)
    @api_doc("结束年度集中备案", response=CampaignOut, tags=["集中备案"], errors=[404, 409])
    def close_campaign(self, request, year):
        with self.db.unit_of_work() as uow:
            return json_response(lifecycle.close_campaign(uow, request.principal, year))

    @http("GET", "/api/v1/campaigns")
    @requires(*ROLES)
    @api_doc("年度集中备案列表", response=CampaignOut(many=True), tags=["集中备案"])
    def list_campaigns(self, request):
        with self.db.unit_of_work() as uow:
            return json_response(lifecycle.list_campaigns(uow))

    @http("GET", f"/api/v1/campaigns/<{CAMPAIGN_YEAR}:year>/progress")
    @requires(*OFFICERS)
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
