"""Key material of a service, from its config.

Config keys (values are the key itself, or `@/path/to/file`):
- AUTH_SECRET: HS256 secret of the bearer tokens (every service).
- ID_HMAC_KEY: city-wide key of `id_hmac` (counties and the registry).
- ID_ENCRYPTION_KEYS: Fernet key(s) of this instance's ID numbers at rest.
- CITY_PUBLIC_KEY (counties) / CITY_PRIVATE_KEY (registry): X25519 PEM for `id_sealed`.

With DEV_KEYS_DIR set (the default configs set it to var/keys), missing keys are
generated once into that folder and shared by every process started from the same
directory: the demo and a developer's stack work without a secret store. Production
configs leave DEV_KEYS_DIR empty, so a missing key is an error at start.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from shared.personal_data import IdCipher, generate_city_keypair, generate_key

log = logging.getLogger(__name__)


class MissingKey(RuntimeError):
    pass


def _read(value: str | None) -> str | None:
    if value and str(value).startswith("@"):
        return Path(str(value)[1:]).read_text(encoding="utf-8")
    return value or None


def _dev_file(dev_dir: Path, name: str, make) -> str:
    path = dev_dir / name
    if not path.exists():
        dev_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(make(), encoding="utf-8")
        try:
            os.link(tmp, path)  # atomic: two processes starting together agree on one key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        log.warning("generated development key %s", path)
    return path.read_text(encoding="utf-8")


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
            raise MissingKey(f"configuration key {name} is required")
        dev_dir = Path(dev_dir)
        if name == "CITY_PUBLIC_KEY":
            return public_pem_of(self.get("CITY_PRIVATE_KEY"))
        if name == "CITY_PRIVATE_KEY":
            return _dev_file(dev_dir, "city_private_key.pem",
                             lambda: generate_city_keypair().private_pem)
        return _dev_file(dev_dir, name.lower(), generate_key).strip()

    def id_cipher(self) -> IdCipher:
        return IdCipher(self.get("ID_ENCRYPTION_KEYS"))
