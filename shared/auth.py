"""Bearer tokens (HS256 JWT) and the `@requires(*roles)` guard for HTTP entrypoints.

Claims: sub, role, uscc (enterprise), county (county_officer; optional for an
enterprise), expert_id (expert), iat, exp, iss="cqo". Role checks happen in the
decorator; scope checks (this county, this enterprise, this expert) happen in the
use-case through the Principal methods, because only the use-case knows which county
or enterprise a record belongs to.

Where the principal goes: `request.principal` (the werkzeug Request), so entrypoint
signatures stay `(self, request, **path_args)` and path arguments never collide with it.
"""
from __future__ import annotations

import functools
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta

import jwt

from shared import clock
from shared.errors import Forbidden, Unauthorized, ValidationFailed

log = logging.getLogger(__name__)

ROLES = ("enterprise", "county_officer", "city_officer", "admin")
# A city-level expert (市级质量专家, art. 15) reads their own notices and nothing else: the
# role is outside ROLES, so "any role" endpoints (`@requires(*ROLES)`, `@requires()`)
# never let an expert in; an endpoint names EXPERT to admit one.
EXPERT = "expert"
TOKEN_ROLES = ROLES + (EXPERT,)# the officers (监管人员) of the counties and the city; the city-wide ones see every county.
# Tuples, not sets: @requires lists the roles in the OpenAPI document in this order.
OFFICERS = ("county_officer", "city_officer", "admin")
CITY_WIDE = ("city_officer", "admin")
ISSUER = "cqo"
ALGORITHM = "HS256"
LEEWAY = timedelta(seconds=30)  # clock skew between the CLI / other hosts and a service
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key must be at least 256 bits
# No default secret: shared.keys generates one per keys folder for development.

ROLE_NAMES = {
    "enterprise": "企业",
    "county_officer": "县级监管人员",
    "city_officer": "市级监管人员",
    "admin": "系统管理员",
    EXPERT: "市级质量专家",
}

_COUNTY_RE = re.compile(r"^\d{6}$")
_USCC_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")
_EXPERT_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")  # the talent service's uuid


def _forbidden(message: str = "无权访问该资源") -> Forbidden:
    return Forbidden(message, code="AUTH_FORBIDDEN")


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    uscc: str | None = None
    county: str | None = None
    expert_id: str | None = None

    @property
    def city_wide(self) -> bool:
        return self.role in CITY_WIDE

    def can_access_county(self, code) -> bool:
        """City officers and admins see every county; a county officer only its own."""
        if self.city_wide:
            return True
        return self.role == "county_officer" and self.county == str(code)

    def can_access_enterprise(self, uscc, county=None) -> bool:
        """An enterprise sees only itself; a county officer the enterprises of its county."""
        if self.city_wide:
            return True
        if self.role == "county_officer":
            return county is not None and self.county == str(county)
        return self.role == "enterprise" and self.uscc == str(uscc)

    # Raising variants, for use-cases: a wrong scope is 403 AUTH_FORBIDDEN.
    def require_role(self, *roles: str) -> None:
        if self.role not in roles:
            raise _forbidden("当前角色无权执行此操作")

    def require_county(self, code) -> None:
        if not self.can_access_county(code):
            raise _forbidden("无权访问其他县（市、区）的数据")

    def require_enterprise(self, uscc, county=None) -> None:
        if not self.can_access_enterprise(uscc, county):
            raise _forbidden("无权访问该企业的数据")


def county_scope(principal: Principal, county: str | None) -> str | None:
    """The one county a read is limited to, or None for every county.

    City officers and admins get what they asked for; a county officer gets its own
    county, and asking for another is refused (403 AUTH_FORBIDDEN). No other role
    reads across enterprises (403 AUTH_FORBIDDEN)."""
    if principal.role == "county_officer":
        if county is not None:
            principal.require_county(county)
        return principal.county
    principal.require_role(*CITY_WIDE)
    return county


def _check_secret(secret) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key or len(key) < MIN_SECRET_BYTES:
        # configuration error, not a client error: surfaces as 500 and in the log
        raise ValueError(f"auth secret must be at least {MIN_SECRET_BYTES} bytes")
    return key


def validate_scope(role: str, uscc: str | None, county: str | None, expert_id: str | None = None) -> None:
    """Role/claim combinations; raises ValidationFailed with a Chinese message."""
    if role not in TOKEN_ROLES:
        raise ValidationFailed(f"角色无效：{role}，应为 {'、'.join(TOKEN_ROLES)} 之一", field="role")
    if role == EXPERT and not expert_id:
        raise ValidationFailed("专家角色必须指定专家编号（expert_id）", field="expert_id")
    if role != EXPERT and expert_id:
        raise ValidationFailed("只有专家角色可以指定专家编号（expert_id）", field="expert_id")
    if expert_id and not _EXPERT_ID_RE.match(expert_id):
        raise ValidationFailed("专家编号格式不正确（应为人才服务登记的 UUID）", field="expert_id")
    if role == EXPERT and county:
        raise ValidationFailed("专家角色不绑定县（市、区），不能指定 county", field="county")
    if role == "enterprise" and not uscc:
        raise ValidationFailed("企业角色必须指定统一社会信用代码（uscc）", field="uscc")
    if role != "enterprise" and uscc:
        raise ValidationFailed("只有企业角色可以指定统一社会信用代码（uscc）", field="uscc")
    if role == "county_officer" and not county:
        raise ValidationFailed("县级监管人员角色必须指定县（市、区）代码（county）", field="county")
    if role in CITY_WIDE and county:
        raise ValidationFailed("市级监管人员和管理员不绑定县（市、区），不能指定 county", field="county")
    if uscc and not _USCC_RE.match(uscc):
        raise ValidationFailed("统一社会信用代码格式不正确（应为 18 位）", field="uscc")
    if county and not _COUNTY_RE.match(county):
        raise ValidationFailed("县（市、区）代码格式不正确（应为 6 位数字）", field="county")


