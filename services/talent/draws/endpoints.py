"""HTTP entrypoints of panel draws; mixed into TalentService (which provides `db`, and
`pool` through PoolEndpoints: the configured list of expertise, the one the pool's
experts were designated in). Drawing, declines, publication and verification are for
city officers; a published panel is public."""
from __future__ import annotations

from shared.auth import CITY_WIDE, ROLES, requires
from shared.http import http, json_response, load_json
from shared.openapi import api_doc
from services.talent.draws import drawing, verification, views
from services.talent.draws.schemas import (DeclineIn, DrawIn, DrawOut, PublicDrawOut,
                                           VerificationOut)

TAGS = ["专家抽取"]


class DrawEndpoints:
    @http("POST", "/api/v1/draws")
    @requires(*CITY_WIDE)
    @api_doc("抽取专家组：按条件回避后随机抽取专家和备选专家，记入审计哈希链", request=DrawIn,
             response=DrawOut, status=201, tags=TAGS)
    def create_draw(self, request):
        data = load_json(request, DrawIn)
        draw_id = drawing.run(self.db, request.principal.subject, data, self.pool.expertise)
        return self._draw(request, draw_id, status=201)

    @http("GET", "/api/v1/draws/<string:draw_id>")
    @requires(*ROLES)
    @api_doc("查看抽取结果（公布前仅市级监管人员可见）", response=DrawOut, tags=TAGS)
    def get_draw(self, request, draw_id):
        return self._draw(request, draw_id)

    @http("POST", "/api/v1/draws/<string:draw_id>/declines")
    @requires(*CITY_WIDE)
    @api_doc("登记专家拒绝参加：备选专家依次递补，备选用尽时补充抽取", request=DeclineIn,
             response=DrawOut, tags=TAGS, errors=[409])
    def decline(self, request, draw_id):
        data = load_json(request, DeclineIn)
        root_id = drawing.decline(self.db, request.principal.subject, draw_id, data["expert_id"],
                                  self.pool.expertise)
        return self._draw(request, root_id)

    @http("POST", "/api/v1/draws/<string:draw_id>/publish")
    @requires(*CITY_WIDE)
    @api_doc("公布专家组（公布后姓名和专业领域可公开查询）", response=DrawOut, tags=TAGS)
    def publish(self, request, draw_id):
        root_id = drawing.publish(self.db, request.principal.subject, draw_id)
        return self._draw(request, root_id)

    @http("GET", "/api/v1/draws/<string:draw_id>/verification")
    @requires(*CITY_WIDE)
    @api_doc("核验抽取：按抽取时的专家库历史重建候选名单，用存储的种子重新抽取，并核对审计哈希链",
             response=VerificationOut, tags=TAGS)
    def verify_draw(self, request, draw_id):
        with self.db.unit_of_work() as uow:
            return json_response(verification.verify(uow.session, draw_id))

    @http("GET", "/api/v1/public/draws/<string:draw_id>")
    @api_doc("查询已公布的专家组（无需令牌；仅姓名和专业领域）", response=PublicDrawOut, tags=TAGS)
    def public_draw(self, request, draw_id):
        with self.db.unit_of_work() as uow:
            return json_response(views.public(uow.session, draw_id, self.pool.expertise))

    def _draw(self, request, draw_id, status=200):
        with self.db.unit_of_work() as uow:
            return json_response(views.detail(uow.session, request.principal, draw_id,
                                              self.pool.expertise), status=status)
