"""Key material of a service, from its config.

Config keys (values are the key itself, or `@/path/to/file`):
- AUTH_SECRET: HS256 secret of the bearer tokens (every service; environment variable
  CQO_AUTH_SECRET, also read by `cqo token`). There is no built-in default: a published
  default would let anyone sign tokens for a service started without one.
- ID_HMAC_KEY: city-wide key of `id_hmac` (counties and the registry).
- ID_ENCRYPTION_KEYS: Fernet key(s) of this instance's ID numbers at rest.
- CITY_PUBLIC_KEY (counties) / CITY_PRIVATE_KEY (registry): X25519 PEM for `id_sealed`.

With DEV_KEYS_DIR set (the default configs set it to var/keys), missing keys are
generated once into that folder and shared by every process started from the same
directory: the demo and a developer's stack work without a secret store. Production
configs leave DEV_KEYS_DIR empty, so a missing key is an error at start. Generated files
are readable by their owner only (0600) and appear atomically, whole.
"""
from __future__ import annotations

import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.personal_data import IdCipher

log = logging.getLogger(__name__)

AUTH_SECRET_ENV = "CQO_AUTH_SECRET"
# config key -> the environment variable that sets it (the services' config.yaml)
ENV_OF = {"AUTH_SECRET": AUTH_SECRET_ENV}
DEFAULT_DEV_KEYS_DIR = "var/keys"


class MissingKey(RuntimeError):
    """A key that is neither configured nor may be generated (DEV_KEYS_DIR empty).
    str() is the English log line; `message` is the Chinese one for the operator."""

    def __init__(self, name: str):
        self.name, self.env = name, ENV_OF.get(name, name)
        super().__init__(f"{self.env} is not set and DEV_KEYS_DIR is empty (production): "
                         f"set {self.env} (config key {name}), or DEV_KEYS_DIR to generate "
                         "development keys")
        self.message = (f"未设置 {self.env}，且 DEV_KEYS_DIR 为空（生产环境不生成开发密钥）。"
                        f"请设置 {self.env}，或在开发环境中设置 DEV_KEYS_DIR")


class WeakKey(RuntimeError):
    def __init__(self, env: str, min_bytes: int):
        super().__init__(f"{env} is too short: at least {min_bytes} bytes")
        self.message = f"{env} 太短，至少需要 {min_bytes} 个字节"


def _read(value) -> str | None:
    if value and str(value).startswith("@"):
        return Path(str(value)[1:]).read_text(encoding="utf-8")
    return str(value) if value else None  # a YAML plain scalar may have been typed


def _dev_file(dev_dir: Path, name: str, make) -> str:
    path = dev_dir / name
    if not path.exists():
        dev_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dev_dir, prefix=f".{name}.", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(make())
            os.link(tmp, path)  # atomic: two processes starting together agree on one key
            log.warning("generated development key %s", path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text(encoding="utf-8")


def write_private(path: Path, text: str) -> None:
    """Owner-only (0600), and replaced whole: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _generate(name: str) -> str:
    if name == "AUTH_SECRET":
        return secrets.token_urlsafe(48)  # 48 random bytes, 64 characters
    from shared.personal_data import generate_key

    return generate_key()


def public_pem_of(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


@dataclass
class Keys:
    config: dict

    def get(self, name: str) -> str:
        value = _read(self.config.get(name))
        if value:
            return value.strip() if not value.lstrip().startswith("-----") else value
        dev_dir = self.config.get("DEV_KEYS_DIR")
        if not dev_dir:
            raise MissingKey(name)
        dev_dir = Path(dev_dir)
        if name == "CITY_PUBLIC_KEY":
            return public_pem_of(self.get("CITY_PRIVATE_KEY"))
        if name == "CITY_PRIVATE_KEY":
            from shared.personal_data import generate_city_keypair

            return _dev_file(dev_dir, "city_private_key.pem",
                             lambda: generate_city_keypair().private_pem)
        return _dev_file(dev_dir, name.lower(), lambda: _generate(name)).strip()

    def auth_secret(self) -> str:
        """The token secret: configured, or generated into DEV_KEYS_DIR; too short or
        missing in production raises (the service must not start)."""
        from shared.auth import MIN_SECRET_BYTES

        secret = self.get("AUTH_SECRET")
        if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise WeakKey(AUTH_SECRET_ENV, MIN_SECRET_BYTES)
        return secret

    def id_cipher(self) -> IdCipher:
        from shared.personal_data import IdCipher

        return IdCipher(self.get("ID_ENCRYPTION_KEYS"))
