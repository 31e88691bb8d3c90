"""`cqo keys init DIR`: the key files of a new deployment, one file per secret, for
compose's `secrets:` (and any secret store that mounts files).

- auth_secret: the token secret (CQO_AUTH_SECRET), every service
- id_hmac_key: the city-wide key of id_hmac, the registry and every county
- city_private_key.pem: the registry only; city_public_key.pem: the counties
- id_encryption_keys.<instance>: each instance's own key for ID numbers at rest
  (registry, talent, filing_<county>)

Existing files are kept (never overwritten): running it again with another --instance
adds that instance's key only, e.g. for a new county. Files are 0600, or 0400 owned by
--owner (the uid the services run as in their containers, 10001 in localhost/cqo-app;
root only), since a file secret is mounted with its host owner and mode.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import List, Optional

import typer

DEFAULT_INSTANCES = ("registry", "talent", "notify", "filing_130921", "filing_130922")

keys_app = typer.Typer(help="部署密钥文件（compose secrets）。", no_args_is_help=True)


@keys_app.callback()
def _keys() -> None:
    """部署密钥文件（compose secrets）。"""  # a group even with one command: `cqo keys init`


def _write(path: Path, text: str, owner: int | None) -> bool:
    if path.exists():
        return False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    if owner is not None:
        os.chown(path, owner, owner)
        os.chmod(path, 0o400)
    return True


def init_keys(directory: Path, instances=DEFAULT_INSTANCES, owner: int | None = None) -> list[str]:
    """Writes the missing key files; returns the names written."""
    from shared.personal_data import generate_city_keypair, generate_key

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    wanted = {
        "auth_secret": lambda: secrets.token_urlsafe(48),
        "id_hmac_key": lambda: secrets.token_urlsafe(48),
    }
    for instance in instances:
        wanted[f"id_encryption_keys.{instance}"] = generate_key
    written = [name for name, make in wanted.items() if _write(directory / name, make(), owner)]
    private, public = directory / "city_private_key.pem", directory / "city_public_key.pem"
    if not private.exists():
        pair = generate_city_keypair()
        _write(private, pair.private_pem, owner)
        public.unlink(missing_ok=True)  # a public key belongs to its private key
        written.append(private.name)
    if not public.exists():
        from shared.keys import public_pem_of

        _write(public, public_pem_of(private.read_text(encoding="ascii")), owner)
        written.append(public.name)
    if owner is not None:
        os.chown(directory, owner, owner)
    return written


@keys_app.command("init")
def init(
    directory: Path = typer.Argument(..., help="密钥文件目录（如 secrets）"),
    instance: Optional[List[str]] = typer.Option(
        None, "--instance", help="需要身份证号加密密钥的服务实例，可重复；默认 "
                                 + "、".join(DEFAULT_INSTANCES)),
    owner: Optional[int] = typer.Option(
        None, "--owner", help="文件属主 uid（容器内服务的用户，localhost/cqo-app 为 10001；需 root）"),
) -> None:
    """生成新部署所需的密钥文件；已有文件保留不动。"""
    import re

    instances = tuple(instance or DEFAULT_INSTANCES)
    bad = [name for name in instances if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name)]
    if bad:
        typer.echo(f"实例名无效：{'、'.join(bad)}（小写字母、数字和下划线，如 filing_130923）", err=True)
        raise typer.Exit(2)
    try:
        written = init_keys(directory, instances, owner)
    except PermissionError as exc:
        typer.echo(f"无法写入密钥文件：{exc}（--owner 需要 root 权限）", err=True)
        raise typer.Exit(1)
    for name in written:
        typer.echo(f"已生成 {directory / name}")
    if not written:
        typer.echo(f"{directory} 中的密钥文件齐全，未作改动")
