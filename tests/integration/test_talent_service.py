"""The talent service starts on both databases beside the registry, each with its own."""
import pytest
import requests
from sqlalchemy import text

pytestmark = pytest.mark.integration


def test_talent_starts_with_its_own_database(registry, talent):
    base, db, _ = talent
    health = requests.get(base + "/api/v1/health", timeout=10)
    # healthy means its database and its broker answer, not only its port
    assert health.status_code == 200 and health.json()["checks"] == {"database": "ok", "broker": "ok"}
    with db.unit_of_work() as uow:
        assert uow.session.execute(text("SELECT count(*) FROM experts")).scalar() == 0
