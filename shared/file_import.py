"""What every row-by-row file import answers (the roster, training attendance): the file
read, the counts and the summary. Each import's schema adds its own fields and the
shape of its rejected rows."""
from __future__ import annotations

from marshmallow import Schema, fields


class ImportCountsOut(Schema):
    source = fields.String(metadata={"description": "文件名"})
    format = fields.String(metadata={"description": "csv 或 xlsx"})
    encoding = fields.String(allow_none=True)
    sha256 = fields.String()
    header_line = fields.Integer(metadata={"description": "表头所在行"})
    ignored_columns = fields.List(fields.String(), metadata={"description": "未识别、已忽略的列"})
    total_rows = fields.Integer()
    accepted = fields.Integer()
    inserted = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    rejected = fields.Integer()
    rejected_rows_truncated = fields.Boolean(metadata={"description": "被拒绝的行太多，只列出了前面的"})
    summary = fields.String()
