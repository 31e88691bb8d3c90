from __future__ import annotations

from shared.auth import requires
from shared.http import http, json_response, load_query
from shared.openapi import api_doc
from services.notify import inbox
from services.notify.schemas import InboxEntryOut, InboxPageOut, InboxQuery, UnreadOut

TAG = "站内通知"


class InboxEndpoints:
    @http("GET", "/api/v1/inbox")
    @requires(*inbox.READERS)
    @api_doc("本企业或本专家的站内通知（分页，新的在前）", query=InboxQuery, response=InboxPageOut, tags=[TAG],
             description="企业：备案决定、撤换建议、任期届满等通知；专家：专家组邀请等通知。"
                         "只能阅读令牌所属企业或专家本人的通知；unread 为未读条数。")
    def inbox_list(self, request):
        query = load_query(request, InboxQuery)
        with self.db.unit_of_work() as uow:
            return json_response(InboxPageOut().dump(inbox.listing(uow, request.principal, query)))

    @http("GET", "/api/v1/inbox/unread-count")
    @requires(*inbox.READERS)
    @api_doc("本企业或本专家未读站内通知的条数", response=UnreadOut, tags=[TAG])
    def inbox_unread(self, request):
        with self.db.unit_of_work() as uow:
            return json_response({"unread": inbox.unread(uow, inbox.owner(request.principal))})

    @http("POST", "/api/v1/inbox/<int:entry_id>/read")
    @requires(*inbox.READERS)
    @api_doc("标记站内通知为已读（重复标记不改变首次阅读时间）", response=InboxEntryOut, tags=[TAG],
             errors=[404])
    def inbox_mark_read(self, request, entry_id):
        with self.db.unit_of_work() as uow:
            return json_response(InboxEntryOut().dump(inbox.mark_read(uow, request.principal, entry_id)))
