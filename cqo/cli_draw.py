"""`cqo draw run|verify`: panel draws of city-level experts in the talent service's
database, as `POST /api/v1/draws` and `GET /api/v1/draws/{id}/verification` make and
check them (docs/architecture.md, "Panel draws").

Exit codes: `verify` 0 every check holds, 1 a check failed (the record was altered),
2 no such draw; `run` 0 drawn, 2 refused (bad input, too few eligible experts).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from cqo.cli_roster import _actor

draw_app = typer.Typer(help="专家抽取：抽取专家组、核验抽取记录。", no_args_is_help=True)
console = Console()

CONFIG = typer.Option(None, "--config", help="talent 服务配置文件（默认为服务自带配置）")
ROLE_NAMES = {"member": "专家", "alternate": "备选"}


@contextmanager
def talent_database(config: Optional[Path]) -> Iterator:
    """The talent service's database and its list of expertise (EXPERTISE_CSV, as the
    service reads it) from its config, migrated as the service would on start."""
    from cqo.service_support import load_service_config
    from shared.db import database_from_config
    from shared.migrate import upgrade
    from services.talent.pool.expertise import catalogue
    from services.talent.service import MIGRATIONS

    settings = load_service_config("talent", config)
    db = database_from_config(settings, default_sqlite="var/talent.db")
    try:
        upgrade(db, MIGRATIONS)
        yield db, catalogue(settings)
    finally:
        db.dispose()


def _exclusions(items: list[dict]) -> str:
    return "、".join(f"{e['name']} {e['count']} 名" for e in items) or "无"


def _expertise(member: dict) -> str:
    return "、".join(f"{e['code']} {e['name'] or ''}".strip() for e in member["expertise"]) or "—"


@draw_app.command("run")
def run_command(
        purpose: str = typer.Option(..., "--purpose", help="抽取事由"),
        size: int = typer.Option(..., "--size", help="专家人数"),
        alternates: int = typer.Option(0, "--alternates", help="备选专家人数"),
        expertise: Optional[List[str]] = typer.Option(None, "--expertise",
                                                      help="所需专业领域（GB/T 4754 门类或大类代码，可重复）"),
        enterprise: Optional[List[str]] = typer.Option(None, "--enterprise",
                                                       help="涉及的企业统一社会信用代码（可重复）"),
        county: Optional[List[str]] = typer.Option(None, "--county", help="涉及的县级区划代码（可重复）"),
        exclude_involved_counties: bool = typer.Option(False, "--exclude-involved-counties",
                                                       help="排除涉及县（市、区）的专家"),
        config: Optional[Path] = CONFIG) -> None:
    """抽取专家组：按回避条件确定候选名单，用随机种子排序抽取，记入审计哈希链。"""
    from marshmallow import ValidationError

    from shared.auth import Principal
    from shared.errors import CqoError
    from shared.http import field_errors
    from services.talent.draws import drawing, views
    from services.talent.draws.schemas import DrawIn

    body = {"purpose": purpose, "size": size, "alternates": alternates,
            "expertise": expertise or [], "enterprises": enterprise or [], "counties": county or [],
            "exclude_involved_counties": exclude_involved_counties}
    actor = _actor()
    try:
        data = DrawIn().load(body)
        with talent_database(config) as (db, expertise_list):
            draw_id = drawing.run(db, actor, data, expertise_list)
            with db.unit_of_work() as uow:
                shown = views.detail(uow.session, Principal(subject=actor, role="admin"), draw_id,
                                     expertise_list)
    except ValidationError as exc:
        problems = "；".join(f"{k}：{'、'.join(v)}" for k, v in field_errors(exc.messages).items())
        console.print(f"[red]未抽取：{problems}[/]")
        raise typer.Exit(2)
    except CqoError as exc:
        console.print(f"[red]未抽取：{exc.message}（{exc.code}）[/]")
        raise typer.Exit(2)
    (first,) = shown["draws"]
    console.print(f"抽取编号：{shown['id']}")
    console.print(f"事由：{shown['purpose']}；抽取时间：{shown['drawn_at'].isoformat()}；操作人：{actor}")
    console.print(f"候选专家 {first['eligible_count']} 名；种子 {first['seed']}")
    console.print(f"未列入候选名单：{_exclusions(first['exclusions'])}")
    console.print(f"快照哈希 {first['snapshot_hash']}；审计链第 {first['chain_seq']} 条 {first['chain_hash']}")
    table = Table(title="抽取结果")
    for column in ("序号", "身份", "姓名", "县级区划", "专业领域", "专家编号"):
        table.add_column(column, overflow="fold")
    for member in shown["members"]:
        table.add_row(str(member["position"]), ROLE_NAMES.get(member["role"], member["role"]),
                      member["name"] or "—",
                      member["county"] or "—", _expertise(member), member["expert_id"])
    console.print(table)
    console.print("专家组公布前仅市级监管人员可见；公布：POST /api/v1/draws/{id}/publish。")


@draw_app.command("verify")
def verify_command(draw_id: str = typer.Argument(..., help="抽取编号"),
                   config: Optional[Path] = CONFIG) -> None:
    """核验抽取：按抽取时的专家库历史重建候选名单，用存储的种子重新抽取，并核对审计哈希链。

    退出码：0 全部一致；1 有不一致（记录被改动）；2 没有该抽取记录。
    """
    from shared.errors import NotFound
    from services.talent.draws import verification

    try:
        with talent_database(config) as (db, _), db.unit_of_work() as uow:
            report = verification.verify(uow.session, draw_id)
    except NotFound as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(2)
    console.print(f"抽取编号：{report['draw_id']}；抽取时间：{report['drawn_at'].isoformat()}")
    console.print(f"种子 {report['seed']}；快照哈希 {report['snapshot_hash']}；"
                  f"候选专家 {report['eligible_count']} 名")
    console.print(f"按抽取时的专家库历史重建，未列入候选名单：{_exclusions(report['exclusions'])}")
    table = Table(title="核验结果")
    for column in ("核验项", "结果", "说明"):
        table.add_column(column, overflow="fold")
    for check in report["checks"]:
        table.add_row(check["label"], "[green]一致[/]" if check["ok"] else "[red]不一致[/]",
                      check["message"])
    console.print(table)
    if report["ok"]:
        console.print("[green]核验通过：快照、排序、结果和审计哈希链全部一致。[/]")
        return
    failed = "、".join(c["label"] for c in report["checks"] if not c["ok"])
    console.print(f"[red]核验未通过：{failed}不一致，抽取记录可能被改动。[/]")
    raise typer.Exit(1)
