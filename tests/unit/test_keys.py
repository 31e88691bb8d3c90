"""Development keys (shared.keys): generated once per keys folder, owner-only, atomically,
so every process started from the same folder agrees; none generated in production."""
from __future__ import annotations

import multiprocessing
import stat

import pytest

from shared.auth import MIN_SECRET_BYTES
from shared.keys import Keys, MissingKey, WeakKey


def _secret_in(keys_dir: str, barrier, results) -> None:
    barrier.wait(timeout=30)  # every process reaches the empty folder at the same moment
    results.put(Keys({"AUTH_SECRET": "", "DEV_KEYS_DIR": keys_dir}).auth_secret())


def _race(keys_dir: str, processes: int) -> list[str]:
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_secret_in, args=(keys_dir, barrier, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    try:
        return [results.get(timeout=60) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()


def test_generated_secret_is_random_private_and_shared(tmp_path):
    keys_dir = tmp_path / "keys"
    secrets = _race(str(keys_dir), 8)
    assert len(set(secrets)) == 1, "processes starting together must agree on one secret"
    secret = secrets[0]
    assert len(secret.encode()) >= MIN_SECRET_BYTES * 2  # 48 random bytes, URL-safe base64
    path = keys_dir / "auth_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    assert [p.name for p in keys_dir.iterdir()] == ["auth_secret"]  # no temporary left over
    # another folder, another secret: nothing fixed in the code
    assert Keys({"DEV_KEYS_DIR": str(tmp_path / "other")}).auth_secret() != secret


def test_other_generated_keys_are_private_too(tmp_path):
    keys = Keys({"DEV_KEYS_DIR": str(tmp_path)})
    keys.get("ID_HMAC_KEY"), keys.get("CITY_PRIVATE_KEY")
    for name in ("id_hmac_key", "city_private_key.pem"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_configured_secret_wins(tmp_path):
    secret = "s" * 40
    assert Keys({"AUTH_SECRET": secret, "DEV_KEYS_DIR": str(tmp_path)}).auth_secret() == secret
    assert not (tmp_path / "auth_secret").exists()
    file = tmp_path / "secret.txt"
    file.write_text(secret + "\n")
    assert Keys({"AUTH_SECRET": f"@{file}", "DEV_KEYS_DIR": ""}).auth_secret() == secret


def test_production_without_a_secret_names_the_setting():
    with pytest.raises(MissingKey) as err:
        Keys({"AUTH_SECRET": "", "DEV_KEYS_DIR": ""}).auth_secret()
    assert "CQO_AUTH_SECRET" in str(err.value) and "DEV_KEYS_DIR" in str(err.value)
    assert "CQO_AUTH_SECRET" in err.value.message


def test_short_secret_is_refused():
    with pytest.raises(WeakKey):
        Keys({"AUTH_SECRET": "short", "DEV_KEYS_DIR": ""}).auth_secret()
