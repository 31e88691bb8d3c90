"""Plain rules of typical experiences (典型经验) and benchmark CQOs (标杆首席质量官), art. 17.

A county submits an experience of one of its enterprises; the city approves it, returns
it with a comment, or publishes it. Art. 10 binds the CQO to keep the enterprise's
secrets, so an experience is published only when the enterprise's consent to
publication is on record. Attachments are checked here by name, declared type and their
first bytes: what the file really is decides, not what the client called it.

Nothing here touches a database or a broker.
"""
from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import date

from shared.errors import Conflict, CqoError, ValidationFailed

# --- the review -------------------------------------------------------------------------------
SUBMITTED, RETURNED, APPROVED, PUBLISHED = "submitted", "returned", "approved", "published"
STATUS_NAMES = {SUBMITTED: "待审核", RETURNED: "已退回", APPROVED: "已审核", PUBLISHED: "已发布"}
APPROVE, RETURN, PUBLISH, UNPUBLISH = "approve", "return", "publish", "unpublish"
ACTION_NAMES = {APPROVE: "审核通过", RETURN: "退回修改", PUBLISH: "发布", UNPUBLISH: "撤销发布"}

# action -> (statuses it may start from, status it leads to)
_TRANSITIONS = {
    APPROVE: ({SUBMITTED}, APPROVED),
    RETURN: ({SUBMITTED, APPROVED}, RETURNED),
    PUBLISH: ({APPROVED}, PUBLISHED),
    UNPUBLISH: ({PUBLISHED}, APPROVED),
}
EDITABLE = frozenset({SUBMITTED, RETURNED})  # the county may still change it


class ConsentMissing(Conflict):
    """Publishing without the enterprise's recorded consent (art. 10: its secrets)."""

    code = "EXPERIENCE_CONSENT_MISSING"


class StateConflict(Conflict):
    code = "EXPERIENCE_STATE_CONFLICT"


def review(status: str, action: str, *, consented: bool, comment: str | None) -> str:
    """The status an experience in `status` takes after the city's `action`."""
    if action not in _TRANSITIONS:
        raise ValidationFailed("审核操作应为 " + "、".join(f"{k}（{v}）" for k, v in ACTION_NAMES.items())
                               + " 之一", code="EXPERIENCE_ACTION_INVALID", field="action")
    starts, target = _TRANSITIONS[action]
    if status not in starts:
        raise StateConflict(
            f"典型经验当前为“{STATUS_NAMES.get(status, status)}”，不能执行“{ACTION_NAMES[action]}”"
            f"（只能对“{'、'.join(STATUS_NAMES[s] for s in sorted(starts))}”的典型经验执行）",
            details={"status": status, "action": action})
    if action == RETURN and not (comment or "").strip():
        raise ValidationFailed("退回修改时必须填写意见", code="REVIEW_COMMENT_REQUIRED", field="comment")
    if action == PUBLISH and not consented:
        raise ConsentMissing("企业尚未同意公开该典型经验（或同意未登记），不能发布；"
                             "请县级监管人员先登记企业的书面同意")
    return target


def require_editable(status: str) -> None:
    """The county changes text and attachments only before the city approved it."""
    if status not in EDITABLE:
        raise StateConflict(
            f"典型经验当前为“{STATUS_NAMES.get(status, status)}”，不能再修改；如需修改，请市级监管人员先退回",
            details={"status": status})


def status_after_edit(status: str) -> str:
    """A returned experience that the county corrected is submitted again."""
    return SUBMITTED if status == RETURNED else status


def check_consent(consented: bool, reference: str | None, consented_on: date | None,
                  today: date) -> None:
    """Consent is on record only with what proves it: a document reference or its date."""
    if consented_on is not None and consented_on > today:
        raise ValidationFailed("企业同意的日期不能晚于今天", code="CONSENT_DATE_IN_FUTURE",
                               field="consented_on")
    if consented and not (reference or consented_on):
        raise ValidationFailed("登记企业同意公开时，须填写同意书编号（document_ref）或同意日期（consented_on）",
                               code="CONSENT_EVIDENCE_MISSING", field="document_ref")


# --- attachments --------------------------------------------------------------------------------
DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # config EXPERIENCE_ATTACHMENT_MAX_BYTES
DEFAULT_MAX_COUNT = 10               # config EXPERIENCE_ATTACHMENT_MAX_COUNT
NAME_MAX = 120


