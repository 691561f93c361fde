"""The encrypted field: format, authenticated binding, lookups, masking, fixtures, rotation."""

import base64
import json
import logging
import signal
import sys
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.exceptions import FieldError, ImproperlyConfigured, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.serializers.base import DeserializationError
from django.db import connection, transaction
from django.test import override_settings
from django.views.debug import ExceptionReporter

from sso import crypto
from sso.crypto import DecryptionError
from sso.fields import Secreto, reencrypt_all
from tests.cifrado_app.models import Caja

pytestmark = pytest.mark.django_db

SECRET = "contraseña-del-buzón-Ω-7f3a"
OTHER = "otro-secreto-9c1e"


def raw(pk, column="secreto"):
    """The stored value, read past the ORM."""
    table = connection.ops.quote_name(Caja._meta.db_table)
    col = connection.ops.quote_name(column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {col} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def write_raw(pk, value, column="secreto"):
    table = connection.ops.quote_name(Caja._meta.db_table)
    col = connection.ops.quote_name(column)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {col} = %s WHERE id = %s", [value, pk])  # noqa: S608
        assert cursor.rowcount == 1


def flip_byte(token, index):
    """The same token with one bit of one byte of the sealed payload changed."""
    version, key_id, encoded = token.split(":", 2)
    payload = bytearray(base64.b64decode(encoded))
    payload[index] ^= 0x01
    return f"{version}:{key_id}:{base64.b64encode(bytes(payload)).decode()}"


def last_word(text):
    return text.strip().splitlines()[-1].split()[-1]


@contextmanager
def deadline(seconds):
    """Fail instead of hanging if the block loops forever."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def caja():
    return Caja.objects.create(nombre="buzón", secreto=SECRET, otro=OTHER)


# --- Storage format -----------------------------------------------------------------------


def test_it_stores_the_versioned_form_under_the_active_key(caja):
    active = crypto.keyring().active
    assert active == "t1"
    for column, clear in (("secreto", SECRET), ("otro", OTHER)):
        stored = raw(caja.pk, column)
        assert stored.startswith(f"v1:{active}:")
        assert clear not in stored
        payload = base64.b64decode(stored.split(":", 2)[2], validate=True)
        # nonce (12) | ciphertext (as long as the UTF-8 plaintext) | tag (16)
        assert len(payload) == 12 + len(clear.encode("utf-8")) + 16
        assert clear.encode("utf-8") not in payload


def test_it_binds_the_value_to_its_model_and_column(caja):
    field = Caja._meta.get_field("secreto")
    assert field.associated_data() == "cifrado_app.caja.secreto"
    assert crypto.decrypt(raw(caja.pk), "cifrado_app.caja.secreto") == SECRET
    with pytest.raises(DecryptionError):
        crypto.decrypt(raw(caja.pk), "cifrado_app.caja.otro")


def test_it_returns_the_clear_value_through_the_orm(caja):
    loaded = Caja.objects.get(pk=caja.pk)
    assert loaded.secreto == SECRET
    assert loaded.otro == OTHER
    assert isinstance(loaded.secreto, Secreto)
    assert Caja.objects.values_list("secreto", flat=True).get(pk=caja.pk) == SECRET


def test_it_keeps_null_as_null_and_encrypts_the_empty_string():
    caja = Caja.objects.create(nombre="vacía", secreto="", otro=None)
    assert raw(caja.pk, "otro") is None
    assert raw(caja.pk, "secreto").startswith("v1:t1:")
    loaded = Caja.objects.get(pk=caja.pk)
    assert loaded.secreto == ""
    assert loaded.otro is None


def test_it_uses_a_fresh_nonce_for_every_write(caja):
    twin = Caja.objects.create(nombre="gemela", secreto=SECRET)
    assert raw(caja.pk) != raw(twin.pk)
    before = raw(caja.pk)
    caja.save()
    assert raw(caja.pk) != before
    assert Caja.objects.get(pk=caja.pk).secreto == SECRET


def test_it_encrypts_values_written_with_update(caja):
    Caja.objects.filter(pk=caja.pk).update(secreto="nuevo-valor-secreto")
    stored = raw(caja.pk)
    assert stored.startswith("v1:t1:")
    assert "nuevo-valor-secreto" not in stored
    assert Caja.objects.get(pk=caja.pk).secreto == "nuevo-valor-secreto"


# --- Failing closed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "index", [0, 11, 12, -17, -1], ids=["nonce", "nonce-end", "body", "tag", "tag-end"]
)
def test_it_refuses_a_value_with_a_byte_changed(caja, index):
    write_raw(caja.pk, flip_byte(raw(caja.pk), index))
    with pytest.raises(DecryptionError):
        Caja.objects.get(pk=caja.pk)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-4] + "é" + t[-3:],  # a non-ASCII character in the base64
        lambda t: t[:-4] + "*" + t[-3:],  # a character outside the base64 alphabet
        lambda t: t[:20],  # truncated
        lambda t: t + "AAAA",  # extended
        lambda t: "v2" + t[2:],  # another version
        lambda t: t.split(":", 2)[2],  # no header
        lambda t: SECRET,  # plaintext written past the ORM
    ],
    ids=["non-ascii", "non-base64", "truncated", "extended", "version", "headerless", "plain"],
)
def test_it_refuses_a_mangled_value(caja, tamper):
    write_raw(caja.pk, tamper(raw(caja.pk)))
    with pytest.raises(DecryptionError):
        Caja.objects.get(pk=caja.pk)


def test_it_refuses_an_unknown_key_id(caja):
    _, _, encoded = raw(caja.pk).split(":", 2)
    write_raw(caja.pk, f"v1:t9:{encoded}")
    with pytest.raises(DecryptionError, match="unknown key id"):
        Caja.objects.get(pk=caja.pk)


def test_it_refuses_a_value_once_its_key_is_gone(caja):
    with (
        override_settings(ENCRYPTION_KEYS=f"t2:{crypto.generate_key()}"),
        pytest.raises(DecryptionError),
    ):
        Caja.objects.get(pk=caja.pk)
    assert Caja.objects.get(pk=caja.pk).secreto == SECRET


def test_it_refuses_a_value_under_a_known_id_but_another_key(caja):
    with (
        override_settings(ENCRYPTION_KEYS=f"t1:{crypto.generate_key()}"),
        pytest.raises(DecryptionError),
    ):
        Caja.objects.get(pk=caja.pk)


def test_it_refuses_a_ciphertext_copied_into_another_column(caja):
    write_raw(caja.pk, raw(caja.pk, "secreto"), column="otro")
    with pytest.raises(DecryptionError):
        Caja.objects.get(pk=caja.pk)


def test_it_accepts_a_ciphertext_copied_to_the_same_column_of_another_row(caja):
    # Documented limit: the associated data is model + column, not the row. Someone able to
    # write the table can move a secret between rows of one column; not between columns.
    other = Caja.objects.create(nombre="otra", secreto="de-la-otra")
    write_raw(other.pk, raw(caja.pk))
    assert Caja.objects.get(pk=other.pk).secreto == SECRET


# --- Lookups ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lookup",
    [
        {"secreto": SECRET},
        {"secreto__exact": SECRET},
        {"secreto__iexact": SECRET},
        {"secreto__icontains": "buzón"},
        {"secreto__startswith": "v1:"},
        {"secreto__in": [SECRET]},
        {"secreto__gt": ""},
        {"secreto__lower": SECRET},
    ],
    ids=lambda lookup: next(iter(lookup)),
)
def test_it_refuses_lookups_other_than_isnull(caja, lookup):
    with pytest.raises(FieldError, match="encrypted"):
        list(Caja.objects.filter(**lookup))
    with pytest.raises(FieldError, match="encrypted"):
        list(Caja.objects.exclude(**lookup))


def test_it_supports_isnull_lookups(caja):
    empty = Caja.objects.create(nombre="sin secreto")
    assert list(Caja.objects.filter(secreto__isnull=True)) == [empty]
    assert list(Caja.objects.filter(secreto__isnull=False)) == [caja]
    assert list(Caja.objects.exclude(otro__isnull=True)) == [caja]


# --- Never in clear -----------------------------------------------------------------------


def test_it_masks_the_repr_of_a_loaded_value(caja):
    loaded = Caja.objects.get(pk=caja.pk)
    assert SECRET not in repr(loaded.secreto)
    assert repr(loaded.secreto) == "'********'"
    assert SECRET not in repr([loaded.secreto, {"k": loaded.secreto}])
    assert SECRET not in repr(Caja.objects.values("secreto").get(pk=caja.pk))
    # It is still the clear string where code needs it.
    assert str(loaded.secreto) == SECRET
    assert loaded.secreto + "" == SECRET


def test_it_masks_the_value_in_logs(caja, caplog):
    loaded = Caja.objects.get(pk=caja.pk)
    logger = logging.getLogger("tests.cifrado")
    with caplog.at_level(logging.INFO, logger="tests.cifrado"):
        logger.info("mailbox password %r", loaded.secreto)
        logger.info("row %r", {"secreto": loaded.secreto, "otro": loaded.otro})
    assert "********" in caplog.text
    assert SECRET not in caplog.text
    assert OTHER not in caplog.text


def _use_secret(secreto):
    raise RuntimeError("the mail server refused the login")


def test_it_keeps_the_value_off_the_debug_error_page(caja):
    loaded = Caja.objects.get(pk=caja.pk)
    try:
        _use_secret(loaded.secreto)
    except RuntimeError:
        html = ExceptionReporter(None, *sys.exc_info()).get_traceback_html()
        text = ExceptionReporter(None, *sys.exc_info()).get_traceback_text()
    assert "the mail server refused the login" in html  # the page was rendered with frames
    assert "_use_secret" in html
    for page in (html, text):
        assert SECRET not in page
        assert OTHER not in page
        assert "********" in page


# --- Fixtures -----------------------------------------------------------------------------


def test_it_dumps_ciphertext_and_loads_it_back(caja, tmp_path):
    empty = Caja.objects.create(nombre="vacía")
    out = StringIO()
    call_command("dumpdata", "cifrado_app", format="json", indent=2, stdout=out)
    dump = out.getvalue()
    assert SECRET not in dump
    assert OTHER not in dump
    rows = {row["pk"]: row["fields"] for row in json.loads(dump)}
    assert rows[caja.pk]["secreto"].startswith("v1:t1:")
    assert rows[caja.pk]["otro"].startswith("v1:t1:")
    assert rows[empty.pk]["secreto"] is None

    Caja.objects.all().delete()
    fixture = tmp_path / "cajas.json"
    fixture.write_text(dump, encoding="utf-8")
    call_command("loaddata", str(fixture), verbosity=0)

    loaded = Caja.objects.get(pk=caja.pk)
    assert loaded.secreto == SECRET
    assert loaded.otro == OTHER
    assert Caja.objects.get(pk=empty.pk).secreto is None
    assert SECRET not in raw(caja.pk)
    assert raw(caja.pk).startswith("v1:t1:")


def test_it_dumps_no_plaintext_as_xml(caja):
    out = StringIO()
    call_command("dumpdata", "cifrado_app", format="xml", stdout=out)
    assert "v1:t1:" in out.getvalue()
    assert SECRET not in out.getvalue()
    assert OTHER not in out.getvalue()


def _dump(tmp_path, mangle):
    out = StringIO()
    call_command("dumpdata", "cifrado_app", format="json", stdout=out)
    rows = json.loads(out.getvalue())
    mangle(rows[0]["fields"])
    Caja.objects.all().delete()
    fixture = tmp_path / "cajas.json"
    fixture.write_text(json.dumps(rows), encoding="utf-8")
    return fixture


@pytest.mark.parametrize(
    "mangle",
    [
        lambda f: f.update(secreto=flip_byte(f["secreto"], 14)),
        lambda f: f.update(secreto=f["otro"]),  # a value bound to the other column
        lambda f: f.update(secreto="v1:t9:" + f["secreto"].split(":", 2)[2]),
    ],
    ids=["tampered", "other-column", "unknown-key"],
)
def test_it_refuses_to_load_a_ciphertext_that_does_not_authenticate(caja, tmp_path, mangle):
    fixture = _dump(tmp_path, mangle)
    with pytest.raises(DeserializationError, match="does not decrypt") as excinfo:
        call_command("loaddata", str(fixture), verbosity=0)
    assert SECRET not in str(excinfo.value)
    # Not stored with the ciphertext taken for the clear value: nothing stored at all.
    assert not Caja.objects.exists()


def test_it_refuses_a_ciphertext_looking_value_in_full_clean(caja):
    # A value in our stored form that does not authenticate is never taken for a clear value.
    other = Caja(nombre="x", secreto=flip_byte(raw(caja.pk), 14))
    with pytest.raises(ValidationError, match="does not decrypt") as excinfo:
        other.full_clean()
    assert set(excinfo.value.message_dict) == {"secreto"}


# --- Rotation -----------------------------------------------------------------------------


def test_it_rotates_every_secret_to_the_newest_key():
    old, new = crypto.generate_key(), crypto.generate_key()
    with override_settings(ENCRYPTION_KEYS=f"t1:{old}"):
        first = Caja.objects.create(nombre="a", secreto=SECRET, otro=OTHER)
        second = Caja.objects.create(nombre="b", secreto="segundo-secreto", otro=None)

    with override_settings(ENCRYPTION_KEYS=f"t1:{old},t2:{new}"):
        assert crypto.keyring().active == "t2"
        # Old rows still read; new writes go under t2.
        assert Caja.objects.get(pk=first.pk).secreto == SECRET
        assert raw(first.pk).startswith("v1:t1:")
        third = Caja.objects.create(nombre="c", secreto="tercero-secreto")
        assert raw(third.pk).startswith("v1:t2:")
        third_stored = raw(third.pk)

        out = StringIO()
        call_command("rotar_clave_cifrado", stdout=out)
        output = out.getvalue()
        assert "cifrado_app.Caja.secreto: 2 re-encrypted" in output
        assert "cifrado_app.Caja.otro: 1 re-encrypted" in output
        assert "'t2'" in output
        for clear in (SECRET, OTHER, "segundo-secreto", "tercero-secreto"):
            assert clear not in output

        assert raw(first.pk).startswith("v1:t2:")
        assert raw(first.pk, "otro").startswith("v1:t2:")
        assert raw(second.pk).startswith("v1:t2:")
        assert raw(second.pk, "otro") is None
        assert raw(third.pk) == third_stored  # already under t2: left alone

        again = StringIO()
        call_command("rotar_clave_cifrado", stdout=again)
        assert "cifrado_app.Caja.secreto: 0 re-encrypted" in again.getvalue()

    with override_settings(ENCRYPTION_KEYS=f"t2:{new}"):
        assert Caja.objects.get(pk=first.pk).secreto == SECRET
        assert Caja.objects.get(pk=first.pk).otro == OTHER
        assert Caja.objects.get(pk=second.pk).secreto == "segundo-secreto"
        assert Caja.objects.get(pk=third.pk).secreto == "tercero-secreto"


def test_it_writes_under_the_configured_active_key():
    old, new = crypto.generate_key(), crypto.generate_key()
    with override_settings(ENCRYPTION_KEYS=f"t1:{old},t2:{new}", ENCRYPTION_ACTIVE_KEY="t1"):
        caja = Caja.objects.create(nombre="a", secreto=SECRET)
        assert raw(caja.pk).startswith("v1:t1:")


def test_it_rotates_in_batches():
    old, new = crypto.generate_key(), crypto.generate_key()
    with override_settings(ENCRYPTION_KEYS=f"t1:{old}"):
        cajas = [Caja.objects.create(nombre=str(i), secreto=f"s-{i}") for i in range(5)]
    with override_settings(ENCRYPTION_KEYS=f"t1:{old},t2:{new}"):
        counts = reencrypt_all(batch_size=2)
    assert counts["cifrado_app.Caja.secreto"] == 5
    with override_settings(ENCRYPTION_KEYS=f"t2:{new}"):
        for i, caja in enumerate(cajas):
            assert raw(caja.pk).startswith("v1:t2:")
            assert Caja.objects.get(pk=caja.pk).secreto == f"s-{i}"


def test_it_rotates_a_row_whose_primary_key_is_zero():
    old, new = crypto.generate_key(), crypto.generate_key()
    with override_settings(ENCRYPTION_KEYS=f"t1:{old}"):
        Caja.objects.create(pk=0, nombre="cero", secreto="s-0")
        Caja.objects.create(pk=1, nombre="uno", secreto="s-1")
    with override_settings(ENCRYPTION_KEYS=f"t1:{old},t2:{new}"), deadline(10):
        counts = reencrypt_all(batch_size=1)
    assert counts["cifrado_app.Caja.secreto"] == 2
    assert raw(0).startswith("v1:t2:")
    assert raw(1).startswith("v1:t2:")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: flip_byte(t, 14),
        lambda t: t[:-4] + "é" + t[-3:],
        lambda t: "v1:t9:" + t.split(":", 2)[2],
        lambda t: "segundo-secreto-en-claro",
    ],
    ids=["tampered", "non-ascii", "unknown-key", "plain"],
)
def test_it_stops_rotating_on_a_value_that_does_not_decrypt(tamper):
    old, new = crypto.generate_key(), crypto.generate_key()
    with override_settings(ENCRYPTION_KEYS=f"t1:{old}"):
        good = Caja.objects.create(nombre="buena", secreto=SECRET, otro=OTHER)
        bad = Caja.objects.create(nombre="mala", secreto="segundo-secreto-en-claro")
        write_raw(bad.pk, tamper(raw(bad.pk)))

    with override_settings(ENCRYPTION_KEYS=f"t1:{old},t2:{new}"):
        out, err = StringIO(), StringIO()
        with pytest.raises(CommandError, match="does not decrypt") as excinfo:
            call_command("rotar_clave_cifrado", stdout=out, stderr=err)
        said = str(excinfo.value) + out.getvalue() + err.getvalue()
        for clear in (SECRET, OTHER, "segundo-secreto"):
            assert clear not in said
        assert Caja.objects.get(pk=good.pk).secreto == SECRET
        assert Caja.objects.get(pk=good.pk).otro == OTHER


# --- Keys ---------------------------------------------------------------------------------


def test_it_parses_a_key_list():
    k1, k2 = crypto.generate_key(), crypto.generate_key()
    ring = crypto.parse_keys(f" a:{k1} , b:{k2} ")
    assert ring.active == "b"
    assert ring.keys == {"a": base64.b64decode(k1), "b": base64.b64decode(k2)}
    assert all(len(key) == 32 for key in ring.keys.values())
    assert crypto.parse_keys(f"a:{k1},b:{k2}", "a").active == "a"
    assert crypto.generate_key() != crypto.generate_key()


@pytest.mark.parametrize(
    ("spec", "active"),
    [
        ("t1:not*base64", ""),
        ("t1:é" + "A" * 43, ""),
        ("t1:" + base64.b64encode(b"k" * 16).decode(), ""),
        ("t1:" + base64.b64encode(b"k" * 33).decode(), ""),
        ("t1:", ""),
        ("t1:{k},t1:{k2}", ""),
        ("t1:{k}", "t2"),
        ("", ""),
        (" , ", ""),
        ("{k}", ""),
        (":{k}", ""),
    ],
    ids=[
        "not-base64",
        "non-ascii",
        "short",
        "long",
        "empty-key",
        "duplicate-id",
        "active-missing",
        "empty",
        "only-commas",
        "no-id",
        "empty-id",
    ],
)
def test_it_rejects_bad_key_specs(spec, active):
    spec = spec.format(k=crypto.generate_key(), k2=crypto.generate_key())
    with pytest.raises(ImproperlyConfigured):
        crypto.parse_keys(spec, active)


def test_it_requires_keys_when_debug_is_off():
    with override_settings(DEBUG=False, ENCRYPTION_KEYS=""):
        with pytest.raises(ImproperlyConfigured):
            crypto.keyring()
        with pytest.raises(ImproperlyConfigured), transaction.atomic():
            Caja.objects.create(nombre="x", secreto=SECRET)
    assert not Caja.objects.exists()


def test_it_refuses_a_bad_key_setting():
    with override_settings(ENCRYPTION_KEYS="t1:AAAA"), pytest.raises(ImproperlyConfigured):
        crypto.keyring()


def test_it_derives_a_development_key_only_in_debug():
    with override_settings(DEBUG=True, ENCRYPTION_KEYS=""):
        assert crypto.keyring().active == "dev"
        caja = Caja.objects.create(nombre="x", secreto=SECRET)
        assert raw(caja.pk).startswith("v1:dev:")
        assert Caja.objects.get(pk=caja.pk).secreto == SECRET
