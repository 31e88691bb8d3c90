"""ID numbers: encrypted at rest, matched by keyed hash, sealed for the city, shown masked.

docs/architecture.md, "Identity protection". Between services an ID number travels only
as `id_hmac` (city-wide
key, for matching) and `id_sealed` (to the city's public key; only the registry opens it).
Nothing here logs or puts plaintext into an exception message.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.errors import CqoError

MIN_HMAC_KEY_BYTES = 16


class PersonalDataError(CqoError):
    code = "PERSONAL_DATA_ERROR"
    status = 500


def normalize_id(number: str) -> str:
    """Spaces dropped, upper case (a resident ID's check character is `X`, never `x`)."""
    return "".join(str(number).split()).upper()


# --- at rest: Fernet, MultiFernet for rotation -----------------------------------------
def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


class IdCipher:
    """Encrypts ID numbers for storage. keys[0] encrypts; every key decrypts (rotation).

    Config: a list of Fernet keys, or one string with keys separated by commas.
    To rotate: put the new key first, run `rotate()` over the stored values, drop the old.
    """

    def __init__(self, keys):
        if isinstance(keys, (str, bytes)):
            keys = keys.decode() if isinstance(keys, bytes) else keys
            keys = [k.strip() for k in keys.split(",") if k.strip()]
        if not keys:
            raise ValueError("IdCipher needs at least one Fernet key")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError):
            raise ValueError("invalid Fernet key in IdCipher configuration") from None

    def encrypt(self, number: str) -> str:
        return self._fernet.encrypt(normalize_id(number).encode("utf-8")).decode("ascii")

    def encrypt_text(self, value: str) -> str:
        """Other personal data (a phone number, an e-mail address) as given: not
        normalised like an ID number, whose case and spaces carry no meaning."""
        return self._fernet.encrypt(str(value).encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, AttributeError):
            raise PersonalDataError("个人证件号码无法解密（密钥不匹配或数据已损坏）",
                                    code="ID_DECRYPT_FAILED") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt under the current (first) key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, AttributeError):
            raise PersonalDataError("个人证件号码无法解密（密钥不匹配或数据已损坏）",
                                    code="ID_DECRYPT_FAILED") from None


# --- matching: keyed hash ----------------------------------------------------------------
def id_hmac(key, id_type: str, number: str) -> str:
    """HMAC-SHA256 hex of "<id_type>:<normalised number>" under the city-wide key.

    The type is part of the message so a passport and a resident ID with the same
    characters never match.
    """
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if len(raw) < MIN_HMAC_KEY_BYTES:
        raise ValueError(f"id_hmac key must be at least {MIN_HMAC_KEY_BYTES} bytes")
    if not id_type:
        raise ValueError("id_type is required")
    message = f"{id_type.strip().lower()}:{normalize_id(number)}".encode("utf-8")
    return hmac.new(raw, message, hashlib.sha256).hexdigest()


# --- transport: sealed to the city's public key --------------------------------------------
# v1 = X25519 ephemeral-static ECDH, HKDF-SHA256, AES-256-GCM.
# Layout: "v1." + base64url(ephemeral public key 32 | nonce 12 | ciphertext+tag), no padding.
SEAL_PREFIX = "v1."
_SEAL_INFO = b"cqo-seal-v1"


class CityKeyPair(NamedTuple):
    private_pem: str
    public_pem: str


def generate_city_keypair() -> CityKeyPair:
    """A new X25519 key pair as PEM (PKCS#8 private, SubjectPublicKeyInfo public).
    The private PEM is unencrypted: keep it in the registry's secret store only."""
    private = X25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode("ascii")
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    return CityKeyPair(private_pem, public_pem)


def _pem(value) -> bytes:
    return value.encode("ascii") if isinstance(value, str) else bytes(value)


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    # both public keys go into the KDF so a key is bound to this exchange
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient,
                info=_SEAL_INFO).derive(shared)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=8)
def _public_key(pem: bytes) -> X25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, X25519PublicKey):
        raise ValueError("seal needs an X25519 public key")
    return key


@functools.lru_cache(maxsize=8)
def _private_key(pem: bytes) -> tuple[X25519PrivateKey, bytes]:
    # parsed once per key, not once per ID number (a batch unseals thousands)
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError("unseal needs an X25519 private key")
    return key, _raw_public(key.public_key())


def seal(public_key_pem, plaintext: str) -> str:
    recipient = _public_key(_pem(public_key_pem))
    ephemeral = X25519PrivateKey.generate()
    eph_raw, rec_raw = _raw_public(ephemeral.public_key()), _raw_public(recipient)
    key = _derive(ephemeral.exchange(recipient), eph_raw, rec_raw)
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), _SEAL_INFO)
    return SEAL_PREFIX + _b64(eph_raw + nonce + ciphertext)


def unseal(private_key_pem, sealed: str) -> str:
    private, recipient_raw = _private_key(_pem(private_key_pem))
    try:
        if not isinstance(sealed, str) or not sealed.startswith(SEAL_PREFIX):
            raise ValueError("version")
        blob = _unb64(sealed[len(SEAL_PREFIX):])
        if len(blob) < 32 + 12 + 16:
            raise ValueError("length")
        eph_raw, nonce, ciphertext = blob[:32], blob[32:44], blob[44:]
        ephemeral = X25519PublicKey.from_public_bytes(eph_raw)
        key = _derive(private.exchange(ephemeral), eph_raw, recipient_raw)
        return AESGCM(key).decrypt(nonce, ciphertext, _SEAL_INFO).decode("utf-8")
    except (ValueError, InvalidTag, UnicodeError):
        # bad version, base64, length, key, or tampering: one answer, no oracle details
        raise PersonalDataError("加密的个人信息无法解开（版本、密钥不匹配或数据已损坏）",
                                code="SEALED_INVALID", status=422) from None


# --- display -----------------------------------------------------------------------------
def mask_id(number: str | None) -> str:
    """18-character IDs show as `130921********123X` (first 6, last 4); shorter
    documents (passports, old permits) the first 2 and last 2; very short ones nothing."""
    if not number:
        return ""
    value = normalize_id(number)
    n = len(value)
    if n >= 15:
        return value[:6] + "*" * (n - 10) + value[-4:]
    if n >= 7:
        return value[:2] + "*" * (n - 4) + value[-2:]
    return "*" * n


def mask_phone(phone: str | None) -> str:
    """`138****8000`: a mobile number's first 3 and last 4 digits; a landline keeps its
    area code and last 2 (`0317-*****67`); short numbers nothing."""
    if not phone:
        return ""
    value = "".join(str(phone).split())
    if value.startswith("0") and "-" in value:
        area, _, rest = value.partition("-")
        number = rest.split("-")[0]  # an extension is not shown
        return f"{area}-" + "*" * max(len(number) - 2, 0) + number[-2:]
    if len(value) >= 7:
        return value[:3] + "*" * (len(value) - 7) + value[-4:]
    return "*" * len(value)


def mask_email(email: str | None) -> str:
    """`z***@example.cn`: the first character of the local part and the whole domain
    (where to write is not personal; who is)."""
    if not email:
        return ""
    local, at, domain = str(email).strip().rpartition("@")
    if not at:
        return "*" * min(len(domain), 8)
    return (local[:1] + "***" if local else "***") + "@" + domain