def issue_token(secret, role: str, *, uscc: str | None = None, county: str | None = None,
                ttl: timedelta = timedelta(hours=8), subject: str | None = None,
                expert_id: str | None = None) -> str:
    county = str(county) if county is not None else None
    validate_scope(role, uscc, county, expert_id)
    now = clock.now_utc()
    claims = {
        "sub": subject or f"{role}:{uscc or county or expert_id or 'user'}",
        "role": role,
        "iss": ISSUER,
        "iat": now,
        "exp": now + ttl,
    }
    if uscc:
        claims["uscc"] = uscc
    if county:
        claims["county"] = county
    if expert_id:
        claims["expert_id"] = expert_id
    return jwt.encode(claims, _check_secret(secret), algorithm=ALGORITHM)


# Verified tokens, so that a client's every request does not pay for the HMAC and the
# claim checks again. Keyed by (secret, token): a token is only ever reused for what it
# verified as, and the expiry is checked on every hit.
_VERIFIED_MAX = 10_000
_verified: dict[tuple[bytes, str], tuple[Principal, float]] = {}


def decode_token(secret, token: str) -> Principal:
    key = _check_secret(secret)
    hit = _verified.get((key, token))
    if hit is not None:
        principal, expires_at = hit
        if time.time() < expires_at:
            return principal
        _verified.pop((key, token), None)
    principal, expires_at = _decode(key, token)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()  # crude but bounded; tokens are re-verified on the next request
    _verified[(key, token)] = (principal, expires_at)
    return principal


def _decode(key: bytes, token: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], issuer=ISSUER, leeway=LEEWAY,
            options={"require": ["exp", "iat", "iss", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("访问令牌已过期，请重新获取", code="AUTH_EXPIRED") from None
    except jwt.PyJWTError as exc:
        # the reason goes to the log (no token text); the client only learns "invalid"
        log.info("rejected bearer token: %s", type(exc).__name__)
        raise Unauthorized("访问令牌无效", code="AUTH_INVALID") from None
    role, uscc, county = claims.get("role"), claims.get("uscc"), claims.get("county")
    expert_id = claims.get("expert_id")
    try:
        if not isinstance(claims["sub"], str) or not all(
                v is None or isinstance(v, str) for v in (role, uscc, county, expert_id)):
            raise ValidationFailed("claim types")
        validate_scope(role, uscc, county, expert_id)
    except ValidationFailed:
        log.info("rejected bearer token: bad role/scope claims")
        raise Unauthorized("访问令牌无效", code="AUTH_INVALID") from None
    expires_at = float(claims["exp"]) + LEEWAY.total_seconds()
    return Principal(subject=claims["sub"], role=role, uscc=uscc, county=county,
                     expert_id=expert_id), expires_at


def principal_from_request(request, secret) -> Principal:
    header = request.headers.get("Authorization", "")
    if not header.strip():
        raise Unauthorized("缺少访问令牌，请在 Authorization 头中提供 Bearer 令牌",
                           code="AUTH_MISSING")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization 头格式不正确，应为 “Bearer <令牌>”",
                           code="AUTH_INVALID")
    return decode_token(secret, token.strip())


def requires(*roles: str):
    """Guard a nameko HTTP entrypoint: valid token and one of `roles` (none = any of
ROLES: an expert only where named).

    The service must declare `config = Config()` (nameko.dependency_providers) and
    set AUTH_SECRET in its config. The principal is put on `request.principal`.
    """
    unknown = set(roles) - set(TOKEN_ROLES)
    allowed = tuple(roles) or ROLES
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")

    def decorate(fn):
        @functools.wraps(fn)  # also copies nameko's entrypoint registration (__dict__)
        def wrapper(self, request, *args, **kwargs):
            config = getattr(self, "config", None)
            if config is None:
                raise RuntimeError(
                    f"{type(self).__name__} needs `config = Config()` for @requires")
            principal = principal_from_request(request, config.get("AUTH_SECRET"))
            if principal.role not in allowed:
                raise _forbidden("当前角色无权执行此操作")
            request.principal = principal
            return fn(self, request, *args, **kwargs)

        wrapper.__requires_roles__ = allowed  # read by shared.openapi
        return wrapper

    return decorate
