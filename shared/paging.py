"""Paging of every listing, county and city alike: `page` and `page_size` in; `total`,
`page` and `page_size` back.

The names are the same everywhere; the limits are each listing's own (the county's
filings and notices: 50 a page, at most 200; the registry's listings: 50, at most 500;
its overdue list: 200, at most 1000), so a listing's query schema inherits from
`page_query(...)` with them. The registry used to call `page_size` `per_page`, and its
clients still send and read that name: `alias=True` accepts it as a deprecated alias,
and `AliasedPageOut` answers it beside `page_size`.
"""
from __future__ import annotations

from marshmallow import Schema, fields, post_load, validate
from sqlalchemy import func, select

from shared.errors import CqoError

MAX_PAGE = 1_000_000  # page * page_size stays far below any OFFSET limit (64-bit)
PAGE_SIZE = "每页条数"
ALIAS_IN = ("已弃用，请改用 page_size：page_size 的旧名，含义和取值范围相同；"
            "与 page_size 同时给出且取值不同时返回 400（PAGE_SIZE_CONFLICT）")
ALIAS_OUT = "已弃用，请改用 page_size：page_size 的旧名，取值与 page_size 相同"


class PageSizeConflict(CqoError):
    """`page_size` and its old name `per_page` were both given, with different values."""

    code = "PAGE_SIZE_CONFLICT"
    status = 400


def page_query(*, default: int, maximum: int, alias: bool = False,
               integer: type[fields.Integer] = fields.Integer,
               range_error: str | None = None) -> type[Schema]:
    """The base of a listing's query schema: `page` (1 to MAX_PAGE) and `page_size`
    (1 to `maximum`, `default` when absent); `alias`: `per_page` too.

    `integer` is the service's integer field (its messages); `range_error` a template
    ({min}, {max}) for both parameters, by default a message naming each."""
    size_range = validate.Range(min=1, max=maximum,
                                error=range_error or "每页条数应在{min}到{max}之间")

    class PageQuery(Schema):
        page = integer(load_default=1, validate=validate.Range(
            min=1, max=MAX_PAGE, error=range_error or "页码应在{min}到{max}之间"))
        if alias:
            # no load_default: whether page_size was sent decides a conflict with per_page
            page_size = integer(validate=size_range,
                                metadata={"default": default, "description": PAGE_SIZE})
            per_page = integer(validate=size_range,
                               metadata={"deprecated": True, "description": ALIAS_IN})
            api_errors = (400,)  # PAGE_SIZE_CONFLICT, in the OpenAPI document (shared.openapi)

            @post_load
            def _one_page_size(self, data, **kwargs):
                return one_page_size(data, default)
        else:
            page_size = integer(load_default=default, validate=size_range,
                                metadata={"description": PAGE_SIZE})

    return PageQuery


def one_page_size(data: dict, default: int) -> dict:
    """`per_page` folded into `page_size` (which then always holds the size to use)."""
    old = data.pop("per_page", None)
    size = data.get("page_size")
    if old is not None and size is not None and old != size:
        raise PageSizeConflict(
            f"每页条数给出了两个不同的值：page_size={size}，per_page={old}"
            "（per_page 是 page_size 的旧名，已弃用）；请只使用 page_size",
            field="page_size", details={"page_size": size, "per_page": old})
    if size is None:
        data["page_size"] = default if old is None else old
    return data


def page_of(session, query, page: int, page_size: int) -> tuple[int, list]:
    """(how many rows the ordered SELECT `query` has, the objects of page `page`)."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return total, session.scalars(query.limit(page_size).offset((page - 1) * page_size)).all()


class PageOut(Schema):
    """The paging part of a listing's answer; subclasses add `items`."""

    total = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer(metadata={"description": PAGE_SIZE})


class AliasedPageOut(PageOut):
    """PageOut with `per_page` too, for clients of the registry that read the old name."""

    per_page = fields.Integer(attribute="page_size", dump_only=True,  # dump_only: may share it
                              metadata={"deprecated": True, "description": ALIAS_OUT})
