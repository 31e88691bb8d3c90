"""Benchmark CQOs (标杆首席质量官, art. 17): designated by the city per year, listed by
year (publicly without the withdrawn ones), withdrawn by the city and kept, marked."""
from __future__ import annotations

from sqlalchemy import select

from shared import clock
from shared.auth import CITY_WIDE, Principal
from shared.contracts import county_name
from shared.db import Database, UnitOfWork
from shared.errors import Conflict, NotFound
from shared.paging import page_of
from services.talent.domain import experiences as rules
from services.talent.experiences.models import Benchmark
from services.talent.experiences.records import actor
from services.talent.experiences.schemas import BenchmarkOut, BenchmarkPageOut, PublicBenchmarkPageOut

_out, _page_out, _public_page_out = BenchmarkOut(), BenchmarkPageOut(), PublicBenchmarkPageOut()


def _render(b: Benchmark) -> dict:
    return {"id": b.id, "year": b.year, "name": b.name, "uscc": b.uscc, "enterprise_name": b.enterprise_name,
            "county": b.county, "county_name": county_name(b.county), "citation": b.citation,
            "designated_on": clock.aware(b.designated_at).astimezone(clock.TZ).date(),
            "designated_by": b.designated_by, "designated_at": b.designated_at,
            "withdrawn": b.withdrawn_at is not None, "withdrawn_at": b.withdrawn_at,
            "withdrawn_by": b.withdrawn_by, "withdrawal_reason": b.withdrawal_reason}


def designate(uow: UnitOfWork, principal: Principal, data: dict) -> dict:
    principal.require_role(*CITY_WIDE)
    rules.check_benchmark_year(data["year"], clock.today())
    same = uow.session.scalar(select(Benchmark.id).where(
        Benchmark.year == data["year"], Benchmark.uscc == data["uscc"], Benchmark.name == data["name"],
        Benchmark.withdrawn_at.is_(None)))
    if same is not None:
        raise Conflict(f"{data['year']} 年度已将该企业的 {data['name']} 评为标杆首席质量官（编号 {same}）",
                       code="BENCHMARK_DUPLICATE", details={"benchmark_id": same})
    benchmark = Benchmark(**data, designated_by=actor(principal), designated_at=clock.now_utc())
    uow.session.add(benchmark)
    uow.commit()
    return _out.dump(_render(benchmark))


def withdraw(uow: UnitOfWork, principal: Principal, benchmark_id: int, reason: str) -> dict:
    principal.require_role(*CITY_WIDE)
    benchmark = uow.session.scalars(select(Benchmark).where(Benchmark.id == benchmark_id)
                                    .with_for_update()).first()
    if benchmark is None:
        raise NotFound(f"未找到编号为 {benchmark_id} 的标杆首席质量官", code="BENCHMARK_NOT_FOUND")
    if benchmark.withdrawn_at is not None:
        raise Conflict("该标杆首席质量官的评定已撤销", code="BENCHMARK_ALREADY_WITHDRAWN")
    benchmark.withdrawn_at, benchmark.withdrawn_by = clock.now_utc(), actor(principal)
    benchmark.withdrawal_reason = reason
    uow.commit()
    return _out.dump(_render(benchmark))


def listing(db: Database, filters: dict, *, public: bool) -> dict:
    """A page of designations by year (newest first); the public never sees withdrawn ones."""
    query = select(Benchmark).order_by(Benchmark.year.desc(), Benchmark.id)
    if public or not filters.get("include_withdrawn"):
        query = query.where(Benchmark.withdrawn_at.is_(None))
    for name in ("year", "county"):
        if filters.get(name):
            query = query.where(getattr(Benchmark, name) == filters[name])
    page, size = filters["page"], filters["page_size"]
    with db.unit_of_work() as uow:
        total, rows = page_of(uow.session, query, page, size)
        items = [_render(b) for b in rows]
    out = _public_page_out if public else _page_out
    return out.dump({"total": total, "page": page, "page_size": size, "items": items})
