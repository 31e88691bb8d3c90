import logging

import pytest

from shared.personal_data import (IdCipher, PersonalDataError, SEAL_PREFIX,
                                  generate_city_keypair, generate_key, id_hmac, mask_id,
                                  normalize_id, seal, unseal)

ID = "13092119800101123x"
HMAC_KEY = "city-wide-hmac-key-0123456789"


def test_cipher_roundtrip_normalises_and_is_randomised():
    cipher = IdCipher([generate_key()])
    a, b = cipher.encrypt(ID), cipher.encrypt(ID)
    assert a != b and ID.upper() not in a
    assert cipher.decrypt(a) == "13092119800101123X"


def test_cipher_key_rotation():
    old, new = generate_key(), generate_key()
    stored = IdCipher(old).encrypt(ID)
    rotating = IdCipher(f"{new}, {old}")  # comma-separated config string
    assert rotating.decrypt(stored) == ID.upper()
    rotated = rotating.rotate(stored)
    assert IdCipher([new]).decrypt(rotated) == ID.upper()
    with pytest.raises(PersonalDataError) as err:
        IdCipher([new]).decrypt(stored)
    assert err.value.code == "ID_DECRYPT_FAILED" and ID.upper() not in str(err.value)


def test_cipher_rejects_garbage_and_bad_keys():
    cipher = IdCipher(generate_key())
    with pytest.raises(PersonalDataError):
        cipher.decrypt("not-a-token")
    with pytest.raises(ValueError):
        IdCipher([])
    with pytest.raises(ValueError):
        IdCipher(["not-a-fernet-key"])


def test_id_hmac_is_stable_keyed_and_typed():
    h = id_hmac(HMAC_KEY, "resident", ID)
    assert len(h) == 64 and int(h, 16) >= 0
    assert h == id_hmac(HMAC_KEY.encode(), "RESIDENT", " 13092119800101123X ")
    assert h != id_hmac(HMAC_KEY + "x", "resident", ID)
    assert h != id_hmac(HMAC_KEY, "passport", ID)
    with pytest.raises(ValueError):
        id_hmac("short", "resident", ID)
    with pytest.raises(ValueError):
        id_hmac(HMAC_KEY, "", ID)


def test_seal_roundtrip():
    keys = generate_city_keypair()
    assert keys.private_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert keys.public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    sealed = seal(keys.public_pem, ID)
    assert sealed.startswith(SEAL_PREFIX) and "=" not in sealed and ID not in sealed
    assert seal(keys.public_pem, ID) != sealed  # fresh ephemeral key and nonce
    assert unseal(keys.private_pem, sealed) == ID
    assert unseal(keys.private_pem.encode(), sealed) == ID  # PEM as bytes too
    assert unseal(keys.private_pem, seal(keys.public_pem, "护照 E12345678")) == "护照 E12345678"


@pytest.mark.parametrize("mangle", [
    lambda s: s[:-4] + ("AAAA" if not s.endswith("AAAA") else "BBBB"),  # tag
    lambda s: "v2." + s[3:],
    lambda s: SEAL_PREFIX + "!!!",
    lambda s: SEAL_PREFIX + "AAAA",
    lambda s: s[:10] + ("A" if s[10] != "A" else "B") + s[11:],  # ephemeral key
    lambda s: None,
])
def test_unseal_rejects_tampering(mangle):
    keys = generate_city_keypair()
    with pytest.raises(PersonalDataError) as err:
        unseal(keys.private_pem, mangle(seal(keys.public_pem, ID)))
    assert err.value.code == "SEALED_INVALID" and ID not in str(err.value)


def test_unseal_with_another_key_fails():
    sealed = seal(generate_city_keypair().public_pem, ID)
    with pytest.raises(PersonalDataError):
        unseal(generate_city_keypair().private_pem, sealed)


@pytest.mark.parametrize("number,masked", [
    ("13092119800101123X", "130921********123X"),
    ("13092119800101123x", "130921********123X"),
    ("130921800101123", "130921*****1123"),   # old 15-digit ID
    ("E12345678", "E1*****78"),                # passport
    ("H1234567", "H1****67"),
    ("AB1234", "******"),
    ("", ""),
    (None, ""),
])
def test_mask_id(number, masked):
    assert mask_id(number) == masked


def test_normalize_id():
    assert normalize_id(" 1309 2119800101123x ") == "13092119800101123X"


def test_nothing_logged(caplog):
    caplog.set_level(logging.DEBUG)
    keys = generate_city_keypair()
    cipher = IdCipher(generate_key())
    cipher.decrypt(cipher.encrypt(ID))
    unseal(keys.private_pem, seal(keys.public_pem, ID))
    id_hmac(HMAC_KEY, "resident", ID)
    assert ID not in caplog.text and ID.upper() not in caplog.text
