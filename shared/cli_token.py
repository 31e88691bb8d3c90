"""`cqo token`: print a bearer token (registered in shared/cli.py).

The secret comes from CQO_AUTH_SECRET, the same value services read as AUTH_SECRET.
"""
from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Optional

import typer

from shared.auth import DEV_SECRET, ROLES, issue_token, validate_scope
from shared.errors import CqoError
from shared.validators import validate_uscc

SECRET_ENV = "CQO_AUTH_SECRET"
_TTL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "": "hours"}


def parse_ttl(text: str) -> timedelta:
    """"8h", "30m", "2d", "90s"; a bare number means hours."""
    match = _TTL.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise CqoError(f"有效期格式不正确：{text}（示例：8h、30m、2d）", field="ttl")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def token(
    role: str = typer.Option(..., "--role", help="角色：" + " | ".join(ROLES)),
    county: Optional[str] = typer.Option(None, "--county", help="县（市、区）代码，县级监管人员必填"),
    uscc: Optional[str] = typer.Option(None, "--uscc", help="统一社会信用代码，企业必填"),
    ttl_hours: str = typer.Option("8h", "--ttl", help="有效期，如 8h、30m、2d"),
    subject: Optional[str] = typer.Option(None, "--subject", help="令牌主体（用户标识）"),
) -> None:
    """签发访问令牌（Bearer JWT）。"""
    secret = os.environ.get(SECRET_ENV)
    try:
        ttl = parse_ttl(ttl_hours)
        if uscc:  # full GB 32100 check: a token for a mistyped code is useless
            uscc = validate_uscc(uscc, field="uscc")
        validate_scope(role, uscc, county)
        if not secret:
            typer.echo(f"警告：未设置环境变量 {SECRET_ENV}，使用开发用默认密钥，仅限本地开发。",
                       err=True)
            secret = DEV_SECRET
        typer.echo(issue_token(secret, role, uscc=uscc, county=county, ttl=ttl,
                               subject=subject))
    except CqoError as exc:
        typer.echo(f"错误：{exc.message}", err=True)
        raise typer.Exit(1)
    except ValueError:  # a configured secret that is too short
        typer.echo(f"错误：{SECRET_ENV} 太短，至少需要 32 个字节。", err=True)
        raise typer.Exit(1)
