"""The enterprise row as every area reaches it: found in the caller's scope (else not found: its existence is not the caller's business)."""
from __future__ import annotations

from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import NotFound
from shared.validators.uscc import validate_uscc
from services.registry.models import Enterprise


def enterprise_not_found(uscc: str) -> NotFound:
    # an enterprise outside the caller's scope is reported as not found: its
    # existence is not the caller's business either
    return NotFound(f"未找到统一社会信用代码为 {uscc} 的企业备案信息", code="ENTERPRISE_NOT_FOUND")


def visible_enterprise(uow: UnitOfWork, principal: Principal, uscc: str) -> Enterprise:
    uscc = validate_uscc(uscc, field="uscc")
    enterprise = uow.session.get(Enterprise, uscc)
    if enterprise is None or not principal.can_access_enterprise(enterprise.uscc, enterprise.county):
        raise enterprise_not_found(uscc)
    return enterprise
