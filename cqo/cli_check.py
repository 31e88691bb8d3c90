"""`cqo check …`: validate an identifier from the command line.

Prints `valid` and exits 0, or prints the Chinese reason to stderr and exits 1,
so the commands can be used in shell scripts and data-cleaning pipelines.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from shared.errors import ValidationFailed
from shared.validators import ID_TYPE_NAMES, Jurisdiction, validate_person_id, validate_uscc

check_app = typer.Typer(help="校验统一社会信用代码、证件号码和县级区划代码。", no_args_is_help=True)


def _report(check: Callable[[], object]) -> None:
    try:
        check()
    except ValidationFailed as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(code=1) from None
    typer.echo("valid")


@check_app.command("uscc")
def check_uscc(code: Annotated[str, typer.Argument(help="统一社会信用代码（18位）")]) -> None:
    """校验统一社会信用代码（GB 32100-2015）。"""
    _report(lambda: validate_uscc(code))


@check_app.command("id")
def check_id(
    number: Annotated[str, typer.Argument(help="证件号码")],
    id_type: Annotated[str, typer.Option(
        "--type", help="证件类型：" + "、".join(f"{k}（{v}）" for k, v in ID_TYPE_NAMES.items()),
    )] = "resident_id",
) -> None:
    """校验证件号码（默认居民身份证，GB 11643-1999）。"""
    _report(lambda: validate_person_id(id_type, number))


@check_app.command("county")
def check_county(
    code: Annotated[str, typer.Argument(help="县级区划代码（6位）")],
    csv: Annotated[Optional[Path], typer.Option(help="辖区列表CSV（默认沧州市）")] = None,
) -> None:
    """校验县级区划代码是否属于本辖区。"""
    jurisdiction = Jurisdiction.from_csv(csv) if csv else Jurisdiction.default()
    _report(lambda: jurisdiction.validate(code))
