"""`cqo trace FILING_ID`: every hop of one filing with its time, from the county's intake
to the city's decision applied back at the county (shared/tracing.py).

The city cannot read a county's database, so both sites are asked: the registry's
`GET /api/v1/filings/{id}/trace` first (it also says which county the filing is of),
then that county's filing service. Their hops are merged in time order. A site that
does not answer is named, and what the other said is still shown, marked incomplete.

Addresses: `--registry-url` (CQO_REGISTRY_URL) and `--county-url` (CQO_FILING_URL), a
URL or `CODE=URL`, repeatable, so that one setting serves every county. Tokens: `--token`
(CQO_TOKEN), and `--county-token` (CQO_COUNTY_TOKEN) where the county's secret differs;
without one, a city officer's token is signed as `cqo training import` does
(development only).

Exit codes: 0 both sites answered; 1 incomplete (a site could not be asked); 2 no site
knows the filing, or the options are wrong.
"""
from __future__ import annotations

import json
import uuid
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from cqo.cli_training import _problem, _token
from shared import clock, tracing

console = Console()
DEFAULT_REGISTRY_URL = "http://127.0.0.1:8001"
DEFAULT_COUNTY_URL = "http://127.0.0.1:8011"  # the first county of `cqo stack up`
TIMEOUT = (5, 30)


def county_urls(values: list[str]) -> tuple[dict[str, str], str | None]:
    """(`CODE=URL` given, the plain URL given if any)."""
    mapped, plain = {}, None
    for value in values:
        code, sep, url = value.partition("=")
        if sep and code.isdigit() and len(code) == 6:
            mapped[code] = url
        elif sep:
            raise typer.BadParameter(f"--county-url 应为 URL 或 县级区划代码=URL：{value}")
        else:
            plain = value
    return mapped, plain


def county_candidates(county: str | None, mapped: dict[str, str], plain: str | None) -> list[str]:
    """The county services to ask: the filing's county's when the city named it and its
    URL is given; else the plain URL; else, the county unknown, every county given."""
    if county and county in mapped:
        return [mapped[county]]
    if plain:
        return [plain]
    if not county and mapped:
        return list(mapped.values())
    return [DEFAULT_COUNTY_URL]


