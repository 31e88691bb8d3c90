"""The wire contracts: what crosses between services, as marshmallow schemas.

- `filings`: the county ↔ city messages (filings, batches, decisions, campaign progress,
  withdrawal requests) and the deployment's jurisdiction they are checked against;
- `events`: the domain events of `cqo.events` (docs/events.md).

The names of `filings` are re-exported here because every service reads them.
"""
from shared.contracts.filings import *  # noqa: F401,F403
from shared.contracts.filings import county_name, jurisdiction, use_jurisdiction  # noqa: F401
