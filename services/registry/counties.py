"""The county a read covers, in the caller's scope: the city's officers see every county, a county officer only its own."""
from __future__ import annotations

from shared.auth import CITY_WIDE, Principal


def county_scope(principal: Principal, county: str | None) -> str | None:
    """The one county a read is limited to, or None for every county.

    City officers and admins get what they asked for; a county officer gets its own
    county, and asking for another is refused (403 AUTH_FORBIDDEN). No other role
    reads across enterprises (403 AUTH_FORBIDDEN)."""
    if principal.role == "county_officer":
        if county is not None:
            principal.require_county(county)
        return principal.county
    principal.require_role(*CITY_WIDE)
    return county
