from __future__ import annotations

from shared.auth import requires
from shared.http import http, json_response, load_query
from shared.openapi import api_doc
from services.notify import deliveries
from services.notify.schemas import DeliveryPageOut, DeliveryQuery, NoticeDeliveriesOut

TAG = "投递记录"


class DeliveryLogEndpoints:
    @http("GET", "/api/v1/deliveries")
    @requires(*deliveries.READERS)
    @api_doc("通知投递记录（分页，地址遮蔽）", query=DeliveryQuery, response=DeliveryPageOut, tags=[TAG],
             description=("每条通知在每个渠道（站内、邮件、短信）的投递状态：pending 待发送、sent 已发送、"
                          "failed 被拒绝或多次失败、unknown 可能已送达（连接在发送后中断，不自动重发）、"
                          "skipped 无地址、未配置短信网关或无短信模板。县级监管人员只能查看本县（市、区）的记录。"))
    def deliveries_list(self, request):
        query = load_query(request, DeliveryQuery)
        with self.db.unit_of_work() as uow:
            return json_response(DeliveryPageOut().dump(deliveries.listing(uow, request.principal, query)))

    @http("GET", "/api/v1/notices/<int:notice_id>/deliveries")
    @requires(*deliveries.READERS)
    @api_doc("一条通知的投递记录（尝试次数、最后错误、发送时间）", response=NoticeDeliveriesOut,
             tags=[TAG], errors=[404])
    def notice_deliveries(self, request, notice_id):
        with self.db.unit_of_work() as uow:
            return json_response(NoticeDeliveriesOut().dump(deliveries.of_notice(uow, request.principal, notice_id)))
