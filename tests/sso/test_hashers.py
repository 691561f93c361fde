"""Passwords: Argon2id at OWASP's parameters, PBKDF2 kept only to verify and upgrade."""

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import (
    Argon2PasswordHasher,
    MD5PasswordHasher,
    PBKDF2PasswordHasher,
    check_password,
    identify_hasher,
    make_password,
)
from django.test import override_settings

import incidencias.settings as production
from sso.models import Usuario

PRODUCTION_HASHERS = [
    "sso.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
PASSWORD = "caballo-correcto-batería-grapa"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("production_hashers")]


@pytest.fixture
def production_hashers():
    with override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS):
        yield


def argon2_params(encoded):
    """{'variant': 'argon2id', 'v': '19', 'm': '19456', 't': '2', 'p': '1'} from a hash."""
    algorithm, variant, version, params, salt, digest = encoded.split("$")
    assert algorithm == "argon2"
    assert salt
    assert digest
    return {"variant": variant, **dict([version.split("=")])} | dict(
        item.split("=") for item in params.split(",")
    )


def test_it_is_what_production_configures():
    assert production.PASSWORD_HASHERS == PRODUCTION_HASHERS


def test_it_hashes_new_passwords_with_argon2id_at_owasp_parameters():
    encoded = make_password(PASSWORD)
    assert encoded.startswith("argon2$argon2id$")
    assert argon2_params(encoded) == {
        "variant": "argon2id",
        "v": "19",
        "m": "19456",
        "t": "2",
        "p": "1",
    }
    assert PASSWORD not in encoded
    assert check_password(PASSWORD, encoded)
    assert not check_password(PASSWORD + "x", encoded)


def test_it_salts_every_hash():
    assert make_password(PASSWORD) != make_password(PASSWORD)


def test_it_hashes_a_users_new_password_with_argon2id():
    user = Usuario.objects.create_user(username="nuevo", password=PASSWORD)
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert user.check_password(PASSWORD)


def old_pbkdf2_user():
    # A hash from an older deployment: PBKDF2, fewer iterations than today's default.
    encoded = PBKDF2PasswordHasher().encode(PASSWORD, "oldsalt1234567", iterations=260000)
    user = Usuario.objects.create_user(username="antiguo")
    Usuario.objects.filter(pk=user.pk).update(password=encoded)
    user.refresh_from_db()
    return user, encoded


def test_it_verifies_and_upgrades_an_old_pbkdf2_hash():
    user, encoded = old_pbkdf2_user()
    assert user.check_password(PASSWORD)
    user.refresh_from_db()
    assert user.password != encoded
    assert argon2_params(user.password)["variant"] == "argon2id"
    assert argon2_params(user.password)["m"] == "19456"
    assert user.check_password(PASSWORD)


def test_it_keeps_the_old_hash_after_a_wrong_password():
    user, encoded = old_pbkdf2_user()
    assert not user.check_password("otra-contraseña")
    user.refresh_from_db()
    assert user.password == encoded


def test_it_logs_in_with_an_old_hash_and_upgrades_it():
    user, encoded = old_pbkdf2_user()
    assert authenticate(username="antiguo", password=PASSWORD) == user
    user.refresh_from_db()
    assert user.password != encoded
    assert user.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert authenticate(username="antiguo", password=PASSWORD) == user
    assert authenticate(username="antiguo", password="otra") is None


def test_it_upgrades_an_argon2_hash_made_with_other_parameters():
    # Django's own Argon2 defaults (m=102400, p=8) are not OWASP's: rehash on the next login.
    encoded = Argon2PasswordHasher().encode(PASSWORD, Argon2PasswordHasher().salt())
    assert argon2_params(encoded)["m"] != "19456"
    user = Usuario.objects.create_user(username="argon")
    Usuario.objects.filter(pk=user.pk).update(password=encoded)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")


def test_it_refuses_a_hash_from_a_hasher_not_in_the_list():
    encoded = MD5PasswordHasher().encode(PASSWORD, "sal")
    with pytest.raises(ValueError):
        identify_hasher(encoded)
    assert not check_password(PASSWORD, encoded)
