"""Registry entrypoints of terms (art. 5), replacement recommendations (art. 10) and the
overdue list: a mixin of RegistryService (services/registry/service.py), which brings
`db` and `config`. Thin: each entrypoint loads its input and calls a use case.
"""
from __future__ import annotations

import logging

from nameko.timer import Timer

from shared.auth import CITY_WIDE, OFFICERS, ROLES, requires
from shared.dependencies import FromConfig
from shared.http import http, json_response, load_json, load_query
from shared.openapi import api_doc
from services.registry.campaigns import lifecycle
from services.registry.oversight import overdue, recommendations, terms
from services.registry.oversight.schemas import (AnswerIn, ConcludeIn, OverdueOut, OverdueQuery,
                                                 RecommendationIn, RecommendationOut,
                                                 RecommendationPageOut, RecommendationQuery,
                                                 TermCheckOut, TermPageOut, TermQuery)

log = logging.getLogger(__name__)

TAG_RECOMMENDATIONS, TAG_TERMS, TAG_OVERDUE = "撤换建议", "任期管理", "逾期事项"
ANSWER_MAX_BYTES = 64 * 1024


class ConfigTimer(Timer):
    """nameko's timer with its interval read from the service config when the container
    starts (nameko's own takes a constant at import time)."""

    def __init__(self, config_key: str, default: float, eager: bool = False, **kwargs):
        self.config_key, self.default = config_key, default
        super().__init__(interval=default, eager=eager, **kwargs)

    def setup(self):
        self.interval = float(self.container.config.get(self.config_key) or self.default)
        if self.interval <= 0:
            raise ValueError(f"{self.config_key} must be a positive number of seconds")


config_timer = ConfigTimer.decorator


