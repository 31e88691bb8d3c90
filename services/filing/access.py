"""Who may do what at this county: an enterprise only for itself and only here, a county
officer only of this county, city-wide roles read only."""
from __future__ import annotations

from typing import Mapping

from shared.auth import Principal
from shared.contracts import jurisdiction
from shared.errors import Forbidden, ValidationFailed

from services.filing.models import Filing
from services.filing.settings import Settings


def require_enterprise(principal: Principal, settings: Settings, uscc: str) -> None:
    principal.require_role("enterprise")
    if principal.county and principal.county != settings.county:
        raise Forbidden(f"该企业令牌属于其他县（市、区）（{principal.county}），"
                        f"本服务只受理{settings.county_name}企业的备案",
                        code="AUTH_FORBIDDEN")
    if principal.uscc != uscc:
        raise Forbidden("企业只能为本企业提交或修改备案（统一社会信用代码与令牌不一致）",
                        code="AUTH_FORBIDDEN")


def require_officer(principal: Principal, settings: Settings) -> None:
    principal.require_role("county_officer")
    if principal.county != settings.county:
        raise Forbidden(f"只有{settings.county_name}的县级监管人员可以办理本县的备案",
                        code="AUTH_FORBIDDEN")


def require_reader(principal: Principal, settings: Settings, filing: Filing | None = None) -> None:
    """Reading this county's data; with `filing`, that filing (an enterprise's own only)."""
    if principal.role == "enterprise":
        if principal.county and principal.county != settings.county:
            raise Forbidden("无权访问其他县（市、区）的数据", code="AUTH_FORBIDDEN")
        if filing is not None and filing.uscc != principal.uscc:
            raise Forbidden("企业只能查看本企业的备案", code="AUTH_FORBIDDEN")
    elif principal.role == "county_officer":
        if principal.county != settings.county:
            raise Forbidden("无权访问其他县（市、区）的数据", code="AUTH_FORBIDDEN")
    elif not principal.city_wide:
        raise Forbidden("当前角色无权执行此操作", code="AUTH_FORBIDDEN")


def check_own_county(data: Mapping, settings: Settings) -> None:
    """An enterprise files where it is registered: another county's is sent there."""
    county = data["enterprise"]["county"]
    if county != settings.county:
        raise ValidationFailed(
            f"该企业所在县（市、区）为“{jurisdiction().name(county)}（{county}）”，"
            f"应向其所在县（市、区）市场监管部门备案；本服务只受理"
            f"{settings.county_name}（{settings.county}）的备案",
            code="FILING_WRONG_COUNTY", field="enterprise.county")
