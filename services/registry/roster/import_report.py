"""The report of one roster import: counts, the rejected rows and why."""
from __future__ import annotations

from dataclasses import dataclass, field


REPORTED_REJECTS = 1000      # rejected rows kept in a report (all are counted)
SAMPLE_REJECTS = 200         # rejected rows kept in the audit record


# --- the report ---------------------------------------------------------------------------
@dataclass
class ImportReport:
    source: str
    file_format: str = ""
    encoding: str | None = None
    sha256: str = ""
    import_id: int | None = None
    header_line: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    years: set[int] = field(default_factory=set)
    total_rows: int = 0
    accepted: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: int = 0
    rejected_rows: list[dict] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        return self.accepted - self.inserted - self.updated

    def reject(self, line: int, uscc: str, name: str, reasons: list[str]) -> dict:
        self.rejected += 1
        entry = {"line": line, "uscc": uscc, "name": name, "reasons": reasons}
        if len(self.rejected_rows) < REPORTED_REJECTS:
            self.rejected_rows.append(entry)
        return entry

    def summary(self) -> str:
        text = (f"共读取{self.total_rows}行：接受{self.accepted}行（新增{self.inserted}、更新{self.updated}、"
                f"未变化{self.unchanged}），拒绝{self.rejected}行")
        return text + ("，被拒绝的行未写入，其余行已导入" if self.rejected else "")

    def to_dict(self) -> dict:
        return {
            "import_id": self.import_id, "source": self.source, "format": self.file_format,
            "encoding": self.encoding, "sha256": self.sha256, "header_line": self.header_line,
            "ignored_columns": self.ignored_columns, "years": sorted(self.years),
            "total_rows": self.total_rows, "accepted": self.accepted, "inserted": self.inserted,
            "updated": self.updated, "unchanged": self.unchanged, "rejected": self.rejected,
            "rejected_rows": self.rejected_rows,
            "rejected_rows_truncated": self.rejected > len(self.rejected_rows),
            "summary": self.summary(),
        }
