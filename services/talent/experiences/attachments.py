"""Attachments of typical experiences: checked (size, count, type by content), stored in
the database with their SHA-256, and checked against it on every download."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy import func, select

from shared import clock
from shared.auth import Principal
from shared.db import Database, UnitOfWork
from shared.errors import CqoError, NotFound
from services.talent.domain import experiences as rules
from services.talent.experiences import records
from services.talent.experiences.models import Experience, ExperienceAttachment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = rules.DEFAULT_MAX_BYTES
    max_count: int = rules.DEFAULT_MAX_COUNT

    @classmethod
    def from_config(cls, config) -> "Limits":
        return cls(int(config.get("EXPERIENCE_ATTACHMENT_MAX_BYTES") or rules.DEFAULT_MAX_BYTES),
                   int(config.get("EXPERIENCE_ATTACHMENT_MAX_COUNT") or rules.DEFAULT_MAX_COUNT))


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    content: bytes


class IntegrityFailed(CqoError):
    """The stored bytes no longer have the SHA-256 they arrived with."""

    code = "ATTACHMENT_INTEGRITY_FAILED"
    status = 409


def add(uow: UnitOfWork, principal: Principal, experience_id: int, filename: str | None,
        declared_type: str | None, content: bytes, limits: Limits) -> int:
    experience = records.load(uow, principal, experience_id, lock=True)
    rules.require_editable(experience.status)
    name = rules.safe_filename(filename)
    rules.check_size(len(content), limits.max_bytes)
    kind = rules.classify(name, declared_type, content)
    count = uow.session.scalar(select(func.count()).select_from(ExperienceAttachment)
                               .where(ExperienceAttachment.experience_id == experience.id))
    rules.check_count(count, limits.max_count)
    attachment = ExperienceAttachment(
        experience_id=experience.id, filename=name, content_type=kind.content_type, size=len(content),
        sha256=hashlib.sha256(content).hexdigest(), content=content,
        uploaded_by=records.actor(principal), uploaded_at=clock.now_utc())
    uow.session.add(attachment)
    uow.flush()
    records.record(uow, experience, "attachment_added", principal, f"{name}（{attachment.sha256}）")
    uow.commit()
    return attachment.id


def _attachment(uow: UnitOfWork, experience_id: int, attachment_id: int) -> ExperienceAttachment:
    attachment = uow.session.get(ExperienceAttachment, attachment_id)
    if attachment is None or attachment.experience_id != experience_id:
        raise NotFound(f"典型经验 {experience_id} 没有编号为 {attachment_id} 的附件",
                       code="ATTACHMENT_NOT_FOUND")
    return attachment


def remove(uow: UnitOfWork, principal: Principal, experience_id: int, attachment_id: int) -> None:
    experience = records.load(uow, principal, experience_id, lock=True)
    rules.require_editable(experience.status)
    attachment = _attachment(uow, experience_id, attachment_id)
    uow.session.delete(attachment)
    records.record(uow, experience, "attachment_removed", principal,
                   f"{attachment.filename}（{attachment.sha256}）")
    uow.commit()


def download(db: Database, principal: Principal | None, experience_id: int, attachment_id: int) -> Download:
    """The attachment's bytes; `principal` None is the public, who sees only what is published."""
    with db.unit_of_work() as uow:
        if principal is None:
            experience = uow.session.get(Experience, experience_id)
            if experience is None or experience.status != rules.PUBLISHED:
                raise records.not_found(experience_id)
        else:
            records.load(uow, principal, experience_id)
        attachment = _attachment(uow, experience_id, attachment_id)
        content = bytes(attachment.content)
        digest = hashlib.sha256(content).hexdigest()
        if digest != attachment.sha256 or len(content) != attachment.size:
            log.error("attachment %s of experience %s fails its check: stored sha256 %s, size %s; "
                      "read sha256 %s, size %s", attachment_id, experience_id, attachment.sha256,
                      attachment.size, digest, len(content))
            raise IntegrityFailed("附件内容与上传时登记的 SHA-256 不一致，可能已损坏或被改动，暂不提供下载；"
                                  "已记录，请联系管理员", details={"attachment_id": attachment_id})
        return Download(attachment.filename, attachment.content_type, content)
