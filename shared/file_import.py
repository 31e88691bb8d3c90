"""What every row-by-row file import answers (the roster, training attendance): the file
read, the counts and the summary. Each import's schema adds its own fields and the
shape of its rejected rows."""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class ImportCounts:
    """The counts of a row-by-row import and their Chinese summary (as ImportCountsOut
    shows them)."""

    total_rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def summary(self) -> str:
        text = (f"共读取{self.total_rows}行：接受{self.accepted}行（新增{self.inserted}、更新{self.updated}、"
                f"未变化{self.unchanged}），拒绝{self.rejected}行")
        return text + ("，被拒绝的行未写入，其余行已导入" if self.rejected else "")

    def to_dict(self) -> dict:
        return {"total_rows": self.total_rows, "accepted": self.accepted, "inserted": self.inserted,
                "updated": self.updated, "unchanged": self.unchanged, "rejected": self.rejected,
                "summary": self.summary()}
