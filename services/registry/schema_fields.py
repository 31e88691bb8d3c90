"""What the registry's HTTP schemas share: the query filters, paging, and the described count and rate fields of its tables."""

from marshmallow import fields, validate

from shared.contracts import CATEGORIES
from shared.paging import page_query
from shared.schema_fields import COUNTY as COUNTY_FILTER, USCC as USCC_FILTER  # noqa: F401


# the query-string filters every listing shares
CATEGORY_FILTER = validate.OneOf(list(CATEGORIES), error="企业类别无效")


# the registry's listings: `page_size` (and its old name `per_page`), 50 a page, at most 500
PageQuery = page_query(default=50, maximum=500, alias=True)


def count_field(key: str, table: dict) -> fields.Integer:
    return fields.Integer(metadata={"description": table[key]})


def rate_field(key: str, table: dict) -> fields.Float:
    return fields.Float(allow_none=True, metadata={
        "description": f"{table[key]}（0～1 的小数；名录为空时为 null）"})
