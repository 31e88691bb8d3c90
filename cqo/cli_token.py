"""`cqo token`: print a bearer token (registered in cqo/cli.py).

The secret is the one the services use: CQO_AUTH_SECRET when set (services read it as
AUTH_SECRET), otherwise the development secret in the keys folder (`--keys-dir`, else
DEV_KEYS_DIR, else var/keys), generated there if no service has done it yet.
"""
from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Optional

import typer

from shared.auth import TOKEN_ROLES, issue_token, validate_scope
from shared.errors import CqoError
from shared.keys import AUTH_SECRET_ENV, DEFAULT_DEV_KEYS_DIR, Keys, MissingKey, WeakKey
from shared.validators import validate_uscc

_TTL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "": "hours"}


def parse_ttl(text: str) -> timedelta:
    """"8h", "30m", "2d", "90s"; a bare number means hours."""
    match = _TTL.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise CqoError(f"有效期格式不正确：{text}（示例：8h、30m、2d）", field="ttl")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def token(
    role: str = typer.Option(..., "--role", help="角色：" + " | ".join(TOKEN_ROLES)),
    county: Optional[str] = typer.Option(None, "--county", help="县（市、区）代码，县级监管人员必填"),
    uscc: Optional[str] = typer.Option(None, "--uscc", help="统一社会信用代码，企业必填"),
    expert: Optional[str] = typer.Option(None, "--expert", help="专家编号（人才服务的 UUID），专家必填；只能阅读本人的站内通知"),
    ttl_hours: str = typer.Option("8h", "--ttl", help="有效期，如 8h、30m、2d"),
    subject: Optional[str] = typer.Option(None, "--subject", help="令牌主体（用户标识）"),
    keys_dir: Optional[str] = typer.Option(
        None, "--keys-dir", help="开发密钥目录（未设置 CQO_AUTH_SECRET 时读取；"
                                 "默认 DEV_KEYS_DIR 或 var/keys；cqo stack 为 <目录>/keys）"),
) -> None:
    """签发访问令牌（Bearer JWT）。"""
    secret = os.environ.get(AUTH_SECRET_ENV)
    if keys_dir is None:
        keys_dir = os.environ.get("DEV_KEYS_DIR", DEFAULT_DEV_KEYS_DIR)
    try:
        ttl = parse_ttl(ttl_hours)
        if uscc:  # full GB 32100 check: a token for a mistyped code is useless
            uscc = validate_uscc(uscc, field="uscc")
        validate_scope(role, uscc, county, expert)
        if not secret and keys_dir:
            typer.echo(f"提示：未设置环境变量 {AUTH_SECRET_ENV}，使用开发密钥目录 {keys_dir} 中的密钥，"
                       "仅限本地开发。", err=True)
        secret = Keys({"AUTH_SECRET": secret, "DEV_KEYS_DIR": keys_dir}).auth_secret()
        typer.echo(issue_token(secret, role, uscc=uscc, county=county, ttl=ttl,
                               subject=subject, expert_id=expert))
    except CqoError as exc:
        typer.echo(f"错误：{exc.message}", err=True)
        raise typer.Exit(1)
    except (MissingKey, WeakKey) as exc:
        typer.echo(f"错误：{exc.message}", err=True)
        raise typer.Exit(1)
