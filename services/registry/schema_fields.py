"""What the registry's HTTP schemas share: the query filters, paging, and the described count and rate fields of its tables."""

import re

from marshmallow import fields, validate

from shared.contracts import CATEGORIES
from shared.paging import page_query
from shared.validators.uscc import PATTERN as USCC_PATTERN


# the query-string filters every listing shares (the codes' full checks run where a
# code is looked up; a filter only needs the right shape to match nothing otherwise)
COUNTY_FILTER = validate.Regexp(r"^\d{6}$", error="县级区划代码应为6位数字")
USCC_FILTER = [validate.Length(equal=18, error="统一社会信用代码应为18位"),
               validate.Regexp(USCC_PATTERN, flags=re.IGNORECASE,
                               error="统一社会信用代码只使用数字和英文字母（不使用I、O、Z、S、V）")]
CATEGORY_FILTER = validate.OneOf(list(CATEGORIES), error="企业类别无效")


# the registry's listings: `page_size` (and its old name `per_page`), 50 a page, at most 500
PageQuery = page_query(default=50, maximum=500, alias=True)


def count_field(key: str, table: dict) -> fields.Integer:
    return fields.Integer(metadata={"description": table[key]})


def rate_field(key: str, table: dict) -> fields.Float:
    return fields.Float(allow_none=True, metadata={
        "description": f"{table[key]}（0～1 的小数；名录为空时为 null）"})
