"""HTTP schemas of the notify service (Chinese messages through shared.http). Addresses
always leave masked."""
from __future__ import annotations

from marshmallow import Schema, fields, validate, validates_schema, ValidationError

from shared.file_import import ImportCountsOut
from shared.paging import PageOut, page_query
from shared.schema_fields import COUNTY, text
from services.notify.domain.recipients import CHANNELS

STATUSES = ("pending", "sending", "sent", "failed", "unknown", "skipped")


class InboxQuery(page_query(default=20, maximum=100)):
    unread_only = fields.Boolean(load_default=False, truthy={"true", "1"}, falsy={"false", "0"},
                                 metadata={"description": "只看未读"})


class InboxEntryOut(Schema):
    id = fields.Integer()
    event_type = fields.String()
    subject = fields.String()
    body = fields.String(metadata={"description": "通知正文（纯文本）"})
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class InboxPageOut(PageOut):
    unread = fields.Integer(metadata={"description": "未读条数"})
    items = fields.List(fields.Nested(InboxEntryOut))


class UnreadOut(Schema):
    unread = fields.Integer()


class ContactIn(Schema):
    level = fields.String(required=True, validate=validate.OneOf(["city", "county"]),
                          metadata={"description": "city 市局，county 县级市场监管部门"})
    county = fields.String(load_default=None, allow_none=True, validate=COUNTY)
    name = text(100, "名称")
    person = text(50, "联系人", required=False, load_default=None, allow_none=True,
                  metadata={"description": "联系人姓名"})
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        r"^(\+86)?1[3-9]\d{9}$|^0\d{2,3}-?\d{7,8}(-\d{1,6})?$", error="电话号码格式不正确"))
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=200),
                         error_messages={"invalid": "电子邮箱格式不正确"})

    @validates_schema
    def _county(self, data, **kwargs):
        if data.get("level") == "county" and not data.get("county"):
            raise ValidationError("县级联系人必须填写县级区划代码", "county")
        if data.get("level") == "city" and data.get("county"):
            raise ValidationError("市局联系人不填写县级区划代码", "county")
        if not data.get("phone") and not data.get("email"):
            raise ValidationError("电话和电子邮箱至少填写一项", "email")


class ContactOut(Schema):
    id = fields.Integer()
    level = fields.String()
    county = fields.String(allow_none=True)
    name = fields.String()
    person = fields.String(allow_none=True)
    phone_masked = fields.String(allow_none=True)
    email_masked = fields.String(allow_none=True)
    updated_at = fields.DateTime()


class ContactListOut(Schema):
    items = fields.List(fields.Nested(ContactOut))


class ContactImportQuery(Schema):
    filename = fields.String(validate=validate.Length(max=300),
                             metadata={"description": "原始文件名（请求体直接上传文件时）"})


class ContactRejectedRowOut(Schema):
    line = fields.Integer(metadata={"description": "行号（与在 Excel 中打开时的行号一致）"})
    name = fields.String()
    county = fields.String(allow_none=True)
    phone_masked = fields.String(allow_none=True)
    email_masked = fields.String(allow_none=True)
    reasons = fields.List(fields.String())


class ContactImportOut(ImportCountsOut):
    rejected_rows = fields.List(fields.Nested(ContactRejectedRowOut))


class ContactQuery(Schema):
    county = fields.String(validate=COUNTY)


class DeliveryQuery(page_query(default=50, maximum=500)):
    status = fields.String(validate=validate.OneOf(STATUSES))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    county = fields.String(validate=COUNTY)
    event_id = fields.String(validate=validate.Length(min=1, max=200))


class DeliveryOut(Schema):
    id = fields.Integer()
    notice_id = fields.Integer()
    event_id = fields.String()
    event_type = fields.String()
    recipient = fields.String()
    recipient_name = fields.String(allow_none=True)
    county = fields.String(allow_none=True)
    subject = fields.String()
    channel = fields.String()
    address_masked = fields.String(allow_none=True)
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_attempt_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    provider_answer = fields.String(allow_none=True)
    created_at = fields.DateTime()


class DeliveryPageOut(PageOut):
    items = fields.List(fields.Nested(DeliveryOut))


class NoticeDeliveriesOut(Schema):
    notice_id = fields.Integer()
    event_id = fields.String()
    subject = fields.String()
    items = fields.List(fields.Nested(DeliveryOut))
