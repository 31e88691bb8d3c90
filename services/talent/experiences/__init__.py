"""Typical experiences (典型经验) and benchmark CQOs (标杆首席质量官), art. 17: tables,
use cases (`submissions`, `review`, `attachments`, `views`, `benchmarks`), HTTP
endpoints and schemas. The plain rules are in services/talent/domain/experiences.py."""
