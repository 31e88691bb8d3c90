"""The county a read covers, in the caller's scope: the city's officers see every county, a county officer only its own (the rule is shared.auth.county_scope, which the talent service applies too)."""
from __future__ import annotations

from shared.auth import county_scope

__all__ = ["county_scope"]