class OversightEndpoints:
    """Terms, recommendations and the overdue list (no `name`: a mixin, not a service)."""

    # TERM_REMINDER_DAYS, RECOMMENDATION_RESPONSE_DAYS, TERM_CHECK_INTERVAL_S
    oversight = FromConfig(terms.OversightSettings.from_config)

    # -- terms (art. 5) -------------------------------------------------------------------
    @config_timer("TERM_CHECK_INTERVAL_S", 3600)
    def oversight_check_terms(self):
        """任期检查：届满未续任的登记为届满，届满前90天、30天各提醒一次（幂等）"""
        try:
            terms.check_terms(self.db, thresholds=self.oversight.reminder_days)
        except Exception:  # noqa: BLE001 - the next tick tries again; never kill the timer
            log.exception("term check failed")
        # the same daily-grain timer tells the campaign's close and the recommendations
        # left unanswered (notify's notices), each on its own
        for name, check in (("campaign closing", lifecycle.check_closing),
                            ("unanswered recommendations", recommendations.check_unanswered)):
            try:
                check(self.db)
            except Exception:  # noqa: BLE001 - the next tick tries again; never kill the timer
                log.exception("%s check failed", name)

    @http("POST", "/api/v1/terms/check")
    @requires(*CITY_WIDE)
    @api_doc("立即执行任期检查（第五条）", response=TermCheckOut, tags=[TAG_TERMS], description=(
        "按今天的日期检查：任期届满未续任的登记为届满并通知企业所在县；届满前90天、30天各提醒一次。"
        "与定时任务相同，重复执行不会重复登记或重复提醒。"))
    def oversight_run_term_check(self, request):
        return json_response(terms.check_terms(self.db, thresholds=self.oversight.reminder_days))

    @http("GET", "/api/v1/terms")
    @requires(*OFFICERS)
    @api_doc("任期即将届满和已届满未续任的首席质量官（第五条）", query=TermQuery, response=TermPageOut,
             tags=[TAG_TERMS], description="县级监管人员只能查看本县（市、区）。")
    def oversight_list_terms(self, request):
        filters = load_query(request, TermQuery)
        with self.db.unit_of_work() as uow:
            return json_response(TermPageOut().dump(terms.list_terms(uow, request.principal, filters)))

    # -- replacement recommendations (art. 10) ----------------------------------------------
    @http("POST", "/api/v1/recommendations")
    @requires(*OFFICERS)
    @api_doc("提出撤换首席质量官建议（第十条）", request=RecommendationIn, response=RecommendationOut,
             status=201, tags=[TAG_RECOMMENDATIONS], errors=[404, 409], description=(
                 "针对企业在任的首席质量官，写明事件和理由；属监督建议，不是命令。"
                 "县级监管人员只能对本县（市、区）的企业提出。建议通知企业所在县，并由县局转告企业。"))
    def oversight_issue_recommendation(self, request):
        data = load_json(request, RecommendationIn, max_bytes=ANSWER_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            body = recommendations.issue(uow, request.principal, data,
                                         response_days=self.oversight.response_days)
        return json_response(body, status=201,
                             headers={"Location": f"/api/v1/recommendations/{body['id']}"})

    @http("GET", "/api/v1/recommendations")
    @requires(*ROLES)
    @api_doc("撤换建议列表", query=RecommendationQuery, response=RecommendationPageOut,
             tags=[TAG_RECOMMENDATIONS], description=(
                 "可按县（市、区）、状态、企业筛选；status=unanswered 为超过答复期限仍未答复的（未响应，"
                 "按 as_of 当日计算），status=open 为未办结的。企业只能看到本企业的建议。"))
    def oversight_list_recommendations(self, request):
        filters = load_query(request, RecommendationQuery)
        with self.db.unit_of_work() as uow:
            return json_response(recommendations.list_recommendations(uow, request.principal, filters))

    @http("GET", "/api/v1/recommendations/<int:rec_id>")
    @requires(*ROLES)
    @api_doc("撤换建议详情（含答复和办理记录）", response=RecommendationOut, tags=[TAG_RECOMMENDATIONS])
    def oversight_get_recommendation(self, request, rec_id):
        with self.db.unit_of_work() as uow:
            return json_response(recommendations.get(uow, request.principal, rec_id))

    @http("POST", "/api/v1/recommendations/<int:rec_id>/answer")
    @requires("enterprise")
    @api_doc("企业答复撤换建议", request=AnswerIn, response=RecommendationOut,
             tags=[TAG_RECOMMENDATIONS], errors=[409], description=(
                 "企业用本企业的令牌答复；未办结前可以补充答复，以最近一次为准，历次答复均保留。"))
    def oversight_answer_recommendation(self, request, rec_id):
        data = load_json(request, AnswerIn, max_bytes=ANSWER_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            return json_response(recommendations.answer(uow, request.principal, rec_id, data["text"]))

    @http("POST", "/api/v1/recommendations/<int:rec_id>/withdraw")
    @requires(*OFFICERS)
    @api_doc("撤回撤换建议", request=ConcludeIn, response=RecommendationOut,
             tags=[TAG_RECOMMENDATIONS], errors=[409],
             description="提出建议的县（市、区）监管部门或市局可以撤回未办结的建议，须说明理由。")
    def oversight_withdraw_recommendation(self, request, rec_id):
        data = load_json(request, ConcludeIn, max_bytes=ANSWER_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            return json_response(recommendations.conclude(uow, request.principal, rec_id, "withdraw",
                                                          data["comment"]))

    @http("POST", "/api/v1/recommendations/<int:rec_id>/close")
    @requires(*OFFICERS)
    @api_doc("关闭撤换建议", request=ConcludeIn, response=RecommendationOut,
             tags=[TAG_RECOMMENDATIONS], errors=[409], description=(
                 "提出建议的县（市、区）监管部门或市局可以关闭未办结的建议（如企业答复已说明情况），须说明理由。"
                 "企业办理变更备案后建议自动办结（已更换）。"))
    def oversight_close_recommendation(self, request, rec_id):
        data = load_json(request, ConcludeIn, max_bytes=ANSWER_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            return json_response(recommendations.conclude(uow, request.principal, rec_id, "close",
                                                          data["comment"]))

    # -- overdue list -------------------------------------------------------------------------
    @http("GET", "/api/v1/overdue")
    @requires(*OFFICERS)
    @api_doc("逾期事项清单（按县统计）", query=OverdueQuery, response=OverdueOut, tags=[TAG_OVERDUE],
             description=("变更逾期报送（第十四条）、撤换建议未响应（第十条）、任期届满未续任（第五条），"
                          "按 as_of 当日计算；县级监管人员只能查看本县（市、区）。"))
    def oversight_overdue(self, request):
        filters = load_query(request, OverdueQuery)
        with self.db.unit_of_work() as uow:
            return json_response(overdue.report(uow, request.principal, filters))
