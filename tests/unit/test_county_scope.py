"""The one rule for reads across enterprises: a county officer sees only its county."""
import pytest

from shared.auth import Principal
from shared.errors import Forbidden
from services.registry.counties import county_scope

CITY = Principal("c", "city_officer")
ADMIN = Principal("a", "admin")
OFFICER = Principal("o", "county_officer", county="130921")


@pytest.mark.parametrize("principal", [CITY, ADMIN])
@pytest.mark.parametrize("asked", [None, "130921", "130922"])
def test_the_city_gets_what_it_asked_for(principal, asked):
    assert county_scope(principal, asked) == asked


@pytest.mark.parametrize("asked", [None, "130921"])
def test_a_county_officer_gets_its_own_county(asked):
    assert county_scope(OFFICER, asked) == "130921"


def test_a_county_officer_asking_for_another_county_is_refused():
    with pytest.raises(Forbidden) as err:
        county_scope(OFFICER, "130922")
    assert err.value.code == "AUTH_FORBIDDEN" and err.value.message == "无权访问其他县（市、区）的数据"


def test_an_enterprise_is_refused():
    with pytest.raises(Forbidden) as err:
        county_scope(Principal("e", "enterprise", uscc="91130900MA0CXXXX0X"), None)
    assert err.value.code == "AUTH_FORBIDDEN"
