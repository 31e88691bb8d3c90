from datetime import timedelta
from types import SimpleNamespace

import jwt
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from shared.auth import (Principal, decode_token, issue_token, requires,
                         validate_scope)
from shared.errors import Forbidden, Unauthorized, ValidationFailed

SECRET = "unit-test-secret-0123456789abcdef0123"
USCC = "91130900MA0CXXXX0X"


def test_issue_and_decode_roundtrip():
    token = issue_token(SECRET, "county_officer", county="130921", subject="alice")
    p = decode_token(SECRET, token)
    assert p == Principal(subject="alice", role="county_officer", uscc=None, county="130921")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="cqo")
    assert claims["iss"] == "cqo" and claims["exp"] - claims["iat"] == 8 * 3600


def test_enterprise_and_default_subject():
    p = decode_token(SECRET, issue_token(SECRET, "enterprise", uscc=USCC))
    assert (p.role, p.uscc, p.subject) == ("enterprise", USCC, f"enterprise:{USCC}")


def test_county_code_may_be_an_int_but_is_a_string_claim():
    assert decode_token(SECRET, issue_token(SECRET, "county_officer", county=130921)).county == "130921"


@pytest.mark.parametrize("role,kw,field", [
    ("nobody", {}, "role"),
    ("enterprise", {}, "uscc"),
    ("county_officer", {}, "county"),
    ("county_officer", {"county": "13092"}, "county"),
    ("city_officer", {"county": "130921"}, "county"),
    ("admin", {"uscc": USCC}, "uscc"),
    ("enterprise", {"uscc": "too-short"}, "uscc"),
])
def test_bad_role_claim_combinations(role, kw, field):
    with pytest.raises(ValidationFailed) as err:
        issue_token(SECRET, role, **kw)
    assert err.value.field == field and err.value.status == 422


EXPERT_ID = "0b7f2c1e-4d3a-4f6b-9c8d-1a2b3c4d5e6f"


def test_an_expert_token_carries_its_expert_id():
    p = decode_token(SECRET, issue_token(SECRET, "expert", expert_id=EXPERT_ID))
    assert (p.role, p.expert_id, p.subject, p.uscc, p.county) == ("expert", EXPERT_ID, f"expert:{EXPERT_ID}",
                                                                  None, None)


@pytest.mark.parametrize("role,kw,field", [
    ("expert", {}, "expert_id"),
    ("expert", {"expert_id": "e-1"}, "expert_id"),
    ("expert", {"expert_id": EXPERT_ID, "county": "130921"}, "county"),
    ("admin", {"expert_id": EXPERT_ID}, "expert_id"),
])
def test_bad_expert_claim_combinations(role, kw, field):
    with pytest.raises(ValidationFailed) as err:
        issue_token(SECRET, role, **kw)
    assert err.value.field == field


def test_an_expert_passes_only_where_named():
    token = f"Bearer {issue_token(SECRET, 'expert', expert_id=EXPERT_ID)}"
    svc = SimpleNamespace(config={"AUTH_SECRET": SECRET})
    for guard in (requires(), requires("enterprise", "county_officer", "city_officer", "admin")):
        with pytest.raises(Forbidden):
            guard(lambda self, request: request.principal)(svc, _request(token))
    assert requires("expert")(lambda self, request: request.principal)(svc, _request(token)).expert_id == EXPERT_ID


def test_enterprise_may_carry_its_county():
    validate_scope("enterprise", USCC, "130921")


def test_short_secret_is_refused():
    with pytest.raises(ValueError):
        issue_token("short", "admin")


def test_expired_token():
    token = issue_token(SECRET, "admin", ttl=timedelta(minutes=-5))
    with pytest.raises(Unauthorized) as err:
        decode_token(SECRET, token)
    assert (err.value.code, err.value.status) == ("AUTH_EXPIRED", 401)
    assert "过期" in err.value.message


def test_small_clock_skew_is_tolerated():
    decode_token(SECRET, issue_token(SECRET, "admin", ttl=timedelta(seconds=-5)))


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),
    lambda t: "not.a.token",
    lambda t: "",
    lambda t: issue_token("other-secret-0123456789abcdef012345", "admin"),
    lambda t: jwt.encode({"sub": "x", "role": "admin", "iss": "cqo", "iat": 0,
                          "exp": 2**40}, None, algorithm="none"),
    lambda t: jwt.encode({"sub": "x", "role": "admin", "iss": "evil", "iat": 0,
                          "exp": 2**40}, SECRET, algorithm="HS256"),
    lambda t: jwt.encode({"sub": "x", "role": "root", "iss": "cqo", "iat": 0,
                          "exp": 2**40}, SECRET, algorithm="HS256"),
    lambda t: jwt.encode({"sub": "x", "role": "enterprise", "iss": "cqo", "iat": 0,
                          "exp": 2**40}, SECRET, algorithm="HS256"),  # no uscc
    lambda t: jwt.encode({"role": "admin", "iss": "cqo", "iat": 0, "exp": 2**40},
                         SECRET, algorithm="HS256"),  # no sub
])
def test_tampered_or_malformed_tokens(mangle):
    bad = mangle(issue_token(SECRET, "admin"))
    with pytest.raises(Unauthorized) as err:
        decode_token(SECRET, bad)
    assert err.value.code == "AUTH_INVALID"