def ask(site: str, url: str, filing_id: str, token: str) -> tracing.SiteResult:
    """One site's answer; never raises: what went wrong is the result's Chinese error."""
    import requests

    result = tracing.SiteResult(site, url)
    label = _site_label(site)
    try:
        response = requests.get(f"{url.rstrip('/')}/api/v1/filings/{filing_id}/trace",
                                headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        result.error = f"{label}服务 {url} 无应答（{type(exc).__name__}）"
        return result
    if response.status_code == 404:
        return result  # answered: it has no record of this filing
    if response.status_code != 200:
        result.error = f"{label}服务 {url} 拒绝或未能回答（HTTP {response.status_code}：{_problem(response)}）"
        return result
    try:
        body = response.json()
        result.hops, result.county, result.found = tracing.hops_of(body), body.get("county"), True
    except (ValueError, KeyError, TypeError) as exc:
        result.error = f"{label}服务 {url} 的回答无法读取（{type(exc).__name__}）"
    return result


def _site_label(site: str) -> str:
    return "市局" if site == tracing.CITY else "县局"


def _shown(at) -> str:
    return at.astimezone(clock.TZ).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _where(hop: tracing.Hop) -> str:
    side = tracing.HOPS.get(hop.hop, ("", ""))[1]
    if side == tracing.BROKER:
        return f"消息转运 {hop.by}" if hop.by else "消息转运"
    return "市局" if hop.site == tracing.CITY else f"县局 {hop.site}"


def trace(
        filing_id: str = typer.Argument(..., help="备案编号（UUID）"),
        registry_url: str = typer.Option(DEFAULT_REGISTRY_URL, "--registry-url", envvar="CQO_REGISTRY_URL",
                                         help="市局备案登记服务地址"),
        county_url: Optional[List[str]] = typer.Option(
            None, "--county-url", envvar="CQO_FILING_URL",
            help=f"县局备案服务地址：URL，或 县级区划代码=URL（可重复）；默认 {DEFAULT_COUNTY_URL}"),
        token: Optional[str] = typer.Option(None, "--token", envvar="CQO_TOKEN",
                                            help="访问令牌（市级监管人员，或该备案所属县的县级监管人员）"),
        county_token: Optional[str] = typer.Option(None, "--county-token", envvar="CQO_COUNTY_TOKEN",
                                                   help="县局服务的访问令牌（县局密钥与市局不同时；默认同 --token）"),
        as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """备案流转记录：县局受理、预审、报送消息写入发件箱与发布、经转运到达市局、市局接收、决定、决定发布、
    县局收到决定，各环节的时间（按时间顺序）和消息编号。

    退出码：0 两个站点都已回答；1 记录不完整（有站点无应答）；2 两个站点都没有该备案，或参数有误。
    """
    from shared.errors import CqoError

    try:
        filing_id = str(uuid.UUID(filing_id))
    except ValueError:
        console.print(f"[red]备案编号应为 UUID：{filing_id}[/]")
        raise typer.Exit(2)
    mapped, plain = county_urls(county_url or [])
    try:
        city_token = _token(token)
    except (CqoError, RuntimeError) as exc:
        console.print(f"[red]无法签发令牌：{getattr(exc, 'message', exc)}；请用 --token 指定[/]")
        raise typer.Exit(2)
    city = ask(tracing.CITY, registry_url, filing_id, city_token)
    answers = [ask(tracing.COUNTY, url, filing_id, county_token or city_token)
               for url in county_candidates(city.county, mapped, plain)]
    # the one that knows the filing; else the first that could not be asked; else any
    county = next((a for a in answers if a.found), None) or \
        next((a for a in answers if a.error), answers[0])
    notes = []
    if city.found and not county.found and county.error is None:
        notes.append(f"县局服务 {county.url} 没有该备案的记录（该备案属于 {city.county}；"
                     f"如地址不对，请用 --county-url {city.county}=URL 指定）")
    result = tracing.merge(filing_id, [city, county], show=_shown)
    result.notes[:0] = notes
    if as_json:
        _print_json(result)
    else:
        _print_table(result)
    if not result.found:
        if not as_json:
            console.print("[red]两个站点都没有该备案的记录[/]" if result.complete else
                          "[red]没有问到该备案的任何记录[/]")
        raise typer.Exit(2)
    if not result.complete:
        raise typer.Exit(1)


def _print_json(result: tracing.Trace) -> None:
    typer.echo(json.dumps({
        "filing_id": result.filing_id, "complete": result.complete, "found": result.found,
        "sites": [{"site": s.site, "url": s.url, "county": s.county, "found": s.found, "error": s.error}
                  for s in result.sites],
        "hops": [{**h.to_dict(), "at": h.at.isoformat()} for h in result.hops],
        "notes": result.notes}, ensure_ascii=False, indent=2))


def _print_table(result: tracing.Trace) -> None:
    title = f"备案 {result.filing_id} 流转记录" + ("" if result.complete else "（不完整）")
    table = Table(title=title)
    for column in ("序号", "版本", "环节", "站点", "时间（北京时间）", "消息编号", "说明"):
        table.add_column(column, overflow="fold")
    for number, hop in enumerate(result.hops, start=1):
        at = _shown(hop.at)[:-4] + "（精确到秒）" if hop.precision_s else _shown(hop.at)
        table.add_row(str(number), str(hop.version), tracing.hop_name(hop.hop), _where(hop), at,
                      hop.message_id or "", hop.detail or "")
    if result.hops:
        console.print(table)
    for site in result.sites:
        if site.error:
            console.print(f"[red]{site.error}，以上不含{_site_label(site.site)}的环节[/]")
    for note in result.notes:
        console.print(f"[yellow]注意：{note}[/]")
