"""`cqo topology` without a broker: plan, export and the secrets file (JSON or key
directory). Applying it is tests/integration/test_topology.py."""
import json
import stat

from typer.testing import CliRunner

from cqo.cli import app
from shared.messaging import sites

TWO = ["--county", "130921", "--county", "130922"]


def _run(*args):
    return CliRunner().invoke(app, ["topology", *args], env={"COLUMNS": "200"})


def test_plan_shows_sites_users_shovels_and_the_trust_map_without_passwords():
    result = _run("plan", *TWO)
    assert result.exit_code == 0, result.output
    for text in ("cqo-city", "cqo-130921", "cqo_shovel", "impersonator", "cqo-filings-130921",
                 "县区→市级", "市级→县区", "amqp://cqo_shovel:******@127.0.0.1:5672/cqo-city",
                 '''COUNTY_BROKER_USERS='{"cqo_130921": "130921", "cqo_130922": "130922"}\''''):
        assert text in result.output, text


def test_export_generates_missing_passwords_into_a_json_file_and_shows_none(tmp_path):
    secrets = tmp_path / "broker.json"
    result = _run("export", "--secrets", str(secrets), *TWO)
    assert result.exit_code == 0, result.output
    passwords = json.loads(secrets.read_text(encoding="utf-8"))
    assert set(passwords) == {"cqo_city", "cqo_130921", "cqo_130922", "cqo_shovel"}
    assert all(len(p) >= 40 for p in passwords.values())
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert not any(p in result.output for p in passwords.values())
    document = json.loads(result.stdout)  # the generation notice went to stderr
    assert "已为 4 个消息队列用户生成密码" in result.stderr
    users = {u["name"]: u for u in document["users"]}
    assert sites.password_matches(passwords["cqo_130921"], users["cqo_130921"]["password_hash"])
    # the same passwords next time
    assert _run("export", "--secrets", str(secrets), *TWO).exit_code == 0
    assert json.loads(secrets.read_text(encoding="utf-8")) == passwords


def test_a_key_directory_holds_one_file_per_user(tmp_path):
    keys = tmp_path / "secrets"
    (keys).mkdir()
    (keys / "broker_password.cqo_city").write_text("kept-password-0123456789\n", encoding="utf-8")
    out = tmp_path / "definitions.json"
    result = _run("export", "--secrets", str(keys), "--include-secrets", "--out", str(out), *TWO)
    assert result.exit_code == 0, result.output
    files = {p.name: p for p in keys.iterdir()}
    assert set(files) == {"broker_password.cqo_city", "broker_password.cqo_130921",
                          "broker_password.cqo_130922", "broker_password.cqo_shovel"}
    assert files["broker_password.cqo_city"].read_text(encoding="utf-8") == "kept-password-0123456789\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    shovel_password = files["broker_password.cqo_shovel"].read_text(encoding="utf-8")
    document = json.loads(out.read_text(encoding="utf-8"))
    assert all(shovel_password in p["value"]["src-uri"] for p in document["parameters"])


def test_bad_input_gets_a_code_and_a_chinese_message(tmp_path):
    result = _run("plan", "--county", "130921", "--prefix", "Bad-Prefix")
    assert result.exit_code == 2 and "[TOPOLOGY_INVALID] 前缀" in result.output
    result = _run("export", "--secrets", str(tmp_path / "s.json"), "--include-secrets", *TWO)
    assert result.exit_code == 2 and "[SECRETS_ON_SCREEN]" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    result = _run("export", "--secrets", str(bad), *TWO)
    assert result.exit_code == 2 and "[SECRETS_INVALID]" in result.output


def test_another_jurisdiction_from_jurisdiction_csv_as_the_services_read_it(tmp_path):
    """A deployment with JURISDICTION_CSV (the services' setting) lays out its own
    counties; one outside it is refused, as a county outside Cangzhou's is by default."""
    divisions = tmp_path / "divisions.csv"
    divisions.write_text("code,name,kind\n110101,测试县一,official\n110102,测试县二,functional\n"
                         "110103,测试区,exception\n", encoding="utf-8")
    env = {"COLUMNS": "200", "JURISDICTION_CSV": str(divisions)}
    result = CliRunner().invoke(app, ["topology", "plan"], env=env)
    assert result.exit_code == 0, result.output
    assert "cqo-110101" in result.output and "cqo-110102" in result.output
    assert "cqo-110103" not in result.output and "cqo-130921" not in result.output
    result = CliRunner().invoke(app, ["topology", "plan", "--county", "130921"], env=env)
    assert result.exit_code == 2 and "不是本辖区的县级区划代码" in result.output
    env["JURISDICTION_CSV"] = str(tmp_path / "missing.csv")
    result = CliRunner().invoke(app, ["topology", "plan"], env=env)
    assert result.exit_code == 2 and "[JURISDICTION_INVALID]" in result.output