def test_principal_scopes():
    city = Principal("c", "city_officer")
    admin = Principal("a", "admin")
    county = Principal("k", "county_officer", county="130921")
    ent = Principal("e", "enterprise", uscc=USCC, county="130921")
    for p in (city, admin):
        assert p.can_access_county("130922") and p.can_access_enterprise("X", "130922")
    assert county.can_access_county("130921") and county.can_access_county(130921)
    assert not county.can_access_county("130922")
    assert county.can_access_enterprise(USCC, "130921")
    assert not county.can_access_enterprise(USCC, "130922")
    assert not county.can_access_enterprise(USCC)
    assert ent.can_access_enterprise(USCC) and ent.can_access_enterprise(USCC, "130922")
    assert not ent.can_access_enterprise("91130900MA0CYYYY0Y")
    assert not ent.can_access_county("130921")
    with pytest.raises(Forbidden) as err:
        county.require_county("130922")
    assert (err.value.code, err.value.status) == ("AUTH_FORBIDDEN", 403)
    with pytest.raises(Forbidden):
        ent.require_enterprise("91130900MA0CYYYY0Y")
    with pytest.raises(Forbidden):
        ent.require_role("admin")
    county.require_county("130921")


# --- the decorator, without a running service ----------------------------------------
class FakeService:
    config = {"AUTH_SECRET": SECRET}

    @requires("county_officer")
    def handler(self, request, county):
        return request.principal, county


def _request(authorization=None):
    headers = {"Authorization": authorization} if authorization else {}
    return Request(EnvironBuilder(path="/x", headers=headers).get_environ())


def test_requires_puts_principal_on_request():
    token = issue_token(SECRET, "county_officer", county="130921")
    principal, county = FakeService().handler(_request(f"Bearer {token}"), county="130921")
    assert principal.county == "130921" and county == "130921"


@pytest.mark.parametrize("header,code", [
    (None, "AUTH_MISSING"), ("   ", "AUTH_MISSING"), ("Bearer", "AUTH_INVALID"),
    ("Token abc", "AUTH_INVALID"), ("Bearer abc", "AUTH_INVALID"),
])
def test_requires_rejects(header, code):
    with pytest.raises(Unauthorized) as err:
        FakeService().handler(_request(header), county="130921")
    assert err.value.code == code


def test_requires_wrong_role_is_403():
    token = issue_token(SECRET, "enterprise", uscc=USCC)
    with pytest.raises(Forbidden) as err:
        FakeService().handler(_request(f"Bearer {token}"), county="130921")
    assert err.value.code == "AUTH_FORBIDDEN"


def test_requires_fails_closed_without_secret():
    svc = FakeService()
    svc.config = {}
    token = issue_token(SECRET, "county_officer", county="130921")
    with pytest.raises(ValueError):
        svc.handler(_request(f"Bearer {token}"), county="130921")
    with pytest.raises(RuntimeError):
        requires()(lambda self, request: None)(SimpleNamespace(), _request("Bearer x"))


def test_requires_rejects_unknown_roles_at_import_time():
    with pytest.raises(ValueError):
        requires("superuser")


def test_requires_keeps_nameko_entrypoint_registration():
    from shared.http import http

    class Svc:
        name = "svc"

        @http("GET", "/a")
        @requires("admin")
        def inner(self, request):
            pass

        @requires("admin")
        @http("GET", "/b")
        def outer(self, request):
            pass

    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR as ATTR
    assert [e.url for e in getattr(Svc.inner, ATTR)] == ["/a"]
    assert [e.url for e in getattr(Svc.outer, ATTR)] == ["/b"]
    assert Svc.outer.__requires_roles__ == ("admin",)


# --- `cqo token` -------------------------------------------------------------------------
def _cli(monkeypatch, args, secret=SECRET, keys_dir=None):
    import typer
    from typer.testing import CliRunner

    from cqo.cli_token import token

    if secret is None:
        monkeypatch.delenv("CQO_AUTH_SECRET", raising=False)
    else:
        monkeypatch.setenv("CQO_AUTH_SECRET", secret)
    if keys_dir is not None:
        monkeypatch.setenv("DEV_KEYS_DIR", str(keys_dir))
    app = typer.Typer()
    app.command("token")(token)
    app.command("noop")(lambda: None)  # keeps `token` a sub-command, as in cqo.cli
    return CliRunner().invoke(app, ["token", *args])


