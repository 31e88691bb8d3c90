"""What the registry's HTTP schemas share: the query filters, paging, and the described count and rate fields of its tables."""

import re

from marshmallow import Schema, fields, validate

from shared.contracts import CATEGORIES
from shared.validators.uscc import PATTERN as USCC_PATTERN


# the query-string filters every listing shares (the codes' full checks run where a
# code is looked up; a filter only needs the right shape to match nothing otherwise)
COUNTY_FILTER = validate.Regexp(r"^\d{6}$", error="县级区划代码应为6位数字")
USCC_FILTER = [validate.Length(equal=18, error="统一社会信用代码应为18位"),
               validate.Regexp(USCC_PATTERN, flags=re.IGNORECASE,
                               error="统一社会信用代码只使用数字和英文字母（不使用I、O、Z、S、V）")]
CATEGORY_FILTER = validate.OneOf(list(CATEGORIES), error="企业类别无效")


MAX_PAGE = 1_000_000  # page * per_page stays far below any OFFSET limit (64-bit)


class PageQuery(Schema):
    """`page` and `per_page` of every paginated registry listing."""

    page = fields.Integer(load_default=1, validate=validate.Range(
        min=1, max=MAX_PAGE, error=f"页码应在1到{MAX_PAGE}之间"))
    per_page = fields.Integer(load_default=50, validate=validate.Range(
        min=1, max=500, error="每页条数应在1到500之间"))


class PageOut(Schema):
    """The paging part of every paginated registry answer; subclasses add `items`."""

    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


def count_field(key: str, table: dict) -> fields.Integer:
    return fields.Integer(metadata={"description": table[key]})


def rate_field(key: str, table: dict) -> fields.Float:
    return fields.Float(allow_none=True, metadata={
        "description": f"{table[key]}（0～1 的小数；名录为空时为 null）"})