@dataclass(frozen=True)
class FileKind:
    extension: str
    content_type: str
    label: str


KINDS = {k.extension: k for k in (
    FileKind("pdf", "application/pdf", "PDF"),
    FileKind("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Word（.docx）"),
    FileKind("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel（.xlsx）"),
    FileKind("jpg", "image/jpeg", "JPEG 图片"),
    FileKind("png", "image/png", "PNG 图片"),
)}
_ALIASES = {"jpeg": "jpg"}
# what a client may declare beside the kind's own type (browsers and curl often send these)
_NEUTRAL_TYPES = {"", "application/octet-stream", "binary/octet-stream", "image/jpg", "image/pjpeg"}
ALLOWED_TEXT = "、".join(k.label for k in KINDS.values())


class AttachmentTypeRefused(CqoError):
    code = "ATTACHMENT_TYPE_NOT_ALLOWED"
    status = 415


class AttachmentTooLarge(CqoError):
    code = "ATTACHMENT_TOO_LARGE"
    status = 413


def too_large(max_bytes: int) -> AttachmentTooLarge:
    return AttachmentTooLarge(f"附件不能超过 {_size_text(max_bytes)}（{max_bytes} 字节）",
                              details={"max_bytes": max_bytes})


def _size_text(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} 字节"


def check_size(size: int, max_bytes: int) -> None:
    if size == 0:
        raise ValidationFailed("附件为空文件", code="ATTACHMENT_EMPTY", field="file")
    if size > max_bytes:
        raise too_large(max_bytes)


def check_count(existing: int, max_count: int) -> None:
    if existing >= max_count:
        raise Conflict(f"每条典型经验最多 {max_count} 个附件，请先删除不需要的附件",
                       code="ATTACHMENT_COUNT_EXCEEDED", details={"max_count": max_count})


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff\"<>|:*?]")


def safe_filename(name: str | None) -> str:
    """The name as shown and sent back in Content-Disposition: no folder, no control or
    reserved characters, at most NAME_MAX characters with its extension kept."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE_NAME.sub("", name).strip().strip(".").strip()
    if not name:
        raise ValidationFailed("附件缺少文件名（multipart 的 filename，或查询参数 filename）",
                               code="ATTACHMENT_NAME_MISSING", field="filename")
    if len(name) > NAME_MAX:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:10] if dot else ""
        name = (stem if dot else name)[:NAME_MAX - len(ext) - 1].rstrip() + (f".{ext}" if ext else "")
    return name


def _matches(kind: str, content: bytes) -> bool:
    if kind == "pdf":
        return content.startswith(b"%PDF-")
    if kind == "jpg":
        return content.startswith(b"\xff\xd8\xff")
    if kind == "png":
        return content.startswith(b"\x89PNG\r\n\x1a\n")
    # docx and xlsx are both zip packages: their main part tells them apart
    part = {"docx": "word/document.xml", "xlsx": "xl/workbook.xml"}[kind]
    if not content.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as package:
            return part in package.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False


def classify(filename: str, declared_type: str | None, content: bytes) -> FileKind:
    """The attachment's kind, from its extension, checked against the declared type and
    the content itself; anything else is refused (415)."""
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    kind = KINDS.get(_ALIASES.get(ext, ext))
    if kind is None:
        raise AttachmentTypeRefused(f"不支持的附件类型“.{ext}”，只接受 {ALLOWED_TEXT}" if ext else
                                    f"附件文件名缺少扩展名，只接受 {ALLOWED_TEXT}",
                                    details={"extension": ext})
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared not in _NEUTRAL_TYPES and declared != kind.content_type:
        raise AttachmentTypeRefused(f"附件的内容类型“{declared}”与扩展名“.{ext}”不符，只接受 {ALLOWED_TEXT}",
                                    details={"extension": ext, "content_type": declared})
    if not _matches(kind.extension, content):
        raise AttachmentTypeRefused(f"附件内容不是有效的 {kind.label} 文件",
                                    code="ATTACHMENT_CONTENT_MISMATCH", details={"extension": ext})
    return kind


# --- benchmarks -------------------------------------------------------------------------------
def check_benchmark_year(year: int, today: date) -> None:
    """A year already begun or the next one (designations are often announced in advance)."""
    if year > today.year + 1:
        raise ValidationFailed(f"标杆首席质量官的年度不能晚于 {today.year + 1} 年", code="BENCHMARK_YEAR",
                               field="year")