def test_cli_token_prints_a_valid_token(monkeypatch):
    from shared.validators import make_uscc
    uscc = make_uscc()
    result = _cli(monkeypatch, ["--role", "enterprise", "--uscc", uscc, "--ttl", "30m",
                                "--subject", "clerk"])
    assert result.exit_code == 0, result.output
    p = decode_token(SECRET, result.output.strip().splitlines()[-1])
    assert (p.role, p.uscc, p.subject) == ("enterprise", uscc, "clerk")


def test_cli_token_for_an_expert(monkeypatch):
    result = _cli(monkeypatch, ["--role", "expert", "--expert", EXPERT_ID])
    assert result.exit_code == 0, result.output
    assert decode_token(SECRET, result.output.strip().splitlines()[-1]).expert_id == EXPERT_ID
    refused = _cli(monkeypatch, ["--role", "expert"])
    assert refused.exit_code == 1 and "专家编号" in refused.output


# the development secret the code once fell back to (defect 8): published, so never valid
PUBLISHED_SECRET = "cqo-development-secret-change-me-0123456789"


def test_cli_token_without_a_secret_uses_the_keys_folder(monkeypatch, tmp_path):
    from shared.keys import Keys

    keys = tmp_path / "keys"
    result = _cli(monkeypatch, ["--role", "admin"], secret=None, keys_dir=keys)
    assert result.exit_code == 0, result.output
    assert "CQO_AUTH_SECRET" in result.output and str(keys) in result.output
    token = result.output.strip().splitlines()[-1]
    # the secret a service started with DEV_KEYS_DIR=keys reads: the same file
    service_secret = Keys({"AUTH_SECRET": "", "DEV_KEYS_DIR": str(keys)}).auth_secret()
    assert decode_token(service_secret, token).role == "admin"
    with pytest.raises(Unauthorized):
        decode_token(PUBLISHED_SECRET, token)
    # --keys-dir wins over DEV_KEYS_DIR
    other = tmp_path / "other"
    result = _cli(monkeypatch, ["--role", "admin", "--keys-dir", str(other)], secret=None,
                  keys_dir=keys)
    assert result.exit_code == 0, result.output
    with pytest.raises(Unauthorized):
        decode_token(service_secret, result.output.strip().splitlines()[-1])
    assert (other / "auth_secret").read_text() != service_secret


def test_cli_token_refuses_without_secret_in_production(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = _cli(monkeypatch, ["--role", "admin"], secret=None, keys_dir="")
    assert result.exit_code == 1
    assert "CQO_AUTH_SECRET" in result.output and "DEV_KEYS_DIR" in result.output
    assert not (tmp_path / "var").exists()  # nothing generated


def test_cli_token_refuses_a_short_secret(monkeypatch):
    result = _cli(monkeypatch, ["--role", "admin"], secret="too-short")
    assert result.exit_code == 1 and "32" in result.output


@pytest.mark.parametrize("args,fragment", [
    (["--role", "county_officer"], "县（市、区）代码"),
    (["--role", "enterprise", "--uscc", "91130921MA0XXXXX7A"], "校验码"),
    (["--role", "admin", "--county", "130921"], "不绑定"),
    (["--role", "boss"], "角色无效"),
    (["--role", "admin", "--ttl", "8x"], "有效期"),
])
def test_cli_token_rejects_bad_combinations(monkeypatch, args, fragment):
    result = _cli(monkeypatch, args)
    assert result.exit_code == 1 and fragment in result.output


def test_parse_ttl():
    from cqo.cli_token import parse_ttl
    assert parse_ttl("8h") == timedelta(hours=8) and parse_ttl("30m") == timedelta(minutes=30)
    assert parse_ttl("2d") == timedelta(days=2) and parse_ttl("12") == timedelta(hours=12)


def test_a_cached_token_still_expires(monkeypatch):
    """Verified tokens are remembered, but never past their expiry."""
    import time
    from datetime import timedelta

    import shared.auth as auth

    monkeypatch.setattr(auth, "LEEWAY", timedelta(0))
    secret = "cache-test-secret-0123456789-abcdefghij"
    token = auth.issue_token(secret, "city_officer", ttl=timedelta(seconds=1))
    assert auth.decode_token(secret, token).role == "city_officer"
    assert auth.decode_token(secret, token).role == "city_officer"  # from the cache
    time.sleep(1.1)
    with pytest.raises(auth.Unauthorized) as caught:
        auth.decode_token(secret, token)
    assert caught.value.code == "AUTH_EXPIRED"


def test_a_cached_token_is_bound_to_its_secret():
    import shared.auth as auth

    token = auth.issue_token("first-secret-0123456789-abcdefghijklmn", "admin")
    assert auth.decode_token("first-secret-0123456789-abcdefghijklmn", token).role == "admin"
    with pytest.raises(auth.Unauthorized):
        auth.decode_token("other-secret-0123456789-abcdefghijklmn", token)
