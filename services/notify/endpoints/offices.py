from __future__ import annotations

from werkzeug.wrappers import Response

from shared.auth import requires
from shared.http import http, json_response, load_json, load_query, read_upload
from shared.openapi import api_doc, upload_body
from services.notify import contacts, contacts_import
from services.notify.schemas import (ContactImportOut, ContactImportQuery, ContactIn, ContactListOut, ContactOut,
                                     ContactQuery)

TAG = "通知联系人"
BODY_MAX_BYTES = 16 * 1024
IMPORT_MAX_BYTES = 4 * 1024 * 1024  # a contact list: some hundred rows


class ContactEndpoints:
    @http("GET", "/api/v1/contacts")
    @requires(*contacts.EDITORS)
    @api_doc("市局和县级市场监管部门的通知联系人（电话、邮箱遮蔽显示）", query=ContactQuery,
             response=ContactListOut, tags=[TAG],
             description="县级监管人员只能查看本县（市、区）的联系人。")
    def contacts_list(self, request):
        query = load_query(request, ContactQuery)
        with self.db.unit_of_work() as uow:
            return json_response(ContactListOut().dump(contacts.listing(uow, request.principal, query)))

    @http("POST", "/api/v1/contacts")
    @requires(*contacts.EDITORS)
    @api_doc("新增通知联系人", request=ContactIn, response=ContactOut, status=201, tags=[TAG],
             description="县级监管人员只能维护本县（市、区）的联系人；市局联系人由市级人员维护。")
    def contacts_create(self, request):
        data = load_json(request, ContactIn, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            body = contacts.create(uow, request.principal, data)
        return json_response(ContactOut().dump(body), status=201)

    @http("POST", "/api/v1/contacts/import")
    @requires(*contacts.EDITORS)
    @api_doc("导入通知联系人（CSV 或 XLSX）", query=ContactImportQuery, response=ContactImportOut, tags=[TAG],
             errors=[400, 403, 413, 415], request=upload_body("通知联系人名单（CSV 或 XLSX）"),
             description=("列名用中文：单位级别（市局/县级）、县区代码、名称、联系人、手机、邮箱。每行单独校验："
                          "无效行连同行号和原因一并返回（电话、邮箱遮蔽），不影响其他行；按（单位级别，县区代码，"
                          "名称，联系人）识别联系人，重复导入同一文件不产生变化，手机或邮箱有改动的行被更新。"
                          "县级监管人员只能导入本县（市、区）的联系人。"))
    def contacts_import(self, request):
        params = load_query(request, ContactImportQuery)
        content, filename, _ = read_upload(request, IMPORT_MAX_BYTES, what="通知联系人名单",
                                           missing_code="CONTACTS_FILE_MISSING")
        with self.db.unit_of_work() as uow:
            report = contacts_import.import_contacts(uow, request.principal, content,
                                                     source=params.get("filename") or filename)
        return json_response(ContactImportOut().dump(report))

    @http("PUT", "/api/v1/contacts/<int:contact_id>")
    @requires(*contacts.EDITORS)
    @api_doc("修改通知联系人", request=ContactIn, response=ContactOut, tags=[TAG], errors=[404])
    def contacts_replace(self, request, contact_id):
        data = load_json(request, ContactIn, max_bytes=BODY_MAX_BYTES)
        with self.db.unit_of_work() as uow:
            return json_response(ContactOut().dump(contacts.replace(uow, request.principal, contact_id, data)))

    @http("DELETE", "/api/v1/contacts/<int:contact_id>")
    @requires(*contacts.EDITORS)
    @api_doc("删除通知联系人", status=204, tags=[TAG], errors=[404])
    def contacts_delete(self, request, contact_id):
        with self.db.unit_of_work() as uow:
            contacts.delete(uow, request.principal, contact_id)
        return Response(status=204)
